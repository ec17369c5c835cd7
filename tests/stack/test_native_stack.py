"""The native stack works end to end: OTLP in, Prometheus series, files, alerts out.

    .venv/bin/python -m pytest tests/stack/test_native_stack.py

Uses the session-scoped `native_stack` fixture (tests/conftest.py): a stack on free
ports in a temporary LAB_STATE_DIR, built if needed and always stopped at the end.
Telemetry is sent with the real Python SDK and OTLP/gRPC exporters, with the resource
attributes the lab uses, and every check polls with a timeout.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from lab.stackproc import proc_start

pytestmark = pytest.mark.stack

RUN_ID = uuid.uuid4().hex
SCENARIO = "stack-selftest"
INSTANCE = f"testhost:{SCENARIO}:fault"
JOB = "ml-lab/ml-lab-trainer"


def lab_resource() -> Resource:
    """The resource attributes the lab's trainer sets (docs/stack.md)."""
    return Resource.create(
        {
            "service.namespace": "ml-lab",
            "service.name": "ml-lab-trainer",
            "service.instance.id": INSTANCE,
            "lab.scenario": SCENARIO,
            "lab.variant": "fault",
            "lab.run.id": RUN_ID,
            "lab.seed": 7,
        }
    )


@pytest.fixture(scope="module")
def sent(native_stack):
    """Send one of each signal to the stack's collector and flush; returns the ids."""
    endpoint = native_stack.otlp_grpc_endpoint
    resource = lab_resource()

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    # Long interval: the test flushes explicitly, once, after recording everything.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))

    tracer = tracer_provider.get_tracer("lab.stack.selftest")
    meter = meter_provider.get_meter("lab.stack.selftest")
    logger = logger_provider.get_logger("lab.stack.selftest")

    # The naming examples of docs/stack.md, one per rule.
    loss = meter.create_gauge("ml.training.loss", description="training loss (no unit)")
    accuracy = meter.create_gauge("ml.eval.accuracy", unit="1", description="accuracy, a ratio")
    steps = meter.create_counter("ml.training.steps", unit="{step}", description="optimizer steps")
    step_time = meter.create_histogram("ml.training.step.duration", unit="s", description="time per step")

    with tracer.start_as_current_span("selftest.train_step", attributes={"lab.step": 3}) as span:
        ctx = span.get_span_context()
        loss.set(0.25)
        accuracy.set(0.875)
        steps.add(3)
        step_time.record(0.042)  # inside the span: carries an exemplar with its trace id
        logger.emit(
            body="selftest log record",
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"lab.step": 3, "lab.event": "selftest"},
        )

    assert meter_provider.force_flush(timeout_millis=10_000)
    assert tracer_provider.force_flush(timeout_millis=10_000)
    assert logger_provider.force_flush(timeout_millis=10_000)
    yield {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
    meter_provider.shutdown()
    tracer_provider.shutdown()
    logger_provider.shutdown()


def test_all_components_are_healthy(native_stack):
    for url in (
        native_stack.collector_health_url,
        f"{native_stack.prometheus_url}/-/ready",
        f"{native_stack.alertmanager_url}/-/ready",
        f"{native_stack.webhook_sink_url}/healthz",
    ):
        assert requests.get(url, timeout=5).status_code == 200, url


def test_stack_uses_the_requested_ports_and_state_dir(native_stack):
    stack_env = (native_stack.state_dir / "stack.env").read_text()
    assert f"LAB_PROMETHEUS_URL={native_stack.prometheus_url}\n" in stack_env
    for name in ("otel-collector", "prometheus", "alertmanager", "webhook-sink"):
        pid, start = (native_stack.state_dir / "run" / f"{name}.pid").read_text().split("\n")[:2]
        assert start == proc_start(int(pid))  # boot ticks, not the wall clock (tests/test_pidfiles.py)
        assert (native_stack.state_dir / "logs" / f"{name}.log").exists()


def test_prometheus_runs_the_pinned_version_with_otlp_and_exemplars(native_stack, lab_env):
    base = native_stack.prometheus_url
    build = requests.get(f"{base}/api/v1/status/buildinfo", timeout=5).json()["data"]
    assert build["version"] == lab_env["LAB_PROMETHEUS_VERSION"]
    flags = requests.get(f"{base}/api/v1/status/flags", timeout=5).json()["data"]
    assert flags["web.enable-otlp-receiver"] == "true"
    assert "exemplar-storage" in flags["enable-feature"]


def test_prometheus_scrapes_collector_itself_and_alertmanager(native_stack):
    def targets():
        data = requests.get(f"{native_stack.prometheus_url}/api/v1/targets", timeout=5).json()["data"]
        up = {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}
        return up if up == {"otel-collector": "up", "prometheus": "up", "alertmanager": "up"} else None

    native_stack.poll("three scrape targets up", targets, timeout=30)
    am = requests.get(f"{native_stack.prometheus_url}/api/v1/alertmanagers", timeout=5).json()["data"]
    assert [a["url"] for a in am["activeAlertmanagers"]] == [f"{native_stack.alertmanager_url}/api/v2/alerts"]
    # The collector's own telemetry is there under its otelcol_ names (the collector's
    # internal Prometheus exporter adds no unit suffixes).
    assert native_stack.wait_for_series('otelcol_process_uptime{job="otel-collector"}', timeout=30)


def test_metric_arrives_with_job_instance_and_promoted_labels(native_stack, sent):
    (series,) = native_stack.wait_for_series(f'ml_training_loss{{lab_scenario="{SCENARIO}"}}')
    labels = series["metric"]
    assert labels["job"] == JOB
    assert labels["instance"] == INSTANCE
    assert labels["lab_scenario"] == SCENARIO
    assert labels["lab_variant"] == "fault"
    assert float(series["value"][1]) == 0.25
    # lab.run.id and lab.seed stay off the series (a new run must not mean new series).
    assert "lab_run_id" not in labels and "lab_seed" not in labels
    # Only target_info has it (promoted attributes appear on target_info too).
    carriers = native_stack.query(f'{{lab_run_id!="", lab_scenario="{SCENARIO}"}}')
    assert {s["metric"]["__name__"] for s in carriers} == {"target_info"}


def test_target_info_carries_the_run_id(native_stack, sent):
    (info,) = native_stack.wait_for_series(f'target_info{{job="{JOB}", instance="{INSTANCE}"}}')
    assert info["metric"]["lab_run_id"] == RUN_ID
    assert info["metric"]["lab_seed"] == "7"


@pytest.mark.parametrize(
    "promql, value",
    [
        ("ml_training_loss", 0.25),  # gauge, no unit: no suffix
        ("ml_eval_accuracy_ratio", 0.875),  # gauge, unit "1": _ratio
        ("ml_training_steps_total", 3),  # monotonic counter, unit {step} dropped: _total
        ("ml_training_step_duration_seconds_count", 1),  # histogram, unit s: _seconds
    ],
)
def test_otlp_to_prometheus_naming(native_stack, sent, promql, value):
    (series,) = native_stack.wait_for_series(f'{promql}{{lab_scenario="{SCENARIO}"}}')
    assert float(series["value"][1]) == value


def test_histogram_exemplar_links_to_the_trace(native_stack, sent):
    def exemplars():
        now = datetime.now(timezone.utc)
        r = requests.get(
            f"{native_stack.prometheus_url}/api/v1/query_exemplars",
            params={
                "query": f'ml_training_step_duration_seconds_bucket{{lab_scenario="{SCENARIO}"}}',
                "start": (now - timedelta(minutes=10)).isoformat(),
                "end": (now + timedelta(minutes=1)).isoformat(),
            },
            timeout=5,
        )
        return [e for s in r.json()["data"] for e in s["exemplars"]]

    (exemplar,) = native_stack.poll("an exemplar", exemplars, timeout=30)
    assert exemplar["labels"]["trace_id"] == sent["trace_id"]
    assert exemplar["labels"]["span_id"] == sent["span_id"]


def test_span_reaches_the_file_exporter(native_stack, sent):
    (span,) = native_stack.wait_for_exported("traces", lambda s: s["traceId"] == sent["trace_id"])
    assert span["name"] == "selftest.train_step"
    assert span["spanId"] == sent["span_id"]
    assert span["attributes"]["lab.step"] == 3
    assert span["resource"]["lab.run.id"] == RUN_ID
    assert span["resource"]["service.instance.id"] == INSTANCE


def test_log_record_reaches_the_file_exporter_with_trace_context(native_stack, sent):
    (record,) = native_stack.wait_for_exported("logs", lambda r: r["resource"].get("lab.run.id") == RUN_ID)
    assert record["body"] == {"stringValue": "selftest log record"}
    assert record["severityText"] == "WARN"
    assert record["attributes"] == {"lab.step": 3, "lab.event": "selftest"}
    assert record["traceId"] == sent["trace_id"]
    assert record["resource"]["lab.scenario"] == SCENARIO


def test_metrics_reach_the_file_exporter_too(native_stack, sent):
    names = {m["name"] for m in native_stack.wait_for_exported("metrics", lambda m: m["resource"].get("lab.run.id") == RUN_ID)}
    assert {"ml.training.loss", "ml.eval.accuracy", "ml.training.steps", "ml.training.step.duration"} <= names


def test_alert_posted_to_alertmanager_reaches_the_sink(native_stack):
    name = f"StackSelfTest{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    alert = {
        "labels": {"alertname": name, "severity": "info", "lab_scenario": SCENARIO},
        "annotations": {"summary": "posted by tests/stack/test_native_stack.py"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }
    r = requests.post(f"{native_stack.alertmanager_url}/api/v2/alerts", json=[alert], timeout=5)
    assert r.status_code == 200, r.text
    (notification, *_) = native_stack.wait_for_sink_alert(name, timeout=60)
    payload = notification["payload"]
    assert payload["receiver"] == "webhook-sink"
    assert payload["status"] == "firing"
    assert [a["labels"]["alertname"] for a in payload["alerts"]] == [name]
    assert payload["commonLabels"]["lab_scenario"] == SCENARIO


def test_watchdog_goes_prometheus_to_alertmanager_to_sink(native_stack):
    (notification, *_) = native_stack.wait_for_sink_alert("MLLabWatchdog", timeout=60)
    assert notification["payload"]["alerts"][0]["labels"]["severity"] == "none"
