"""Shared fixtures for tests that need the observability stack's binaries or a live stack.

    .venv/bin/python -m pytest tests/stack

Fixtures (all session-scoped, so a session builds and starts things at most once):

- ``lab_env``: the KEY=VALUE pairs of the repository's ``.env`` (versions, ports, interval).
- ``native_bins``: ``{"otelcol": Path, "prometheus": Path, "promtool": Path,
  "alertmanager": Path, "amtool": Path, "jaeger": Path, "victorialogs": Path}``, the pinned
  binaries built from Go modules (in parallel) by
  ``scripts/native/build.sh`` (cached under ``~/.cache/ml-obs-lab``; a fresh machine
  builds them, which takes minutes). A failed build fails the test with the build's
  one-line message (component + log file); nothing is skipped.
- ``native_components``: the rows of ``scripts/native/components.tsv``; ``stack_view``: the
  ``NativeStack`` class, for a stack started elsewhere (tests/stack/test_compose_stack.py).
- ``compose_check``: path of ``compose-check`` (scripts/compose-check/), which validates
  ``docker-compose.yml`` like ``docker compose config`` without Docker; built like the above.
- ``native_stack``: a running native stack (collector, Prometheus, Alertmanager, Jaeger,
  VictoriaLogs, webhook sink: scripts/native/components.tsv) started by ``scripts/native/up.sh`` in a temporary ``LAB_STATE_DIR`` on free
  ports (never the defaults, so it cannot clash with a stack you run), always stopped by
  ``scripts/native/down.sh`` at the end of the session. Returns a ``NativeStack``.

Using ``native_stack`` in an end-to-end test::

    def test_overfit_reaches_prometheus(native_stack):
        env = {**os.environ, **native_stack.otel_env()}
        subprocess.run([sys.executable, "-m", "lab", "run", "overfit"], env=env, check=True)
        series = native_stack.wait_for_series('ml_training_loss{lab_scenario="overfit"}')
        spans = native_stack.wait_for_exported("traces", lambda s: s["name"] == "train")

The object exposes the endpoints (``otlp_grpc_endpoint``, ``otlp_http_endpoint``,
``prometheus_url``, ``alertmanager_url``, ``webhook_sink_url``, ``collector_health_url``,
``collector_metrics_url``, ``jaeger_url``, ``victorialogs_url``), the ``ports`` mapping
(``LAB_*_PORT`` names of ``.env``), the ``state_dir`` and ``collector_file_dir``, and helpers
that poll with a timeout: ``poll``, ``query``, ``wait_for_series``, ``exported``,
``wait_for_exported``, ``sink_alerts``, ``wait_for_sink_alert``, ``jaeger_trace`` /
``wait_for_trace`` (Jaeger's query API) and ``logsql`` / ``wait_for_logs`` (VictoriaLogs'
LogsQL API). Every ``wait_*`` raises ``AssertionError`` with what it last saw.
The compose stack of tests/stack/test_compose_stack.py is driven through the same class.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.telemetry import free_ports

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "scripts" / "native"


def read_components(path: Path = NATIVE / "components.tsv") -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The native component table: (name, health port variable, health path, port variables)."""
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, health_port, health_path, ports = line.split()
        rows.append((name, health_port, health_path, tuple(ports.split(","))))
    return rows


COMPONENTS = read_components()
PORT_VARS = tuple(var for *_, ports in COMPONENTS for var in ports)
SIGNAL_KEYS = {  # file exporter JSON: top-level list key, scope list key, item list key
    "traces": ("resourceSpans", "scopeSpans", "spans"),
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
}


