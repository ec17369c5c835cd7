"""Practice mode: case choice, answers, hints, scores and history (no runs here)."""


import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lab.practice import triage as t
from lab.practice.pipeline import CONFOUNDERS
from lab.repo import ROOT
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.outage import ExportGate


class InMemoryMetricExporterStub(MetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kw):
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kw):
        pass


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))


def _case(scenario="overfit", **kw):
    c = t.Case(case_id="abc123", seed=1, scenario=scenario, diagnosis=load_scenario(scenario).story.diagnosis,
               run_seed=0, started_at=1000.0, **kw)
    t.save(c)
    return c


def test_every_scenario_carries_its_answer_key_and_progressive_hints():
    for name in known_scenarios():
        s = load_scenario(name)
        assert s.story.diagnosis, f"{name}: [story] diagnosis missing"
        assert len(s.story.hints) >= 2, f"{name}: needs at least two hints (where to look, what it means)"
        # a scenario that fires no alert is a healthy one, and only those are "healthy"
        assert (s.story.diagnosis == t.HEALTHY) == (s.alerts == []), name
        # the first hint says where to look; it never names the answer
        assert s.story.diagnosis not in s.story.hints[0].lower(), name
    assert t.answer_key() == {n: load_scenario(n).story.diagnosis for n in known_scenarios()}
    assert t.PIPELINE in t.diagnoses() and t.HEALTHY in t.diagnoses()


def test_the_same_seed_gives_the_same_case_and_seeds_cover_every_scenario():
    a, b = t.pick_case(7), t.pick_case(7)
    assert (a.case_id, a.scenario, a.run_seed, a.confounder) == (b.case_id, b.scenario, b.run_seed, b.confounder)
    cases = [t.pick_case(s) for s in range(300)]
    assert {c.scenario for c in cases} == set(known_scenarios())
    share = sum(c.confounder is not None for c in cases) / len(cases)
    assert 0.2 < share < 0.4  # about CONFOUNDER_SHARE
    forced = [t.pick_case(s, confounder=True) for s in range(60)]
    assert {c.confounder for c in forced} == set(t.CONFOUNDER_KINDS)  # the seed picks the kind
    assert all(c.outage == CONFOUNDERS[c.confounder] for c in forced)
    assert t.pick_case(3, confounder="prometheus-restart").confounder == "prometheus-restart"
    assert t.pick_case(3, confounder=False).confounder is None
    # the kind is drawn after the run's seed: a seed runs the same case with or without one
    assert t.pick_case(3, confounder=True).run_seed == t.pick_case(3, confounder=False).run_seed


def test_wrong_answer_can_be_retried_and_costs_points():
    c = _case("overfit")
    r = t.answer(c, ["stalled"], now=1010.0)
    assert not r["correct"] and r["wrong"] == ["stalled"] and c.solved_at is None
    r = t.answer(c, ["overfitting"], now=1070.0)
    assert r["correct"] and r["elapsed_s"] == 70.0 and r["score"] == 100 - t.WRONG_PENALTY
    assert t.load_current().solved_at == 1070.0  # persisted


def test_hints_are_progressive_and_cost_points():
    c = _case("dead-relu")
    hints = load_scenario("dead-relu").story.hints
    assert t.next_hint(c) == (1, len(hints), hints[0])
    assert t.next_hint(c) == (2, len(hints), hints[1])
    assert t.next_hint(c)[0] == len(hints)  # the last one repeats, no further charge
    assert c.hints_used == len(hints)
    t.answer(c, ["dead-neurons"], now=1100.0)
    assert c.score == 100 - t.HINT_PENALTY * len(hints)


def test_a_pipeline_outage_that_happened_is_part_of_the_answer():
    c = _case("healthy", confounder="export-outage", outage=t.OUTAGE_WINDOW)
    assert c.truth == {"healthy"}  # planned but not yet happened: nothing to see
    c.outage_began_at = 1050.0
    assert c.truth == {"pipeline"}  # instead of a model fault
    assert not t.answer(c, ["healthy"], now=1060.0)["correct"]
    assert t.answer(c, ["pipeline"], now=1061.0)["correct"]
    d = _case("overfit", confounder="export-outage", outage=t.OUTAGE_WINDOW, outage_began_at=1050.0)
    r = t.answer(d, ["overfitting"], now=1070.0)
    assert not r["correct"] and r["right"] == ["overfitting"] and r["missing"] == 1  # beside a model fault
    assert t.answer(d, ["overfitting+pipeline"], now=1080.0)["correct"]
    assert c.hints() == load_scenario("healthy").story.hints + t.PIPELINE_HINTS["export-outage"]
    # each fault's own second hint: what its signals look like
    c.confounder = "collector-crash"
    assert "MLLabTargetDown" in c.hints()[-1] and c.hints()[-1] != t.PIPELINE_HINTS["export-outage"][-1]


