"""Practise triage: a hidden scenario runs live under a neutral name; the trainee diagnoses it.

    lab triage start [--seed N]   pick a case (random, or fixed by a seed a class can share) and run it
    lab triage status             the open case: its share of the run done, answers, hints, score
    lab triage hint               the next hint: first where to look, then what the signal means
    lab triage answer WORD ...    check a diagnosis; a wrong one can be retried
    lab triage reveal             the truth, the first signal that showed it, the alerts that fired, the runbooks
    lab triage fix                run the remedy under the same neutral name (variant "fix"), for side by side
    lab triage scores             the history of cases

The answer key is each scenario file's `[story] diagnosis` (scenarios teaching the same
failure share one); a case may add a real telemetry-pipeline fault beside, or instead of, a model
fault (lab/practice/pipeline.py: an export outage, a collector crash, a Prometheus restart), and
then "pipeline" is part of the answer. State lives in
$LAB_STATE_DIR/triage (default .lab/triage): current.json and history.jsonl.

The pool: the scenarios that ship with the lab (BUILT_IN_POOL), and a user's own scenario only
if its own file declares a `[story] diagnosis` (inherited through `base =` does not count: a
tweaked copy may no longer show its base's failure). A seed picks from the built-in pool alone,
so a class seed names the same case whatever other files a student has; a case without a seed
(or with --custom) draws from both.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import requests

from lab.families import family_of, first_signals
from lab.practice.pipeline import CONFOUNDERS, StackFault, make_fault
from lab.repo import alert_rules, runbook_location, stack_basic_auth
from lab.specs.base import HIDDEN_VARIANT, SpecError, Story
from lab.specs.loader import UnknownScenario, known_scenarios, load_raw, load_scenario, scenarios_dir
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import streams
from lab.telemetry.session import run_session

MYSTERY = "mystery"  # the lab.scenario value of every hidden run: bounded, and reveals nothing
CASE_VARIANT = HIDDEN_VARIANT  # its telemetry leaves out what would name the scenario (lab/specs/base.py)
HEALTHY = "healthy"
PIPELINE = "pipeline"
# Share of cases that get a pipeline fault; which one and where in the run: lab/practice/pipeline.py.
CONFOUNDER_SHARE = 0.3
CONFOUNDER_KINDS = tuple(CONFOUNDERS)
OUTAGE_WINDOW = CONFOUNDERS["export-outage"]
_FIRST_PIPELINE_HINT = ("Not every gap is the model's fault: look at when each series last had a sample, at the "
                        "stack's own targets (up, MLLabTargetDown) and at the collector's own metrics "
                        "(otelcol_receiver_accepted_metric_points) over the same minutes.")
PIPELINE_HINTS = {
    "export-outage": [_FIRST_PIPELINE_HINT,
                      "Every series of the run stopped at the same moment and came back together, while the collector "
                      "and Prometheus stayed up: the run could not export (a network partition between it and the "
                      "collector). That is a pipeline problem, not a model problem."],
    "collector-crash": [_FIRST_PIPELINE_HINT,
                        "up{job=\"otel-collector\"} dropped to 0 and MLLabTargetDown fired for the collector; when it came "
                        "back its own counters (otelcol_process_uptime, otelcol_receiver_accepted_metric_points) started "
                        "again from 0. The run held its batches and sent them late, so its series have no hole: the "
                        "collector crashed. That is a pipeline problem, not a model problem."],
    "prometheus-restart": [_FIRST_PIPELINE_HINT,
                           "Prometheus itself was gone for a while: up{job=\"prometheus\"} has a hole, "
                           "process_start_time_seconds{job=\"prometheus\"} moved, and rules were not evaluated meanwhile "
                           "(an alert may have fired again after the restart). The collector queued the run's data and "
                           "delivered it late. That is a pipeline problem, not a model problem."],
}
# Scoring: a correct diagnosis is worth 100, minus these; revealing first scores 0.
WRONG_PENALTY = 20
HINT_PENALTY = 10
# The cases that ship with the lab (scenarios/; tests/practice keeps the two equal). A seed picks
# from these alone, in this order, so a class seed names the same case whatever other scenario
# files a student has (and however the folder lists them).
BUILT_IN_POOL = ("batching-latency", "bot-cardinality", "bot-healthy", "bot-new-topic", "bot-pii", "bot-prompt-bloat",
                 "bot-runaway", "concept-drift", "dead-relu", "diverged", "drift", "drift-sudden", "healthy", "loss-spike",
                 "missing-input", "overfit", "serving-healthy", "stalled")
# Case.pool: where the case was drawn from.
BUILT_IN = "built-in"
WITH_CUSTOM = "built-in+custom"


class TriageError(SpecError):
    """Bad triage input or state; the message says what to do."""


def state_dir() -> Path:
    return Path(os.environ.get("LAB_STATE_DIR") or ".lab") / "triage"


def declared_diagnosis(name: str) -> str:
    """The diagnosis a scenario's own file declares in its [story] ("" if none; a base's does not count)."""
    story = load_raw(scenarios_dir() / f"{name}.toml").get("story")
    diagnosis = story.get("diagnosis") if isinstance(story, dict) else None
    return diagnosis if isinstance(diagnosis, str) else ""


def custom_cases() -> list[str]:
    """The user's own scenarios that opted into practice mode: their file declares a diagnosis, and loads."""
    out = []
    for name in known_scenarios():
        if name in BUILT_IN_POOL:
            continue
        try:
            if declared_diagnosis(name) and load_scenario(name).story.diagnosis:
                out.append(name)
        except SpecError:
            continue  # a broken file is `lab list`'s to report; it is no case
    return out


