"""Every scenario family, by the `kind` of its spec: what `lab run`, recording and practice mode dispatch on.

A family (lab/training, lab/serving) is a spec module, a loop reporting through the one
observer protocol, an OTel observer, a console view and signature detectors, packed in a
lab.telemetry.session.Family record. Adding a family: add its record here.
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from lab.serving.run import SERVING
from lab.telemetry.record import Recorder, Recording
from lab.telemetry.session import Family, Outcome, run_session
from lab.training.run import TRAINING

FAMILIES: dict[str, Family] = {f.kind: f for f in (TRAINING, SERVING)}


def family_of(spec) -> Family:
    return FAMILIES[spec.kind]


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
