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

from rich.markup import escape

from lab.telemetry.observer import Observer
from lab.telemetry.otel import RunIdentity, Telemetry, collector_probe, default_instance, otlp_endpoint, run_endpoint, streams
from lab.telemetry.retry import BUFFER_SECONDS, CollectorProbe
from lab.telemetry.slots import InstanceSlot

START_STACK_HINT = "Start the stack with `make up` (docker compose, or native processes without Docker), then run again to stream over OTLP."
WAITING_HINT = (f"Start the stack with `make up` (docker compose, or native processes without Docker): this run "
                f"streams from the moment a collector answers, with the last {BUFFER_SECONDS} s it kept.")


@dataclass(frozen=True)
class Family:
    """What a scenario family brings to the session; every callable is the family's own."""

    kind: str  # the spec's `kind`
    service_name: str  # OpenTelemetry service.name of its runs
    loop: Callable[..., Any]  # (spec, seed, *, fast, speed, observers, progress, **loop_kwargs) -> object with .run()
    console: Callable[..., Any]  # (*, quiet, live, stream, verdicts) -> a lab.telemetry.terminal.TerminalView
    otel_observer: Callable[..., Observer]  # (telemetry, spec, *, fast, otlp) -> the family's OTel observer
    summarise: Callable[[Any, RunIdentity], dict]  # (result, identity) -> the JSON summary
    print_summary: Callable[[Any, dict], None]  # (view, summary): the terminal's closing lines
    first_signals: Callable[[Any], dict[str, dict]]  # result -> {signature: {at, unit, elapsed_s}}
    telemetry_options: Callable[[Any], dict] = lambda spec: {}  # extra Telemetry kwargs (e.g. a sampler)


@dataclass
class Outcome:
    result: Any  # the loop's result (RunResult, ServeResult)
    identity: RunIdentity
    streamed: bool
    export_errors: int = 0  # export errors the SDK reported (lab.telemetry.otel.ExportFailureCounter)
    summary: dict = field(default_factory=dict)
    exports_delivered: int = 0  # OTLP exports (metrics, spans, logs) the collector accepted
    exports_failed: int = 0  # OTLP exports that did not reach it
    # From the run's retry buffers (lab/telemetry/retry.py): items sent late after an outage or
    # before the collector appeared, and items lost for good, by kind ("spans": 12, ...).
    telemetry_late: dict[str, int] = field(default_factory=dict)
    telemetry_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def delivered_nothing(self) -> bool:
        """The run streamed, exports were attempted, and not one of them reached the collector."""
        return self.streamed and self.exports_delivered == 0 and (self.exports_failed > 0 or self.export_errors > 0)


def open_stream(telemetry: str, view, identity: RunIdentity,
                endpoint: str | None = None) -> tuple[bool, str, CollectorProbe | None]:
    """Decide whether the run streams over OTLP, and tell the trainee; (streams, endpoint, probe).

    endpoint: where the run sends instead of the OTLP variables' endpoint (otel.run_endpoint: the
    collector's redacting entry point). auto without a collector: the run still sets up OTLP, behind
    a probe that holds every batch until a collector answers (a stack started during the run still gets it)."""
    where = "the collector's redacting entry point " if endpoint else ""
    endpoint = endpoint or otlp_endpoint()
    otlp = streams(telemetry, endpoint)  # auto: one probe of the endpoint
    if telemetry == "auto" and not otlp:
        view.warn(f"No OpenTelemetry collector at {where}{endpoint} yet: signals are shown here. {WAITING_HINT}")
        return True, endpoint, collector_probe(endpoint)
    if otlp:
        view.note(f"Streaming metrics, traces and logs over OTLP to {where}{endpoint} (run id {identity.run_id}).")
    return otlp, endpoint, None


def report_export_errors(view, tel: Telemetry | None, otlp: bool, endpoint: str) -> int:
    """Say once how many exports failed (a down collector never crashes a run), and what the
    retry buffers sent late or lost; the count of failed exports."""
    errors = tel.export_errors.count if tel else 0
    if otlp and errors:
        view.warn(f"{errors} telemetry exports failed (last: {escape(tel.export_errors.last)}); the run itself was not affected. "
                  f"Check the collector at {endpoint}.")
    if tel is not None and otlp:
        if late := tel.buffers.late():
            view.note(f"Sent late, kept in the run's buffer while the collector was away: {_counts(late)}.")
        if dropped := tel.buffers.dropped():
            view.warn(f"Telemetry lost (buffer full, or the collector still away at the end): {_counts(dropped)}.")
    return errors


