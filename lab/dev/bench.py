"""`make bench`: instrumentation overhead and overfit onset, written to results/.

    python -m lab.dev.bench --out results [--rounds 5]

Overhead: the overfit scenario's model (64-256-256-10, batch 32, 600 steps) trained
with each configuration in turn, round after round in one process so that machine
noise hits them alike; the figure is the median over rounds of wall time per step.
  bare        forward, backward, optimiser step, loss.item()   (nothing else)
  per-step    + gradient norm, step bookkeeping, OTel recording (no probes/evaluations)
  every-N     + validation evaluation with activation probes every N steps
Onset: steps and seconds until validation/training loss first passes its threshold, over seeds,
in --fast mode and in the default paced mode.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lab
from lab.specs.loader import load_scenario
from lab.telemetry.otel import RunIdentity, Telemetry
from lab.thresholds import OVERFIT_RATIO_THRESHOLD
from lab.training.export import TelemetryObserver
from lab.training.loop import Trainer

NEVER = 10**9


# A model ~30x the overfit MLP's step cost, to show how the fixed per-step cost scales.
LARGER = ["model.hidden=[1024, 1024]", "train.batch_size=128", "data.train_size=1297", "train.epochs=2"]


def _one(config: str, seed: int, extra: list[str] = ()) -> float:
    every = {"bare": None, "per-step": NEVER, "every-1": 1, "every-5": 5, "every-25": 25}[config]
    if every is None:
        spec = load_scenario("overfit", overrides=list(extra))
        t = Trainer(spec, seed, fast=True, instrument=False)
        r = t.run()
        return r.wall_s / r.steps
    spec = load_scenario("overfit", overrides=[*extra, f"train.eval_every={every}"])
    tel = Telemetry(RunIdentity("overfit", "fault", seed), otlp=False, metric_readers=[InMemoryMetricReader()],
                    span_exporters=[InMemorySpanExporter()], log_exporters=[InMemoryLogRecordExporter()])
    r = Trainer(spec, seed, fast=True, observers=[TelemetryObserver(tel)]).run()
    tel.shutdown()
    return r.wall_s / r.steps


def overhead(rounds: int, extra: list[str] = (), configs=("bare", "per-step", "every-1", "every-5", "every-25")) -> dict:
    configs = list(configs)
    _one("bare", 0, extra)  # warm-up: imports, allocator, dataset cache
    samples: dict[str, list[float]] = {c: [] for c in configs}
    for rnd in range(rounds):
        for c in (configs if rnd % 2 == 0 else reversed(configs)):
            samples[c].append(_one(c, rnd, extra))
    med = {c: statistics.median(v) for c, v in samples.items()}
    out = {}
    for c in configs:
        out[c] = {"median_ms_per_step": round(med[c] * 1e3, 4),
                  "min_ms_per_step": round(min(samples[c]) * 1e3, 4),
                  "max_ms_per_step": round(max(samples[c]) * 1e3, 4),
                  "overhead_vs_bare_pct": round((med[c] / med["bare"] - 1) * 100, 1)}
    return out


def onset(seeds: int, paced: bool) -> dict:
    steps, secs = [], []
    for s in range(seeds):
        spec = load_scenario("overfit")
        # A paced run only needs to reach the crossing; stop it a little after.
        r = Trainer(spec, s, fast=not paced, max_steps=100 if paced else None).run()
        cross = r.first_eval(lambda e: e.ratio > OVERFIT_RATIO_THRESHOLD)
        steps.append(cross.step if cross else None)
        secs.append(round(cross.elapsed_s, 3) if cross else None)
    ok_steps = [x for x in steps if x is not None]
    ok_secs = [x for x in secs if x is not None]

    def mmm(v):
        return {"min": min(v), "median": statistics.median(v), "max": max(v)} if v else None

    return {"seeds": seeds, "crossed": len(ok_steps), "steps": mmm(ok_steps), "seconds": mmm(ok_secs),
            "per_seed_steps": steps, "per_seed_seconds": secs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--skip-paced", action="store_true", help="skip the paced onset measurement (~2 min)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as lab run does
    t0 = time.time()
    print("measuring instrumentation overhead ...", flush=True)
    res = {"lab_version": lab.__version__, "torch": torch.__version__, "python": platform.python_version(),
           "machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s)",
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "overhead": overhead(args.rounds)}
    print("measuring instrumentation overhead on a larger model ...", flush=True)
    res["overhead_larger"] = overhead(args.rounds, LARGER, ("bare", "per-step", "every-5", "every-25"))
    print("measuring overfit onset (--fast) ...", flush=True)
    res["onset_fast"] = onset(args.seeds, paced=False)
    if not args.skip_paced:
        print("measuring overfit onset (paced) ...", flush=True)
        res["onset_paced"] = onset(args.seeds, paced=True)
    res["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["bench_seconds"] = round(time.time() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "bench.md").write_text(render(res))
    print(render(res))
    return 0


def render(res: dict) -> str:
    lines = [f"# Benchmark results ({res['date']})", "",
             f"lab {res['lab_version']}, torch {res['torch']}, Python {res['python']}, {res['machine']}; "
             f"peak RSS {res['max_rss_mib']} MiB; took {res['bench_seconds']} s. Produced by `make bench`.", "",
             "## Instrumentation overhead (overfit model, 600 steps, median over rounds)", "",
             "| configuration | ms/step (median) | min | max | overhead vs bare |", "|---|---|---|---|---|"]
    for c, v in res["overhead"].items():
        lines.append(f"| {c} | {v['median_ms_per_step']} | {v['min_ms_per_step']} | {v['max_ms_per_step']} | {v['overhead_vs_bare_pct']}% |")
    lines += ["", "## The same on a larger model (64-1024-1024-10, batch 128, 1,297 samples, 2 epochs)", "",
              "| configuration | ms/step (median) | min | max | overhead vs bare |", "|---|---|---|---|---|"]
    for c, v in res.get("overhead_larger", {}).items():
        lines.append(f"| {c} | {v['median_ms_per_step']} | {v['min_ms_per_step']} | {v['max_ms_per_step']} | {v['overhead_vs_bare_pct']}% |")
    lines += ["", "`per-step` is what every step pays (gradient norm, bookkeeping, OTel recording); `every-N` adds the",
              "validation evaluation (500 samples, one forward pass that also gives the activation statistics) every N steps.", ""]
    for key, label in (("onset_fast", "--fast"), ("onset_paced", "paced (default)")):
        if key in res:
            o = res[key]
            lines.append(f"## Overfit: validation/training loss first above {OVERFIT_RATIO_THRESHOLD}, {label}")
            lines.append("")
            lines.append(f"{o['crossed']}/{o['seeds']} seeds crossed; steps min/median/max "
                         f"{o['steps']['min']}/{o['steps']['median']}/{o['steps']['max']}; seconds "
                         f"{o['seconds']['min']}/{o['seconds']['median']}/{o['seconds']['max']} "
                         f"(per seed: steps {o['per_seed_steps']}, seconds {o['per_seed_seconds']}).")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
