"""The alert matrix: which alerts each scenario fires on the real stack, over several seeds.

    make alert-matrix            # private native stack, 5 seeds + detection latency; writes results/
    python -m lab.dev.alert_matrix --seeds 0 1 2 --no-latency

Fast matrix. Every scenario and fix variant runs `--fast` (seconds) with its telemetry
streamed over OTLP to the collector -> Prometheus (rules) -> Alertmanager -> webhook sink.
Each run gets its own `instance` (matrix-<tag>:<scenario>:<variant>:s<seed>), so seeds
never share series. A fast run's final export carries its end state and the peaks of the
per-step signals; Prometheus keeps the latest sample of a pushed series for its 5-minute
lookback, so every `for:` (at most 30 s here) is satisfied on that state without holding
the run open. After the last run the matrix waits until every expected alert has reached
both Prometheus (ALERTS) and the sink, and at least long enough for any unexpected one to
show (longest `for:` + 3 intervals + Alertmanager's group_interval), then reads what fired.

Killed runs. One paced `healthy` training run and one paced `serving-healthy` run are
SIGKILLed mid-way (no final export): each must fire MLLabTelemetryStopped (from its own
family's running gauge) and nothing else.

Latency (paced). Each fault scenario runs paced (speed 1 by default, as people see it)
until its expected alerts fire. Onset is the first moment the alert's condition holds in
the training process (the step or evaluation, from the run itself); firing is the first
poll of Prometheus's /api/v1/alerts that shows it firing and the sink's receipt. The
theoretical minimum is the rule's `for:` (data exported and evaluated the instant it
changes); the pipeline adds up to one export interval, one evaluation interval and the
collector's 1 s batch, and the sink adds Alertmanager's group_wait.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from lab.dev.replay import DIVERGED, superseded_by_divergence
from lab.dev.stack import NativeStack, private_native_stack
from lab.generative.run import run_generative
from lab.generative.signatures import flags as bot_flags
from lab.repo import ROOT, alert_rules, alertmanager_route, duration_s
from lab.serving.run import run_serving
from lab.serving.signatures import flags
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import LAB_INTERVAL_SECONDS
from lab.thresholds import (
    DEAD_RATIO_THRESHOLD,
    GRAD_SPIKE_CRITICAL,
    GRAD_SPIKE_WARNING,
    LOSS_SPIKE_THRESHOLD,
    STALL_AFTER_PROGRESS,
    STALL_LOSS_FRACTION,
    SUSTAINED_WINDOWS,
)
from lab.training.loop import EvalRecord, StepRecord
from lab.training.run import run_training
from lab.training.signals import overfitting

WATCHDOG = "MLLabWatchdog"
# Kinds whose rows run paced: their alerts judge fresh windows and rates over wall time.
PACED_KINDS = ("inference", "generative")
# Per scenario kind: a series every export of a run refreshes, and its running gauge.
HEARTBEAT = {"training": "ml_training_steps_total", "inference": "ml_drift_windows_total",
             "generative": "ml_genai_windows_total"}
RUNNING = {"training": "ml_training_running", "inference": "ml_inference_running", "generative": "ml_genai_running"}
# The matrix rows of the SIGKILLed runs and the scenario each one runs: one per family, as
# each family has its own running gauge for MLLabTelemetryStopped.
KILLED = {("killed-run", "fault"): "healthy", ("killed-serving", "fault"): "serving-healthy",
          ("killed-bot", "fault"): "bot-healthy"}
# The support bot's alerts and the signature (lab/generative/signatures.py) each mirrors: a paced
# bot run's onset of an alert is its signature's first sustained window. The latency SLO and the
# personal-data alert read the stack's own view (burn rates, the collector's exit) and have none.
BOT_SIGNATURE_OF = {"MLLabBotQualityBudgetBurn": "quality_slo", "MLLabBotHallucinations": "hallucination",
                    "MLLabBotInputDrift": "input_drift", "MLLabBotConfidenceDrift": "confidence_drift",
                    "MLLabBotPromptGrowth": "prompt_bloat", "MLLabBotRunawayGeneration": "runaway_generation",
                    "MLLabBotCostHigh": "cost", "MLLabRunSeriesHigh": "series_growth"}
# Alertmanager (alertmanager/alertmanager.yml): first notification of a group after
# group_wait, later alerts of the same group after group_interval.
AM_GROUP_WAIT_S = duration_s(alertmanager_route()["group_wait"])
AM_GROUP_INTERVAL_S = duration_s(alertmanager_route()["group_interval"])
COLLECTOR_BATCH_S = 1  # otel-collector/config.yaml batch timeout


@contextmanager
def _environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the fast matrix --------------------------------------------------------------------


@dataclass
class MatrixResult:
    tag: str
    seeds: list[int]
    rows: list[tuple[str, str]]  # (scenario, variant)
    expected: dict[str, list[str]]  # "scenario:variant" -> alerts
    alerts: list[str]  # columns
    prometheus: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # row -> alert -> seeds that fired
    alertmanager: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    run_seconds: float = 0.0
    wait_seconds: float = 0.0
    inference_seeds: list[int] = field(default_factory=list)
    inference_speed: float = 1.0
    training_speed: float | None = None  # None: the training rows ran --fast
    generative_seeds: list[int] = field(default_factory=list)
    generative_speed: float = 1.0
    # Alerts whose firing where not expected is shown but not judged (only where asked: the
    # bot's sub-millisecond latency SLO in make test, whose other workers load the same 2 cores).
    tolerated: list[str] = field(default_factory=list)
    latency: list["LatencyRow"] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # one line per wrong cell: what Prometheus saw (explain_misses)

    def alarm_driven(self, row: str) -> bool:
        """A fix that acts on the alarm (an inference fix retrains once drift or an accuracy drop has
        held for a few windows): its alerts fire by design, then resolve. Not judged by the matrix;
        the replay tests require it to end clear."""
        name, variant = row.split(":")
        if variant != "fix" or self._kinds().get(name) != "inference":
            return False
        return load_scenario(name, fix=True).alarm_driven_fix

    def seeds_of(self, row: str) -> list[int]:
        if tuple(row.split(":")) in KILLED:
            return [0]
        kind = self._kinds().get(row.split(":")[0])
        return {"inference": self.inference_seeds, "generative": self.generative_seeds}.get(kind, self.seeds)

    def _kinds(self) -> dict[str, str]:
        if not hasattr(self, "_kind_cache"):
            self._kind_cache = {n: getattr(load_scenario(KILLED.get((n, v), n)), "kind", "training")
                                for n, v in self.rows}
        return self._kind_cache

    def steps_aside(self, row: str, alert: str) -> bool:
        """An alert that steps aside once a run diverges (`unless ... nonfinite_steps_total > 0`),
        in a row that expects the divergence: it may fire on the way to the NaN, depending on the
        seed and the export ticks. Shown, not judged (as in lab/dev/replay.py)."""
        return DIVERGED in self.expected.get(row, []) and alert in superseded_by_divergence(alert_rules())

    def cells(self, source: str):
        """(row, seed, alert, expected, fired) for every judged cell (alarm-driven fixes and alerts
        that step aside for a divergence are not judged)."""
        fired = getattr(self, source)
        for row, expected in self.expected.items():
            if self.alarm_driven(row):
                continue
            for alert in self.alerts:
                if self.steps_aside(row, alert):
                    continue
                hit = set(fired.get(row, {}).get(alert, []))
                if alert in self.tolerated and alert not in expected:
                    continue
                for seed in self.seeds_of(row):
                    yield row, seed, alert, alert in expected, seed in hit

    def counts(self, source: str) -> dict[str, int]:
        """True/false positives and false negatives over (row, seed, alert)."""
        tp = fp = fn = 0
        for _, _, _, want, got in self.cells(source):
            tp += want and got
            fp += got and not want
            fn += want and not got
        return {"tp": tp, "fp": fp, "fn": fn}

    def precision_recall(self, source: str) -> tuple[float, float]:
        c = self.counts(source)
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else math.nan
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else math.nan
        return p, r

    def is_diagonal(self) -> bool:
        return all(self.counts(s)["fp"] == 0 and self.counts(s)["fn"] == 0 for s in ("prometheus", "alertmanager"))


def _instance(tag: str, scenario: str, variant: str, seed: int) -> str:
    return f"matrix-{tag}:{scenario}:{variant}:s{seed}"


def _parse_instance(instance: str, tag: str) -> tuple[str, int] | None:
    m = re.fullmatch(rf"matrix-{re.escape(tag)}:(.+):(fault|fix):s(\d+)", instance)
    return (f"{m.group(1)}:{m.group(2)}", int(m.group(3))) if m else None


def matrix_rows(scenarios: list[str] | None = None) -> list[tuple[str, str, list[str], str]]:
    """(scenario, variant, expected alerts, kind) for every scenario and fix."""
    rows = []
    for name in scenarios or known_scenarios():
        spec = load_scenario(name)
        kind = getattr(spec, "kind", "training")
        rows.append((name, "fault", list(spec.alerts), kind))
        if spec.has_fix:
            rows.append((name, "fix", [], kind))
    return rows


def _killed_run(stack: NativeStack, tag: str, row: tuple[str, str], timeout_s: float = 600) -> float:
    """Start the row's paced healthy run, SIGKILL it once Prometheus has its data; returns the kill time.

    timeout_s covers the run's start: the bot trains first when its cache is cold, which took
    over 180 s on a loaded CI machine (the run was then killed before its first export)."""
    instance = _instance(tag, *row, 0)
    gauge = RUNNING[load_scenario(KILLED[row]).kind]
    code = ("from lab.families import run; from lab.specs.loader import load_scenario; "
            f"run(load_scenario({KILLED[row]!r}), seed=0, telemetry='on', quiet=True, instance={instance!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **stack.otel_env()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline and proc.poll() is None:
            if stack.query(f'{gauge}{{instance="{instance}"}} == 1'):
                time.sleep(LAB_INTERVAL_SECONDS)  # a second export: a run well under way
                break
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGKILL)  # no final export: the run just vanishes
        proc.wait()
    return time.time()


def _run_child(stack: NativeStack, code: str, what: str) -> float:
    """Run `code` in a child Python streaming to the stack; its wall time, or an error naming `what`."""
    t = time.time()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **stack.otel_env()},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: {proc.stderr[-2000:]}")
    return time.time() - t


class _Onsets(BaseObserver):
    """Wall time at which each alert's condition first held for SUSTAINED_WINDOWS windows in a row.

    Onset: the first window of the first streak that reaches the signature's length, so a
    one-window blip earlier in the stream does not count as the fault's start. `held` maps a
    window report to {alert: condition held}."""

    def __init__(self, held):
        self.held, self.onsets = held, {}
        self._streak: dict[str, int] = {}
        self._start: dict[str, float] = {}

    def on_report(self, rec) -> None:
        now = time.time()
        for alert, held in self.held(rec).items():
            if not held:
                self._streak[alert] = 0
                continue
            if not self._streak.get(alert):
                self._start[alert] = now
            self._streak[alert] = self._streak.get(alert, 0) + 1
            if self._streak[alert] >= SUSTAINED_WINDOWS:
                self.onsets.setdefault(alert, self._start[alert])


def _inference_conditions(rec) -> dict[str, bool]:
    f = flags(rec)
    return {"MLLabInputDrift": f["input_drift"] or f["psi_major"] or f["js_drift"],
            "MLLabAccuracyDegraded": f["accuracy_degraded"], "MLLabMiscalibrated": f["miscalibrated"],
            "MLLabInferenceLatencySLO": f["latency_slo"], "MLLabInferenceErrors": f["error_rate"]}


def _bot_conditions(rec) -> dict[str, bool]:
    f = bot_flags(rec)
    return {alert: f[signature] for alert, signature in BOT_SIGNATURE_OF.items()}


def paced_inference_run(name: str, fix: bool, seed: int, speed: float, instance: str, out: str) -> None:
    """Child process of the matrix: one paced inference run; writes the wall time at which each
    inference alert's condition first held on a window (for the detection latency)."""
    clock = _Onsets(_inference_conditions)
    run_serving(load_scenario(name, fix=fix), seed=seed, speed=speed, telemetry="on", quiet=True,
                extra_observers=[clock], print_summary=False, instance=instance)
    Path(out).write_text(json.dumps(clock.onsets))


