"""Telemetry: what a real run emits, read back with the SDK's in-memory readers."""

import math
import re

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, MetricExporter, MetricExportResult, Sum
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lab.repo import read_dotenv
from lab.specs.base import HIDDEN_VARIANT
from lab.specs.loader import build_spec
from lab.telemetry.catalogue import ALLOWED_ATTRIBUTES, BY_NAME, CATALOGUE, prometheus_series_count
from lab.telemetry.otel import LAB_INTERVAL_SECONDS, DeliveryCounter, RunIdentity, Telemetry, export_interval_ms
from lab.telemetry.session import Outcome
from lab.training.export import TelemetryObserver
from lab.training.loop import Trainer


def _run(spec, seed=0, reader=None, spans=None, logs=None):
    reader = reader or InMemoryMetricReader()
    spans = spans or InMemorySpanExporter()
    logs = logs or InMemoryLogRecordExporter()
    identity = RunIdentity(scenario=spec.name, variant=spec.variant, seed=seed)
    tel = Telemetry(identity, otlp=False, metric_readers=[reader], span_exporters=[spans], log_exporters=[logs])
    result = Trainer(spec, seed, fast=True, observers=[TelemetryObserver(tel)]).run()
    data = reader.get_metrics_data()
    tel.shutdown()
    return result, data, spans.get_finished_spans(), logs.get_finished_logs(), identity


def _points(data):
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    yield rm.resource, m, p


def _series(data) -> int:
    n = 0
    for _, m, p in _points(data):
        n += len(p.explicit_bounds) + 3 if isinstance(m.data, Histogram) else 1
    return n


def test_every_catalogued_instrument_is_emitted_with_its_unit_kind_and_attributes(tiny_spec):
    _, data, *_ = _run(tiny_spec)
    seen = {}
    for _, m, p in _points(data):
        seen.setdefault(m.name, (m, set()))[1].add(tuple(sorted(p.attributes)))
    assert set(seen) == {i.name for i in CATALOGUE if i.family == "training"}, "emitted instruments differ from lab/telemetry/catalogue.py"
    kinds = {"gauge": Gauge, "counter": Sum, "histogram": Histogram}
    for name, (m, attr_sets) in seen.items():
        inst = BY_NAME[name]
        assert m.unit == inst.unit, name
        assert isinstance(m.data, kinds[inst.kind]), name
        if inst.kind == "counter":
            assert m.data.is_monotonic
        assert attr_sets == {tuple(sorted(inst.attributes))}, name


def test_attribute_values_are_bounded_and_identity_stays_in_the_resource(tiny_spec):
    _, data, *_ = _run(tiny_spec)
    for resource, m, p in _points(data):
        for key, value in p.attributes.items():
            assert key in ALLOWED_ATTRIBUTES, f"{m.name} has unexpected attribute {key}"
            allowed = ALLOWED_ATTRIBUTES[key] or ("layer1", "layer2")
            assert value in allowed, f"{m.name}: {key}={value!r}"
        assert not any(re.search(r"run|step|seed|sample", k) for k in p.attributes)
        attrs = resource.attributes
        assert attrs["service.namespace"] == "ml-lab" and attrs["service.name"] == "ml-lab-trainer"
        assert attrs["lab.scenario"] == "tiny" and attrs["lab.variant"] == "fault"
        assert attrs["lab.run.id"] and attrs["lab.seed"] == 0


def test_series_budget_holds_and_does_not_grow_with_steps(tiny_raw):
    short = build_spec(tiny_raw)
    tiny_raw["train"]["epochs"] = 9
    long = build_spec(tiny_raw)
    _, d_short, *_ = _run(short)
    r_long, d_long, *_ = _run(long)
    assert r_long.steps == 3 * 7 * 3  # 200 samples / 32 -> 7 steps per epoch
    assert _series(d_short) == _series(d_long) == prometheus_series_count(n_layers=2)
    assert _series(d_long) <= 40  # the budget for a two-layer model


