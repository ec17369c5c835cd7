"""A private native stack for tests and dev tools: built, started on free ports, stopped.

    with private_native_stack() as stack:          # every component of scripts/native/components.tsv
        env = {**os.environ, **stack.otel_env()}
        subprocess.run([sys.executable, "-m", "lab", "run", "overfit", "--fast"], env=env, check=True)
        stack.wait_for_series('ml_training_loss{lab_scenario="overfit"}')

It runs scripts/native/up.sh in a temporary LAB_STATE_DIR on free ports (never the
defaults, so it cannot clash with a stack you run) and always scripts/native/down.sh
at the end. tests/conftest.py's ``native_stack`` fixture, the alert matrix and the
dashboard pictures all use it. Binaries come from scripts/native/build.sh (cached in
~/.cache/ml-obs-lab; a fresh machine builds them, which takes minutes).

``NativeStack`` exposes the endpoints (``otlp_grpc_endpoint``, ``otlp_http_endpoint``, the
redacting entry point's ``otlp_redacted_grpc_endpoint`` and ``otlp_redacted_http_endpoint``,
``prometheus_url``, ``alertmanager_url``, ``webhook_sink_url``, ``collector_health_url``,
``collector_metrics_url``), the ``ports`` mapping (``LAB_*_PORT`` names of ``.env``), the
``state_dir`` and ``collector_file_dir``, and helpers that poll with a timeout:
``poll``, ``query``, ``wait_for_series``, ``exported``, ``wait_for_exported``, ``sink_alerts``,
``wait_for_sink_alert``, and ``component_down`` (a real outage of one component). Every ``wait_*`` raises ``AssertionError`` with what it last saw.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.parser import text_string_to_metric_families

from lab.repo import ROOT, read_dotenv
from lab.stackproc import Component

NATIVE = ROOT / "scripts" / "native"


def read_components(path: Path = NATIVE / "components.tsv") -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The native component table, the one the scripts read too:
    (name, health port variable, health path, port variables)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, health_port, health_path, ports = line.split()
            rows.append((name, health_port, health_path, tuple(ports.split(","))))
    return rows


COMPONENTS = read_components()
# The host ports a native stack listens on (names of .env): all of them get free ports.
PORT_VARS = tuple(var for *_, ports in COMPONENTS for var in ports)
SIGNAL_KEYS = {  # file exporter JSON: top-level list key, scope list key, item list key
    "traces": ("resourceSpans", "scopeSpans", "spans"),
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
}


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StackError(RuntimeError):
    """A native build or start failed; the message is the tool's own last words."""


def build_native(*components: str) -> dict[str, Path]:
    """Build (or reuse) components with scripts/native/build.sh; return binary paths."""
    proc = subprocess.run([str(NATIVE / "build.sh"), "--print-paths", *components], capture_output=True, text=True)
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        raise StackError(f"native build failed: {message}")
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {name: Path(p) for name, p in paths.items()}


STACK_BUILD = ("otelcol", "prometheus", "alertmanager", "jaeger", "victorialogs")
# The natively built components behind each test fixture (tests/conftest.py), and the order a
# test session needs them in: none, then the rule tools, the native stack, Docker Compose.
FIXTURE_COMPONENTS = {
    "promtool": ("prometheus",), "pint": ("pint",), "compose_check": ("compose-check",),
    "native_bins": STACK_BUILD, "native_stack": STACK_BUILD, "engine": ("docker-compose",), "standins": STACK_BUILD,
}
BUILD_RANK = {"prometheus": 1, "pint": 1, "compose-check": 1,
              "otelcol": 2, "alertmanager": 2, "jaeger": 2, "victorialogs": 2, "docker-compose": 3}


def missing_native(*components: str) -> list[str]:
    """The components not yet built for their pinned versions and inputs (build.sh --missing)."""
    proc = subprocess.run([str(NATIVE / "build.sh"), "--missing", *components], capture_output=True, text=True)
    return proc.stdout.split() if proc.returncode == 0 else list(components)


