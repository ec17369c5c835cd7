"""A real `--fast` training run through the real collector into the real Prometheus.

Uses the session's native stack (tests/conftest.py: `native_stack`). Names and
labels are checked against the metric catalogue (lab/telemetry/catalogue.py, docs/metrics.md).
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from lab.repo import ROOT
from lab.telemetry.catalogue import CATALOGUE as _ALL

CATALOGUE = [i for i in _ALL if i.family == "training"]  # inference: tests/e2e/test_inference_run.py

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def overfit_run(native_stack, tmp_path_factory):
    summary = tmp_path_factory.mktemp("run") / "summary.json"
    env = {**os.environ, **native_stack.otel_env()}
    proc = subprocess.run([sys.executable, "-m", "lab", "run", "overfit", "--fast", "--seed", "1",
                           "--summary-json", str(summary)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Streaming metrics, traces and logs over OTLP" in proc.stdout
    assert "exports failed" not in proc.stdout
    s = json.loads(summary.read_text())
    # this run's own instance: other tests on the shared stack may run overfit under other instances
    sel = f'job="ml-lab/ml-lab-trainer",lab_scenario="overfit",lab_variant="fault",instance="{HOST}:overfit:fault"'
    # the last export carries the final step count: wait for it
    native_stack.wait_for_series(f'ml_training_steps_total{{{sel}}} == {s["steps"]}', timeout=90)
    return s, sel


def _series(native_stack, name, sel):
    return native_stack.query(f'{{__name__="{name}",{sel}}}')


@pytest.mark.parametrize("inst", CATALOGUE, ids=lambda i: i.prometheus)
def test_every_catalogued_series_is_queryable_with_its_labels(native_stack, overfit_run, inst):
    _, sel = overfit_run
    name = inst.prometheus + ("_count" if inst.kind == "histogram" else "")
    series = _series(native_stack, name, sel)
    assert series, f"{name} not in Prometheus"
    for s in series:
        labels = s["metric"]
        assert labels["instance"] == f"{HOST}:overfit:fault"
        assert not any(k.startswith("lab_run") or k in ("step", "seed", "lab_seed") for k in labels), labels
        extra = set(labels) - {"__name__", "job", "instance", "lab_scenario", "lab_variant", "le", "otel_scope_name",
                               "otel_scope_version", "otel_scope_schema_url"}
        assert extra == set(inst.attributes), f"{name}: labels {sorted(extra)} != catalogue {inst.attributes}"
    if "split" in inst.attributes:
        assert {s["metric"]["split"] for s in series} == {"train", "validation"}
    if "layer" in inst.attributes:
        assert {s["metric"]["layer"] for s in series} == {"layer1", "layer2"}
    if inst.kind == "histogram":
        buckets = _series(native_stack, inst.prometheus + "_bucket", sel)
        assert len(buckets) == 12  # 11 boundaries + +Inf


def test_values_match_the_run(native_stack, overfit_run):
    s, sel = overfit_run
    q = lambda promql: float(native_stack.query(promql)[0]["value"][1])  # noqa: E731
    assert q(f"ml_training_steps_total{{{sel}}}") == s["steps"] == 600
    assert q(f"ml_training_progress_ratio{{{sel}}}") == 1.0
    assert q(f"ml_training_step_duration_seconds_count{{{sel}}}") == s["steps"]
    assert q(f"ml_training_loss_ratio{{{sel}}}") > 1.3  # the run ended overfitted


def test_run_identity_is_on_target_info_only(native_stack, overfit_run):
    s, sel = overfit_run
    info = native_stack.wait_for_series(f'target_info{{job="ml-lab/ml-lab-trainer",lab_run_id="{s["run_id"]}"}}')
    labels = info[0]["metric"]
    assert labels["instance"] == f"{HOST}:overfit:fault" and labels["lab_seed"] == "1"
    assert not native_stack.query(f'{{lab_run_id="{s["run_id"]}",__name__!="target_info"}}')


def test_spans_and_logs_reach_the_collector(native_stack, overfit_run):
    s, _ = overfit_run
    mine = lambda item: item["resource"].get("lab.run.id") == s["run_id"]  # noqa: E731
    spans = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == "train overfit")
    root = spans[0]
    assert root["attributes"]["lab.outcome"] == "completed"
    assert root["resource"]["service.name"] == "ml-lab-trainer" and root["resource"]["lab.scenario"] == "overfit"
    evals = native_stack.wait_for_exported("traces", lambda i: mine(i) and i["name"] == "evaluate")
    assert len(evals) == 600 // 5 and all(e["traceId"] == root["traceId"] for e in evals)
    logs = native_stack.wait_for_exported("logs", lambda i: mine(i) and i["attributes"].get("lab.event") == "run_end")
    assert logs[0]["attributes"]["lab.outcome"] == "completed"
    assert logs[0]["traceId"] == root["traceId"]
    checkpoints = native_stack.exported("logs")
    assert any(mine(i) and i["attributes"].get("lab.event") == "checkpoint" for i in checkpoints)


def test_the_collector_counts_the_points_it_accepted_and_sent(native_stack, overfit_run):
    # The collector's own telemetry is how a trainee tells a pipeline problem from a model problem.
    m = native_stack.collector_metrics()
    for counter in ("otelcol_receiver_accepted_metric_points", "otelcol_exporter_sent_metric_points"):
        # the exposition may or may not carry the _total suffix, depending on the collector's settings
        assert sum(v for k, v in m.items() if k in (counter, counter + "_total")) > 0, (counter, sorted(m))
