"""The run skeleton every scenario family shares: what `lab run` does around a loop.

    identity -> terminal view -> stream or not (say so) -> telemetry + its observer
    -> the family's loop -> final export -> export errors (say so) -> summary -> Outcome

A family plugs in through a ``Family`` record (lab/training/run.py, lab/serving/run.py);
lab/families.py knows them all. The session knows no family: it gets the pieces.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from lab.telemetry.observer import Observer
from lab.telemetry.otel import RunIdentity, Telemetry, otlp_endpoint, streams

START_STACK_HINT = "Start the stack with `make up` (docker compose, or native processes without Docker), then run again to stream over OTLP."


@dataclass(frozen=True)
class Family:
    """What a scenario family brings to the session; every callable is the family's own."""

    kind: str  # the spec's `kind`
    service_name: str  # OpenTelemetry service.name of its runs
    loop: Callable[..., Any]  # (spec, seed, *, fast, speed, observers, **loop_kwargs) -> object with .run()
    console: Callable[..., Any]  # (*, quiet, live, stream, verdicts) -> an Observer with say(text)
    otel_observer: Callable[..., Observer]  # (telemetry, spec, *, fast, otlp) -> the family's OTel observer
    summarise: Callable[[Any, RunIdentity], dict]  # (result, identity) -> the JSON summary
    print_summary: Callable[[Any, dict], None]  # (view, summary): the terminal's closing lines
    first_signals: Callable[[Any], dict[str, dict]]  # result -> {signature: {at, unit, elapsed_s}}
    telemetry_options: Callable[[Any], dict] = lambda spec: {}  # extra Telemetry kwargs (e.g. a sampler)
    announce: Callable[[Any], str | None] = lambda spec: None  # a line before the loop starts


@dataclass
class Outcome:
    result: Any  # the loop's result (RunResult, ServeResult)
    identity: RunIdentity
    streamed: bool
    export_errors: int = 0
    summary: dict = field(default_factory=dict)


def open_stream(telemetry: str, view, identity: RunIdentity) -> tuple[bool, str]:
    """Decide whether the run streams over OTLP, and tell the trainee; (streams, endpoint)."""
    endpoint = otlp_endpoint()
    otlp = streams(telemetry, endpoint)
    if telemetry == "auto" and not otlp:
        view.say(f"[yellow]No OpenTelemetry collector at {endpoint}: signals are shown here only.[/] {START_STACK_HINT}")
    elif otlp:
        view.say(f"Streaming metrics, traces and logs over OTLP to {endpoint} (run id {identity.run_id}).")
    return otlp, endpoint


def report_export_errors(view, tel: Telemetry | None, otlp: bool, endpoint: str) -> int:
    """Say once how many exports failed (a down collector never crashes a run); the count."""
    errors = tel.export_errors.count if tel else 0
    if otlp and errors:
        view.say(f"[yellow]{errors} telemetry exports failed (last: {tel.export_errors.last}); the run itself was not affected.[/] "
                 f"Check the collector at {endpoint}.")
    return errors


def run_session(spec, family: Family, *, seed: int = 0, fast: bool = False, speed: float = 1.0,
                telemetry: str = "auto", quiet: bool = False, live: bool | None = None, verdicts: bool = True,
                extra_observers: list[Observer] = (), telemetry_kwargs: dict | None = None, console_stream=None,
                print_summary: bool = True, instance: str | None = None, loop_kwargs: dict | None = None) -> Outcome:
    """Run one scenario of `family` with telemetry and the terminal view.

    telemetry: auto (stream if a collector answers), on (always configure OTLP), off.
    verdicts: the view names diagnoses (off in practice mode, where they are the answer).
    instance overrides service.instance.id (default <host>:<scenario>:<variant>).
    """
    # One thread: the lab's small models run faster on one core and leave the other to the stack.
    torch.set_num_threads(int(os.environ.get("LAB_TORCH_THREADS", "1")))
    identity = RunIdentity(scenario=spec.name, variant=spec.variant, seed=seed, service_name=family.service_name,
                           instance=instance)
    view = family.console(quiet=quiet, live=live, stream=console_stream, verdicts=verdicts)
    otlp, endpoint = open_stream(telemetry, view, identity)
    tel = None
    observers: list[Observer] = [view, *extra_observers]
    if otlp or telemetry_kwargs:
        tel = Telemetry(identity, otlp=otlp, **{**family.telemetry_options(spec), **(telemetry_kwargs or {})})
        observers.insert(0, family.otel_observer(tel, spec, fast=fast, otlp=otlp))
    announcement = family.announce(spec)
    if announcement:
        view.say(announcement)
    try:
        result = family.loop(spec, seed, fast=fast, speed=speed, observers=observers, **(loop_kwargs or {})).run()
    finally:
        if tel is not None:
            tel.shutdown()
    errors = report_export_errors(view, tel, otlp, endpoint)
    summary = family.summarise(result, identity)
    if not quiet and print_summary:  # practice mode hides it: it names what was detected
        family.print_summary(view, summary)
        if not otlp:
            view.say(f"  Signals were not streamed. {START_STACK_HINT}")
    return Outcome(result, identity, otlp, errors, summary)


def write_summary(path: Path, outcome: Outcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome.summary, indent=2, default=str) + "\n")