def pool(custom: bool = True) -> list[str]:
    """The scenarios a case is drawn from, in drawing order: the built-in ones, then (custom) the user's opted-in ones."""
    return list(BUILT_IN_POOL) + (custom_cases() if custom else [])


def answer_key(custom: bool = True) -> dict[str, str]:
    """{scenario: diagnosis} over the pool, read from the scenario files (the only answer key)."""
    key = {}
    for name in pool(custom):
        try:
            diagnosis = load_scenario(name).story.diagnosis
        except UnknownScenario:
            raise TriageError(f"the built-in case {name!r} is not in {scenarios_dir()}: practice mode draws from the "
                              "lab's own scenarios (does LAB_SCENARIOS_DIR point elsewhere?)") from None
        if not diagnosis:  # a built-in one (a custom one without a diagnosis is not in the pool)
            raise TriageError(f"scenario {name!r} has no [story] diagnosis: practice mode's answer key needs one")
        key[name] = diagnosis
    return key


def diagnoses() -> list[str]:
    return sorted(set(answer_key().values()) | {PIPELINE})


@dataclass
class Case:
    case_id: str
    seed: int
    scenario: str
    diagnosis: str
    run_seed: int
    confounder: str | None = None  # one of CONFOUNDER_KINDS (the one that really happened, after the run)
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
    progress: int | None = None  # percent of the run done: never steps or windows (a total at a pace names a scenario)
    pool: str = BUILT_IN  # BUILT_IN or WITH_CUSTOM: what the case was drawn from

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
        # Only tries up to the solve count (state files of older versions kept answers given after it).
        wrong = sum(not a["correct"] for a in self.attempts if a["at"] <= self.solved_at)
        return max(0, 100 - WRONG_PENALTY * wrong - HINT_PENALTY * self.hints_used)

    def hints(self) -> list[str]:
        own = list(load_scenario(self.scenario).story.hints)
        return own + (PIPELINE_HINTS[self.confounder or "export-outage"] if self.outage_began_at is not None else [])


