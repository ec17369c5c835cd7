"""Calibrate the scenarios: every alert's signal over many seeds, against its threshold.

    python -m lab.dev.calibrate [NAME ...] [--seeds 50] [--first-seed 0] [--jobs 2]
                                [--set KEY=VALUE ...] [--out results/scenarios.md]

Each scenario's fault and fix (a healthy baseline is its own row) runs flat out on every seed.
Per run and per alert of its family, one number decides the alert: its *signal*, reduced the way
the rule reduces it (the peak, or the value held for as long as the rule's `for:` asks), so
that the alert's condition holds on a run exactly when its signal crosses the threshold.
Per scenario row and alert: min / p5 / median / p95 / max of that signal over the seeds, how
many seeds cross, and the margin: for an expected alert the weakest fault seed against the
threshold, for any other the strongest.

Paced runs (what a trainee watches) show the same steps as fast ones, at steps_per_second; what
differs is what reaches Prometheus. The dead-unit and stall alerts go quiet once the run has a
non-finite step (`unless ... nonfinite_steps_total > 0`), so in a paced run one of them fires
only if its condition held for its `for:` plus PACED_LEAD_S before the first NaN (two export
intervals: the condition's export, and an evaluation before the NaN's export), and stays
silent if it held PACED_LEAD_S less than its `for:`. A lead between the two counts as
`uncertain`: whether it fires depends on where the export ticks fall. In a scenario that
expects MLLabTrainingDiverged such an alert may fire on the way to the NaN; it is reported,
not counted against the scenario (as in lab/dev/replay.py and the alert matrix).

CALIBRATION_SEEDS are the seeds recipes are tuned on; the scenario tests run TEST_SEEDS, a
disjoint range, so a recipe tuned to its tests' seeds fails them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lab.generative.loop import BotResult, BotServer
from lab.repo import alert_rules, duration_s
from lab.serving.loop import Server, ServeResult
from lab.specs.loader import SpecError, known_scenarios, load_scenario
from lab.telemetry.otel import LAB_INTERVAL_SECONDS
from lab.thresholds import (
    ACCURACY_DROP,
    COST_PER_1K_REQUESTS_USD,
    DEAD_RATIO_THRESHOLD,
    DEAD_SUSTAINED_EVALS,
    ECE_THRESHOLD,
    ERROR_BUDGET,
    GRAD_SPIKE_CRITICAL,
    GRAD_SPIKE_WARNING,
    HALLUCINATION_RATE_THRESHOLD,
    JS_THRESHOLD,
    KS_ALPHA,
    LATENCY_BUDGET,
    LATENCY_OBJECTIVE_S,
    LENGTH_FINISH_SHARE,
    LOSS_SPIKE_THRESHOLD,
    OOV_RATE_THRESHOLD,
    OVERFIT_RATIO_THRESHOLD,
    OVERFIT_STALL_EVALS,
    PSI_MAJOR,
    QUALITY_SLI_OBJECTIVE,
    RUN_SERIES_LIMIT,
    STALL_AFTER_PROGRESS,
    STALL_LOSS_FRACTION,
    SUSTAINED_WINDOWS,
)
from lab.training.loop import RunResult, Trainer
from lab.training.signals import overfitting

DIVERGED = "MLLabTrainingDiverged"
CALIBRATION_SEEDS = range(0, 50)
TEST_SEEDS = range(1000, 1005)
# A condition this long (beyond its `for:`) before the first non-finite step reaches Prometheus
# and an evaluation before the NaN does.
PACED_LEAD_S = 2 * LAB_INTERVAL_SECONDS
# A fix of an alarm-driven kind (it acts on the alarm) is judged on its last windows only, as
# the scenario tests do.
FIX_TAIL_WINDOWS = 8


@dataclass(frozen=True)
class Alert:
    name: str
    signal: str  # what the number is, for the table
    threshold: float
    above: bool = True  # fires when the signal is above (False: at or above, for a fraction)


TRAINING_ALERTS = (
    Alert("MLLabOverfitting", "val/train loss ratio once val loss stalled", OVERFIT_RATIO_THRESHOLD),
    Alert("MLLabGradientNormSpike", "gradient norm / baseline, peak before NaN", GRAD_SPIKE_WARNING),
    Alert("MLLabGradientNormSpikeCritical", "gradient norm / baseline, peak before NaN", GRAD_SPIKE_CRITICAL),
    Alert("MLLabLossSpike", "minibatch loss / baseline, peak before NaN", LOSS_SPIKE_THRESHOLD),
    Alert("MLLabDeadNeurons", f"dead-unit ratio held {DEAD_SUSTAINED_EVALS} evaluations", DEAD_RATIO_THRESHOLD),
    Alert("MLLabTrainingStalled", "best / first training loss at 25% of the run", STALL_LOSS_FRACTION, above=False),
    Alert("MLLabTrainingDiverged", "non-finite steps", 0.0),
)
SERVING_ALERTS = (
    Alert("MLLabInputDrift", f"share of features KS-drifted, held {SUSTAINED_WINDOWS} windows", 0.0),
    Alert("MLLabInputDrift", f"max PSI, held {SUSTAINED_WINDOWS} windows", PSI_MAJOR),
    Alert("MLLabInputDrift", f"max Jensen-Shannon distance, held {SUSTAINED_WINDOWS} windows", JS_THRESHOLD),
    Alert("MLLabAccuracyDegraded", f"baseline - accuracy, held {SUSTAINED_WINDOWS} windows", ACCURACY_DROP),
    Alert("MLLabMiscalibrated", f"calibration error, held {SUSTAINED_WINDOWS} windows", ECE_THRESHOLD),
    # The rule reads a 1-minute rate for 30 s; a window is 5 s of it, so this is the per-window view.
    Alert("MLLabInferenceLatencySLO", f"share of requests slower than {LATENCY_OBJECTIVE_S:g} s, held {SUSTAINED_WINDOWS} windows",
          LATENCY_BUDGET),
    Alert("MLLabInferenceErrors", f"share of requests failed, held {SUSTAINED_WINDOWS} windows", ERROR_BUDGET),
)


# The support bot's alerts that mirror a per-window signature (lab/generative/signatures.py),
# each signal turned so that the alert fires above its threshold. The latency burn-rate alert
# and the personal-data alert read rates and the collector's exit: the alert matrix judges them.
BOT_ALERTS = (
    Alert("MLLabBotQualityBudgetBurn", f"1 - accuracy on labelled answers, held {SUSTAINED_WINDOWS} windows",
          1 - QUALITY_SLI_OBJECTIVE),
    Alert("MLLabBotHallucinations", f"hallucination rate, held {SUSTAINED_WINDOWS} windows", HALLUCINATION_RATE_THRESHOLD),
    Alert("MLLabBotInputDrift", f"out-of-vocabulary share of prompt tokens, held {SUSTAINED_WINDOWS} windows",
          OOV_RATE_THRESHOLD),
    Alert("MLLabBotConfidenceDrift", f"-log10 KS p-value of confidences, held {SUSTAINED_WINDOWS} windows",
          -math.log10(KS_ALPHA)),
    Alert("MLLabBotPromptGrowth", f"prompt-length PSI, held {SUSTAINED_WINDOWS} windows", PSI_MAJOR),
    Alert("MLLabBotRunawayGeneration", f"share of answers cut at max_tokens, held {SUSTAINED_WINDOWS} windows",
          LENGTH_FINISH_SHARE),
    Alert("MLLabBotCostHigh", f"USD per 1,000 questions, held {SUSTAINED_WINDOWS} windows", COST_PER_1K_REQUESTS_USD),
    Alert("MLLabRunSeriesHigh", "series of the run's metrics at its end", RUN_SERIES_LIMIT),
)


def alerts_of(kind: str) -> tuple[Alert, ...]:
    return {"training": TRAINING_ALERTS, "generative": BOT_ALERTS}.get(kind, SERVING_ALERTS)


def key_of(kind: str, a: Alert) -> str:
    return a.name if kind == "training" else f"{a.name}|{a.signal}"


def crosses(alert: Alert, value: float) -> bool:
    return value > alert.threshold if alert.above else value >= alert.threshold


# --- training signals: one function per alert ------------------------------------------------
# Each returns (signal, onset): the number that decides the alert, and the first step at which
# its condition held (None: never), for the paced lead.


def _first_nonfinite(r: RunResult) -> int | None:
    return next((i for i, x in enumerate(r.losses, start=1) if not math.isfinite(x)), None)


def _before_nan(values: list[float], nan_step: int | None) -> list[float]:
    """The values of the steps before the first non-finite one (step i is values[i - 1])."""
    return values if nan_step is None else values[:nan_step - 1]


def spike_signal(values: list[float], threshold: float, nan_step: int | None) -> tuple[float, int | None]:
    """The peak of a per-step ratio before the first NaN (exports carry interval peaks)."""
    before = _before_nan(values, nan_step)
    onset = next((i for i, v in enumerate(before, start=1) if math.isfinite(v) and v > threshold), None)
    return max((v for v in before if math.isfinite(v)), default=0.0), onset


def overfit_signal(r: RunResult) -> tuple[float, int | None]:
    """The val/train loss ratio at evaluations where validation loss has stalled long enough."""
    stalled = [e for e in r.evals if e.evals_since_best >= OVERFIT_STALL_EVALS and math.isfinite(e.ratio)]
    onset = next((e.step for e in stalled if overfitting(e.ratio, e.evals_since_best)), None)
    return max((e.ratio for e in stalled), default=0.0), onset


def dead_signal(r: RunResult) -> tuple[float, int | None]:
    """The largest dead-unit ratio (worst layer) held for DEAD_SUSTAINED_EVALS evaluations."""
    per_eval = [max((d for d in e.dead_ratio.values() if math.isfinite(d)), default=0.0) for e in r.evals]
    n = DEAD_SUSTAINED_EVALS
    runs = [(min(per_eval[i:i + n]), r.evals[i].step) for i in range(len(per_eval) - n + 1)]
    onset = next((step for value, step in runs if value > DEAD_RATIO_THRESHOLD), None)
    return max((value for value, _ in runs), default=0.0), onset


def stall_signal(r: RunResult) -> tuple[float, int | None]:
    """Best training loss so far / the first evaluation's, at the first evaluation past the mark."""
    if not r.evals or not math.isfinite(r.evals[0].train_loss) or r.evals[0].train_loss <= 0:
        return 0.0, None
    planned = r.planned_steps or max(r.steps, 1)
    best = math.inf
    for e in r.evals:
        if math.isfinite(e.train_loss):
            best = min(best, e.train_loss)
        if e.step / planned >= STALL_AFTER_PROGRESS:
            fraction = best / r.evals[0].train_loss
            return fraction, (e.step if fraction >= STALL_LOSS_FRACTION else None)
    return 0.0, None


