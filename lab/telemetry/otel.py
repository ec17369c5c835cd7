"""OpenTelemetry setup: metrics, traces and logs over OTLP, in one place.

Endpoint and protocol come from the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_PROTOCOL, per-signal variants); the `lab` command sets the pair from
.lab/stack.env, where `make up` records the stack it started, when the environment sets
neither (lab/cli.py, lab.repo.stack_env_defaults); without either the default is OTLP/HTTP
on localhost:4318. A run whose spec sets `collector_redaction` (the support bot's PII fix) sends
to the collector's redacting entry point instead (`otlp_redacted_endpoint`: $LAB_OTLP_REDACTED_ENDPOINT,
which the stack helpers set, else the same host on .env's LAB_OTLP_REDACTED_*_PORT; receiver
otlp/redacted in otel-collector/config.yaml). The metric export interval defaults to the lab interval (5 s),
the same value Prometheus uses for scraping and rule evaluation (see .env).

Providers are created per run and never installed globally, so importing or
calling this module in tests has no lasting side effects.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

import lab
from lab.repo import read_dotenv
from lab.specs.base import HIDDEN_VARIANT
from lab.telemetry.retry import CollectorProbe, RetryBuffers
from lab.telemetry.wrapped import WrappedLogs, WrappedMetrics, WrappedSpans

# One interval for the whole lab: SDK export, Prometheus scrape and rule evaluation.
# Keep in sync with LAB_INTERVAL in .env (tests/telemetry/test_otel.py checks it).
LAB_INTERVAL_SECONDS = 5
SERVICE_NAMESPACE = "ml-lab"
TRAINER_SERVICE = "ml-lab-trainer"
INFERENCE_SERVICE = "ml-lab-inference"  # inference scenarios (lab/serving)
GENERATIVE_SERVICE = "ml-lab-generative"  # generative scenarios (lab/generative)
# The SDK loggers whose export errors are counted instead of printed.
_SDK_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk", "opentelemetry.sdk.metrics._internal.export",
                "opentelemetry.sdk._shared_internal")
# Short export timeout: a missing collector must not stall the end of a run.
DEFAULT_EXPORT_TIMEOUT_S = 3


def default_instance(scenario: str, variant: str) -> str:
    """service.instance.id of a run: stable across runs of the same scenario/variant on one host,
    so repeated runs continue the same series instead of creating new ones. A run session holds
    it as an instance slot (lab/telemetry/slots.py): a concurrent run gets `<this>:2`."""
    return f"{socket.gethostname()}:{scenario}:{variant}"


@dataclass(frozen=True)
class RunIdentity:
    scenario: str
    variant: str = "fault"
    seed: int = 0
    service_name: str = TRAINER_SERVICE
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6])
    # Override of service.instance.id, for tools that keep runs apart (lab/dev/alert_matrix.py).
    instance: str | None = None

    @property
    def instance_id(self) -> str:
        return self.instance or default_instance(self.scenario, self.variant)

    def resource(self) -> Resource:
        attrs = {
            "service.namespace": SERVICE_NAMESPACE,
            "service.name": self.service_name,
            "service.instance.id": self.instance_id,
            "service.version": lab.__version__,
            "lab.scenario": self.scenario,
            "lab.variant": self.variant,
            "lab.run.id": self.run_id,
        }
        if self.variant != HIDDEN_VARIANT:  # a practice case's seed is not shown anywhere
            attrs["lab.seed"] = self.seed
        return Resource.create(attrs)


def otlp_protocol() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"


def otlp_endpoint() -> str:
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if explicit:
        return explicit
    return "http://localhost:4317" if otlp_protocol() == "grpc" else "http://localhost:4318"


REDACTED_ENDPOINT_VAR = "LAB_OTLP_REDACTED_ENDPOINT"


def otlp_redacted_endpoint() -> str:
    """The collector's redacting OTLP entry point (receiver otlp/redacted: personal data masked before
    any backend) for the protocol in use: $LAB_OTLP_REDACTED_ENDPOINT, else the OTLP endpoint's host on
    LAB_OTLP_REDACTED_GRPC_PORT / LAB_OTLP_REDACTED_HTTP_PORT (environment, else .env)."""
    explicit = os.environ.get(REDACTED_ENDPOINT_VAR)
    if explicit:
        return explicit
    var = "LAB_OTLP_REDACTED_GRPC_PORT" if otlp_protocol() == "grpc" else "LAB_OTLP_REDACTED_HTTP_PORT"
    port = os.environ.get(var) or read_dotenv()[var]
    plain = otlp_endpoint()
    plain = urlparse(plain if "://" in plain else f"http://{plain}")
    return f"{plain.scheme or 'http'}://{plain.hostname or '127.0.0.1'}:{port}"


def run_endpoint(spec) -> str | None:
    """Where a run sends its telemetry when not where the OTLP variables say: the redacting entry
    point if its spec sets collector_redaction (the support bot's fix for personal data in
    telemetry), else None."""
    return otlp_redacted_endpoint() if getattr(spec, "collector_redaction", False) else None


def export_interval_ms() -> int:
    raw = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL")
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"OTEL_METRIC_EXPORT_INTERVAL={raw!r}: expected milliseconds as an integer") from None
        if value <= 0:
            raise ValueError(f"OTEL_METRIC_EXPORT_INTERVAL={raw!r}: must be positive")
        return value
    return LAB_INTERVAL_SECONDS * 1000


def collector_reachable(endpoint: str | None = None, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at the OTLP endpoint."""
    url = urlparse(endpoint or otlp_endpoint())
    host = url.hostname or "localhost"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def collector_probe(endpoint: str | None = None) -> CollectorProbe:
    """A probe of the OTLP endpoint, asked at most once per export interval (auto mode, no collector yet)."""
    endpoint = endpoint or otlp_endpoint()
    return CollectorProbe(lambda: collector_reachable(endpoint), export_interval_ms() / 1000)


