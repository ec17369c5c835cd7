"""Practice mode's pipeline confounders: real faults in the telemetry pipeline during a case.

- `export-outage`: the run's exporters drop every batch for a while (lab/telemetry/outage.py):
  a partition between the run and the collector; the data is lost.
- `collector-crash`: the stack's collector is killed (SIGKILL) and started again at the end of
  the window; the run keeps its batches and sends them late, MLLabTargetDown fires for the
  collector, and its own counters start again from 0.
- `prometheus-restart`: Prometheus is stopped (SIGTERM, as a deploy or an upgrade does) and
  started again; the collector's queue keeps the data, scrapes and rule evaluations pause,
  and alerts are evaluated afresh afterwards.

The two stack faults act on a native stack this user started, the one the run streams to
(its `stack.env` and pid files, lab/stackproc.py); anywhere else (compose, another user's
stack, no stack) the case gets the export outage instead. Nothing here may break a run or
leave the stack down: failures to stop are recorded as "did not happen", and close()
always starts again what was stopped.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from lab.repo import read_stack_env, stack_env_path, state_dir
from lab.stackproc import Component, ComponentError
from lab.telemetry.outage import ExportGate

# Where in the run each one falls (fraction of progress): late enough that every fault has shown
# itself first (the loss-spike jump is at 50%). A Prometheus restart is short, as a deploy is.
CONFOUNDERS = {"export-outage": (0.6, 0.8), "collector-crash": (0.6, 0.8), "prometheus-restart": (0.6, 0.7)}
# The stack faults: which component, and how it is stopped.
STACK_FAULTS = {"collector-crash": ("otel-collector", signal.SIGKILL), "prometheus-restart": ("prometheus", signal.SIGTERM)}


class StackFault:
    """Stops a stack component while the run's progress is inside [start, end), then starts it again.

    The same interface as ExportGate (progress(), blocked, began_at, ended_at). Stopping and
    starting run on a worker thread, so the run's loop never waits for a process to exit.
    """

    def __init__(self, component: Component, start: float, end: float, sig: int) -> None:
        self.component, self.start, self.end, self.sig = component, start, end, sig
        self.blocked = False
        self.began_at: float | None = None
        self.ended_at: float | None = None
        self.error: str | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def progress(self, fraction: float) -> None:
        inside = self.start <= fraction < self.end
        with self._lock:
            if inside and not self.blocked and self.began_at is None and self.error is None:
                self.blocked = True
                self._queue(self._stop)
            elif not inside and self.blocked:
                self.blocked = False
                self._queue(self._start)

    def close(self, timeout: float = 60.0) -> None:
        """End of the run: whatever was stopped is started again, and the worker is done."""
        with self._lock:
            self.blocked = False
            self._queue(self._start)
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def _queue(self, action) -> None:
        previous = self._worker

        def run():
            if previous is not None:
                previous.join()
            action()

        self._worker = threading.Thread(target=run, name=f"confounder-{self.component.name}", daemon=True)
        self._worker.start()

    def _stop(self) -> None:
        try:
            # a component slow to exit on SIGTERM is killed: starting its successor beside it would fail
            if not self.component.stop(self.sig) and not self.component.stop(signal.SIGKILL, 10.0):
                self.error = f"{self.component.name} (pid {self.component.pid}) did not exit"
                return
            self._stopped = True
            self.began_at = time.time()
        except OSError as exc:  # not ours to stop after all: the case goes on without it
            self.error = f"{self.component.name}: {exc}"

    def _start(self) -> None:
        if not self._stopped:
            return
        try:
            self.component.start()
            self._stopped = False
            self.ended_at = time.time()
        except OSError as exc:
            self.error = f"{self.component.name} could not be started again: {exc} (`make up` starts it)"


def _host_port(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url if "//" in url else f"//{url}")
    return f"{parts.hostname}:{parts.port}" if parts.port else None


def native_stack_dir(environ=None) -> Path | None:
    """The state directory of the native stack the run streams to, if this user started one there."""
    environ = os.environ if environ is None else environ
    stack = read_stack_env(stack_env_path(environ))
    if stack.get("LAB_STACK_MODE") != "native":
        return None
    endpoint = _host_port(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or stack.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    ours = {_host_port(stack.get("LAB_OTLP_HTTP_ENDPOINT")), _host_port(stack.get("LAB_OTLP_GRPC_ENDPOINT"))}
    return state_dir(environ) if endpoint in ours else None


def make_fault(kind: str, environ=None) -> tuple[str, ExportGate | StackFault]:
    """(the kind that will really happen, the fault): a stack fault where this user's native stack
    can be controlled, else the export outage."""
    if kind in STACK_FAULTS:
        directory = native_stack_dir(environ)
        name, sig = STACK_FAULTS[kind]
        if directory is not None:
            try:
                return kind, StackFault(Component.find(directory, name), *CONFOUNDERS[kind], sig)
            except ComponentError:
                pass
        kind = "export-outage"
    return kind, ExportGate(*CONFOUNDERS[kind])