def nonfinite_signal(r: RunResult) -> tuple[float, int | None]:
    return float(sum(not math.isfinite(x) for x in r.losses)), _first_nonfinite(r)


@functools.cache  # read once per process, not per run and alert
def rule_facts(name: str) -> tuple[float, bool]:
    """An alert rule's `for:` in seconds, and whether a non-finite step silences it (`unless`)."""
    rule = alert_rules()[name]
    return duration_s(rule.get("for")), "unless" in rule["expr"] and "nonfinite_steps_total" in rule["expr"]


def training_signals(r: RunResult) -> dict[str, dict]:
    """Per alert: its signal, and for an alert a NaN silences, its paced lead: the seconds from
    its condition's onset to the first NaN minus its `for:` (inf without a NaN)."""
    nan_step = _first_nonfinite(r)
    sps = r.spec.pace.steps_per_second
    found = {
        "MLLabOverfitting": overfit_signal(r),
        "MLLabGradientNormSpike": spike_signal(r.grad_ratios, GRAD_SPIKE_WARNING, nan_step),
        "MLLabGradientNormSpikeCritical": spike_signal(r.grad_ratios, GRAD_SPIKE_CRITICAL, nan_step),
        "MLLabLossSpike": spike_signal(r.loss_ratios, LOSS_SPIKE_THRESHOLD, nan_step),
        "MLLabDeadNeurons": dead_signal(r),
        "MLLabTrainingStalled": stall_signal(r),
        "MLLabTrainingDiverged": nonfinite_signal(r),
    }
    out: dict[str, dict] = {}
    for name, (value, onset) in found.items():
        for_s, silenced = rule_facts(name)
        lead = None
        if silenced and onset is not None:
            lead = math.inf if nan_step is None else (nan_step - onset) / sps - for_s
        out[name] = {"value": value, "lead_s": lead}
    return out


