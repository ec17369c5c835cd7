"""Run one scenario with telemetry and the terminal view: what `lab run` does."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lab.config import ScenarioSpec
from lab.console import ConsoleView
from lab.signals import OVERFIT_RATIO_THRESHOLD, overfitting
from lab.signatures import peaks
from lab.telemetry import RunIdentity, Telemetry, otlp_endpoint, streams
from lab.train import Observer, RunResult, Trainer

START_STACK_HINT = "Start the stack with `make up` (docker compose, or native processes without Docker), then run again to stream over OTLP."


@dataclass
class RunOutcome:
    result: RunResult
    identity: RunIdentity
    streamed: bool
    export_errors: int = 0
    summary: dict = field(default_factory=dict)


def summarise(result: RunResult, identity: RunIdentity) -> dict:
    cross = result.first_eval(lambda e: e.ratio > OVERFIT_RATIO_THRESHOLD)
    over = result.first_eval(lambda e: overfitting(e.ratio, e.evals_since_best))
    best = min((e for e in result.evals if math.isfinite(e.val_loss)), key=lambda e: e.val_loss, default=None)
    p = peaks(result)
    return {
        "scenario": result.spec.name, "variant": result.spec.variant, "seed": result.seed,
        "run_id": identity.run_id, "steps": result.steps, "stopped": result.stopped,
        "wall_s": round(result.wall_s, 3), "compute_s": round(result.compute_s, 3),
        "ratio_above_1_3": None if cross is None else {"step": cross.step, "elapsed_s": round(cross.elapsed_s, 3)},
        "overfitting": None if over is None else {"step": over.step, "elapsed_s": round(over.elapsed_s, 3)},
        "max_loss_ratio": p["loss_ratio_val_train"],
        "best_validation": None if best is None else {"step": best.step, "loss": best.val_loss, "accuracy": best.val_acc},
        "max_grad_norm_ratio": p["gradient_norm_ratio"],
        "max_dead_ratio": p["dead_ratio"],
        "expected_alerts": result.spec.alerts,
    }


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


def run_scenario(spec: ScenarioSpec, *, seed: int = 0, fast: bool = False, speed: float = 1.0,
                 telemetry: str = "auto", quiet: bool = False, live: bool | None = None,
                 extra_observers: list[Observer] = (), telemetry_kwargs: dict | None = None,
                 console_stream=None, print_summary: bool = True, instance: str | None = None) -> RunOutcome:
    """telemetry: auto (stream if a collector answers), on (always configure OTLP), off.

    instance overrides service.instance.id (default <host>:<scenario>:<variant>).
    """
    # One thread: a small MLP runs faster on one core and leaves the other to the stack.
    torch.set_num_threads(int(os.environ.get("LAB_TORCH_THREADS", "1")))
    identity = RunIdentity(scenario=spec.name, variant=spec.variant, seed=seed, instance=instance)
    view = ConsoleView(quiet=quiet, live=live, stream=console_stream)
    otlp, endpoint = open_stream(telemetry, view, identity)
    tel = None
    observers: list[Observer] = [view, *extra_observers]
    if otlp or telemetry_kwargs:
        from lab.export import TelemetryObserver

        tel = Telemetry(identity, otlp=otlp, **(telemetry_kwargs or {}))
        observers.insert(0, TelemetryObserver(tel))
    try:
        result = Trainer(spec, seed, fast=fast, speed=speed, observers=observers).run()
    finally:
        if tel is not None:
            tel.shutdown()
    errors = report_export_errors(view, tel, otlp, endpoint)
    summary = summarise(result, identity)
    if not quiet and print_summary:  # practice mode hides it: it names the signature reached
        _print_summary(view, summary, streamed=otlp)
    return RunOutcome(result, identity, otlp, errors, summary)


def _print_summary(view: ConsoleView, s: dict, *, streamed: bool) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['steps']} steps in {s['wall_s']:.1f} s (compute {s['compute_s']:.1f} s).")
    if s["ratio_above_1_3"]:
        c = s["ratio_above_1_3"]
        view.say(f"  validation/training loss first above {OVERFIT_RATIO_THRESHOLD} at step {c['step']} ({c['elapsed_s']:.1f} s); peak {s['max_loss_ratio']:.2f}")
    elif s["max_loss_ratio"] is not None:
        view.say(f"  validation/training loss stayed at or below {OVERFIT_RATIO_THRESHOLD} (peak {s['max_loss_ratio']:.2f})")
    if s["overfitting"]:
        view.say(f"  overfitting signature (ratio > 1.3 and no new best validation loss for 10 evaluations) from step {s['overfitting']['step']}")
    if s["best_validation"]:
        b = s["best_validation"]
        view.say(f"  best validation loss {b['loss']:.4f} (accuracy {b['accuracy']:.3f}) at step {b['step']}")
    if not streamed:
        view.say(f"  Signals were not streamed. {START_STACK_HINT}")


def write_summary(path: Path, outcome: RunOutcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome.summary, indent=2, default=str) + "\n")