def test_bad_answers_get_clear_errors():
    c = _case()
    with pytest.raises(t.TriageError, match="unknown diagnosis 'overfit'.*overfitting"):
        t.answer(c, ["overfit"])  # the scenario name is not the diagnosis
    with pytest.raises(t.TriageError, match="cannot be combined"):
        t.answer(c, ["healthy", "stalled"])
    assert c.attempts == []  # an invalid answer is not an attempt


def test_reveal_before_solving_scores_zero_and_closes_the_case():
    c = _case("stalled")
    r = t.reveal(c, now=1200.0)
    assert r["scenario"] == "stalled" and r["truth"] == ["stalled"]
    assert r["expected_alerts"] == load_scenario("stalled").alerts
    with pytest.raises(t.TriageError, match="revealed"):
        t.answer(c, ["stalled"])
    assert c.score == 0


def test_history_keeps_abandoned_and_finished_cases():
    a = _case("overfit")
    t.open_case(t.pick_case(11))  # `a` was still open: archived as abandoned
    b = t.load_current()
    t.answer(b, [b.diagnosis] + (["pipeline"] if b.outage_began_at else []), now=b.started_at + 30)
    t.archive(b)
    rows = t.history()
    assert [r["case_id"] for r in rows] == [a.case_id, b.case_id]
    s = t.summarise_scores(rows)
    assert s["cases"] == 2 and s["solved"] == 1 and s["median_time_s"] == 30.0


def test_no_open_case_says_how_to_start_one():
    with pytest.raises(t.TriageError, match="lab triage start"):
        t.load_current()


def test_disguise_hides_every_name():
    spec = load_scenario("loss-spike")
    hidden = t.disguise(spec)
    assert (hidden.name, hidden.variant, hidden.alerts) == ("mystery", "case", [])
    assert "loss" not in hidden.title.lower() and hidden.story.diagnosis == ""
    assert hidden.faults == spec.faults and hidden.optimizer == spec.optimizer  # same run underneath


def test_export_gate_drops_exports_only_inside_its_window():
    gate = ExportGate(0.5, 0.75)
    inner = InMemorySpanExporter()
    _, gated, _ = gate.wrap(InMemoryMetricExporterStub(), inner, InMemoryLogRecordExporter())
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(gated))
    tracer = provider.get_tracer("t")
    for i, p in enumerate([0.1, 0.49, 0.5, 0.6, 0.75, 0.9]):
        gate.progress(p)
        with tracer.start_as_current_span(f"s{i}"):
            pass
    assert [s.name for s in inner.get_finished_spans()] == ["s0", "s1", "s4", "s5"]
    assert gate.dropped == 2 and gate.began_at is not None and gate.ended_at >= gate.began_at
    assert gated.export([]) == SpanExportResult.SUCCESS
    with pytest.raises(ValueError, match="outage window"):
        ExportGate(0.8, 0.2)


def test_reveal_names_a_runbook_for_every_alert_the_case_should_fire():
    for name in known_scenarios():
        alerts = load_scenario(name).alerts
        books = t.runbooks(alerts)
        assert set(books) == set(alerts), f"{name}: no alert rule for {set(alerts) - set(books)}"
        for alert, url in books.items():
            page = url.rsplit("/docs/runbooks/", 1)[-1]
            assert url.endswith(f"{alert}.md") and (ROOT / "docs/runbooks" / page).is_file()