# --- serving signals -------------------------------------------------------------------------


def held(values: list[float], n: int = SUSTAINED_WINDOWS) -> float:
    """The largest value a signal kept for n consecutive windows (max over runs of the min)."""
    return max((min(values[i:i + n]) for i in range(len(values) - n + 1)), default=0.0)


def serving_signals(r: ServeResult, tail: int | None = None) -> dict[str, dict]:
    ws = r.windows if tail is None else r.windows[-tail:]
    nan0 = [0.0 if not math.isfinite(x) else x for x in (w.baseline_accuracy - w.accuracy for w in ws)]
    ece = [0.0 if not math.isfinite(w.ece) else w.ece for w in ws]
    values = (held([w.report.drifted_share for w in ws]), held([w.report.max_psi for w in ws]),
              held([w.report.max_js for w in ws]), held(nan0), held(ece), held([w.slow_share for w in ws]),
              held([w.error_share for w in ws]))
    return {f"{a.name}|{a.signal}": {"value": v} for a, v in zip(SERVING_ALERTS, values)}


def bot_signals(r: BotResult) -> dict[str, dict]:
    ws = r.windows
    finite = lambda xs: [x if math.isfinite(x) else 0.0 for x in xs]  # noqa: E731 (NaN: too few labels yet)
    values = (held(finite([1 - w.accuracy for w in ws])), held(finite([w.hallucination_rate for w in ws])),
              held([w.oov_rate for w in ws]), held([-math.log10(max(w.confidence_ks_pvalue, 1e-300)) for w in ws]),
              held([w.length_psi for w in ws]), held([w.length_share for w in ws]),
              held([1000 * w.cost_usd / w.requests for w in ws]), float(ws[-1].metric_series if ws else 0))
    return {f"{a.name}|{a.signal}": {"value": v} for a, v in zip(BOT_ALERTS, values)}


