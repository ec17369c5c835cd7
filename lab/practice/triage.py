"""Practise triage: a hidden scenario runs live under a neutral name; the trainee diagnoses it.

    lab triage start [--seed N]   pick a case (random, or fixed by a seed a class can share) and run it
    lab triage hint               the next hint: first where to look, then what the signal means
    lab triage answer WORD ...    check a diagnosis; a wrong one can be retried
    lab triage reveal             the truth, the first signal that showed it, the alerts that fired, the runbooks
    lab triage fix                run the remedy under the same neutral name (variant "fix"), for side by side
    lab triage scores             the history of cases

The answer key is each scenario file's `[story] diagnosis` (scenarios teaching the same
failure share one); a case may add a real telemetry-pipeline outage (lab/telemetry/outage.py) beside,
or instead of, a model fault, and then "pipeline" is part of the answer. State lives in
$LAB_STATE_DIR/triage (default .lab/triage): current.json and history.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from lab.families import first_signals, run
from lab.repo import alert_rules, runbook_location
from lab.specs.base import SpecError, Story
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import streams
from lab.telemetry.outage import ExportGate

MYSTERY = "mystery"  # the lab.scenario value of every hidden run: bounded, and reveals nothing
CASE_VARIANT = "case"
HEALTHY = "healthy"
PIPELINE = "pipeline"
# Share of cases that get a pipeline outage, and where in the run it falls (fraction of progress).
# Late enough that every fault has shown itself first (the loss-spike jump is at 50%).
CONFOUNDER_SHARE = 0.3
OUTAGE_WINDOW = (0.6, 0.8)
PIPELINE_HINTS = [
    "Not every gap is the model's fault: look at when each series last had a sample, and at the "
    "collector's own metrics (otelcol_receiver_accepted_metric_points) over the same minutes.",
    "Every series of the run stopped at the same moment and came back together, while the collector and "
    "Prometheus stayed up: the run could not export (a network partition between it and the collector). "
    "That is a pipeline problem, not a model problem.",
]
# Scoring: a correct diagnosis is worth 100, minus these; revealing first scores 0.
WRONG_PENALTY = 20
HINT_PENALTY = 10


class TriageError(SpecError):
    """Bad triage input or state; the message says what to do."""


def state_dir() -> Path:
    return Path(os.environ.get("LAB_STATE_DIR") or ".lab") / "triage"


def answer_key() -> dict[str, str]:
    """{scenario: diagnosis}, read from the scenario files (the only answer key)."""
    return {name: load_scenario(name).story.diagnosis for name in known_scenarios()}


def diagnoses() -> list[str]:
    return sorted(set(answer_key().values()) | {PIPELINE})


@dataclass
class Case:
    case_id: str
    seed: int
    scenario: str
    diagnosis: str
    run_seed: int
    confounder: str | None = None  # "export-outage"
    outage: tuple[float, float] | None = None  # progress window
    started_at: float = field(default_factory=time.time)
    outage_began_at: float | None = None
    outage_ended_at: float | None = None
    run_outcome: str | None = None
    run_ended_at: float | None = None
    first_signals: dict[str, dict] = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)
    hints_used: int = 0
    solved_at: float | None = None
    revealed_at: float | None = None

    @property
    def truth(self) -> set[str]:
        """What a correct answer names: the model failure and/or a pipeline outage that happened."""
        t = {self.diagnosis} - {HEALTHY}
        if self.outage_began_at is not None:
            t.add(PIPELINE)
        return t or {HEALTHY}

    @property
    def closed(self) -> bool:
        return self.solved_at is not None or self.revealed_at is not None

    @property
    def score(self) -> int:
        if self.solved_at is None or (self.revealed_at is not None and self.revealed_at < self.solved_at):
            return 0
        wrong = sum(not a["correct"] for a in self.attempts)
        return max(0, 100 - WRONG_PENALTY * wrong - HINT_PENALTY * self.hints_used)

    def hints(self) -> list[str]:
        own = list(load_scenario(self.scenario).story.hints)
        return own + (PIPELINE_HINTS if self.outage_began_at is not None else [])


def pick_case(seed: int | None = None, *, confounder: bool | None = None) -> Case:
    """Choose the hidden scenario (and maybe a confounder) from a seed; the same seed, the same case."""
    seed = random.SystemRandom().randrange(10**6) if seed is None else seed
    rng = random.Random(seed)
    key = answer_key()
    scenario = rng.choice(sorted(key))
    with_outage = rng.random() < CONFOUNDER_SHARE if confounder is None else confounder
    case_id = hashlib.sha256(f"ml-lab-case-{seed}".encode()).hexdigest()[:6]
    return Case(case_id=case_id, seed=seed, scenario=scenario, diagnosis=key[scenario], run_seed=rng.randrange(100),
                confounder="export-outage" if with_outage else None, outage=OUTAGE_WINDOW if with_outage else None)


# -- state ------------------------------------------------------------------------------

def _current_path() -> Path:
    return state_dir() / "current.json"


def save(case: Case) -> None:
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "current.json.tmp"
    tmp.write_text(json.dumps(asdict(case), indent=1))
    tmp.replace(_current_path())  # atomic: `answer` may read while the run writes


def load_current() -> Case:
    p = _current_path()
    if not p.is_file():
        raise TriageError("no case is open: start one with `lab triage start` (or `make mystery`)")
    d = json.loads(p.read_text())
    if d.get("outage") is not None:
        d["outage"] = tuple(d["outage"])
    return Case(**d)


def archive(case: Case) -> None:
    with (state_dir() / "history.jsonl").open("a") as f:
        f.write(json.dumps({**asdict(case), "score": case.score, "truth": sorted(case.truth)}) + "\n")


def history() -> list[dict]:
    p = state_dir() / "history.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []


def open_case(case: Case) -> None:
    """Make `case` current; a previous unfinished case goes to the history as abandoned."""
    try:
        prev = load_current()
    except TriageError:
        prev = None
    if prev is not None and not prev.closed:
        archive(prev)
    save(case)


# -- answering ---------------------------------------------------------------------------

def normalise(words: list[str]) -> set[str]:
    valid = diagnoses()
    out = set()
    for w in words:
        for part in w.replace(",", " ").replace("+", " ").split():
            p = part.strip().lower()
            if p not in valid:
                raise TriageError(f"unknown diagnosis {part!r}; name one or more of: {', '.join(valid)}")
            out.add(p)
    if not out:
        raise TriageError(f"name a diagnosis: one or more of {', '.join(valid)}")
    if HEALTHY in out and len(out) > 1:
        raise TriageError(f"{HEALTHY!r} means nothing is wrong: it cannot be combined with another diagnosis")
    return out


def answer(case: Case, words: list[str], now: float | None = None) -> dict[str, Any]:
    """Record an attempt; returns {correct, named, missing, wrong, elapsed_s, score}."""
    if case.revealed_at is not None:
        raise TriageError("this case was revealed: start a new one with `lab triage start`")
    now = time.time() if now is None else now
    named = normalise(words)
    truth = case.truth
    correct = named == truth
    already = case.solved_at is not None
    case.attempts.append({"at": now, "answer": sorted(named), "correct": correct})
    if correct and not already:
        case.solved_at = now
    save(case)
    return {"correct": correct, "right": sorted(named & truth), "wrong": sorted(named - truth),
            "missing": len(truth - named), "elapsed_s": now - case.started_at, "score": case.score}


def next_hint(case: Case) -> tuple[int, int, str]:
    """(number, total, text) of the next hint; repeats the last one when all are used."""
    hints = case.hints()
    if not hints:
        raise TriageError(f"scenario file has no hints: add [story] hints to scenarios/{case.scenario}.toml")
    if case.hints_used < len(hints) and not case.closed:
        case.hints_used += 1
        save(case)
    i = max(1, min(case.hints_used, len(hints)))
    return i, len(hints), hints[i - 1]


# -- running -----------------------------------------------------------------------------

def disguise(spec, variant: str = CASE_VARIANT):
    """The same settings under a neutral name: labels, spans, logs and the terminal say "mystery"."""
    hidden = Story(what_you_will_see="(hidden)", root_cause="(hidden)", what_to_do="(hidden)")
    return spec.model_copy(update={"name": MYSTERY, "variant": variant, "title": "Mystery case", "alerts": [],
                                   "story": hidden, "has_fix": False})


class CaseProgress(BaseObserver):
    """Feeds the run's progress (any family: units done / units planned) to the outage gate,
    and records when the outage began and ended."""

    def __init__(self, case: Case, gate: ExportGate | None):
        self.case, self.gate = case, gate
        self.planned = 1

    def on_start(self, run) -> None:
        self.planned = max(run.planned_units, 1)

    def on_unit(self, rec) -> None:
        if self.gate is None:
            return
        was = self.gate.blocked
        self.gate.progress(rec.clock / self.planned)
        if self.gate.blocked != was:
            self.case.outage_began_at, self.case.outage_ended_at = self.gate.began_at, self.gate.ended_at
            save(self.case)


def run_case(case: Case, *, fix: bool = False, fast: bool = False, speed: float = 1.0, telemetry: str = "auto",
             quiet: bool = False, live: bool | None = None, overrides: list[str] = (),
             telemetry_kwargs: dict | None = None, console_stream=None):
    """Run the case's scenario (or its fix) disguised; records the outcome and first signals."""
    spec = load_scenario(case.scenario, fix=fix, overrides=list(overrides))
    hidden = disguise(spec, "fix" if fix else CASE_VARIANT)
    # Only a run that streams can lose its pipeline; without one there is nothing to diagnose.
    gate = ExportGate(*case.outage) if case.outage and not fix and streams(telemetry) else None
    kwargs = dict(telemetry_kwargs or {})
    if gate is not None:
        kwargs["export_gate"] = gate
    outcome = run(hidden, seed=case.run_seed, fast=fast, speed=speed, telemetry=telemetry, quiet=quiet, live=live,
                  verdicts=False, extra_observers=[CaseProgress(case, gate)], telemetry_kwargs=kwargs or None,
                  console_stream=console_stream, print_summary=False)
    if not fix:
        case.run_outcome = outcome.result.stopped
        case.run_ended_at = time.time()
        case.first_signals = first_signals(spec, outcome.result)
        if gate is not None:
            case.outage_began_at, case.outage_ended_at = gate.began_at, gate.ended_at
        save(case)
    return outcome


