"""`make bench`: instrumentation overhead and overfit onset, written to results/.

    python -m lab.dev.bench --out results [--rounds 5]

Overhead: the overfit scenario's model (64-256-256-10, batch 32, 600 steps) trained
with each configuration in turn, round after round in one process so that machine
noise hits them alike; the figure is the median over rounds of wall time per step.
  bare         forward, backward, optimiser step, loss.item()   (nothing else)
  signals      + gradient norm, rolling baselines, window statistics (no exporter, no evaluations)
  per-step     signals + the lab's OTel recording (no probes/evaluations)
  tensorboard  signals + TensorBoard's SummaryWriter logging loss, gradient norm and learning
               rate every step, instead of OTel (what people use instead; benchmark only:
               tensorboard is installed under ~/.cache/ml-obs-lab, LAB_BENCH_TENSORBOARD_VERSION)
  every-N      per-step + validation evaluation with activation probes every N steps
Onset: steps and seconds until validation/training loss first passes its threshold, over seeds,
in --fast mode and in the default paced mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lab
from lab.repo import read_dotenv
from lab.specs.loader import load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import RunIdentity, Telemetry
from lab.thresholds import OVERFIT_RATIO_THRESHOLD
from lab.training.export import TelemetryObserver
from lab.training.loop import Trainer

NEVER = 10**9


# A model ~30x the overfit MLP's step cost, to show how the fixed per-step cost scales.
LARGER = ["model.hidden=[1024, 1024]", "train.batch_size=128", "data.train_size=1297", "train.epochs=2"]


def tensorboard_path() -> tuple[Path | None, str]:
    """A directory with the pinned tensorboard (and absl-py, its one import the venv lacks), made once."""
    env = read_dotenv()
    tb, absl = env.get("LAB_BENCH_TENSORBOARD_VERSION", ""), env.get("LAB_BENCH_TENSORBOARD_ABSL_VERSION", "")
    target = Path(os.environ.get("LAB_CACHE_DIR", Path.home() / ".cache" / "ml-obs-lab")) / f"bench-tensorboard-{tb}"
    if not (target / "tensorboard").is_dir():
        uv = Path(sys.executable).parent / "uv"
        # --no-deps: its other requirements (numpy, protobuf, ...) are the venv's own
        try:
            subprocess.run([str(uv), "pip", "install", "-q", "--python", sys.executable, "--target", str(target),
                            "--no-deps", f"tensorboard=={tb}", f"absl-py=={absl}"], check=True, capture_output=True,
                           timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"tensorboard {tb} could not be installed: {str(exc)[:200]}"
    return target, f"tensorboard {tb}"


class TensorBoardObserver(BaseObserver):
    """What a TensorBoard user logs every step: loss, gradient norm, learning rate."""

    def __init__(self, writer_class, logdir: str):
        self.writer = writer_class(logdir)

    def on_unit(self, rec) -> None:
        self.writer.add_scalar("train/loss", rec.loss, rec.step)
        self.writer.add_scalar("train/grad_norm", rec.grad_norm, rec.step)
        self.writer.add_scalar("train/lr", rec.lr, rec.step)

    def on_end(self, result) -> None:
        self.writer.close()


_WRITER: list = []  # torch.utils.tensorboard.SummaryWriter, once tensorboard is importable


def _one(config: str, seed: int, extra: list[str] = ()) -> float:
    every = {"bare": None, "signals": NEVER, "tensorboard": NEVER, "per-step": NEVER,
             "every-1": 1, "every-5": 5, "every-25": 25}[config]
    if every is None:
        spec = load_scenario("overfit", overrides=list(extra))
        t = Trainer(spec, seed, fast=True, instrument=False)
        r = t.run()
        return r.wall_s / r.steps
    if config in ("signals", "tensorboard"):
        spec = load_scenario("overfit", overrides=[*extra, f"train.eval_every={every}"])
        with tempfile.TemporaryDirectory() as logdir:
            observers = [TensorBoardObserver(_WRITER[0], logdir)] if config == "tensorboard" else []
            r = Trainer(spec, seed, fast=True, observers=observers).run()
        return r.wall_s / r.steps
    spec = load_scenario("overfit", overrides=[*extra, f"train.eval_every={every}"])
    tel = Telemetry(RunIdentity("overfit", "fault", seed), otlp=False, metric_readers=[InMemoryMetricReader()],
                    span_exporters=[InMemorySpanExporter()], log_exporters=[InMemoryLogRecordExporter()])
    r = Trainer(spec, seed, fast=True, observers=[TelemetryObserver(tel)]).run()
    tel.shutdown()
    return r.wall_s / r.steps


def overhead(rounds: int, extra: list[str] = (),
             configs=("bare", "signals", "per-step", "tensorboard", "every-1", "every-5", "every-25")) -> dict:
    configs = [c for c in configs if c != "tensorboard" or _WRITER]
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
    tb_dir, tb_note = tensorboard_path()
    if tb_dir is not None:
        sys.path.insert(0, str(tb_dir))  # this process only: tensorboard is never a lab dependency
        from torch.utils.tensorboard import SummaryWriter
        _WRITER.append(SummaryWriter)
    print(f"measuring instrumentation overhead ({tb_note}) ...", flush=True)
    res = {"lab_version": lab.__version__, "torch": torch.__version__, "python": platform.python_version(),
           "machine": f"{platform.machine()} {torch.get_num_threads()} torch thread(s)", "tensorboard": tb_note,
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "overhead": overhead(args.rounds)}
    print("measuring instrumentation overhead on a larger model ...", flush=True)
    res["overhead_larger"] = overhead(args.rounds, LARGER, ("bare", "signals", "per-step", "tensorboard", "every-5",
                                                            "every-25"))
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
    lines += ["", "`signals` is the signals alone (gradient norm, rolling baselines, window statistics, no exporter); "
              "`per-step` is what every step of a lab run pays (the signals and the OTel recording); `tensorboard` is "
              f"the same signals with {res.get('tensorboard', 'TensorBoard')}'s SummaryWriter logging loss, gradient "
              "norm and learning rate every step instead of OTel, what people use instead; `every-N` adds the",
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