def test_status_reveal_and_scores_speak_json(capsys, monkeypatch):
    import json

    from lab.cli import main

    monkeypatch.setenv("LAB_PROMETHEUS_URL", "http://127.0.0.1:9")  # nothing answers: alerts_fired is null
    assert main(["triage", "scores", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cases": [], "summary": t.summarise_scores([])}
    _case()
    assert main(["triage", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: status[k] for k in ("case_id", "seed", "state", "answers", "hints_used", "score")} == \
        {"case_id": "abc123", "seed": 1, "state": "open", "answers": 0, "hints_used": 0, "score": 0}
    assert main(["triage", "reveal", "--json"]) == 0
    revealed = json.loads(capsys.readouterr().out)
    assert revealed["scenario"] == "overfit" and revealed["truth"] == ["overfitting"] and revealed["alerts_fired"] is None
    assert revealed["expected_alerts"] == ["MLLabOverfitting"] and "MLLabOverfitting" in revealed["runbooks"]
    assert main(["triage", "scores", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert [c["case_id"] for c in scores["cases"]] == ["abc123"] and scores["cases"][0]["solved"] is False
    assert scores["summary"]["cases"] == 1


def test_an_answer_after_the_solve_is_no_try_and_changes_no_score():
    c = _case("overfit")
    t.answer(c, ["stalled"], now=1010.0)
    assert t.answer(c, ["overfitting"], now=1070.0)["counted"]
    again = t.answer(c, ["overfitting"], now=1100.0)  # the same correct answer, once more
    assert again["correct"] and not again["counted"] and again["elapsed_s"] == 70.0
    late = t.answer(c, ["diverged"], now=1200.0)  # a wrong one after the solve
    assert not late["correct"] and not late["counted"]
    for case in (c, t.load_current()):
        assert len(case.attempts) == 2 and case.solved_at == 1070.0 and case.score == 100 - t.WRONG_PENALTY
    # a state file of an older version that kept answers given after the solve scores the same
    old = _case("overfit", attempts=[{"at": 1010.0, "answer": ["stalled"], "correct": False},
                                     {"at": 1070.0, "answer": ["overfitting"], "correct": True},
                                     {"at": 1200.0, "answer": ["diverged"], "correct": False}], solved_at=1070.0)
    assert old.score == 100 - t.WRONG_PENALTY


def test_answering_a_solved_case_again_says_so_and_keeps_the_count(capsys):
    from lab.cli import main

    _case("overfit")
    assert main(["triage", "answer", "overfitting"]) == 0
    assert "Correct" in capsys.readouterr().out
    assert main(["triage", "answer", "overfitting"]) == 0
    assert "already solved" in capsys.readouterr().out
    assert main(["triage", "answer", "stalled"]) == 1
    assert "do not count" in capsys.readouterr().out
    assert main(["triage", "status", "--json"]) == 0
    import json
    status = json.loads(capsys.readouterr().out)
    assert (status["state"], status["answers"], status["score"]) == ("solved", 1, 100)


def test_the_run_and_the_trainee_never_undo_each_others_writes():
    run_side = _case("overfit")  # the object `lab triage start` holds while the run goes
    trainee = t.load_current()  # another terminal
    t.answer(trainee, ["stalled"], now=1010.0)
    t.next_hint(trainee)
    run_side.run_outcome, run_side.first_signals = "completed", {"overfitting": {"at": 40, "unit": "step"}}
    t.update(run_side, t.RUN_FIELDS)
    stored = t.load_current()
    assert len(stored.attempts) == 1 and stored.hints_used == 1 and stored.run_outcome == "completed"
    t.answer(trainee, ["overfitting"], now=1070.0)  # a trainee copy from before the run's write
    stored = t.load_current()
    assert stored.solved_at == 1070.0 and stored.run_outcome == "completed" and stored.first_signals
    # a run whose case was abandoned for a new one writes nothing over the new one
    t.open_case(t.pick_case(11))
    run_side.run_outcome = "interrupted"
    t.update(run_side, t.RUN_FIELDS)
    assert t.load_current().case_id == t.pick_case(11).case_id and t.load_current().run_outcome is None


def test_answers_given_while_the_case_runs_survive_its_end(monkeypatch):
    from types import SimpleNamespace

    def run(spec, family, **kw):  # the run: meanwhile the trainee answers from another terminal
        t.answer(t.load_current(), ["overfitting"], now=1070.0)
        return SimpleNamespace(result=SimpleNamespace(stopped="completed"))

    monkeypatch.setattr(t, "run_session", run)
    monkeypatch.setattr(t, "practice_family", lambda spec: None)
    monkeypatch.setattr(t, "first_signals", lambda spec, result: {"overfitting": {"at": 40, "unit": "step"}})
    c = _case("overfit")
    t.run_case(c, fast=True, telemetry="off")
    stored = t.load_current()
    assert stored.run_outcome == "completed" and stored.first_signals
    assert stored.solved_at == 1070.0 and len(stored.attempts) == 1 and stored.score == 100