# -- reveal ------------------------------------------------------------------------------

def runbooks(alerts: list[str]) -> dict[str, str]:
    """{alert: its rule's runbook_url}, a page of this checkout as its absolute path (lab.repo.runbook_location)."""
    return {name: runbook_location(rule.get("annotations", {}).get("runbook_url", "")) for name, rule in alert_rules().items()
            if name in alerts}


def fired_alerts(case: Case, prometheus_url: str, timeout: float = 3.0) -> dict[str, float] | None:
    """{alert: seconds after the case started when it first fired}, or None if Prometheus is unreachable."""
    end = time.time()
    start = case.started_at
    step = max(5.0, math.ceil((end - start) / 10_000))  # query_range caps at 11,000 points
    try:
        r = requests.get(f"{prometheus_url}/api/v1/query_range", timeout=timeout, params={
            "query": f'ALERTS{{alertstate="firing", lab_scenario="{MYSTERY}", lab_variant="{CASE_VARIANT}"}}',
            "start": start, "end": end, "step": step})
        r.raise_for_status()
    except requests.RequestException:
        return None
    first: dict[str, float] = {}
    for series in r.json()["data"]["result"]:
        name = series["metric"].get("alertname", "?")
        t = float(series["values"][0][0]) - start
        first[name] = min(first.get(name, t), t)
    return first


