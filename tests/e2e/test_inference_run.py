"""A real `--fast` inference run (sudden drift) through the real collector into the real Prometheus.

Uses the session's native stack (tests/conftest.py: `native_stack`). Names and labels are checked
against the metric catalogue (lab/telemetry/catalogue.py, family "inference"; docs/metrics.md).
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from lab.repo import ROOT
from lab.specs.serving import FEATURES
from lab.telemetry.catalogue import CATALOGUE, CONFIDENCE_BUCKETS, REQUEST_DURATION_BUCKETS

HOST = socket.gethostname()
INFERENCE = [i for i in CATALOGUE if i.family == "inference"]
WINDOWS = 16


@pytest.fixture(scope="module")
def sudden_run(native_stack, tmp_path_factory):
    summary = tmp_path_factory.mktemp("serve") / "summary.json"
    env = {**os.environ, **native_stack.otel_env()}
    proc = subprocess.run([sys.executable, "-m", "lab", "run", "drift-sudden", "--fast", "--seed", "1",
                           "--set", f"stream.windows={WINDOWS}", "--set", "stream.trace_sample_ratio=0.2",
                           "--set", "stream.invalid_rate=0.02", "--summary-json", str(summary)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Streaming metrics, traces and logs over OTLP" in proc.stdout and "exports failed" not in proc.stdout
    s = json.loads(summary.read_text())
    # instance too: other tests on the shared stack (the alert matrix) run drift-sudden under their own instance
    sel = f'job="ml-lab/ml-lab-inference",instance="{HOST}:drift-sudden:fault",lab_scenario="drift-sudden",lab_variant="fault"'
    native_stack.wait_for_series(f"ml_drift_windows_total{{{sel}}} == {WINDOWS}", timeout=90)
    return s, sel


@pytest.mark.parametrize("inst", INFERENCE, ids=lambda i: i.prometheus)
def test_every_inference_series_is_queryable_with_its_labels(native_stack, sudden_run, inst):
    _, sel = sudden_run
    name = inst.prometheus + ("_count" if inst.kind == "histogram" else "")
    series = native_stack.query(f'{{__name__="{name}",{sel}}}')
    assert series, f"{name} not in Prometheus"
    for s in series:
        labels = s["metric"]
        assert labels["instance"] == f"{HOST}:drift-sudden:fault"
        extra = set(labels) - {"__name__", "job", "instance", "lab_scenario", "lab_variant", "le", "otel_scope_name",
                               "otel_scope_version", "otel_scope_schema_url"}
        assert extra == set(inst.attributes), f"{name}: labels {sorted(extra)} != catalogue {inst.attributes}"
    if "feature" in inst.attributes:
        assert {s["metric"]["feature"] for s in series} == set(FEATURES)
    if "outcome" in inst.attributes:
        assert {s["metric"]["outcome"] for s in series} == {"ok", "error"}
    if "model" in inst.attributes:
        assert {s["metric"]["model"] for s in series} == {"credit-risk"}
    if inst.kind == "histogram":
        buckets = native_stack.query(f'{{__name__="{inst.prometheus}_bucket",{sel}}}')
        per_series = len(REQUEST_DURATION_BUCKETS if "duration" in inst.name else CONFIDENCE_BUCKETS) + 1
        assert len(buckets) == per_series * len(series)


def test_values_match_the_run(native_stack, sudden_run):
    s, sel = sudden_run
    q = lambda promql: float(native_stack.query(promql)[0]["value"][1])  # noqa: E731
    assert q(f"sum(ml_inference_requests_total{{{sel}}})") == s["requests"] == WINDOWS * 500
    assert q(f'ml_inference_requests_total{{{sel},outcome="error"}}') == s["errors"] > 0
    assert q(f"sum(ml_inference_request_duration_seconds_count{{{sel}}})") == s["requests"]
    # the step at window 12 on debt_ratio and late_payments, nothing on the untouched features
    assert q(f'ml_drift_psi{{{sel},feature="debt_ratio"}}') > 0.25
    assert q(f'ml_drift_ks_p_value_ratio{{{sel},feature="late_payments"}}') < 0.05
    assert q(f'max(ml_drift_psi{{{sel},feature!~"debt_ratio|late_payments"}})') < 0.1
    assert q(f"ml_drift_drifted_share_ratio{{{sel}}}") >= 0.25
    # what an accuracy alert compares: the delayed-label accuracy against the model's baseline
    assert q(f"ml_inference_accuracy_ratio{{{sel}}}") < q(f"ml_inference_accuracy_baseline_ratio{{{sel}}}") - 0.05


def test_spans_carry_the_conventions_and_reach_the_collector(native_stack, sudden_run):
    s, _ = sudden_run
    mine = lambda item: item["resource"].get("lab.run.id") == s["run_id"]  # noqa: E731
    root = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == "serve drift-sudden")[0]
    assert root["resource"]["service.name"] == "ml-lab-inference" and root["attributes"]["lab.outcome"] == "completed"
    checks = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == "drift_check")
    assert len(checks) == WINDOWS and all(c["traceId"] == root["traceId"] for c in checks)
    assert next(c for c in checks if c["attributes"]["lab.window"] == 12)["attributes"]["lab.drifted_share"] >= 0.25
    reqs = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == "predict credit-risk")
    assert 0.1 * s["requests"] < len(reqs) < 0.3 * s["requests"]  # head-sampled at 0.2
    assert all(r["attributes"]["ml.operation.name"] == "predict" and r["attributes"]["ml.model.name"] == "credit-risk"
               and r["kind"] in (2, "SPAN_KIND_SERVER") for r in reqs)
    errors = [r for r in reqs if r["attributes"].get("error.type") == "invalid_input"]
    assert errors and all(r["status"].get("code") in (2, "STATUS_CODE_ERROR") for r in errors)
    logs = native_stack.wait_for_exported("logs", lambda i: mine(i) and i["attributes"].get("lab.event") == "input_drift")
    assert logs[0]["traceId"] == root["traceId"]