def paced_generative_run(name: str, fix: bool, seed: int, speed: float, instance: str, out: str) -> None:
    """Child process of the matrix: one paced support-bot run; writes the wall time at which each
    bot alert's signature first held on a window, as paced_inference_run does."""
    clock = _Onsets(_bot_conditions)
    run_generative(load_scenario(name, fix=fix), seed=seed, speed=speed, telemetry="on", quiet=True,
                   extra_observers=[clock], print_summary=False, instance=instance)
    Path(out).write_text(json.dumps(clock.onsets))


class FiringPoller:
    """First time Prometheus reports each (instance, alertname) as firing, polled every 0.5 s."""

    def __init__(self, stack: NativeStack, prefix: str):
        self.stack, self.prefix = stack, prefix
        self.first: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for a in self.stack.prometheus_alerts():
                    inst = a["labels"].get("instance", "")
                    if a["state"] == "firing" and inst.startswith(self.prefix):
                        self.first.setdefault((inst, a["labels"]["alertname"]), time.time())
            except requests.RequestException:
                pass
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_fast_matrix(stack: NativeStack, seeds: list[int], scenarios: list[str] | None = None,
                    killed_run: bool = True, progress=print, max_wait_s: float = 240,
                    inference_seeds: list[int] | None = None, inference_speed: float = 1.0,
                    inference_fixes: bool = True, inference_parallel: int = 2,
                    training_speed: float | None = None, training_fixes: bool = True,
                    generative_seeds: list[int] | None = None, generative_speed: float = 1.0,
                    generative_fixes: bool = True, generative_parallel: int = 6,
                    tolerated: list[str] = ()) -> "MatrixResult":
    """Training rows `--fast` over `seeds`, or paced at training_speed (all at once: they mostly
    sleep); inference and support-bot rows paced (see the module docstring)."""
    rules = alert_rules()
    tag = uuid.uuid4().hex[:6]
    inference_seeds = list(seeds if inference_seeds is None else inference_seeds)
    generative_seeds = list(inference_seeds if generative_seeds is None else generative_seeds)
    rows = [r for r in matrix_rows(scenarios)
            if (r[3] == "inference" and inference_seeds and (inference_fixes or r[1] == "fault"))
            or (r[3] == "generative" and generative_seeds and (generative_fixes or r[1] == "fault"))
            or (r[3] not in PACED_KINDS and (training_fixes or r[1] == "fault"))]
    expected = {f"{n}:{v}": a for n, v, a, _ in rows}
    killed = list(KILLED) if killed_run else []
    for row in killed:
        expected[":".join(row)] = ["MLLabTelemetryStopped"]
    columns = [a for a in rules if a != WATCHDOG]
    result = MatrixResult(tag, list(seeds), [(n, v) for n, v, _, _ in rows] + killed,
                          expected, columns, inference_seeds=inference_seeds, inference_speed=inference_speed,
                          training_speed=training_speed, generative_seeds=generative_seeds,
                          generative_speed=generative_speed, tolerated=list(tolerated))
    t0 = time.time()
    onset_files: dict[str, Path] = {}
    tmp = Path(tempfile.mkdtemp(prefix="lab-matrix-onsets-"))

    def serve(job: tuple[str, str, int], kind: str = "inference") -> None:
        name, variant, seed = job
        instance = _instance(tag, name, variant, seed)
        out = tmp / f"{name}-{variant}-{seed}.json"
        onset_files[instance] = out
        speed = inference_speed if kind == "inference" else generative_speed
        code = (f"from lab.dev.alert_matrix import paced_{kind}_run; "
                f"paced_{kind}_run({name!r}, {variant == 'fix'}, {seed}, {speed}, {instance!r}, {str(out)!r})")
        took = _run_child(stack, code, f"{name} ({variant}) seed {seed}")
        progress(f"  served {name} ({variant}) seed {seed}, paced x{speed:g}, in {took:.0f} s")

    def train_paced(job: tuple[str, str, int]) -> None:
        name, variant, seed = job
        code = ("from lab.families import run; from lab.specs.loader import load_scenario; "
                f"run(load_scenario({name!r}, fix={variant == 'fix'}), seed={seed}, speed={training_speed}, "
                f"telemetry='on', quiet=True, instance={_instance(tag, name, variant, seed)!r})")
        took = _run_child(stack, code, f"{name} ({variant}) seed {seed}")
        progress(f"  ran {name} ({variant}) seed {seed} paced x{training_speed:g} in {took:.0f} s")

    jobs = [(n, v, s) for n, v, _, k in rows if k == "inference" for s in inference_seeds]
    bots = [(n, v, s) for n, v, _, k in rows if k == "generative" for s in generative_seeds]
    paced = [(n, v, s) for n, v, _, k in rows if k not in PACED_KINDS for s in seeds] if training_speed else []
    with FiringPoller(stack, f"matrix-{tag}:") as poller, ThreadPoolExecutor(max(1, inference_parallel)) as pool, \
            ThreadPoolExecutor(max(1, generative_parallel)) as bot_pool, ThreadPoolExecutor(max(1, len(paced))) as trainers:
        futures = [pool.submit(serve, j) for j in jobs]  # paced: mostly sleeping, run beside the fast runs
        futures += [bot_pool.submit(serve, j, "generative") for j in bots]
        futures += [trainers.submit(train_paced, j) for j in paced]
        killers = [threading.Thread(target=_killed_run, args=(stack, tag, row), daemon=True) for row in killed]
        for killer in killers:
            killer.start()
        # the fast runs stream from this process; a paced-only matrix (maybe in another thread) sets nothing
        with _environ(stack.otel_env()) if not training_speed else nullcontext():
            for seed in seeds if not training_speed else []:
                for name, variant, _, kind in rows:
                    if kind in PACED_KINDS:
                        continue
                    spec = load_scenario(name, fix=variant == "fix")
                    t = time.time()
                    run_training(spec, seed=seed, fast=True, telemetry="on", quiet=True,
                                 instance=_instance(tag, name, variant, seed))
                    progress(f"  ran {name} ({variant}) seed {seed} --fast in {time.time() - t:.1f} s")
        for f in futures:
            f.result()
        for killer in killers:
            killer.join()
        last_run_end = time.time()
        result.run_seconds = last_run_end - t0
        _wait_until_settled(stack, result, rules, t0, last_run_end, max_wait_s, killed_run)
        result.wait_seconds = time.time() - last_run_end
    result.latency += _inference_latency(stack, result, rules, poller.first, onset_files)
    result.misses = explain_misses(stack, result, rules, t0)
    return result