def pick_case(seed: int | None = None, *, confounder: bool | str | None = None, custom: bool | None = None) -> Case:
    """Choose the hidden scenario (and maybe a confounder) from a seed; the same seed, the same case.

    confounder: None = about one case in CONFOUNDER_SHARE, True/False = always/never (the kind
    from the seed), a kind's name = always that one.

    custom: draw from the user's opted-in scenarios too; by default only when no seed is given,
    so a seed picks from the built-in pool alone and names the same case for every student.
    """
    custom = seed is None if custom is None else custom
    seed = random.SystemRandom().randrange(10**6) if seed is None else seed
    rng = random.Random(seed)
    key = answer_key(custom)
    scenario = rng.choice(list(key))
    with_outage = rng.random() < CONFOUNDER_SHARE if confounder is None else bool(confounder)
    drawn_from = WITH_CUSTOM if len(key) > len(BUILT_IN_POOL) else BUILT_IN
    case_id = hashlib.sha256(f"ml-lab-case-{seed}{'' if drawn_from == BUILT_IN else '-custom'}".encode()).hexdigest()[:6]
    run_seed = rng.randrange(100)
    kind = None
    if with_outage:  # drawn after run_seed, so a seed's run is the one it was before there were kinds
        kind = confounder if isinstance(confounder, str) else rng.choice(CONFOUNDER_KINDS)
        if kind not in CONFOUNDERS:
            raise TriageError(f"unknown confounder {kind!r}: one of {', '.join(CONFOUNDER_KINDS)}")
    return Case(case_id=case_id, seed=seed, scenario=scenario, diagnosis=key[scenario], run_seed=run_seed,
                confounder=kind, outage=CONFOUNDERS[kind] if kind else None, pool=drawn_from)


# -- state ------------------------------------------------------------------------------

def _current_path() -> Path:
    return state_dir() / "current.json"


# Who writes what of the open case: the run (`lab triage start`, one process) and the trainee's
# commands (answer, hint, reveal: another terminal, while the run goes on). Each side writes only
# its own fields over the file's latest copy, so neither undoes the other.
RUN_FIELDS = ("confounder", "outage", "outage_began_at", "outage_ended_at", "run_outcome", "run_ended_at", "first_signals",
              "progress")
TRAINEE_FIELDS = ("attempts", "hints_used", "solved_at", "revealed_at")


def save(case: Case) -> None:
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"current.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(case), indent=1))
    tmp.replace(_current_path())  # atomic: `answer` may read while the run writes


def update(case: Case, fields: tuple[str, ...]) -> None:
    """Write `fields` of `case` into the open case's file over its latest copy, keeping the file's
    other fields. If another case was opened meanwhile, this one is history: nothing is written."""
    try:
        latest = load_current()
    except TriageError:
        save(case)
        return
    if (latest.case_id, latest.started_at) == (case.case_id, case.started_at):
        save(replace(latest, **{name: getattr(case, name) for name in fields}))


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
    """Record an attempt; returns {correct, right, wrong, missing, elapsed_s, score, counted}.

    Once the case is solved an answer is checked but not counted: it is no try and leaves the
    score and the time to solve as they were (counted False, elapsed_s the time to the solve).
    """
    if case.revealed_at is not None:
        raise TriageError("this case was revealed: start a new one with `lab triage start`")
    now = time.time() if now is None else now
    named = normalise(words)
    truth = case.truth
    correct = named == truth
    counted = case.solved_at is None
    if counted:
        case.attempts.append({"at": now, "answer": sorted(named), "correct": correct})
        if correct:
            case.solved_at = now
        update(case, TRAINEE_FIELDS)
    return {"correct": correct, "right": sorted(named & truth), "wrong": sorted(named - truth),
            "missing": len(truth - named), "elapsed_s": (now if counted else case.solved_at) - case.started_at,
            "score": case.score, "counted": counted}


def next_hint(case: Case) -> tuple[int, int, str]:
    """(number, total, text) of the next hint; repeats the last one when all are used."""
    hints = case.hints()
    if not hints:
        # (not naming the file: the case is still hidden)
        raise TriageError("this case's scenario file has no [story] hints to give")
    if case.hints_used < len(hints) and not case.closed:
        case.hints_used += 1
        update(case, TRAINEE_FIELDS)
    i = max(1, min(case.hints_used, len(hints)))
    return i, len(hints), hints[i - 1]