def read_dotenv(path: Path = ROOT / ".env") -> dict[str, str]:
    """Parse .env the way scripts/native/lib.sh does: KEY=VALUE lines, # comments."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def build_native(*components: str) -> dict[str, Path]:
    """Build (or reuse) components with scripts/native/build.sh; return binary paths."""
    proc = subprocess.run(
        [str(NATIVE / "build.sh"), "--print-paths", *components],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        pytest.fail(f"native build failed: {message}", pytrace=False)
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {name: Path(p) for name, p in paths.items()}


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
    def jaeger_url(self) -> str:
        return self._url("LAB_JAEGER_UI_PORT")

    @property
    def victorialogs_url(self) -> str:
        return self._url("LAB_VICTORIALOGS_PORT")

    @property
    def collector_file_dir(self) -> Path:
        return Path(self.env["LAB_COLLECTOR_FILE_DIR"])

    def otel_env(self) -> dict[str, str]:
        """Environment for a process that should export to this stack over OTLP/gRPC."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_METRIC_EXPORT_INTERVAL": self.env["LAB_INTERVAL_MS"],
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

    def wait_for_series(self, promql: str, timeout: float = 60) -> list[dict]:
        return poll(f"Prometheus series {promql}", lambda: self.query(promql), timeout)

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

    # --- Jaeger -------------------------------------------------------------------------
    def jaeger_trace(self, trace_id: str, api: str = "v3") -> list[dict]:
        """The spans of one trace from Jaeger's query API, flattened: "name", "traceID", "spanID",
        "parentSpanID" (or None), "attributes", "status" ("UNSET"/"OK"/"ERROR"), "service" (its
        service.name) and "process" (its resource attributes). [] while Jaeger does not know it.
        api="v3": GET /api/v3/traces/<id> (OTLP JSON, Jaeger's current API); api="v1":
        GET /api/traces/<id>, the one Grafana's Jaeger datasource reads."""
        url = f"{self.jaeger_url}/api/v3/traces/{trace_id}" if api == "v3" else f"{self.jaeger_url}/api/traces/{trace_id}"
        r = requests.get(url, timeout=10)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        spans = []
        if api == "v3":
            for rs in r.json().get("result", {}).get("resourceSpans", []):
                resource = otlp_attrs(rs.get("resource", {}).get("attributes"))
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        code = span.get("status", {}).get("code", 0)
                        spans.append({
                            "name": span["name"], "traceID": span["traceId"], "spanID": span["spanId"],
                            "parentSpanID": span.get("parentSpanId") or None,
                            "attributes": otlp_attrs(span.get("attributes")),
                            "status": {0: "UNSET", 1: "OK", 2: "ERROR"}.get(code, str(code)).replace("STATUS_CODE_", ""),
                            "service": resource.get("service.name"), "process": resource,
                        })
            return spans
        for trace in r.json().get("data") or []:
            processes = trace.get("processes", {})
            for span in trace.get("spans", []):
                parents = [ref["spanID"] for ref in span.get("references", []) if ref.get("refType") == "CHILD_OF"]
                tags = {t["key"]: t["value"] for t in span.get("tags", [])}
                process = processes.get(span.get("processID"), {})
                spans.append({
                    "name": span["operationName"], "traceID": span["traceID"], "spanID": span["spanID"],
                    "parentSpanID": parents[0] if parents else None, "attributes": tags,
                    "status": tags.get("otel.status_code", "UNSET"),
                    "service": process.get("serviceName"),
                    "process": {t["key"]: t["value"] for t in process.get("tags", [])},
                })
        return spans

    def wait_for_trace(self, trace_id: str, predicate: Callable[[list[dict]], bool] = bool, timeout: float = 60,
                       api: str = "v3") -> list[dict]:
        """The trace's spans once `predicate(spans)` holds (e.g. all expected spans arrived)."""
        return poll(f"trace {trace_id} in Jaeger ({api} API)",
                    lambda: (lambda s: s if s and predicate(s) else None)(self.jaeger_trace(trace_id, api)), timeout)

    # --- VictoriaLogs ---------------------------------------------------------------------
    def logsql(self, query: str, limit: int = 10000) -> list[dict]:
        """Log records matching a LogsQL query (GET /select/logsql/query), one dict per record
        with VictoriaLogs' fields: "_msg", "_time", "_stream", resource and log attributes by
        their OTLP names ("service.name", "lab.event", ...), "trace_id", "span_id", "severity_text"."""
        r = requests.get(f"{self.victorialogs_url}/select/logsql/query", params={"query": query, "limit": limit}, timeout=10)
        r.raise_for_status()
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    def wait_for_logs(self, query: str, predicate: Callable[[list[dict]], bool] = bool, timeout: float = 60) -> list[dict]:
        return poll(f"logs {query!r} in VictoriaLogs", lambda: (lambda rs: rs if rs and predicate(rs) else None)(self.logsql(query)), timeout)

    # --- webhook sink -------------------------------------------------------------------
    def sink_alerts(self, alertname: str | None = None) -> list[dict]:
        """Notifications the webhook sink received (optionally only those naming `alertname`)."""
        params = {"alertname": alertname} if alertname else None
        r = requests.get(f"{self.webhook_sink_url}/alerts", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_for_sink_alert(self, alertname: str, timeout: float = 60) -> list[dict]:
        return poll(f"alert {alertname} at the webhook sink", lambda: self.sink_alerts(alertname), timeout)


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    return read_dotenv()


@pytest.fixture(scope="session")
def native_components() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """scripts/native/components.tsv: (name, health port variable, health path, port variables)."""
    return COMPONENTS


@pytest.fixture(scope="session")
def stack_view() -> type[NativeStack]:
    """The NativeStack class, to drive a stack started elsewhere (the compose tests) with the
    same helpers: ``stack_view(state_dir=..., ports={LAB_*_PORT: port}, env={...})``."""
    return NativeStack


@pytest.fixture(scope="session")
def native_bins() -> dict[str, Path]:
    return build_native("otelcol", "prometheus", "alertmanager", "jaeger", "victorialogs")


@pytest.fixture(scope="session")
def compose_check() -> Path:
    return build_native("compose-check")["compose-check"]


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory: pytest.TempPathFactory, native_bins: dict[str, Path]) -> Iterator[NativeStack]:
    state = tmp_path_factory.mktemp("lab-state")
    ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS))))
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "LAB_STATE_DIR": str(state),
        "LAB_COLLECTOR_FILE_DIR": str(state / "otelcol"),
    }
    try:
        proc = subprocess.run([str(NATIVE / "up.sh")], env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith(("up.sh", "lab", "build.sh"))]
            pytest.fail(
                "native stack did not start: " + (" | ".join(lines[-3:]) or proc.stderr[-2000:]),
                pytrace=False,
            )
        yield NativeStack(state_dir=state, ports=ports, env={**read_dotenv(), **env})
    finally:
        subprocess.run([str(NATIVE / "down.sh")], env=env, capture_output=True, text=True, timeout=120)