def background_build(components: list[str]) -> subprocess.Popen:
    """Build components one after another, in the given order, at the lowest CPU priority.

    A session starts this before its first test: the builds use the CPU its tests leave idle,
    and build_native (for any one component) waits only for that component's build.
    Its own process group, so that killpg stops the go builds too.
    """
    return subprocess.Popen(["nice", "-n", "19", str(NATIVE / "build.sh"), "--sequential", *components],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def otlp_attrs(attributes: list[dict] | None) -> dict[str, Any]:
    """OTLP JSON attribute list -> plain dict ({"key": k, "value": {"stringValue": v}} -> {k: v})."""
    out: dict[str, Any] = {}
    for attr in attributes or []:
        value = attr.get("value", {})
        if not value:
            out[attr["key"]] = None
            continue
        kind, raw = next(iter(value.items()))
        if kind == "intValue":
            raw = int(raw)
        elif kind == "arrayValue":
            raw = [next(iter(v.values()), None) for v in raw.get("values", [])]
        elif kind == "kvlistValue":
            raw = otlp_attrs(raw.get("values"))
        out[attr["key"]] = raw
    return out


def otlp_gauge_request(name: str, label: str, n: int, time_unix_nano: int, service: str) -> bytes:
    """An OTLP metrics request (protobuf) of one gauge with n series (label=v000000...), for drills."""
    points = [NumberDataPoint(time_unix_nano=time_unix_nano, as_double=1.0,
                              attributes=[KeyValue(key=label, value=AnyValue(string_value=f"v{i:06d}"))])
              for i in range(n)]
    metric = Metric(name=name, unit="1", gauge=Gauge(data_points=points))
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    return ExportMetricsServiceRequest(resource_metrics=[
        ResourceMetrics(resource=resource, scope_metrics=[ScopeMetrics(metrics=[metric])])]).SerializeToString()


def poll(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call fn until it returns something truthy; AssertionError with the last result/error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (requests.RequestException, ValueError, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


@dataclass(frozen=True)
class NativeStack:
    """A running native stack: endpoints plus polling helpers (see the module docstring)."""

    state_dir: Path
    ports: Mapping[str, int]
    env: Mapping[str, str] = field(repr=False)

    def _url(self, var: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[var]}{path}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return self._url("LAB_OTLP_GRPC_PORT")

    @property
    def otlp_http_endpoint(self) -> str:
        return self._url("LAB_OTLP_HTTP_PORT")

    @property
    def otlp_redacted_grpc_endpoint(self) -> str:
        """The collector's redacting entry point (receiver otlp/redacted), OTLP/gRPC."""
        return self._url("LAB_OTLP_REDACTED_GRPC_PORT")

    @property
    def otlp_redacted_http_endpoint(self) -> str:
        return self._url("LAB_OTLP_REDACTED_HTTP_PORT")

    @property
    def prometheus_url(self) -> str:
        return self._url("LAB_PROMETHEUS_PORT")

    @property
    def alertmanager_url(self) -> str:
        return self._url("LAB_ALERTMANAGER_PORT")

    @property
    def webhook_sink_url(self) -> str:
        return self._url("LAB_WEBHOOK_SINK_PORT")

    @property
    def collector_health_url(self) -> str:
        return self._url("LAB_COLLECTOR_HEALTH_PORT", "/")

    @property
    def collector_metrics_url(self) -> str:
        return self._url("LAB_COLLECTOR_METRICS_PORT", "/metrics")

    @property
    def collector_file_dir(self) -> Path:
        return Path(self.env["LAB_COLLECTOR_FILE_DIR"])

    def otel_env(self) -> dict[str, str]:
        """Environment for a process that should export to this stack over OTLP/gRPC (a run whose
        spec sets collector_redaction sends to the redacting entry point instead)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_METRIC_EXPORT_INTERVAL": self.env["LAB_INTERVAL_MS"],
            "LAB_OTLP_REDACTED_ENDPOINT": self.otlp_redacted_grpc_endpoint,
        }

    def poll(self, what: str, fn: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
        """Call fn until it returns something truthy (AssertionError naming `what` after timeout)."""
        return poll(what, fn, timeout, interval)

    # --- Prometheus -------------------------------------------------------------------
    def query(self, promql: str) -> list[dict]:
        """Instant query; the result vector (list of {"metric": labels, "value": [t, v]})."""
        r = requests.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict]:
        """Range query; the result matrix (list of {"metric": labels, "values": [[t, v], ...]})."""
        r = requests.get(f"{self.prometheus_url}/api/v1/query_range", timeout=60,
                         params={"query": promql, "start": start, "end": end, "step": step})
        r.raise_for_status()
        return r.json()["data"]["result"]

    def wait_for_series(self, promql: str, timeout: float = 60) -> list[dict]:
        return poll(f"Prometheus series {promql}", lambda: self.query(promql), timeout)

    def collector_metrics(self) -> dict[str, float]:
        """The collector's own metrics (its Prometheus endpoint), summed over labels: {sample name: value}."""
        r = requests.get(self.collector_metrics_url, timeout=10)
        r.raise_for_status()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
        return out

    # --- collector file exporter --------------------------------------------------------
    def exported(self, signal: str) -> list[dict]:
        """Every span / log record / metric the file exporter wrote for `signal`
        ("traces", "logs", "metrics"), flattened: the item's own OTLP JSON fields plus
        "attributes" (dict), "resource" (dict of resource attributes) and "scope" (name)."""
        top, scope_key, item_key = SIGNAL_KEYS[signal]
        items: list[dict] = []
        files = sorted(self.collector_file_dir.glob(f"{signal}*.jsonl"))
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                except ValueError:  # a line being written right now
                    continue
                for res in request.get(top, []):
                    resource = otlp_attrs(res.get("resource", {}).get("attributes"))
                    for scope in res.get(scope_key, []):
                        for item in scope.get(item_key, []):
                            items.append(
                                {
                                    **item,
                                    "attributes": otlp_attrs(item.get("attributes")),
                                    "resource": resource,
                                    "scope": scope.get("scope", {}).get("name"),
                                }
                            )
        return items

    def wait_for_exported(self, signal: str, predicate: Callable[[dict], bool], timeout: float = 30) -> list[dict]:
        """Items of `signal` matching `predicate`, once at least one has been written."""
        return poll(
            f"{signal} matching {predicate} in {self.collector_file_dir}",
            lambda: [item for item in self.exported(signal) if predicate(item)],
            timeout,
        )

    # --- faults -------------------------------------------------------------------------
    @contextmanager
    def component_down(self, name: str, kill_signal: int = signal.SIGKILL) -> Iterator[float]:
        """Stop one component (SIGKILL by default: a crash, nothing flushed) and start it again,
        with the same command line, environment and directory, when the block ends; yields the
        moment it went down. The new pid goes to run/<name>.pid, so down.sh still stops it."""
        component = Component.find(self.state_dir, name)
        if not component.stop(kill_signal):
            raise AssertionError(f"{name} (pid {component.pid}) did not exit after signal {kill_signal}")
        try:
            yield time.time()
        finally:
            component.start()
            health = next((self._url(port, path) for n, port, path, _ in COMPONENTS if n == name), None)
            if health:
                poll(f"{name} healthy again at {health}", lambda: http_ok(health), 60)

    # --- webhook sink -------------------------------------------------------------------
    def sink_alerts(self, alertname: str | None = None) -> list[dict]:
        """Notifications the webhook sink received (optionally only those naming `alertname`)."""
        params = {"alertname": alertname} if alertname else None
        r = requests.get(f"{self.webhook_sink_url}/alerts", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_for_sink_alert(self, alertname: str, timeout: float = 60) -> list[dict]:
        return poll(f"alert {alertname} at the webhook sink", lambda: self.sink_alerts(alertname), timeout)

    def firing_sink_alerts(self) -> list[tuple[float, dict]]:
        """(received_at epoch seconds, alert) for every firing alert of every notification."""
        out = []
        for rec in self.sink_alerts():
            t = datetime.fromisoformat(rec["received_at"]).timestamp()
            out += [(t, a) for a in rec.get("payload", {}).get("alerts", []) if a.get("status") == "firing"]
        return out

    def prometheus_alerts(self) -> list[dict]:
        """Prometheus's /api/v1/alerts: every pending and firing alert now."""
        r = requests.get(f"{self.prometheus_url}/api/v1/alerts", timeout=10)
        r.raise_for_status()
        return r.json()["data"]["alerts"]

    def firing_alerts(self, alertname: str, **labels: str) -> list[dict]:
        """The alerts named `alertname` firing in Prometheus now, with these labels."""
        return [a for a in self.prometheus_alerts()
                if a["labels"]["alertname"] == alertname and a["state"] == "firing"
                and all(a["labels"].get(k) == v for k, v in labels.items())]


@contextmanager
def private_native_stack(state_dir: Path | None = None, settings: Mapping[str, str] | None = None) -> Iterator[NativeStack]:
    """Build if needed, start on free ports, yield the stack, always stop it (also on failure).

    settings: environment the components read beyond ports and paths (e.g. the collector's
    LAB_COLLECTOR_MEMORY_LIMIT_MIB), for drills that need a stack of their own."""
    build_native(*STACK_BUILD)
    with tempfile.TemporaryDirectory(prefix="lab-stack-") as tmp:
        state = Path(state_dir or tmp)
        ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS))))
        env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "LAB_STATE_DIR": str(state),
               "LAB_COLLECTOR_FILE_DIR": str(state / "otelcol"), **(settings or {})}
        try:
            proc = subprocess.run([str(NATIVE / "up.sh")], env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith(("up.sh", "lab", "build.sh"))]
                raise StackError("native stack did not start: " + (" | ".join(lines[-3:]) or proc.stderr[-2000:]))
            yield NativeStack(state_dir=state, ports=ports, env={**read_dotenv(), **env})
        finally:
            subprocess.run([str(NATIVE / "down.sh")], env=env, capture_output=True, text=True, timeout=120)