def run_paced_training_matrix(stack: NativeStack, seeds: list[int], scenarios: list[str] | None = None,
                              speed: float = 1.0, progress=print, fixes: bool = True) -> "MatrixResult":
    """The training rows paced at `speed`, every run at once: what a trainee watching them sees."""
    training = [n for n in scenarios or known_scenarios() if getattr(load_scenario(n), "kind", "training") == "training"]
    return run_fast_matrix(stack, seeds, training, killed_run=False, progress=progress, inference_seeds=[],
                           generative_seeds=[], training_speed=speed, training_fixes=fixes)


def _wait_until_settled(stack: NativeStack, result: MatrixResult, rules: dict, t0: float, last_run_end: float,
                        max_wait_s: float, killed_run: bool) -> None:
    """Collect until every expected alert reached Prometheus and the sink and any unexpected one had time to show."""
    # Any alert the final state satisfies fires within the longest for: + export + evaluation;
    # its notification can wait a group_interval behind an earlier one of the same group.
    quiet_period = max(duration_s(r.get("for")) for r in rules.values()) + 3 * LAB_INTERVAL_SECONDS \
        + AM_GROUP_INTERVAL_S + AM_GROUP_WAIT_S
    if killed_run:  # 15 s threshold + for: 10s after the last sample
        quiet_period = max(quiet_period, 15 + 10 + 3 * LAB_INTERVAL_SECONDS + AM_GROUP_WAIT_S)
    deadline = last_run_end + max_wait_s
    while True:
        _collect(stack, result, t0)
        missing = [(row, a) for row, alerts in result.expected.items() for a in alerts
                   if any(not set(result.seeds_of(row)) <= set(getattr(result, src).get(row, {}).get(a, []))
                          for src in ("prometheus", "alertmanager"))]
        now = time.time()
        if (not missing and now - last_run_end >= quiet_period) or now >= deadline:
            break
        time.sleep(2)


