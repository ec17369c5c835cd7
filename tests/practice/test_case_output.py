"""Everything a practice case prints, run for real (--fast): the signals, and nothing that names
the case: no scenario name or title, no step or window total, no pace, no run seed."""

import io
import json
import re
from types import SimpleNamespace

import pytest

from lab.cli import main
from lab.practice import triage as t
from lab.specs.loader import known_scenarios, load_scenario
from lab.training.console import ConsoleView
from lab.training.loop import Event, StepRecord

# The cheapest case of each family: the console differs, the rule is the same.
CASES = ["stalled", "drift"]


def _names(token: str, text: str) -> bool:
    """token as a whole name in text ("drift" in "input drift", not in "drifted" or "input-drift")."""
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text, re.IGNORECASE) is not None


def _number(n: int, text: str) -> bool:
    """n as a count of its own: not a digit of another number, a decimal or a percentage."""
    return re.search(rf"(?<![\w.]){n}(?![\w.%])", text) is not None


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAB_PROMETHEUS_URL", "http://127.0.0.1:9")


@pytest.mark.parametrize("scenario", CASES)
def test_a_case_prints_signals_but_no_name_total_pace_or_run_seed(scenario, capsys, monkeypatch):
    seed = next(s for s in range(1000) if t.pick_case(s).scenario == scenario)
    planned = {}
    on_start = t.CaseProgress.on_start

    def keep_totals(self, run):  # the run's own totals, to look for them in what it printed
        planned.update(units=run.planned_units, windows=getattr(run, "windows", None))
        on_start(self, run)

    monkeypatch.setattr(t.CaseProgress, "on_start", keep_totals)
    printed = []

    def lab(*argv):
        status = main(list(argv))
        out, err = capsys.readouterr()
        printed.append(out + err)
        return status, out

    assert lab("triage", "start", "--seed", str(seed), "--fast", "--plain", "--telemetry", "off")[0] == 0
    case = t.load_current()
    assert case.scenario == scenario and case.run_outcome == "completed" and case.progress == 100
    status, out = lab("triage", "status", "--json")
    status_json = json.loads(out)
    assert "run_seed" not in status_json and status_json["progress_pct"] == 100 and status_json["seed"] == seed
    lab("triage", "status")
    lab("triage", "hint")
    hint = printed.pop()  # the scenario file's own words, paid for: checked for totals, pace and seeds only
    lab("triage", "answer", "loss-spike")  # wrong for both
    assert lab("triage", "fix")[0] == 1  # diagnose first: nothing said about a fix
    lab("triage", "scores")
    lab("triage", "scores", "--json")
    shown = "\n".join(printed)

    spec = load_scenario(scenario)
    # the lab's fixed words: a dashboard's name (in every start message) and the drift monitor's flag
    banner = shown.replace("Production drift", "").replace(" DRIFT ", " ")
    # every scenario name that is not also an answer word, and the case's own name, title and answer
    for name in set(known_scenarios()) - set(t.diagnoses()) | {scenario, spec.title, spec.story.diagnosis}:
        assert not _names(name, banner), f"{scenario}: the case prints {name!r}"
    totals = {planned["units"], planned["windows"]} - {None}
    if spec.kind == "inference":
        totals.add(spec.stream.window_size)
    shown += "\n" + hint
    # clock readings are not totals: a case started at 13:40 or 40 s ago gives nothing away
    shown = re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b|\b\d+ s ago\b|\"started_at\": [\d.]+", "<clock>", shown)
    for n in totals:
        assert not _number(n, shown), f"{scenario}: the case prints its total {n}"
    for unit in (r"\bstep\s+\d", r"\bwindow\s+\d", r"\d+\s+(steps|windows|requests)\b", r"\bsteps?/s\b",
                 r"\brequests?/s\b", r"\bpaced\s+\d"):
        assert not re.search(unit, shown), f"{scenario}: the case prints units or pace: {re.search(unit, shown)[0]!r}"
    seeds = {int(n) for n in re.findall(r"\bseed\W+(\d+)", shown)}
    assert seeds == {seed}, f"{scenario}: seeds other than the case's are printed: {seeds - {seed}}"
    # and the signals are there, with the run's progress as a share
    assert "mystery (case)" in shown and re.search(r"run +\d+%", shown) and "run 100%" in shown


def test_the_live_training_panel_shows_shares_not_steps():
    stream = io.StringIO()
    view = ConsoleView(live=True, stream=stream, verdicts=False, counts=False)
    spec = SimpleNamespace(name="mystery", variant="case", pace=SimpleNamespace(steps_per_second=2.5))
    view.on_start(SimpleNamespace(spec=spec, seed=34, planned_steps=600, fast=False, speed=1.0))
    view.on_event(Event("run_start", 0, "mystery (case) seed 34: 600 steps planned", {"planned_steps": 600}))
    view.on_unit(StepRecord(step=150, epoch=30, loss=0.5, grad_norm=1.0, grad_baseline=1.0, grad_ratio=1.0,
                            loss_ratio=1.0, lr=1e-3, batch_size=32, duration_s=0.01, nonfinite=False, elapsed_s=60.0,
                            planned_steps=600))
    view.on_event(Event("early_stop", 150, "no improvement for 5 evaluations: stopping, best was step 120", {}))
    view.on_event(Event("run_end", 150, "run early_stopped after 150 steps", {"outcome": "early_stopped"}))
    view.on_end(None)
    shown = stream.getvalue()
    assert "mystery (case)" in shown and "25% of the run" in shown and "best was 20%" in shown
    assert "run early_stopped" in shown and "run started" in shown
    for leak in ("600", "150", "seed", "steps/s", "2.5", "epoch", "step 1"):
        assert leak not in shown, f"the live panel shows {leak!r}"
    # the same view with counts (lab run) still shows them
    stream = io.StringIO()
    view = ConsoleView(live=False, stream=stream)
    view.on_start(SimpleNamespace(spec=spec, seed=34, planned_steps=600, fast=False, speed=1.0))
    assert "seed 34 · 600 steps · paced 2.5 steps/s" in stream.getvalue()


def test_an_open_case_keeps_its_diagnosis_out_of_scores_and_fix(capsys):
    c = t.Case(case_id="abc123", seed=1, scenario="healthy", diagnosis="healthy", run_seed=0, started_at=1000.0)
    t.save(c)
    assert main(["triage", "fix"]) == 1
    out = capsys.readouterr().out
    assert "Diagnose first" in out and "no model fault" not in out
    assert main(["triage", "scores", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["cases"][0]["diagnosis"] is None and scores["summary"]["by_diagnosis"] == {}
    assert main(["triage", "scores"]) == 0
    assert "healthy" not in capsys.readouterr().out
    t.reveal(t.load_current(), now=1100.0)  # once revealed, the scores may say it
    assert main(["triage", "scores", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cases"][0]["diagnosis"] == "healthy"


def test_a_hint_error_does_not_name_the_scenario_file(monkeypatch):
    c = t.Case(case_id="abc123", seed=1, scenario="overfit", diagnosis="overfitting", run_seed=0, started_at=1000.0)
    monkeypatch.setattr(t.Case, "hints", lambda self: [])
    with pytest.raises(t.TriageError) as err:
        t.next_hint(c)
    assert "overfit" not in str(err.value)
