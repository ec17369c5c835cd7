"""Every scenario as a hidden practice case: nothing in its telemetry names it, and the
answer key in its scenario file matches the failure the run really shows."""

import io
import re

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lab.practice import triage as t
from lab.specs.loader import known_scenarios, load_scenario

# What each diagnosis means in the lab's failure signatures (lab/training/signatures.py).
SIGNATURE_OF = {"overfitting": "overfitting", "stalled": "stalled", "diverged": "diverged",
                "loss-spike": "loss_spike", "dead-neurons": "dead_units", "healthy": None,
                # serving (lab/serving/signatures.py)
                "input-drift": "input_drift", "concept-drift": "accuracy_degraded", "latency-regression": "latency_slo",
                "missing-input": "error_rate",
                # the support bot (lab/generative/signatures.py)
                "new-topic": "quality_slo", "runaway-generation": "runaway_generation", "prompt-bloat": "prompt_bloat",
                "cardinality-explosion": "series_growth", "pii-in-telemetry": "pii_in_telemetry"}


class CapturingReader(InMemoryMetricReader):
    """Keeps the last collection: the run shuts its meter provider down before we can read."""

    final = None

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self.final = self.get_metrics_data()
        super().shutdown(timeout_millis=timeout_millis, **kwargs)


def _labels(metrics, spans):
    """Everything that becomes a Prometheus label or a trace's resource: must be neutral."""
    for rm in metrics.resource_metrics:
        yield from (str(v) for v in rm.resource.attributes.values())
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    yield from (str(v) for v in p.attributes.values())
    for s in spans:
        yield s.name
        yield from (str(v) for v in s.resource.attributes.values())


def _texts(spans, logs):
    """Span attributes and events, log bodies and attributes: what the run observed."""
    for s in spans:
        yield from (str(v) for v in (s.attributes or {}).values())
        for e in s.events:
            yield e.name
            yield from (str(v) for v in (e.attributes or {}).values())
    for lg in logs:
        yield str(lg.log_record.body)
        yield from (str(v) for v in (lg.log_record.attributes or {}).values())


# The training loop's own detectors name what they saw ("diverged: 20 consecutive non-finite
# steps"), as a real trainer's logs would: an observation, not the answer key.
DETECTOR_EVENTS = {"nonfinite", "diverged", "early_stop", "lr_change", "checkpoint", "run_start", "run_end"}


def _names(token: str, text: str) -> bool:
    """token as a whole name in text ("drift" in "input drift", not in "drift_check" or "drifted")."""
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text, re.IGNORECASE) is not None


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))


@pytest.mark.parametrize("name", known_scenarios())
def test_hidden_case_names_nothing_and_shows_its_diagnosis(name):
    spec = load_scenario(name)
    case = t.Case(case_id="c0ffee", seed=0, scenario=name, diagnosis=spec.story.diagnosis, run_seed=0)
    t.save(case)
    reader, spans, logs = CapturingReader(), InMemorySpanExporter(), InMemoryLogRecordExporter()
    console = io.StringIO()
    t.run_case(case, fast=True, telemetry="off", live=False, console_stream=console,
               telemetry_kwargs={"metric_readers": [reader], "span_exporters": [spans], "log_exporters": [logs]})
    labels = list(_labels(reader.final, spans.get_finished_spans()))
    texts = list(_texts(spans.get_finished_spans(), logs.get_finished_logs()))
    assert "mystery" in labels and "case" in labels and texts
    forbidden = {name, spec.title, spec.story.diagnosis, *spec.alerts} - {""}
    leaks = [v for v in labels for f in forbidden if _names(f, v)]
    assert not leaks, f"{name}: labels reveal the case: {leaks[:5]}"
    leaks = [v for v in texts for f in forbidden - DETECTOR_EVENTS if _names(f, v)]
    assert not leaks, f"{name}: spans or logs reveal the case: {leaks[:5]}"
    # nor the terminal: no title, no diagnosis, no injected ground truth, no closing summary
    shown = console.getvalue()
    assert "mystery (case)" in shown
    for f in {spec.title, "true shift", "signature"} | ({spec.story.diagnosis} - DETECTOR_EVENTS - {"healthy"}):
        assert not _names(f, shown), f"{name}: the terminal shows {f!r}"
    # the answer key agrees with what the run showed
    reached = set(t.load_current().first_signals)
    wanted = SIGNATURE_OF[spec.story.diagnosis]
    if wanted is None:
        assert reached == set(), f"{name}: a healthy case showed {reached}"
    else:
        assert wanted in reached, f"{name}: diagnosis {spec.story.diagnosis} but the run showed {reached}"


def test_a_run_that_does_not_stream_cannot_lose_its_pipeline():
    case = t.Case(case_id="0ff1ce", seed=0, scenario="stalled", diagnosis="stalled", run_seed=0,
                  confounder="export-outage", outage=t.OUTAGE_WINDOW)
    t.save(case)
    t.run_case(case, fast=True, telemetry="off", quiet=True, overrides=["train.epochs=1"])
    assert case.outage_began_at is None and case.truth == {"stalled"}