# -- running -----------------------------------------------------------------------------

def disguise(spec, variant: str = CASE_VARIANT):
    """The same settings under a neutral name: labels, spans, logs and the terminal say "mystery"."""
    hidden = Story(what_you_will_see="(hidden)", root_cause="(hidden)", what_to_do="(hidden)")
    return spec.model_copy(update={"name": MYSTERY, "variant": variant, "title": "Mystery case", "alerts": [],
                                   "story": hidden, "has_fix": False})


class CaseProgress(BaseObserver):
    """Feeds the run's progress (any family: units done / units planned) to the pipeline fault,
    records when the fault began and ended, and the percent of the run done (`lab triage status`)."""

    def __init__(self, case: Case, gate):
        self.case, self.gate = case, gate
        self.planned = 1

    def on_start(self, run) -> None:
        self.planned = max(run.planned_units, 1)
        self.case.progress = 0
        update(self.case, RUN_FIELDS)

    def on_unit(self, rec) -> None:
        share = rec.clock / self.planned
        changed = False
        if self.gate is not None:
            self.gate.progress(share)
            # a stack fault records its times from a worker thread: compare, do not wait
            times = (self.gate.began_at, self.gate.ended_at)
            if times != (self.case.outage_began_at, self.case.outage_ended_at):
                self.case.outage_began_at, self.case.outage_ended_at = times
                changed = True
        pct = min(100, int(100 * share))
        if pct != self.case.progress:
            self.case.progress, changed = pct, True
        if changed:
            update(self.case, RUN_FIELDS)

    def on_end(self, result) -> None:
        if result.stopped == "completed" and self.case.progress != 100:  # a clock counts from a unit's start
            self.case.progress = 100
            update(self.case, RUN_FIELDS)


def practice_family(spec):
    """The spec's family with its console told to show no unit counts, pace or seed: the share of the run instead."""
    family = family_of(spec)
    return replace(family, console=partial(family.console, counts=False))


def run_case(case: Case, *, fix: bool = False, fast: bool = False, speed: float = 1.0, telemetry: str = "auto",
             quiet: bool = False, live: bool | None = None, overrides: list[str] = (),
             telemetry_kwargs: dict | None = None, console_stream=None):
    """Run the case's scenario (or its fix) disguised; records the outcome and first signals."""
    spec = load_scenario(case.scenario, fix=fix, overrides=list(overrides))
    hidden = disguise(spec, "fix" if fix else CASE_VARIANT)
    # Only a run that streams can lose its pipeline; without one there is nothing to diagnose.
    gate = None
    if case.confounder and not fix and streams(telemetry):
        case.confounder, gate = make_fault(case.confounder)  # a stack fault needs this user's native stack
        case.outage = CONFOUNDERS[case.confounder]
    kwargs = dict(telemetry_kwargs or {})
    if gate is not None and not isinstance(gate, StackFault):
        kwargs["export_gate"] = gate
    try:
        outcome = run_session(hidden, practice_family(hidden), seed=case.run_seed, fast=fast, speed=speed,
                              telemetry=telemetry, quiet=quiet, live=live, verdicts=False,
                              extra_observers=[] if fix else [CaseProgress(case, gate)],
                              telemetry_kwargs=kwargs or None, console_stream=console_stream, print_summary=False)
    finally:
        if isinstance(gate, StackFault):
            gate.close()  # never leave the stack down, however the run ended
    if not fix:
        case.run_outcome = outcome.result.stopped
        case.run_ended_at = time.time()
        case.first_signals = first_signals(spec, outcome.result)
        if gate is not None:
            case.outage_began_at, case.outage_ended_at = gate.began_at, gate.ended_at
        update(case, RUN_FIELDS)  # over the answers and hints given while it ran
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
        r = requests.get(f"{prometheus_url}/api/v1/query_range", timeout=timeout, auth=stack_basic_auth(), params={
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
        update(case, TRAINEE_FIELDS)
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
                         for d in sorted({r["diagnosis"] for r in rows} - {None})},  # None: an open case's
    }