def paced_alerts(kind: str, signals: dict[str, dict]) -> tuple[set[str], set[str]]:
    """The alerts one run fires when paced, and those it may or may not fire (a lead on the first
    NaN under PACED_LEAD_S): what a trainee watching the run would see."""
    fired: set[str] = set()
    uncertain: set[str] = set()
    for a in alerts_of(kind):
        sig = signals[key_of(kind, a)]
        if not crosses(a, sig["value"]):
            continue
        lead = sig.get("lead_s")
        if lead is None or lead >= PACED_LEAD_S:
            fired.add(a.name)
        elif lead > -PACED_LEAD_S:
            uncertain.add(a.name)
    return fired, uncertain - fired


def run_flat_out(spec, seed: int) -> RunResult | ServeResult | BotResult:
    return {"training": Trainer, "generative": BotServer}.get(spec.kind, Server)(spec, seed, fast=True).run()


@functools.cache
def result_of(name: str, fix: bool, seed: int) -> RunResult | ServeResult:
    """One flat-out run of a scenario variant, kept for the life of the process: the scenario
    tests ask for the same runs many times."""
    return run_flat_out(load_scenario(name, fix=fix), seed)


def signals_of(result: RunResult | ServeResult, fix: bool | None = None) -> dict[str, dict]:
    """A finished run's signals; an alarm-driven fix is judged on its last windows only.

    fix: whether the run is a fix variant (default: its spec says so; `--set` makes it "custom")."""
    if isinstance(result, RunResult):
        return training_signals(result)
    if isinstance(result, BotResult):
        return bot_signals(result)
    fix = result.spec.variant == "fix" if fix is None else fix
    judged_on_tail = fix and result.spec.alarm_driven_fix
    return serving_signals(result, FIX_TAIL_WINDOWS if judged_on_tail else None)