def streams(telemetry: str, endpoint: str | None = None) -> bool:
    """Whether a run streams over OTLP: telemetry "on" always, "auto" if a collector answers, "off" never."""
    return telemetry == "on" or (telemetry == "auto" and collector_reachable(endpoint))


class ExportFailureCounter(logging.Handler):
    """Counts the SDK's export errors instead of letting them print stack traces."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage().splitlines()[0][:200]


class DeliveryCounter:
    """Counts the OTLP exports that reached the collector and those that did not.

    The SDK's error log (ExportFailureCounter) says that something failed; only the export
    results tell "some exports failed" from "nothing was delivered" (`lab run --telemetry on`
    then exits 3). Thread-safe: readers and processors export from their own threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def count(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.delivered += 1
            else:
                self.failed += 1

    def wrap(self, metric: MetricExporter, span: SpanExporter, log: LogRecordExporter):
        return WrappedMetrics(metric, self._around), WrappedSpans(span, self._around), WrappedLogs(log, self._around)

    def _around(self, batch, send) -> bool:
        ok = send(batch)
        self.count(ok)
        return ok


def _otlp_exporters(endpoint: str | None = None):
    """endpoint: send every signal there (base URL) instead of where the OTLP variables say."""
    timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", DEFAULT_EXPORT_TIMEOUT_S))
    if otlp_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        urls = (endpoint,) * 3
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        # An HTTP exporter's endpoint argument is the signal's full URL.
        urls = tuple(endpoint and f"{endpoint.rstrip('/')}/v1/{signal}" for signal in ("metrics", "traces", "logs"))
    return (OTLPMetricExporter(endpoint=urls[0], timeout=timeout), OTLPSpanExporter(endpoint=urls[1], timeout=timeout),
            OTLPLogExporter(endpoint=urls[2], timeout=timeout))


class Telemetry:
    """Meter, tracer and logger for one run, plus their shutdown."""

    def __init__(
        self,
        identity: RunIdentity,
        *,
        otlp: bool,
        metric_readers: list[MetricReader] = (),
        span_exporters: list[SpanExporter] = (),
        log_exporters: list[LogRecordExporter] = (),
        sampler: Sampler | None = None,
        export_gate=None,
        probe: CollectorProbe | None = None,
        endpoint: str | None = None,
        views: list[View] = (),
    ) -> None:
        """export_gate: a lab.telemetry.outage.ExportGate that can cut the OTLP exporters off (practice mode).
        probe: hold every OTLP batch until this probe finds a collector (auto mode without one at the start).
        endpoint: the OTLP endpoint (base URL) of every signal, instead of the OTLP variables' (run_endpoint).
        views: the meter provider's SDK views (a family's fix may drop a metric attribute with one)."""
        self.identity = identity
        self.otlp = otlp
        self.started_at = time.time()
        self.export_errors = ExportFailureCounter()
        self.delivery = DeliveryCounter()  # OTLP exports only (not the in-memory readers of tests and recordings)
        self.buffers = RetryBuffers(export_interval_ms(), probe)  # what an outage would cost, sent late
        readers = list(metric_readers)
        spans = list(span_exporters)
        logs = list(log_exporters)
        if otlp:
            self._capture_sdk_errors()
            m, s, lg = self.buffers.wrap(*_otlp_exporters(endpoint))
            # The practice gate sits outside the buffers: its outage is data the run lost.
            if export_gate is not None:
                m, s, lg = export_gate.wrap(m, s, lg)
            m, s, lg = self.delivery.wrap(m, s, lg)  # outside the gate: a dropped batch was not delivered
            readers.append(PeriodicExportingMetricReader(m, export_interval_millis=export_interval_ms()))
            spans.append(s)
            logs.append(lg)
        resource = identity.resource()
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=list(views))
        self.tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        for exp in spans:
            self.tracer_provider.add_span_processor(BatchSpanProcessor(exp, schedule_delay_millis=1000))
        self.logger_provider = LoggerProvider(resource=resource)
        for exp in logs:
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(exp, schedule_delay_millis=1000))
        self.meter = self.meter_provider.get_meter("lab", lab.__version__)
        self.tracer = self.tracer_provider.get_tracer("lab", lab.__version__)
        self.logger = self.logger_provider.get_logger("lab", lab.__version__)

    def _capture_sdk_errors(self) -> None:
        # The exporters log connection failures with tracebacks; a down collector
        # must not flood the trainee's terminal, so count them and report once.
        for name in _SDK_LOGGERS:
            lg = logging.getLogger(name)
            lg.addHandler(self.export_errors)
            lg.propagate = False

    def shutdown(self) -> None:
        # Order: traces and logs first (short), metrics last so its final collection
        # carries the end-of-run values.
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=10_000)
        for name in _SDK_LOGGERS:
            logging.getLogger(name).removeHandler(self.export_errors)