def test_instance_id_is_stable_and_run_id_is_unique():
    a = RunIdentity("overfit", "fault", 1)
    b = RunIdentity("overfit", "fault", 2)
    assert a.instance_id == b.instance_id
    assert a.run_id != b.run_id
    assert RunIdentity("overfit", "fix").instance_id != a.instance_id
    assert a.resource().attributes["service.instance.id"] == a.instance_id


def test_values_are_the_runs_own(tiny_spec):
    result, data, *_ = _run(tiny_spec)
    by = {}
    for _, m, p in _points(data):
        by[(m.name, tuple(sorted(p.attributes.items())))] = p
    last = result.evals[-1]
    assert by[("ml.training.loss", (("split", "validation"),))].value == pytest.approx(last.val_loss)
    assert by[("ml.training.loss", (("split", "train"),))].value == pytest.approx(last.train_loss)
    assert by[("ml.training.loss_ratio", ())].value == pytest.approx(last.ratio)
    assert by[("ml.training.activation.dead_ratio", (("layer", "layer1"),))].value == pytest.approx(last.dead_ratio["layer1"])
    assert by[("ml.training.steps", ())].value == result.steps
    assert by[("ml.training.epochs", ())].value == result.epochs
    assert by[("ml.training.step.duration", ())].count == result.steps
    assert by[("ml.training.progress", ())].value == pytest.approx(1.0)
    # the peak since the (only) collection is the run's largest per-step value
    assert by[("ml.training.batch_loss", ())].value == pytest.approx(max(result.losses))
    finite = [g for g in result.grad_ratios if math.isfinite(g)]
    assert by[("ml.training.gradient.norm_ratio", ())].value == pytest.approx(max(finite))


def test_spans_and_logs_describe_the_run(tiny_spec):
    result, _, spans, logs, identity = _run(tiny_spec)
    names = [s.name for s in spans]
    assert names.count("train tiny") == 1
    assert names.count("epoch") == result.epochs
    assert names.count("evaluate") == len(result.evals)
    root = next(s for s in spans if s.name == "train tiny")
    assert root.attributes["lab.outcome"] == "completed"
    assert all(s.context.trace_id == root.context.trace_id for s in spans)
    assert root.resource.attributes["lab.run.id"] == identity.run_id
    events = [lr.log_record.attributes["lab.event"] for lr in logs]
    assert events[0] == "run_start" and events[-1] == "run_end"
    assert events.count("evaluation") == len(result.evals)
    assert "checkpoint" in events
    ev = next(lr.log_record for lr in logs if lr.log_record.attributes["lab.event"] == "evaluation")
    assert ev.trace_id == root.context.trace_id and ev.event_name == "lab.evaluation"


def test_a_diverged_run_writes_non_finite_losses_as_text_on_spans_and_logs(tiny_raw):
    # Jaeger's v1 query API (what Grafana reads) answers 500 for a trace with NaN attributes.
    tiny_raw["faults"] = [{"kind": "corrupt_batch", "at_step": 3, "steps": 30, "scale": 1e39}]  # inf inputs
    result, _, spans, logs, _ = _run(build_spec(tiny_raw))
    assert result.stopped == "diverged" or any(not math.isfinite(x) for x in result.losses)
    attrs = [dict(s.attributes) for s in spans] + [dict(e.attributes) for s in spans for e in s.events]
    attrs += [dict(lr.log_record.attributes) for lr in logs]
    values = [v for a in attrs for v in a.values()]
    assert not [v for v in values if isinstance(v, float) and not math.isfinite(v)]
    assert any(v in ("nan", "inf") for v in values)  # the divergence is still there to read


