"""End-to-end checks shared by the native stack (test_backends.py) and the compose stack
(test_compose_stack.py): the same assertions against either, through HTTP APIs only.

Tests get them through the ``e2e`` fixture (``e2e.run_scenario(...)``, ``e2e.check_diverged_run(...)``;
pytest runs with --import-mode=importlib, so test modules do not import each other). Every
function takes a stack object with the interface of the NativeStack the `native_stack` fixture returns
(endpoints, `ports`, `poll`, `query`, `wait_for_exported`, `sink_alerts`, …); the Jaeger and
VictoriaLogs readers are here: `jaeger_trace` / `wait_for_trace` (Jaeger's query API) and
`logsql` / `wait_for_logs` (VictoriaLogs' LogsQL API).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
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

from lab.repo import ROOT, cache_dir

DELAYS = cache_dir() / "logs" / "backend-delays.tsv"


# --- reading the trace and log backends ----------------------------------------------------------


def jaeger_url(stack) -> str:
    return f"http://127.0.0.1:{stack.ports['LAB_JAEGER_UI_PORT']}"


def victorialogs_url(stack) -> str:
    return f"http://127.0.0.1:{stack.ports['LAB_VICTORIALOGS_PORT']}"


def _attrs(attributes: list[dict] | None) -> dict:
    """OTLP JSON attributes -> {key: value} (ints as int, arrays as lists)."""
    out = {}
    for attr in attributes or []:
        kind, raw = next(iter((attr.get("value") or {"none": None}).items()))
        out[attr["key"]] = int(raw) if kind == "intValue" else (
            [next(iter(v.values()), None) for v in raw.get("values", [])] if kind == "arrayValue" else raw)
    return out


def jaeger_trace(stack, trace_id: str, api: str = "v3") -> list[dict]:
    """The spans of one trace from Jaeger's query API, flattened: "name", "traceID", "spanID",
    "parentSpanID" (or None), "attributes", "status" ("UNSET"/"OK"/"ERROR"), "service" (its
    service.name) and "process" (its resource attributes). [] while Jaeger does not know it.
    api="v3": GET /api/v3/traces/<id> (OTLP JSON, Jaeger's current API); api="v1":
    GET /api/traces/<id>, the one Grafana's Jaeger datasource reads."""
    path = f"/api/v3/traces/{trace_id}" if api == "v3" else f"/api/traces/{trace_id}"
    r = requests.get(jaeger_url(stack) + path, timeout=10)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    spans = []
    if api == "v3":
        for rs in r.json().get("result", {}).get("resourceSpans", []):
            resource = _attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    code = span.get("status", {}).get("code", 0)
                    spans.append({"name": span["name"], "traceID": span["traceId"], "spanID": span["spanId"],
                                  "parentSpanID": span.get("parentSpanId") or None,
                                  "attributes": _attrs(span.get("attributes")),
                                  "status": {0: "UNSET", 1: "OK", 2: "ERROR"}.get(code, str(code)),
                                  "service": resource.get("service.name"), "process": resource})
        return spans
    for trace in r.json().get("data") or []:
        processes = trace.get("processes", {})
        for span in trace.get("spans", []):
            parents = [ref["spanID"] for ref in span.get("references", []) if ref.get("refType") == "CHILD_OF"]
            tags = {t["key"]: t["value"] for t in span.get("tags", [])}
            process = processes.get(span.get("processID"), {})
            spans.append({"name": span["operationName"], "traceID": span["traceID"], "spanID": span["spanID"],
                          "parentSpanID": parents[0] if parents else None, "attributes": tags,
                          "status": tags.get("otel.status_code", "UNSET"), "service": process.get("serviceName"),
                          "process": {t["key"]: t["value"] for t in process.get("tags", [])}})
    return spans


def wait_for_trace(stack, trace_id: str, predicate=bool, timeout: float = 60, api: str = "v3") -> list[dict]:
    """The trace's spans once `predicate(spans)` holds (e.g. all expected spans arrived)."""
    def ready():
        spans = jaeger_trace(stack, trace_id, api)
        return spans if spans and predicate(spans) else None
    return stack.poll(f"trace {trace_id} in Jaeger ({api} API)", ready, timeout)


def logsql(stack, query: str, limit: int = 10000) -> list[dict]:
    """Log records matching a LogsQL query (GET /select/logsql/query), one dict per record with
    VictoriaLogs' fields: "_msg", "_time", "_stream", resource and log attributes by their OTLP
    names ("service.name", "lab.event", ...), "trace_id", "span_id", "severity_text"."""
    r = requests.get(f"{victorialogs_url(stack)}/select/logsql/query", params={"query": query, "limit": limit}, timeout=10)
    r.raise_for_status()
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def wait_for_logs(stack, query: str, predicate=bool, timeout: float = 60) -> list[dict]:
    def ready():
        records = logsql(stack, query)
        return records if records and predicate(records) else None
    return stack.poll(f"logs {query!r} in VictoriaLogs", ready, timeout)


# --- recorded-to-queryable delay of one metric point, one span, one log record -------------------


def probe_delays(stack, mode: str, timeout: float = 60) -> dict[str, float]:
    """Record one gauge point, one span and one log record (flushed at once), then poll Prometheus,
    Jaeger and VictoriaLogs every 50 ms until each is queryable. Returns seconds from the
    flush to the first successful query, per backend; appends them to DELAYS."""
    probe = uuid.uuid4().hex
    resource = Resource.create({"service.namespace": "ml-lab", "service.name": "ml-lab-probe",
                                "service.instance.id": f"probe-{probe}", "lab.run.id": probe})
    endpoint = stack.otlp_grpc_endpoint
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True),
                                           export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    try:
        gauge = meter_provider.get_meter("lab.probe").create_gauge("ml.lab.probe")
        with tracer_provider.get_tracer("lab.probe").start_as_current_span("probe") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            gauge.set(1.0)
            logger_provider.get_logger("lab.probe").emit(body="probe", severity_number=SeverityNumber.INFO,
                                                         attributes={"lab.event": "probe"})
        t0 = time.monotonic()
        assert meter_provider.force_flush(timeout_millis=10_000)
        checks = {
            "metric (Prometheus)": lambda: stack.query(f'ml_lab_probe{{instance="probe-{probe}"}}'),
            "span (Jaeger)": lambda: jaeger_trace(stack, trace_id),
            "log (VictoriaLogs)": lambda: logsql(stack, f'"lab.run.id":"{probe}"'),
        }
        delays: dict[str, float] = {}
        while checks and time.monotonic() - t0 < timeout:
            for name, fn in list(checks.items()):
                try:
                    if fn():
                        delays[name] = round(time.monotonic() - t0, 2)
                        del checks[name]
                except Exception:  # noqa: BLE001 - not there yet / backend still starting
                    pass
            time.sleep(0.05)
        assert not checks, f"not queryable after {timeout}s: {sorted(checks)} (got {delays})"
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()
        logger_provider.shutdown()
    DELAYS.parent.mkdir(parents=True, exist_ok=True)
    with DELAYS.open("a") as f:
        for name, secs in delays.items():
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\t{mode}\t{name}\t{secs}\n")
    return delays