def _counts(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in by_kind.items())


def _one_torch_thread() -> None:
    """The lab's small models run faster on one core and leave the other to the stack."""
    import torch  # here, not at the top: the CLI imports this module for commands that train nothing

    torch.set_num_threads(int(os.environ.get("LAB_TORCH_THREADS", "1")))


def run_session(spec, family: Family, *, seed: int = 0, fast: bool = False, speed: float = 1.0,
                telemetry: str = "auto", quiet: bool = False, live: bool | None = None, verdicts: bool = True,
                extra_observers: list[Observer] = (), telemetry_kwargs: dict | None = None, console_stream=None,
                print_summary: bool = True, instance: str | None = None, loop_kwargs: dict | None = None) -> Outcome:
    """Run one scenario of `family` with telemetry and the terminal view.

    telemetry: auto (stream if a collector answers), on (always configure OTLP), off.
    verdicts: the view names diagnoses (off in practice mode, where they are the answer).
    instance overrides service.instance.id (default <host>:<scenario>:<variant>, held as an instance
    slot for the run: a concurrent run of the same scenario gets <host>:<scenario>:<variant>:2).
    """
    _one_torch_thread()
    slot = None if instance else InstanceSlot(default_instance(spec.name, spec.variant))
    try:
        return _run(spec, family, instance or slot.instance_id, seed=seed, fast=fast, speed=speed, telemetry=telemetry,
                    quiet=quiet, live=live, verdicts=verdicts, extra_observers=extra_observers,
                    telemetry_kwargs=telemetry_kwargs, console_stream=console_stream, print_summary=print_summary,
                    loop_kwargs=loop_kwargs, shared=slot is not None and slot.number != 1)
    finally:
        if slot is not None:
            slot.release()


def _run(spec, family: Family, instance: str, *, seed: int, fast: bool, speed: float, telemetry: str, quiet: bool,
         live: bool | None, verdicts: bool, extra_observers: list[Observer], telemetry_kwargs: dict | None,
         console_stream, print_summary: bool, loop_kwargs: dict | None, shared: bool) -> Outcome:
    identity = RunIdentity(scenario=spec.name, variant=spec.variant, seed=seed, service_name=family.service_name,
                           instance=instance)
    view = family.console(quiet=quiet, live=live, stream=console_stream, verdicts=verdicts)
    redacting = run_endpoint(spec)  # the spec's collector_redaction: the collector's redacting entry point
    otlp, endpoint, probe = open_stream(telemetry, view, identity, redacting)
    if otlp and shared:
        view.note(f"Another run of {spec.name} ({spec.variant}) is going on this host: this one's series have "
                  f"instance=\"{identity.instance_id}\".")
    tel = None
    observers: list[Observer] = [view, *extra_observers]
    if otlp or telemetry_kwargs:
        tel = Telemetry(identity, otlp=otlp, probe=probe, endpoint=redacting,
                        **{**family.telemetry_options(spec), **(telemetry_kwargs or {})})
        observers.insert(0, family.otel_observer(tel, spec, fast=fast, otlp=otlp))
    try:
        loop = family.loop(spec, seed, fast=fast, speed=speed, observers=observers, progress=view.note, **(loop_kwargs or {}))
        result = loop.run()
    finally:
        if tel is not None:
            tel.shutdown()
    streamed = otlp and (probe is None or probe.appeared_at is not None)
    if probe is not None and streamed:
        view.note(f"A collector appeared {probe.appeared_at - tel.started_at:.0f} s into the run: streamed from then on.")
    errors = report_export_errors(view, tel, streamed, endpoint)
    summary = family.summarise(result, identity)
    if not quiet and print_summary:  # practice mode hides it: it names what was detected
        family.print_summary(view, summary)
        if not streamed:
            view.note(f"  Signals were not streamed. {START_STACK_HINT}")
    delivery = tel.delivery if tel is not None else None
    return Outcome(result, identity, streamed, errors, summary, exports_delivered=delivery.delivered if delivery else 0,
                   exports_failed=delivery.failed if delivery else 0,
                   telemetry_late=tel.buffers.late() if streamed else {},
                   telemetry_dropped=tel.buffers.dropped() if streamed else {})


def write_summary(path: Path, outcome: Outcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome.summary, indent=2, default=str) + "\n")