def test_export_interval_is_the_lab_interval(monkeypatch):
    monkeypatch.delenv("OTEL_METRIC_EXPORT_INTERVAL", raising=False)
    assert export_interval_ms() == LAB_INTERVAL_SECONDS * 1000
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "250")
    assert export_interval_ms() == 250
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon")
    with pytest.raises(ValueError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        export_interval_ms()


def test_lab_interval_agrees_with_the_stack_pin_file():
    env = read_dotenv()
    assert env["LAB_INTERVAL"].strip().strip('"') in (f"{LAB_INTERVAL_SECONDS}s", str(LAB_INTERVAL_SECONDS))


def test_catalogue_prometheus_names_follow_the_translation_rules():
    # The real check is end to end against Prometheus; this catches slips early.
    for inst in CATALOGUE:
        base = inst.name.replace(".", "_")
        if inst.kind == "gauge" and inst.unit == "1":
            expected = "_".join([t for t in base.split("_") if t != "ratio"] + ["ratio"])
        elif inst.kind == "counter":
            expected = base + "_total"
        elif inst.unit == "s":
            expected = base + "_seconds"
        else:
            expected = base
        assert inst.prometheus == expected, inst.name




def test_delivery_is_counted_by_export_result_so_nothing_delivered_is_told_from_some_failed():
    class Metrics(MetricExporter):
        def __init__(self, results):
            super().__init__()
            self.results = iter(results)

        def export(self, metrics_data, timeout_millis=10_000, **kw):
            return next(self.results)

        def force_flush(self, timeout_millis=10_000):
            return True

        def shutdown(self, timeout_millis=30_000, **kw):
            pass

    class Spans(SpanExporter):
        def export(self, spans):
            return SpanExportResult.FAILURE

    counter = DeliveryCounter()
    m, s, _ = counter.wrap(Metrics([MetricExportResult.FAILURE, MetricExportResult.SUCCESS]), Spans(), None)
    assert m.export(None) == MetricExportResult.FAILURE and s.export([]) == SpanExportResult.FAILURE
    assert (counter.delivered, counter.failed) == (0, 2)
    assert Outcome(None, None, True, export_errors=2, exports_failed=2).delivered_nothing
    m.export(None)
    assert (counter.delivered, counter.failed) == (1, 2)
    assert not Outcome(None, None, True, export_errors=2, exports_delivered=1, exports_failed=2).delivered_nothing
    assert not Outcome(None, None, False).delivered_nothing  # nothing streamed: nothing to deliver


def test_step_durations_keep_exemplars_with_the_runs_trace_id(tiny_spec):
    # Grafana's exemplar link (Prometheus -> Jaeger) needs them; the SDK keeps an exemplar only
    # for a measurement recorded inside a sampled span
    _, data, spans, _, _ = _run(tiny_spec)
    root = next(s for s in spans if s.name == "train tiny")
    (point,) = [p for _, m, p in _points(data) if m.name == "ml.training.step.duration"]
    assert point.exemplars
    assert {e.trace_id for e in point.exemplars} == {root.context.trace_id}


def test_a_practice_case_leaves_length_recipe_and_seed_out_of_spans_logs_and_resource(tiny_spec):
    # `lab triage` runs a disguised spec (variant "case"): 600 planned steps, SGD or a seed
    # on a span or log would name the scenario in Jaeger or VictoriaLogs
    case = tiny_spec.model_copy(update={"name": "mystery", "variant": HIDDEN_VARIANT})
    result, data, spans, logs, _ = _run(case, seed=7)
    root = next(s for s in spans if s.name == "train mystery")
    leaks = {"lab.seed", "lab.planned_steps", "lab.dataset", "lab.optimizer", "lab.model.hidden"}
    assert not leaks & set(root.attributes) and not leaks & {k for lr in logs for k in lr.log_record.attributes}
    assert "lab.seed" not in root.resource.attributes
    assert all("lab.seed" not in rm.resource.attributes for rm in data.resource_metrics)
    bodies = " ".join(str(lr.log_record.body) for lr in logs)
    assert "planned" not in bodies and "seed" not in bodies
    # the same run undisguised does carry them: the test can fail
    _, _, spans, logs, _ = _run(tiny_spec, seed=7)
    assert leaks <= set(next(s for s in spans if s.name == "train tiny").attributes)
    assert any("steps planned" in str(lr.log_record.body) for lr in logs)
