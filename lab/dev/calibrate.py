"""Run scenarios over seeds and report signature onsets and peaks.

    python -m lab.dev.calibrate [NAME ...] [--seeds 5] [--fix] [--out results/scenarios.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lab.specs.loader import known_scenarios, load_scenario
from lab.training.loop import Trainer
from lab.training.signatures import SIGNATURES, onsets, peaks


def measure(name: str, fix: bool, seeds: int, overrides=()) -> dict:
    spec = load_scenario(name, fix=fix, overrides=list(overrides))
    rows = []
    for s in range(seeds):
        t0 = time.monotonic()
        r = Trainer(spec, s, fast=True).run()
        sec_per_step = (time.monotonic() - t0) / max(r.steps, 1)
        rows.append({"seed": s, "steps": r.steps, "stopped": r.stopped, "onsets": onsets(r), "peaks": peaks(r),
                     "sec_per_step": sec_per_step})
    return {"scenario": name, "variant": spec.variant, "expects": spec.alerts, "runs": rows,
            "steps_per_second": spec.pace.steps_per_second}


def mmm(values):
    v = [x for x in values if x is not None]
    return f"{min(v):.3g}/{statistics.median(v):.3g}/{max(v):.3g}" if v else "-"


def render(m: dict) -> str:
    lines = [f"### {m['scenario']} ({m['variant']})", "",
             "| signature | seeds reached | onset step min/median/max | onset s (fast) min/median/max "
             "| onset s (paced) min/median/max |",
             "|---|---|---|---|---|"]
    for sig in SIGNATURES:
        steps = [r["onsets"][sig] for r in m["runs"]]
        secs = [None if st is None else st * r["sec_per_step"] for st, r in zip(steps, m["runs"])]
        # Paced runs are step-locked (step k runs at k / steps_per_second), so paced onset = step / pace.
        paced = [None if st is None else st / m["steps_per_second"] for st in steps]
        lines.append(f"| {sig} | {sum(x is not None for x in steps)}/{len(steps)} | {mmm(steps)} | {mmm(secs)} "
                     f"| {mmm(paced)} |")
    lines += ["", "| peak signal | min/median/max over seeds |", "|---|---|"]
    for k in m["runs"][0]["peaks"]:
        lines.append(f"| {k} | {mmm([r['peaks'][k] for r in m['runs']])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--fix", action="store_true", help="only the fix variants")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    # Inference scenarios have their own measurements (python -m lab.dev.drift_bench).
    names = args.names or [n for n in known_scenarios() if load_scenario(n).kind == "training"]
    out = []
    for n in names:
        variants = [True] if args.fix else [False, True]
        for fix in variants:
            if fix and not load_scenario(n).has_fix:
                continue
            m = measure(n, fix, args.seeds, args.overrides)
            out.append(m)
            print(render(m), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("# Scenario calibration (`python -m lab.dev.calibrate`)\n\n" + "\n".join(render(m) for m in out))
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