def _inference_latency(stack: NativeStack, result: MatrixResult, rules: dict, prometheus_first: dict,
                       onset_files: dict[str, Path]) -> list["LatencyRow"]:
    """Detection latency of the paced inference rows: onset on a window -> firing in Prometheus and at the sink."""
    sink_first: dict[tuple[str, str], float] = {}
    for received, a in stack.firing_sink_alerts():
        sink_first.setdefault((a["labels"].get("instance", ""), a["labels"]["alertname"]), received)
    rows = []
    for instance, path in onset_files.items():
        if not path.exists():
            continue
        parsed = _parse_instance(instance, result.tag)
        for alert, onset in json.loads(path.read_text()).items():
            if parsed and alert in result.expected.get(parsed[0], []):
                p, s = prometheus_first.get((instance, alert)), sink_first.get((instance, alert))
                name = parsed[0].split(":")[0]
                speed = result.generative_speed if result._kinds().get(name) == "generative" else result.inference_speed
                rows.append(LatencyRow(alert, name, parsed[1], speed,
                                       duration_s(rules[alert].get("for")), onset,
                                       None if p is None else p - onset, None if s is None else s - onset))
    return rows


def _collect(stack: NativeStack, result: MatrixResult, t0: float) -> None:
    window = int(time.time() - t0) + 60
    prom: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for s in stack.query(f'max_over_time(ALERTS{{alertstate="firing",instance=~"matrix-{result.tag}:.*"}}[{window}s])'):
        parsed = _parse_instance(s["metric"].get("instance", ""), result.tag)
        if parsed and s["metric"]["alertname"] != WATCHDOG:
            row, seed = parsed
            if seed not in prom[row][s["metric"]["alertname"]]:
                prom[row][s["metric"]["alertname"]].append(seed)
    am: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for _, a in stack.firing_sink_alerts():
        parsed = _parse_instance(a.get("labels", {}).get("instance", ""), result.tag)
        if parsed and a["labels"]["alertname"] != WATCHDOG:
            row, seed = parsed
            if seed not in am[row][a["labels"]["alertname"]]:
                am[row][a["labels"]["alertname"]].append(seed)
    result.prometheus = {r: {a: sorted(s) for a, s in d.items()} for r, d in prom.items()}
    result.alertmanager = {r: {a: sorted(s) for a, s in d.items()} for r, d in am.items()}


# --- why a cell is wrong ---------------------------------------------------------------------

def _collector_failures(stack: NativeStack) -> str:
    """The collector's refused and failed metric points so far (its own metrics, scraped by Prometheus)."""
    parts = []
    for what, name in (("refused by the receiver", "otelcol_receiver_refused_metric_points.*"),
                       ("failed to send", "otelcol_exporter_send_failed_metric_points.*")):
        try:
            total = sum(float(r["value"][1]) for r in stack.query(f'{{__name__=~"{name}"}}'))
        except requests.RequestException:
            continue
        parts.append(f"{total:g} points {what}")
    return ", ".join(parts) or "collector metrics unavailable"


def _longest_streak(times: list[float], step: float) -> float:
    """Longest run of consecutive evaluation steps in `times`, in seconds."""
    best = run = 0
    for prev, cur in zip([None, *times], times):
        run = run + 1 if prev is not None and cur - prev <= step * 1.5 else 1
        best = max(best, run)
    return (best - 1) * step if best else 0.0


