"""Every scenario family, by the `kind` of its spec: what `lab run`, recording and practice mode dispatch on.

A family (lab/training, lab/serving, lab/generative) is a spec module, a loop reporting through the one
observer protocol, an OTel observer, a console view and signature detectors, packed in a
lab.telemetry.session.Family record named FAMILY in the family's `run` module. Adding a
family: add its module here.
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from lab.telemetry.record import Recorder, Recording
from lab.telemetry.session import Family, Outcome, run_session

# The family modules by spec kind, imported on first use (a registry, as entry points are):
# `lab list`, `lab show` and the triage bookkeeping commands then start in under a second
# instead of paying 2-4 s for torch and scipy. tests/test_architecture.py holds these
# names to the same layer rules as an import statement.
FAMILY_MODULES = {"training": "lab.training.run", "inference": "lab.serving.run", "generative": "lab.generative.run"}


def family_of(spec) -> Family:
    # Ctrl-C or SIGTERM in the middle of these imports (torch: seconds) broke them: torch swallowed
    # the interrupt and the run went on, or failed later (ImportError, RecursionError), or aborted
    # (measured by interrupting `lab run` at 10 ms steps). Held back until the import is complete,
    # the signal is delivered right after it and stops the command cleanly (status 130 or 143).
    with _stop_signals_held():
        return importlib.import_module(FAMILY_MODULES[spec.kind]).FAMILY


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])  # now, to the handler in place (lab.cli's: a clean stop)


def run(spec, **kwargs) -> Outcome:
    """Run a scenario of any kind (keyword arguments: lab.telemetry.session.run_session's)."""
    return run_session(spec, family_of(spec), **kwargs)


def first_signals(spec, result) -> dict[str, dict]:
    """Each failure signature the run reached, with when: {signature: {at, unit, elapsed_s}}."""
    return family_of(spec).first_signals(result)


def record_run(spec, path: Path | None = None, *, seed: int = 0, speed: float = 1.0,
               quiet: bool = True, live: bool | None = None, console_stream=None) -> tuple[Outcome, Recording]:
    """Run a scenario flat out and record its series on the paced clock; write it to `path`.

    Training scenarios count steps, inference scenarios requests (Recording.steps).
    """
    reader = InMemoryMetricReader()
    recorder = Recorder(reader, spec, seed, speed)
    outcome = run(spec, seed=seed, fast=True, speed=speed, telemetry="off", quiet=quiet, live=live,
                  extra_observers=[recorder], telemetry_kwargs={"metric_readers": [reader]},
                  console_stream=console_stream)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(recorder.recording.to_json())
    return outcome, recorder.recording