# --- a real scenario run ---------------------------------------------------------------------


def run_scenario(stack, tmp: Path, scenario: str, *args: str) -> dict:
    """`python -m lab run <scenario> --fast ...` exporting to the stack; returns its summary JSON."""
    summary = tmp / f"{scenario}.json"
    env = {**os.environ, **stack.otel_env()}
    proc = subprocess.run([sys.executable, "-m", "lab", "run", scenario, "--fast", *args, "--summary-json", str(summary)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exports failed" not in proc.stdout, proc.stdout[-3000:]
    return json.loads(summary.read_text())


def root_trace_id(stack, run_id: str, root_name: str) -> str:
    """The trace id of a run's root span, as the collector's file exporter wrote it."""
    (root,) = stack.wait_for_exported("traces", lambda s: s["resource"].get("lab.run.id") == run_id and s["name"] == root_name)
    return root["traceId"]


def run_logs(stack, run_id: str, until: str, timeout: float = 60) -> dict[str, list[dict]]:
    """The run's log records from VictoriaLogs by `lab.event`, once a record with event `until` is in."""
    records = wait_for_logs(stack, f'"lab.run.id":"{run_id}"', lambda rs: any(r.get("lab.event") == until for r in rs),
                            timeout=timeout)
    by_event: dict[str, list[dict]] = {}
    for r in records:
        by_event.setdefault(r.get("lab.event", ""), []).append(r)
    return by_event


def check_diverged_run(stack, summary: dict) -> None:
    """A `diverged` run: its trace by id from Jaeger (v3 API; check_grafana_links reads the same
    trace through v1, which answered 500 while non-finite losses went on spans as floats),
    its events from VictoriaLogs, with attributes."""
    run_id = summary["run_id"]
    trace_id = root_trace_id(stack, run_id, "train diverged")
    spans = wait_for_trace(stack, trace_id, lambda s: any(x["name"] == "train diverged" for x in s))
    root = next(s for s in spans if s["name"] == "train diverged")
    assert root["parentSpanID"] is None and root["service"] == "ml-lab-trainer"
    assert root["attributes"]["lab.outcome"] == "diverged" and root["attributes"]["lab.scenario"] == "diverged"
    assert root["status"] == "ERROR"
    assert root["process"]["lab.run.id"] == run_id
    evals = [s for s in spans if s["name"] == "evaluate"]
    assert evals and all(s["traceID"] == trace_id for s in spans)
    by_id = {s["spanID"]: s for s in spans}
    assert all(by_id[s["parentSpanID"]]["name"] in ("epoch", "train diverged") for s in evals)

    logs = run_logs(stack, run_id, until="run_end")
    (start,) = logs["run_start"]
    (end,) = logs["run_end"]
    assert end["lab.outcome"] == "diverged" and end["_msg"].startswith("run diverged after")
    assert start["service.name"] == "ml-lab-trainer" and start["lab.scenario"] == "diverged"
    nonfinite = logs["nonfinite"]
    assert nonfinite and all(r["severity_text"] == "ERROR" for r in nonfinite)
    assert all(int(r["lab.step"]) > 0 for r in nonfinite)
    assert logs["diverged"][0]["severity_text"] == "ERROR"
    # every record carries the run's trace context: the log -> trace link works
    assert {r["trace_id"] for rs in logs.values() for r in rs} == {trace_id}


def check_overfit_run(stack, summary: dict) -> None:
    """An `overfit` run: its trace through Jaeger's v1 API (Grafana's), its checkpoints in VictoriaLogs."""
    trace_id = root_trace_id(stack, summary["run_id"], "train overfit")
    spans = wait_for_trace(stack, trace_id, lambda s: any(x["name"] == "train overfit" for x in s), api="v1")
    root = next(s for s in spans if s["name"] == "train overfit")
    assert root["attributes"]["lab.outcome"] == summary["stopped"] and root["service"] == "ml-lab-trainer"
    assert root["attributes"]["lab.steps"] == summary["steps"]
    assert len([s for s in spans if s["name"] == "evaluate"]) == summary["steps"] // 5
    logs = run_logs(stack, summary["run_id"], until="run_end")
    checkpoints = logs["checkpoint"]
    assert checkpoints and all("new best validation loss" in r["_msg"] for r in checkpoints)
    assert all(float(r["lab.val_loss"]) > 0 and int(r["lab.step"]) > 0 for r in checkpoints)
    assert {r["trace_id"] for r in checkpoints} == {trace_id}


def check_drift_run(stack, summary: dict) -> None:
    """A drift-sudden serving run: its trace from Jaeger, its drift alarms from VictoriaLogs."""
    run_id = summary["run_id"]
    trace_id = root_trace_id(stack, run_id, "serve drift-sudden")
    spans = wait_for_trace(stack, trace_id, lambda s: any(x["name"] == "serve drift-sudden" for x in s))
    root = next(s for s in spans if s["name"] == "serve drift-sudden")
    assert root["service"] == "ml-lab-inference" and root["attributes"]["lab.outcome"] == "completed"
    checks = [s for s in spans if s["name"] == "drift_check"]
    assert checks and all(s["parentSpanID"] == root["spanID"] for s in checks)
    logs = run_logs(stack, run_id, until="serve_end")
    drift = logs["input_drift"]
    assert drift and all(r["severity_text"] == "WARN" and r["trace_id"] == trace_id for r in drift)
    assert all(float(r["lab.drifted_share"]) > 0 and r["lab.drifted_features"] for r in drift)
    assert any("debt_ratio" in r["lab.drifted_features"] for r in drift)  # the step at window 12


# --- the links Grafana's datasources are provisioned with, followed by hand ---------------------

DATASOURCES = {d["uid"]: d for d in
               yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text())["datasources"]}


def _seconds(duration: str) -> float:
    m = re.fullmatch(r"(-?\d+)(ms|s|m|h)", duration)
    assert m, duration
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def exemplar_trace_ids(stack, histogram: str, scenario: str, start: float, end: float) -> set[str]:
    """Trace ids on `histogram`'s exemplars for one scenario, read the way Grafana's Prometheus
    datasource does (/api/v1/query_exemplars), under the label its exemplarTraceIdDestinations names."""
    label = DATASOURCES["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["name"]
    r = requests.get(f"{stack.prometheus_url}/api/v1/query_exemplars", timeout=10,
                     params={"query": f'{histogram}_bucket{{lab_scenario="{scenario}"}}', "start": start, "end": end})
    r.raise_for_status()
    return {e["labels"][label] for s in r.json()["data"] for e in s["exemplars"] if label in e["labels"]}


def check_grafana_links(stack, summary: dict, root_name: str, histogram: str) -> None:
    """Follow each link datasources.yaml provisions, as Grafana would, on one real run:
    a latency/step-duration exemplar -> its trace in Jaeger (v1 API, Grafana's); the run's trace ->
    its log records in VictoriaLogs (tracesToLogsV2's LogsQL query, its time shifts); a log
    record's trace_id field (the VictoriaLogs derived field) -> the trace in Jaeger."""
    run_id = summary["run_id"]
    (root,) = stack.wait_for_exported("traces", lambda s: s["resource"].get("lab.run.id") == run_id
                                      and s["name"] == root_name)
    trace_id = root["traceId"]
    t0, t1 = int(root["startTimeUnixNano"]) / 1e9, int(root["endTimeUnixNano"]) / 1e9

    # metrics -> traces: the run's histogram carries exemplars whose trace ids Jaeger knows
    # (other runs of the scenario may have left exemplars too: one of them must be this run's)
    def linked_to_this_run():
        ids = exemplar_trace_ids(stack, histogram, summary["scenario"], t0 - 1, t1 + 30)
        for tid in sorted(ids)[:50]:
            spans = jaeger_trace(stack, tid, api="v1")
            if spans and all(s["process"].get("lab.run.id") == run_id for s in spans):
                return spans
        return None
    spans = stack.poll(f"an exemplar on {histogram} linking to a trace of run {run_id}", linked_to_this_run, 90)
    assert spans[0]["service"] == root["resource"]["service.name"]

    # traces -> logs: the Jaeger datasource's query, expanded as Grafana does, in its time window
    link = DATASOURCES["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert link["datasourceUid"] == "victorialogs" and link["customQuery"]
    query = link["query"].replace("$$", "$").replace("${__trace.traceId}", trace_id)
    start, end = t0 + _seconds(link["spanStartTimeShift"]), t1 + _seconds(link["spanEndTimeShift"])

    def logs():
        r = requests.get(f"{victorialogs_url(stack)}/select/logsql/query", timeout=10,
                         params={"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}"})
        r.raise_for_status()
        records = [json.loads(line) for line in r.text.splitlines() if line.strip()]
        return records if any(x.get("lab.event", "").endswith("_end") for x in records) else None
    records = stack.poll(f"logs of trace {trace_id} via the Jaeger datasource's query", logs, timeout=60)
    assert {x["trace_id"] for x in records} == {trace_id}
    assert {x["lab.run.id"] for x in records} == {run_id}

    # logs -> traces: the derived field takes the record's trace_id field as the trace id
    field = DATASOURCES["victorialogs"]["jsonData"]["derivedFields"][0]
    assert field["matcherType"] == "label" and field["datasourceUid"] == "jaeger"
    value = field["url"].replace("$$", "$").replace("${__value.raw}", records[0][field["matcherRegex"]])
    assert any(s["name"] == root_name for s in wait_for_trace(stack, value, api="v1"))


@pytest.fixture(scope="session")
def e2e() -> SimpleNamespace:
    """The shared checks above, for test_backends.py and test_compose_stack.py."""
    return SimpleNamespace(
        jaeger_url=jaeger_url, victorialogs_url=victorialogs_url, jaeger_trace=jaeger_trace,
        wait_for_trace=wait_for_trace, logsql=logsql, wait_for_logs=wait_for_logs, probe_delays=probe_delays,
        run_scenario=run_scenario, root_trace_id=root_trace_id, run_logs=run_logs,
        check_diverged_run=check_diverged_run, check_overfit_run=check_overfit_run, check_drift_run=check_drift_run,
        check_grafana_links=check_grafana_links,
    )