def prometheus_url() -> str:
    return os.environ.get("LAB_PROMETHEUS_URL") or f"http://localhost:{os.environ.get('LAB_PROMETHEUS_PORT', '9090')}"


def reveal(case: Case, now: float | None = None) -> dict[str, Any]:
    spec = load_scenario(case.scenario)
    if case.revealed_at is None:
        case.revealed_at = time.time() if now is None else now
        save(case)
    return {
        "case": case.case_id, "scenario": case.scenario, "title": spec.title, "truth": sorted(case.truth),
        "confounder": case.confounder if case.outage_began_at is not None else None,
        "outage_s": None if case.outage_began_at is None else
        [round(case.outage_began_at - case.started_at, 1),
         None if case.outage_ended_at is None else round(case.outage_ended_at - case.started_at, 1)],
        "root_cause": spec.story.root_cause, "what_the_signals_show": spec.story.what_the_signals_show,
        "what_to_do": spec.story.what_to_do, "fix": spec.story.fix if spec.has_fix else "",
        "first_signals": case.first_signals, "run_outcome": case.run_outcome,
        "expected_alerts": spec.alerts, "runbooks": runbooks(spec.alerts),
    }


def summarise_scores(rows: list[dict]) -> dict[str, Any]:
    solved = [r for r in rows if r.get("solved_at") is not None and r.get("score", 0) > 0]
    times = [r["solved_at"] - r["started_at"] for r in solved]
    return {
        "cases": len(rows), "solved": len(solved),
        "median_time_s": round(statistics.median(times), 1) if times else None,
        "mean_score": round(statistics.mean(r.get("score", 0) for r in rows), 1) if rows else None,
        "hints_per_case": round(statistics.mean(r.get("hints_used", 0) for r in rows), 2) if rows else None,
        "by_diagnosis": {d: f"{sum(1 for r in rows if r['diagnosis'] == d and r in solved)}/"
                            f"{sum(1 for r in rows if r['diagnosis'] == d)}"
                         for d in sorted({r["diagnosis"] for r in rows})},
    }
