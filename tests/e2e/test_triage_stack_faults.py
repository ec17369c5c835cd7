"""Practice cases whose confounder is a real fault of the stack: the collector crashes, Prometheus restarts.

Each case is a shortened `stalled` run (297 steps, paced at speed 2: ~13 s) streaming to the session's
native stack; between 60% and 80% (collector) or 70% (Prometheus) of the run the component
is stopped through its pid file and started again (lab/practice/pipeline.py). Checked: the
component really went down and came back as a new process, the stack is healthy after, the
case records the fault and expects "pipeline" in the answer, and the run's data arrived in
full (the run's buffers and the collector's queue outlast the fault).
"""

import socket

import pytest
import requests

from lab.practice import triage as t
from lab.practice.pipeline import CONFOUNDERS, STACK_FAULTS
from lab.stackproc import Component

HOST = socket.gethostname()
INSTANCE = f"{HOST}:mystery:case"

@pytest.fixture(scope="module")
def native_stack(own_stack):
    """This module breaks its stack on purpose: one of its own (tests/e2e/conftest.py)."""
    return own_stack


def _run_case(native_stack, kind: str):
    before = Component.find(native_stack.state_dir, STACK_FAULTS[kind][0]).pid
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_STATE_DIR", str(native_stack.state_dir))  # the stack's stack.env and pid files
    for k, v in {**native_stack.otel_env(), "OTEL_METRIC_EXPORT_INTERVAL": "1000"}.items():
        mp.setenv(k, v)
    case = t.Case(case_id=f"e2e-{kind}", seed=0, scenario="stalled", diagnosis="stalled", run_seed=1,
                  confounder=kind, outage=CONFOUNDERS[kind])
    t.open_case(case)
    try:
        outcome = t.run_case(case, speed=2, telemetry="on", quiet=True, live=False, overrides=["train.epochs=1"])
    finally:
        mp.undo()
    assert outcome.result.stopped == "completed"
    return case, before, outcome.result.steps


@pytest.mark.parametrize("kind", ["collector-crash", "prometheus-restart"])
def test_a_stack_fault_during_a_case_really_happens_and_loses_nothing(native_stack, kind):
    case, before, steps = _run_case(native_stack, kind)
    assert case.confounder == kind  # not fallen back to an export outage
    assert case.outage_began_at and case.outage_ended_at and case.outage_ended_at > case.outage_began_at
    assert case.truth == {"stalled", "pipeline"}
    name = STACK_FAULTS[kind][0]
    after = Component.find(native_stack.state_dir, name)
    assert after.pid != before  # stopped and started again, as a new process
    native_stack.poll(f"{name} healthy", lambda: requests.get(
        native_stack.collector_health_url if name == "otel-collector" else f"{native_stack.prometheus_url}/-/ready",
        timeout=2).ok, 60)
    # every step of this run reached Prometheus, the fault notwithstanding
    native_stack.wait_for_series(f'ml_training_steps_total{{instance="{INSTANCE}"}} == {steps} '
                                 f'and timestamp(ml_training_steps_total{{instance="{INSTANCE}"}}) > {case.started_at}',
                                 timeout=90)
    if kind == "prometheus-restart":  # Prometheus's own record of the restart, which a trainee can read
        native_stack.wait_for_series(f'process_start_time_seconds{{job="prometheus"}} >= {case.outage_began_at - 1}',
                                     timeout=60)