# --- running ---------------------------------------------------------------------------------


def _init_worker() -> None:
    torch.set_num_threads(1)


def measure_one(task: tuple[str, bool, int, tuple[str, ...]]) -> dict:
    """One seed of one scenario variant, flat out: its signals (runs in a worker process)."""
    name, fix, seed, overrides = task
    spec = load_scenario(name, fix=fix, overrides=list(overrides))
    t0 = time.monotonic()
    r = run_flat_out(spec, seed)
    return {"scenario": name, "fix": fix, "seed": seed, "units": r.units, "wall_s": time.monotonic() - t0,
            "signals": signals_of(r, fix)}


def percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"min": float(v.min()), "p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def summarize(name: str, fix: bool, runs: list[dict]) -> dict:
    """One scenario variant over its seeds: per alert, the signal's spread, crossings and margin."""
    spec = load_scenario(name, fix=fix)
    expected = set(load_scenario(name).alerts) if not fix else set()
    rows = []
    for a in alerts_of(spec.kind):
        k = key_of(spec.kind, a)
        vals = [r["signals"][k]["value"] for r in runs]
        crossed = sum(crosses(a, v) for v in vals)
        row = {"alert": a.name, "signal": a.signal, "threshold": a.threshold, "expected": a.name in expected,
               "crossed": crossed, "seeds": len(runs), **percentiles(vals)}
        leads = [r["signals"][k].get("lead_s") for r in runs if r["signals"][k].get("lead_s") is not None]
        if leads:
            row["paced"] = sum(lead >= PACED_LEAD_S for lead in leads)
            row["uncertain"] = sum(-PACED_LEAD_S < lead < PACED_LEAD_S for lead in leads)
            row["steps_aside"] = DIVERGED in expected
            finite = [lead for lead in leads if math.isfinite(lead)]
            row["lead_min_s"] = min(finite) if finite else None
        # Margin: the weakest expected seed, or the strongest unexpected one, against the threshold.
        worst = row["min"] if row["expected"] else row["max"]
        row["margin"] = None if a.threshold == 0 else worst / a.threshold
        rows.append(row)
    return {"scenario": name, "variant": "fix" if fix else spec.variant, "kind": spec.kind,
            "expected": sorted(expected), "rows": rows,
            "wall_s": statistics.median(r["wall_s"] for r in runs), "seeds": [r["seed"] for r in runs]}