def explain_misses(stack: NativeStack, m: MatrixResult, rules: dict, t0: float) -> list[str]:
    """One line per wrong cell: whether the run's series reached Prometheus (samples, largest
    gap), how long the rule's condition held when re-evaluated over the stored data (against
    its `for:`), and the collector's refused and failed points. A condition that held long
    enough on the stored data but never fired points at timing (late samples, the evaluation
    clock); no samples or large gaps point at the pipeline; a condition that never held
    points at the lesson (the recipe or the threshold)."""
    wrong = [(row, seed, alert, want) for row, seed, alert, want, got in m.cells("prometheus") if want != got]
    if not wrong:
        return []
    end = time.time()
    window = int(end - t0) + 60
    collector = _collector_failures(stack)
    lines = []
    for row, seed, alert, expected in wrong:
        name, variant = row.split(":")
        inst = _instance(m.tag, name, variant, seed)
        heartbeat = HEARTBEAT[m._kinds()[name]]
        try:
            raw = stack.query(f'{heartbeat}{{instance="{inst}"}}[{window}s]')
            ts = [float(t) for t, _ in raw[0]["values"]] if raw else []
            gap = max((b - a for a, b in zip(ts, ts[1:])), default=0.0)
            series = f"{len(ts)} samples of {heartbeat}" + (f", largest gap {gap:.1f} s" if len(ts) > 1 else "")
            result = stack.query_range(rules[alert]["expr"], t0, end, LAB_INTERVAL_SECONDS)
            held = sorted(float(t) for res in result if res["metric"].get("instance") == inst for t, _ in res["values"])
            condition = (f"condition held at {len(held)} evaluations, longest {_longest_streak(held, LAB_INTERVAL_SECONDS):.0f} s "
                         f"in a row (for: {rules[alert].get('for', '0s')})") if held else "condition never held"
        except (requests.RequestException, KeyError, IndexError, ValueError) as exc:
            series, condition = f"Prometheus did not answer ({exc.__class__.__name__})", ""
        what = "expected, did not fire" if expected else "fired, not expected"
        lines.append(f"{alert} on {row} seed {seed} ({what}): {series}; {condition}; collector: {collector}.")
    return lines


# --- detection latency (paced) --------------------------------------------------------------


class _Clock(BaseObserver):
    """Wall time of every step and evaluation; stops the run when asked."""

    def __init__(self) -> None:
        self.step_t: dict[int, float] = {}
        self.eval_t: dict[int, float] = {}
        self.steps: list[StepRecord] = []
        self.evals: list[EvalRecord] = []
        self.stop = threading.Event()

    def on_unit(self, rec: StepRecord) -> None:
        self.step_t[rec.step] = time.time()
        self.steps.append(rec)
        if self.stop.is_set():
            raise KeyboardInterrupt  # the trainer ends the run cleanly (final export)

    def on_report(self, rec: EvalRecord) -> None:
        self.eval_t[rec.step] = time.time()
        self.evals.append(rec)


def condition_onsets(clock: _Clock, planned_steps: int) -> dict[str, float]:
    """Wall time at which each training alert's condition first held in the run itself."""
    out: dict[str, float] = {}

    def first(name: str, t: float | None) -> None:
        if t is not None and name not in out:
            out[name] = t

    for s in clock.steps:
        if s.grad_ratio > GRAD_SPIKE_WARNING:
            first("MLLabGradientNormSpike", clock.step_t[s.step])
        if s.grad_ratio > GRAD_SPIKE_CRITICAL:
            first("MLLabGradientNormSpikeCritical", clock.step_t[s.step])
        if s.loss_ratio > LOSS_SPIKE_THRESHOLD:
            first("MLLabLossSpike", clock.step_t[s.step])
        if s.nonfinite:
            first("MLLabTrainingDiverged", clock.step_t[s.step])
    first_loss, best = None, math.inf
    for e in clock.evals:
        t = clock.eval_t[e.step]
        if overfitting(e.ratio, e.evals_since_best):
            first("MLLabOverfitting", t)
        dead = [d for d in e.dead_ratio.values() if math.isfinite(d)]
        if dead and max(dead) > DEAD_RATIO_THRESHOLD:
            first("MLLabDeadNeurons", t)
        first_loss = e.train_loss if first_loss is None else first_loss
        if math.isfinite(e.train_loss):
            best = min(best, e.train_loss)
        if first_loss and best >= STALL_LOSS_FRACTION * first_loss:
            # progress passes the mark between evaluations: the alert can see it from that step on
            mark = math.ceil(STALL_AFTER_PROGRESS * planned_steps)
            later = [s for s in clock.step_t if s >= mark and s >= e.step]
            if e.step >= mark:
                first("MLLabTrainingStalled", t)
            elif later:
                nxt = [x.step for x in clock.evals if x.step > e.step]
                if not nxt or min(later) < nxt[0]:
                    first("MLLabTrainingStalled", clock.step_t[min(later)])
    return out


@dataclass
class LatencyRow:
    alert: str
    scenario: str
    seed: int
    speed: float
    for_s: float
    onset: float | None
    prometheus_s: float | None  # onset -> first seen firing in Prometheus
    sink_s: float | None  # onset -> notification received by the webhook sink

    @property
    def theoretical_min_s(self) -> float:
        return self.for_s

    @property
    def pipeline_max_s(self) -> float:
        return self.for_s + 2 * LAB_INTERVAL_SECONDS + COLLECTOR_BATCH_S


