"""The stack faults of practice mode on a real process: stopped inside the window, started again after.

A stand-in component (a `sleep` started detached, recorded in run/<name>.pid as up.sh does)
takes the place of the collector, so this runs without a stack; tests/e2e/test_triage_run.py
does it to the real collector and Prometheus.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab.practice.pipeline import StackFault, make_fault, native_stack_dir
from lab.stackproc import Component, ComponentError, proc_start, wait_exec
from lab.telemetry.outage import ExportGate


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


@pytest.fixture
def stand_in(tmp_path):
    (tmp_path / "run").mkdir()
    p = subprocess.Popen(["sleep", "300"], start_new_session=True)
    # as up.sh's components are by the time anything reads their pid file: exec'd (on a loaded
    # machine /proc/<pid>/cmdline stayed empty, mid-exec, long enough for find() to refuse it)
    wait_exec(p.pid)
    (tmp_path / "run" / "dummy.pid").write_text(f"{p.pid}\n{proc_start(p.pid)}\n")
    yield tmp_path
    if p.poll() is None:  # our own child: never a 300 s wait below, whatever the test did
        p.kill()
    pid = int((tmp_path / "run" / "dummy.pid").read_text().split()[0])
    try:
        if pid != p.pid and Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00":  # a restarted stand-in
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait(timeout=30)


def _wait(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_stack_fault_stops_the_component_in_its_window_and_starts_it_again(stand_in):
    component = Component.find(stand_in, "dummy")
    first = component.pid
    fault = StackFault(component, 0.6, 0.8, signal.SIGKILL)
    fault.progress(0.5)
    assert not fault.blocked and _alive(first)
    fault.progress(0.6)
    _wait(lambda: fault.began_at is not None)
    assert fault.blocked and not _alive(first)
    fault.progress(0.7)  # still inside: nothing more happens
    fault.progress(0.8)
    _wait(lambda: fault.ended_at is not None)
    second = int((stand_in / "run" / "dummy.pid").read_text().split()[0])
    assert second != first and _alive(second) and fault.ended_at > fault.began_at
    assert Component.find(stand_in, "dummy").argv == ["sleep", "300"]  # the same command line
    fault.progress(0.65)  # one fault per run: the window is not entered twice
    fault.close()
    assert _alive(second) and fault.error is None, fault.error


def test_a_run_that_ends_inside_the_window_leaves_the_component_running(stand_in):
    fault = StackFault(Component.find(stand_in, "dummy"), 0.6, 0.8, signal.SIGTERM)
    fault.progress(0.7)
    fault.close()  # run_case does this however the run ended
    assert fault.began_at and fault.ended_at, (fault.error, fault.began_at, fault.ended_at)
    assert _alive(int((stand_in / "run" / "dummy.pid").read_text().split()[0]))


def test_a_component_that_is_not_running_cannot_be_taken(stand_in):
    (stand_in / "run" / "dummy.pid").write_text(f"{os.getpid()}\nboot+1\n")  # a recycled pid
    with pytest.raises(ComponentError):
        Component.find(stand_in, "dummy")
    with pytest.raises(ComponentError):
        Component.find(stand_in, "absent")


def _stack_env(directory: Path, mode: str = "native") -> None:
    (directory / "stack.env").write_text(f"LAB_STACK_MODE={mode}\nOTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318\n"
                                         "LAB_OTLP_HTTP_ENDPOINT=http://127.0.0.1:14318\n"
                                         "LAB_OTLP_GRPC_ENDPOINT=http://127.0.0.1:14317\n")


def test_only_the_native_stack_the_run_streams_to_is_touched(tmp_path):
    _stack_env(tmp_path)
    env = {"LAB_STATE_DIR": str(tmp_path)}
    assert native_stack_dir(env) == tmp_path
    assert native_stack_dir({**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:14317"}) == tmp_path
    assert native_stack_dir({**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:24318"}) is None  # another stack
    _stack_env(tmp_path, "compose")
    assert native_stack_dir(env) is None


@pytest.mark.parametrize("kind", ["collector-crash", "prometheus-restart"])
def test_without_a_controllable_stack_the_case_gets_an_export_outage(tmp_path, kind):
    _stack_env(tmp_path)  # a native stack on record, but no pid files: not running, or not this user's
    got, fault = make_fault(kind, {"LAB_STATE_DIR": str(tmp_path)})
    assert got == "export-outage" and isinstance(fault, ExportGate)
    got, fault = make_fault(kind, {"LAB_STATE_DIR": str(tmp_path / "none")})
    assert got == "export-outage" and isinstance(fault, ExportGate)