def verdict(row: dict) -> str:
    """ok: the row's outcome holds on every seed (and, for spikes, in paced runs too)."""
    if row["expected"]:
        if row["crossed"] < row["seeds"]:
            return f"MISSED on {row['seeds'] - row['crossed']}"
        if "paced" in row and row["paced"] < row["seeds"]:
            return f"paced: silent or uncertain on {row['seeds'] - row['paced']}"
        return "ok"
    if "paced" in row:
        fired = row["paced"] + row["uncertain"]
        if fired and row.get("steps_aside"):
            return f"ok: may fire before the NaN on {fired}, then steps aside"
        if row["paced"]:
            return f"FIRES paced on {row['paced']}" + (f" (+{row['uncertain']} uncertain)" if row["uncertain"] else "")
        if fired:
            return f"uncertain on {row['uncertain']} (held within {PACED_LEAD_S:.0f} s of its `for:` before the NaN)"
        return "ok"
    return "ok" if row["crossed"] == 0 else f"FIRES on {row['crossed']}"


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def render(summaries: list[dict], seeds: range) -> str:
    lines = ["# Scenario calibration (`make calibrate`: `python -m lab.dev.calibrate`)", "",
             f"Seeds {seeds.start}-{seeds.stop - 1} ({len(seeds)} per variant), every run flat out; "
             "a paced run takes the same steps. Per alert: its signal over the seeds, how many seeds "
             "cross the threshold, and the margin: for an expected alert the weakest seed / threshold "
             "(> 1 fires on all), for any other the strongest seed / threshold (< 1 silent on all). "
             "Alerts a NaN silences (dead units, stall) fire in a paced run only when their condition "
             f"held for their `for:` plus {PACED_LEAD_S:.0f} s before the first non-finite step (`paced` counts "
             f"those seeds) and stay silent when it held {PACED_LEAD_S:.0f} s less than their `for:`; "
             "`uncertain` counts the leads in between. lab/dev/calibrate.py says how each signal is reduced.", ""]
    for s in summaries:
        lines += [f"## {s['scenario']} ({s['variant']})", "",
                  f"Expected alerts: {', '.join(s['expected']) or 'none'}; median wall time per run "
                  f"{s['wall_s']:.1f} s.", "",
                  "| alert | signal | threshold | expected | crossed | min | p5 | median | p95 | max | margin "
                  "| paced (uncertain) | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            paced = f"{r['paced']} ({r['uncertain']})" if "paced" in r else ""
            lines.append(f"| {r['alert']} | {r['signal']} | {_g(r['threshold'])} | {'yes' if r['expected'] else ''} "
                         f"| {r['crossed']}/{r['seeds']} | {_g(r['min'])} | {_g(r['p5'])} | {_g(r['median'])} "
                         f"| {_g(r['p95'])} | {_g(r['max'])} | {_g(r['margin'])} | {paced} | {verdict(r)} |")
        lines.append("")
    return "\n".join(lines)


def tasks_for(names: list[str], seeds: range, overrides: tuple[str, ...]) -> list[tuple[str, bool, int, tuple]]:
    out = []
    for n in names:
        variants = [False, True] if load_scenario(n).has_fix else [False]
        out += [(n, fix, s, overrides) for fix in variants for s in seeds]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="scenarios (default: all)")
    p.add_argument("--seeds", type=int, default=len(CALIBRATION_SEEDS), help="seeds per variant")
    p.add_argument("--first-seed", type=int, default=CALIBRATION_SEEDS.start)
    p.add_argument("--jobs", type=int, default=max(1, (multiprocessing.cpu_count() or 1)))
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        p.error("--seeds and --jobs must be at least 1")
    known = known_scenarios()
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)} (known: {', '.join(known)})")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    try:
        tasks = tasks_for(names, seeds, tuple(args.overrides))
    except SpecError as exc:
        p.error(str(exc))
    t0 = time.monotonic()
    runs: dict[tuple[str, bool], list[dict]] = {}
    with multiprocessing.get_context("spawn").Pool(args.jobs, initializer=_init_worker) as pool:
        for i, run in enumerate(pool.imap_unordered(measure_one, tasks), start=1):
            runs.setdefault((run["scenario"], run["fix"]), []).append(run)
            print(f"\r{i}/{len(tasks)} runs, {time.monotonic() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    summaries = [summarize(n, fix, sorted(runs[(n, fix)], key=lambda r: r["seed"]))
                 for n in names for fix in (False, True) if (n, fix) in runs]
    text = render(summaries, seeds)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"seeds": [seeds.start, seeds.stop], "summaries": summaries},
                                                            indent=1, default=str))
        # Every run's signals: large, for digging into one seed (not kept in git).
        args.out.with_name(args.out.stem + "-runs.json").write_text(
            json.dumps([r for v in runs.values() for r in v], default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