def run_latency(stack: NativeStack, scenarios: list[str] | None = None, seed: int = 0, speed: float = 1.0,
                progress=print, max_run_s: float = 600) -> list[LatencyRow]:
    rules = alert_rules()
    tag = uuid.uuid4().hex[:6]
    rows: list[LatencyRow] = []
    for name, variant, expected, kind in matrix_rows(scenarios):
        if variant != "fault" or not expected or kind in PACED_KINDS:  # their latency: run_fast_matrix
            continue
        spec = load_scenario(name)
        instance = _instance(tag, name, "fault", seed)
        clock = _Clock()
        seen_prom: dict[str, float] = {}
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                try:
                    for a in stack.prometheus_alerts():
                        if a["labels"].get("instance") == instance and a["state"] == "firing":
                            seen_prom.setdefault(a["labels"]["alertname"], time.time())
                except requests.RequestException:
                    pass
                if set(expected) <= set(seen_prom):
                    clock.stop.set()
                done.wait(0.25)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        timer = threading.Timer(max_run_s, clock.stop.set)
        timer.start()
        t = time.time()
        with _environ(stack.otel_env()):
            result = run_training(spec, seed=seed, speed=speed, telemetry="on", quiet=True, instance=instance,
                                  extra_observers=[clock]).result
        # a run that ended before its alerts fired: keep polling (its last sample stays visible)
        deadline = time.time() + max(duration_s(r.get("for")) for r in rules.values()) + 45
        while not set(expected) <= set(seen_prom) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(AM_GROUP_WAIT_S + 3)
        done.set()
        timer.cancel()
        poller.join()
        onsets = condition_onsets(clock, result.planned_steps)
        sink = {}
        for received, a in stack.firing_sink_alerts():
            if a["labels"].get("instance") == instance:
                sink.setdefault(a["labels"]["alertname"], received)
        for alert in expected:
            onset = onsets.get(alert)
            rows.append(LatencyRow(alert, name, seed, speed, duration_s(rules[alert].get("for")), onset,
                                   seen_prom[alert] - onset if onset and alert in seen_prom else None,
                                   sink[alert] - onset if onset and alert in sink else None))
        progress(f"  latency {name}: {time.time() - t:.0f} s, " + ", ".join(
            f"{r.alert} {r.prometheus_s if r.prometheus_s is None else round(r.prometheus_s, 1)} s"
            for r in rows if r.scenario == name))
    return rows


# --- report ---------------------------------------------------------------------------


def _short(alert: str) -> str:
    return alert.removeprefix("MLLab")


