"""`make bench`: instrumentation overhead and overfit onset, written to results/.

    python -m lab.dev.bench --out results [--rounds 15] [--rounds-larger 25]

Overhead: the overfit scenario's model (64-256-256-10, batch 32, 600 steps) trained
with each configuration in turn, round after round in one process so that machine
noise hits them alike; the figures are the median over rounds of wall time per step, and of
each round's ratio to its own bare run (evaluations excluded except in the every-N rows).
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
from lab.repo import cache_dir, read_dotenv
from lab.specs.loader import load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import RunIdentity, Telemetry
from lab.thresholds import OVERFIT_RATIO_THRESHOLD
from lab.training.export import TelemetryObserver
from lab.training.loop import Trainer

NEVER = 10**9


# A model ~9x the overfit MLP's step cost (9.1 against 1.0 ms, results/bench.md), to show how
# the fixed per-step cost scales.
LARGER = ["model.hidden=[1024, 1024]", "train.batch_size=128", "data.train_size=1297", "train.epochs=6"]


def tensorboard_path() -> tuple[Path | None, str]:
    """A directory with the pinned tensorboard (and absl-py, its one import the venv lacks), made once."""
    env = read_dotenv()
    tb, absl = env.get("LAB_BENCH_TENSORBOARD_VERSION", ""), env.get("LAB_BENCH_TENSORBOARD_ABSL_VERSION", "")
    target = cache_dir() / f"bench-tensorboard-{tb}"
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


def _per_step(r) -> float:
    """Seconds per step of what a step pays: a run ends with one evaluation whatever the cadence,
    which is not a per-step cost (the every-N rows count evaluations)."""
    return (r.wall_s - r.eval_s) / r.steps


def _one(config: str, seed: int, extra: list[str] = ()) -> float:
    every = {"bare": None, "signals": NEVER, "tensorboard": NEVER, "per-step": NEVER,
             "every-1": 1, "every-5": 5, "every-25": 25}[config]
    if every is None:
        spec = load_scenario("overfit", overrides=list(extra))
        return _per_step(Trainer(spec, seed, fast=True, instrument=False).run())
    if config in ("signals", "tensorboard"):
        spec = load_scenario("overfit", overrides=[*extra, f"train.eval_every={every}"])
        with tempfile.TemporaryDirectory() as logdir:
            observers = [TensorBoardObserver(_WRITER[0], logdir)] if config == "tensorboard" else []
            r = Trainer(spec, seed, fast=True, observers=observers).run()
        return _per_step(r)
    spec = load_scenario("overfit", overrides=[*extra, f"train.eval_every={every}"])
    tel = Telemetry(RunIdentity("overfit", "fault", seed), otlp=False, metric_readers=[InMemoryMetricReader()],
                    span_exporters=[InMemorySpanExporter()], log_exporters=[InMemoryLogRecordExporter()])
    r = Trainer(spec, seed, fast=True, observers=[TelemetryObserver(tel)]).run()
    tel.shutdown()
    return _per_step(r) if every == NEVER else r.wall_s / r.steps


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _quartiles(v: list[float]) -> tuple[float, float]:
    if len(v) < 2:
        return v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000, got {text!r}") from None
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000, got {text!r}")
    return n


def overhead(rounds: int, extra: list[str] = (),
             configs=("bare", "signals", "per-step", "tensorboard", "every-1", "every-5", "every-25")) -> dict:
    """ms/step of each configuration over rounds, and its overhead against the bare loop.

    The overhead is the median over rounds of each round's own ratio to that round's bare
    run (the two ran back to back): on a shared 2-core VM a run's speed drifts by up to ±10%
    from one second to the next, which a ratio of two overall medians would add to the
    figure, while neighbouring runs drift alike. The interquartile range of those ratios
    says how far to trust a difference of a few percent.
    """
    configs = [c for c in configs if c != "tensorboard" or _WRITER]
    _one("bare", 0, extra)  # warm-up: imports, allocator, dataset cache
    samples: dict[str, list[float]] = {c: [] for c in configs}
    for rnd in range(rounds):
        for c in (configs if rnd % 2 == 0 else reversed(configs)):
            samples[c].append(_one(c, rnd, extra))
    out = {}
    for c in configs:
        ratios = [(t / bare - 1) * 100 for t, bare in zip(samples[c], samples["bare"])]
        q1, q3 = _quartiles(ratios)
        out[c] = {"median_ms_per_step": round(statistics.median(samples[c]) * 1e3, 4),
                  "min_ms_per_step": round(min(samples[c]) * 1e3, 4),
                  "max_ms_per_step": round(max(samples[c]) * 1e3, 4),
                  "overhead_vs_bare_pct": round(statistics.median(ratios), 1),
                  "overhead_q1_pct": round(q1, 1), "overhead_q3_pct": round(q3, 1)}
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
    p.add_argument("--rounds", type=_count, default=15, help="rounds on the overfit model")
    p.add_argument("--rounds-larger", type=_count, default=25,
                   help="rounds on the larger model, whose run-to-run spread is wider")
    p.add_argument("--seeds", type=_count, default=5)
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
           "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, {torch.get_num_threads()} torch thread(s)", "tensorboard": tb_note,
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "overhead": overhead(args.rounds)}
    print("measuring instrumentation overhead on a larger model ...", flush=True)
    res["overhead_larger"] = overhead(args.rounds_larger, LARGER, ("bare", "signals", "per-step", "tensorboard", "every-5",
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


def _table(rows: dict) -> list[str]:
    lines = ["| configuration | ms/step median | min | max | overhead vs bare (median of rounds) | quartiles |",
             "|---|---|---|---|---|---|"]
    for c, v in rows.items():
        lines.append(f"| {c} | {v['median_ms_per_step']} | {v['min_ms_per_step']} | {v['max_ms_per_step']} | "
                     f"{v['overhead_vs_bare_pct']:+.1f}% | {v['overhead_q1_pct']:+.1f}% to {v['overhead_q3_pct']:+.1f}% |")
    return lines


def render(res: dict) -> str:
    lines = [f"# Benchmark results ({res['date']})", "",
             f"lab {res['lab_version']}, torch {res['torch']}, Python {res['python']}, {res['machine']}; "
             f"peak RSS {res['max_rss_mib']} MiB; took {res['bench_seconds']} s. Produced by `make bench`.", "",
             "## Instrumentation overhead (overfit model, 600 steps)", "",
             *_table(res["overhead"]),
             "", "## The same on a larger model (64-1024-1024-10, batch 128, 1,297 samples, 6 epochs: 66 steps)", "",
             *_table(res.get("overhead_larger", {}))]
    lines += ["", "Per step means the run's wall time without its evaluations, over its steps; every run ends with one "
              "evaluation whatever its cadence, which is not a per-step cost. The every-N rows count their evaluations.",
              "", "`signals` is the signals alone (gradient norm, rolling baselines, window statistics, no exporter); "
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
