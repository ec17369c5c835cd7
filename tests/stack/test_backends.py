"""Traces in Jaeger, logs in VictoriaLogs: the native stack's trace and log backends, end to end.

    .venv/bin/python -m pytest tests/stack/test_backends.py

Uses the session's `native_stack` (tests/conftest.py, lab/dev/stack.py). Real lab runs (`python -m lab run
… --fast`) export over OTLP to the collector, which forwards traces to Jaeger and logs to
VictoriaLogs; the tests read them back through the backends' own query APIs (the ones
Grafana's datasources use): a run's trace by its id from Jaeger, its log records (run
start/end, checkpoints, non-finite steps, drift alarms) with their attributes from
VictoriaLogs. tests/stack/test_compose_stack.py runs the same checks (tests/stack/conftest.py)
against the compose stack.
"""

from __future__ import annotations

import pytest
import requests

from lab.dev.stack import COMPONENTS

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def runs(native_stack, tmp_path_factory, e2e):
    tmp = tmp_path_factory.mktemp("backend-runs")
    return {
        "diverged": e2e.run_scenario(native_stack, tmp, "diverged", "--seed", "1"),
        "overfit": e2e.run_scenario(native_stack, tmp, "overfit", "--seed", "2"),
        "drift-sudden": e2e.run_scenario(native_stack, tmp, "drift-sudden", "--seed", "1",
                                               "--set", "stream.windows=14"),
    }


def test_every_component_of_the_table_is_healthy(native_stack):
    for name, health_port, health_path, _ in COMPONENTS:
        url = f"http://127.0.0.1:{native_stack.ports[health_port]}{health_path}"
        assert requests.get(url, timeout=5).status_code == 200, f"{name}: {url}"
        assert (native_stack.state_dir / "run" / f"{name}.pid").exists(), name


def test_jaeger_and_victorialogs_run_the_pinned_versions(native_stack, lab_env, e2e):
    # Jaeger answers its query API; VictoriaLogs reports its version on /metrics.
    services = requests.get(f"{e2e.jaeger_url(native_stack)}/api/services", timeout=5)
    assert services.status_code == 200 and "data" in services.json()
    metrics = requests.get(f"{e2e.victorialogs_url(native_stack)}/metrics", timeout=5).text
    assert f'version="victoria-logs-v{lab_env["LAB_VICTORIALOGS_VERSION"]}"' in metrics


def test_recorded_to_queryable_delay(native_stack, e2e):
    delays = e2e.probe_delays(native_stack, "native")
    # generous bounds: the collector batches for 1s, the backends make data visible within seconds
    assert all(secs < 30 for secs in delays.values()), delays


def test_diverged_run_trace_from_jaeger_and_events_from_victorialogs(native_stack, runs, e2e):
    e2e.check_diverged_run(native_stack, runs["diverged"])


def test_overfit_trace_through_grafanas_jaeger_api_and_checkpoints_in_victorialogs(native_stack, runs, e2e):
    e2e.check_overfit_run(native_stack, runs["overfit"])


def test_drift_alarms_in_victorialogs_and_serving_trace_in_jaeger(native_stack, runs, e2e):
    e2e.check_drift_run(native_stack, runs["drift-sudden"])


def test_grafana_links_training_exemplar_to_trace_to_logs_and_back(native_stack, runs, e2e):
    e2e.check_grafana_links(native_stack, runs["overfit"], "train overfit", "ml_training_step_duration_seconds")


def test_grafana_links_request_exemplar_to_trace_to_logs_and_back(native_stack, runs, e2e):
    e2e.check_grafana_links(native_stack, runs["drift-sudden"], "serve drift-sudden",
                            "ml_inference_request_duration_seconds")


def test_victorialogs_data_is_on_disk_in_the_state_dir(native_stack, runs):
    assert any((native_stack.state_dir / "victorialogs" / "data").rglob("*")), "no VictoriaLogs data written"