def render_matrix(m: MatrixResult) -> str:
    cols = [a for a in m.alerts if any(a in v for v in m.expected.values())
            or any(a in d for src in (m.prometheus, m.alertmanager) for d in src.values())]
    cols += [a for a in m.alerts if a not in cols]
    head = "| scenario | variant | " + " | ".join(_short(a) for a in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for scenario, variant in m.rows:
        row = f"{scenario}:{variant}"
        n = len(m.seeds_of(row))
        cells = []
        for a in cols:
            p = len(m.prometheus.get(row, {}).get(a, []))
            am = len(m.alertmanager.get(row, {}).get(a, []))
            want = a in m.expected.get(row, [])
            text = "·" if not (p or am or want) else (f"{p}/{n}" if p == am else f"{p}/{n} (AM {am})")
            text += " ‡" if (p or am) and m.steps_aside(row, a) else ""
            cells.append(f"**{text}**" if want else text)
        mark = " †" if m.alarm_driven(row) else ""
        lines.append(f"| {scenario} | {variant}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _raw_precision(m: MatrixResult) -> float:
    """Prometheus precision if the alarm-driven fixes' alerts counted as false positives."""
    c = m.counts("prometheus")
    extra = sum(len(seeds) for row, d in m.prometheus.items() if m.alarm_driven(row) for seeds in d.values())
    return c["tp"] / (c["tp"] + c["fp"] + extra) if c["tp"] + c["fp"] + extra else math.nan


def _training_mode(m: MatrixResult) -> str:
    return "`--fast`" if m.training_speed is None else f"paced at speed {m.training_speed:g}"


def fired_cells(m: MatrixResult, source: str = "prometheus", rows: set[str] | None = None) -> set[tuple[str, str]]:
    """(row, alert) fired on any seed, training rows only (of `rows` if given), alerts that step aside left out."""
    training = {f"{n}:{v}" for n, v in m.rows if m._kinds().get(n) == "training"} - {":".join(k) for k in KILLED}
    if rows is not None:
        training &= rows
    return {(row, a) for row, d in getattr(m, source).items() if row in training for a, seeds in d.items()
            if seeds and not m.steps_aside(row, a)}


def same_as_fast(paced: MatrixResult, fast: MatrixResult) -> bool:
    """The paced rows fired the same alerts as the same rows `--fast`."""
    rows = {f"{n}:{v}" for n, v in paced.rows}
    return fired_cells(paced) == fired_cells(fast, rows=rows)


def render_paced(paced: MatrixResult, fast: MatrixResult | None) -> list[str]:
    """The training rows paced, as a trainee watches them, beside the fast matrix."""
    pp, pr = paced.precision_recall("prometheus")
    ap, ar = paced.precision_recall("alertmanager")
    agree = fast is not None and same_as_fast(paced, fast)
    return [
        "## Training paced, as a trainee watches it\n",
        f"The same training rows {_training_mode(paced)} (every run at once: they mostly sleep), seeds "
        f"{', '.join(map(str, paced.seeds))}: every export, evaluation and `for:` as a trainee sees them, "
        "precursors included.\n",
        render_matrix(paced), "",
        "| paced | precision | recall | true pos. | false pos. | false neg. |", "|---|---|---|---|---|---|",
        f"| Prometheus | {pp:.3f} | {pr:.3f} | {paced.counts('prometheus')['tp']} | {paced.counts('prometheus')['fp']} | {paced.counts('prometheus')['fn']} |",
        f"| Alertmanager (sink) | {ap:.3f} | {ar:.3f} | {paced.counts('alertmanager')['tp']} | {paced.counts('alertmanager')['fp']} | {paced.counts('alertmanager')['fn']} |",
        "",
        f"Exactly the expected alerts: **{'yes' if paced.is_diagonal() else 'NO'}**; the same alerts as the fast "
        f"matrix's training rows: **{'yes' if agree else 'NO'}**. Runs took {paced.run_seconds:.0f} s.\n",
        *([f"- {line}" for line in paced.misses] + [""] if paced.misses else []),
    ]


def render_report(m: MatrixResult | None, latency: list[LatencyRow], when: str,
                  paced: MatrixResult | None = None) -> str:
    out = [f"# Alert matrix\n\nMeasured {when} by `make alert-matrix` (lab/dev/alert_matrix.py) on the native stack.\n"]
    if m:
        pp, pr = m.precision_recall("prometheus")
        ap, ar = m.precision_recall("alertmanager")
        out += [
            f"Training scenarios and fixes: {_training_mode(m)}, seeds {', '.join(map(str, m.seeds))}. Inference scenarios"
            f"{' and fixes' if any(v == 'fix' and m._kinds().get(n) == 'inference' for n, v in m.rows) else ' (not their fixes)'}: paced "
            f"at speed {m.inference_speed:g} (their alerts judge fresh drift windows only), seeds "
            f"{', '.join(map(str, m.inference_seeds)) or 'none'}. Support-bot scenarios"
            f"{' and fixes' if any(v == 'fix' and m._kinds().get(n) == 'generative' for n, v in m.rows) else ' (not their fixes)'}: "
            f"paced at speed {m.generative_speed:g} (fresh windows and burn rates over wall time), seeds "
            f"{', '.join(map(str, m.generative_seeds)) or 'none'}. Plus one paced `healthy`, one "
            f"paced `serving-healthy` and one paced `bot-healthy` run killed with SIGKILL (`killed-run`, `killed-serving`, "
            f"`killed-bot`, 1 run each). Cells: runs in which the alert fired in Prometheus / runs; "
            f"`(AM n)` when the webhook sink behind Alertmanager saw a different count. **Bold** = expected "
            f"(the scenario's `alerts` list); `·` = never fired, not expected.\n",
            render_matrix(m), "",
            "† A fix that acts on the alarm: the inference fixes retrain once drift or an accuracy drop has held for "
            "three windows, so their alerts fire by design and then resolve; these rows are shown but not counted "
            "below (the replay tests require them to end clear; this matrix does not check that they ended clear). "
            f"Counted as false positives they would give precision {_raw_precision(m):.3f}.\n",
            "‡ Fired on the way to a divergence by an alert that steps aside once the run has a NaN "
            "(`unless … nonfinite_steps_total > 0`): whether it fires depends on the seed and the export ticks "
            "(docs/signals.md, \"Divergence\"); shown, not counted.\n",
            "| | precision | recall | true pos. | false pos. | false neg. |", "|---|---|---|---|---|---|",
            f"| Prometheus | {pp:.3f} | {pr:.3f} | {m.counts('prometheus')['tp']} | {m.counts('prometheus')['fp']} | {m.counts('prometheus')['fn']} |",
            f"| Alertmanager (sink) | {ap:.3f} | {ar:.3f} | {m.counts('alertmanager')['tp']} | {m.counts('alertmanager')['fp']} | {m.counts('alertmanager')['fn']} |",
            "",
            f"Exactly the expected alerts (diagonal): **{'yes' if m.is_diagonal() else 'NO'}**. "
            f"Runs took {m.run_seconds:.0f} s, the wait for alerts {m.wait_seconds:.0f} s.\n",
            STACK_DRILLS_NOTE.format(drills="drills.md") + "\n",
        ]
        if m.misses:
            out += ["## Wrong cells explained\n",
                    "What Prometheus holds for each run whose alerts differ from the expected ones (the condition "
                    "is re-evaluated over the stored samples every interval, so it cannot see samples that arrived "
                    "late for the rule's own evaluation).\n",
                    *[f"- {line}" for line in m.misses], ""]
    if paced:
        out += render_paced(paced, m)
    latency = list(latency) + (m.latency if m else [])
    if latency:
        out += [
            "## Detection latency\n",
            "Paced runs (training: one seed per fault scenario; inference: the matrix's paced runs). Onset = the first "
            "step, evaluation or drift window at which the alert's condition held in the run; latency = onset to "
            "firing. Theoretical minimum = the rule's `for:`; "
            f"the pipeline adds at most one export ({LAB_INTERVAL_SECONDS} s), one evaluation ({LAB_INTERVAL_SECONDS} s) "
            f"and the collector's batch ({COLLECTOR_BATCH_S} s) = the upper bound below; the sink adds Alertmanager's "
            f"group_wait ({AM_GROUP_WAIT_S} s). A sink value above that, or `–` (not delivered within 8 s of firing), "
            f"comes from Alertmanager's grouping: an earlier run of the same group (alertname, scenario, variant) "
            f"had notified less than group_interval ({AM_GROUP_INTERVAL_S} s) before. {REQUEST_ONSET_NOTE}\n",
            "| alert | scenario | seed | speed | `for:` | theoretical min | pipeline bound | Prometheus | sink |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(latency, key=lambda r: (r.alert, r.scenario, r.seed)):
            f = lambda v: "–" if v is None else f"{v:.1f} s"  # noqa: E731
            out.append(f"| {r.alert} | {r.scenario} | {r.seed} | {r.speed:g} | {r.for_s:g} s | {r.theoretical_min_s:g} s "
                       f"| {r.pipeline_max_s:g} s | {f(r.prometheus_s)} | {f(r.sink_s)} |")
        out.append("")
    return "\n".join(out)


# A window's report comes at its end, but a request-level objective's rule sees the first slow or
# failed request of the window, up to one window earlier.
REQUEST_ONSET_NOTE = (f"For the request-level objectives (InferenceLatencySLO, InferenceErrors) the rule sees the first "
                      f"slow or failed request, up to one window ({LAB_INTERVAL_SECONDS} s) before the report of the window "
                      f"counted as the onset: their latency can be down to `for:` - {LAB_INTERVAL_SECONDS} s.")

# The stack's own alerts watch the pipeline every run shares: their faults (a collector down, a
# flood) would hit every row at once, so `make drills` fires each of them on its own.
STACK_DRILLS_NOTE = ("The stack's own alerts (CollectorExportFailures, CollectorRefusingData, CollectorDroppingForeignMetrics, "
                     "SeriesGrowth, HeadSeriesHigh, TargetDown) watch the pipeline every run shares, so they stay quiet here; "
                     "`make drills` fires each one with a real fault, at Prometheus and at the sink: "
                     "[results/drills.md]({drills}).")

README_BEGIN = "<!-- alert-matrix:begin -->"
README_END = "<!-- alert-matrix:end -->"


def update_readme(readme: Path, m: MatrixResult, paced: MatrixResult | None = None) -> None:
    text = readme.read_text()
    pp, pr = m.precision_recall("prometheus")
    ap, ar = m.precision_recall("alertmanager")
    paced_line = ""
    if paced:
        qp, qr = paced.precision_recall("prometheus")
        paced_line = (f"Training rows paced at speed {paced.training_speed:g} (seeds {', '.join(map(str, paced.seeds))}): "
                      f"Prometheus {qp:.2f} / {qr:.2f}, exactly the expected alerts: {'yes' if paced.is_diagonal() else 'NO'}, "
                      f"the same as `--fast`: {'yes' if same_as_fast(paced, m) else 'NO'}. ")
    block = (f"{README_BEGIN}\n{render_matrix(m)}\n\nTraining seeds {', '.join(map(str, m.seeds))} (`--fast`); inference "
             f"seeds {', '.join(map(str, m.inference_seeds)) or 'none'} (paced at speed {m.inference_speed:g}); support-bot seeds "
             f"{', '.join(map(str, m.generative_seeds)) or 'none'} (paced at speed {m.generative_speed:g}). Precision / recall: "
             f"Prometheus {pp:.2f} / {pr:.2f}, Alertmanager {ap:.2f} / {ar:.2f}; exactly the expected alerts: "
             f"{'yes' if m.is_diagonal() else 'NO'}. † = a fix that acts on the alarm (retrains on drift): its alerts "
             f"fire by design and are not counted; ‡ = fired on the way to a divergence by an alert that steps "
             f"aside once the run has a NaN, not counted. {paced_line}"
             f"Latency and details: [results/alert-matrix.md](results/alert-matrix.md). "
             f"{STACK_DRILLS_NOTE.format(drills='results/drills.md')}\n{README_END}")
    if README_BEGIN in text:
        text = re.sub(rf"{re.escape(README_BEGIN)}.*?{re.escape(README_END)}", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.alert_matrix", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds (--fast runs)")
    p.add_argument("--inference-seeds", type=int, nargs="*", default=[0, 1],
                   help="seeds of the paced inference runs (200 s each at speed 1)")
    p.add_argument("--inference-speed", type=float, default=1.0)
    p.add_argument("--inference-parallel", type=int, default=4, help="paced inference runs at once (~0.3 core each)")
    p.add_argument("--generative-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4],
                   help="seeds of the paced support-bot runs (150 s each at speed 1, after a ~15 s training per seed)")
    p.add_argument("--generative-speed", type=float, default=1.0)
    p.add_argument("--generative-parallel", type=int, default=6, help="paced bot runs at once (~0.1 core each)")
    p.add_argument("--scenarios", nargs="+", help="default: all")
    p.add_argument("--no-latency", action="store_true", help="skip the paced latency runs")
    p.add_argument("--speed", type=float, default=1.0, help="pace of the latency runs (default 1, as people see it)")
    p.add_argument("--paced-seeds", type=int, nargs="*", default=[0],
                   help="seeds of the paced training matrix, run beside the fast one (about 4 min at speed 1)")
    p.add_argument("--training-speed", type=float, default=1.0, help="pace of the paced training matrix")
    p.add_argument("--out", type=Path, help="write <out>/alert-matrix.md and .json")
    p.add_argument("--readme", type=Path, help="replace the matrix block of this README")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="re-render the report (and README block) from a previous alert-matrix.json; no runs")
    args = p.parse_args(argv)
    for name in ("seeds", "paced_seeds", "inference_seeds", "generative_seeds"):
        if any(s < 0 for s in getattr(args, name)):
            p.error(f"--{name.replace('_', '-')}: seeds are non-negative")
    for name in ("inference_speed", "generative_speed", "training_speed", "speed"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')}: must be > 0")
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        md = data["matrix"]
        own = [LatencyRow(**r) for r in md.pop("latency", [])]
        md["rows"] = [tuple(r) for r in md["rows"]]
        m = MatrixResult(**md, latency=own)
        paced = None
        if data.get("paced"):
            pd = data["paced"]
            pd.pop("latency", None)
            pd["rows"] = [tuple(r) for r in pd["rows"]]
            paced = MatrixResult(**pd)
        keys = {f.name for f in LatencyRow.__dataclass_fields__.values()}
        latency = [LatencyRow(**{k: v for k, v in r.items() if k in keys}) for r in data["latency"]][: len(data["latency"]) - len(own)]
        report = render_report(m, latency, data["when"], paced)
        print(report)
        if args.out:
            (args.out / "alert-matrix.md").write_text(report)
        if args.readme:
            update_readme(args.readme, m, paced)
        return 0 if m.is_diagonal() and (paced is None or paced.is_diagonal()) else 1
    print("Starting a private native stack (scripts/native/up.sh)...", flush=True)
    with private_native_stack() as stack:
        print(f"Fast matrix: seeds {args.seeds}; paced training matrix: seeds {args.paced_seeds}", flush=True)
        with ThreadPoolExecutor(1) as beside:
            pending = beside.submit(run_paced_training_matrix, stack, args.paced_seeds, args.scenarios,
                                    args.training_speed, lambda s: print(s, flush=True)) if args.paced_seeds else None
            m = run_fast_matrix(stack, args.seeds, args.scenarios, progress=lambda s: print(s, flush=True),
                                inference_seeds=args.inference_seeds, inference_speed=args.inference_speed,
                                inference_parallel=args.inference_parallel, generative_seeds=args.generative_seeds,
                                generative_speed=args.generative_speed, generative_parallel=args.generative_parallel)
            paced = pending.result() if pending else None
        latency = [] if args.no_latency else run_latency(stack, args.scenarios, speed=args.speed,
                                                         progress=lambda s: print(s, flush=True))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = render_report(m, latency, when, paced)
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "alert-matrix.md").write_text(report)
        (args.out / "alert-matrix.json").write_text(json.dumps(
            {"when": when, "matrix": asdict(m), "paced": asdict(paced) if paced else None, "latency": [asdict(r) | {"theoretical_min_s": r.theoretical_min_s,
                                                                        "pipeline_max_s": r.pipeline_max_s}
                                                            for r in [*latency, *m.latency]]}, indent=1, default=str) + "\n")
    if args.readme:
        update_readme(args.readme, m, paced)
    return 0 if m.is_diagonal() and (paced is None or paced.is_diagonal()) else 1


if __name__ == "__main__":
    sys.exit(main())
