"""The training family as the run session sees it: summary, closing lines, first signals.

`lab run NAME` for a training scenario is lab.telemetry.session.run_session with TRAINING.
"""

from __future__ import annotations

import math

from lab.telemetry.otel import TRAINER_SERVICE, RunIdentity, Telemetry
from lab.telemetry.session import Family, Outcome, run_session
from lab.thresholds import OVERFIT_RATIO_THRESHOLD, OVERFIT_STALL_EVALS
from lab.training.console import ConsoleView
from lab.training.export import TelemetryObserver
from lab.training.loop import RunResult, Trainer
from lab.training.signals import overfitting
from lab.training.signatures import onsets, peaks


def summarise(result: RunResult, identity: RunIdentity) -> dict:
    cross = result.first_eval(lambda e: e.ratio > OVERFIT_RATIO_THRESHOLD)
    over = result.first_eval(lambda e: overfitting(e.ratio, e.evals_since_best))
    best = min((e for e in result.evals if math.isfinite(e.val_loss)), key=lambda e: e.val_loss, default=None)
    p = peaks(result)
    return {
        "scenario": result.spec.name, "variant": result.spec.variant, "seed": result.seed,
        "run_id": identity.run_id, "steps": result.steps, "stopped": result.stopped,
        "wall_s": round(result.wall_s, 3), "compute_s": round(result.compute_s, 3),
        "loss_ratio_threshold": OVERFIT_RATIO_THRESHOLD,
        "loss_ratio_above_threshold": None if cross is None else {"step": cross.step, "elapsed_s": round(cross.elapsed_s, 3)},
        "overfitting": None if over is None else {"step": over.step, "elapsed_s": round(over.elapsed_s, 3)},
        "max_loss_ratio": p["loss_ratio_val_train"],
        "best_validation": None if best is None else {"step": best.step, "loss": best.val_loss, "accuracy": best.val_acc},
        "max_grad_norm_ratio": p["gradient_norm_ratio"],
        "max_dead_ratio": p["dead_ratio"],
        "expected_alerts": result.spec.alerts,
    }


def print_summary(view: ConsoleView, s: dict) -> None:
    view.say(f"\n[bold]Run {s['stopped']}[/]: {s['steps']} steps in {s['wall_s']:.1f} s (compute {s['compute_s']:.1f} s).")
    if s["loss_ratio_above_threshold"]:
        c = s["loss_ratio_above_threshold"]
        view.say(f"  validation/training loss first above {OVERFIT_RATIO_THRESHOLD} at step {c['step']} ({c['elapsed_s']:.1f} s); peak {s['max_loss_ratio']:.2f}")
    elif s["max_loss_ratio"] is not None:
        view.say(f"  validation/training loss stayed at or below {OVERFIT_RATIO_THRESHOLD} (peak {s['max_loss_ratio']:.2f})")
    if s["overfitting"]:
        view.say(f"  overfitting signature (ratio > {OVERFIT_RATIO_THRESHOLD} and no new best validation loss for "
                 f"{OVERFIT_STALL_EVALS} evaluations) from step {s['overfitting']['step']}")
    if s["best_validation"]:
        b = s["best_validation"]
        view.say(f"  best validation loss {b['loss']:.4f} (accuracy {b['accuracy']:.3f}) at step {b['step']}")


def first_signals(result: RunResult) -> dict[str, dict]:
    """Each failure signature the run reached, with when: {signature: {at, unit, elapsed_s}}."""
    out: dict[str, dict] = {}
    for sig, step in onsets(result).items():
        if step is not None:
            # Seconds from the run's start: from the first evaluation at or after the onset step.
            ev = next((e for e in result.evals if e.step >= step), None)
            out[sig] = {"at": step, "unit": "step", "elapsed_s": None if ev is None else round(ev.elapsed_s, 2)}
    return out


def _otel_observer(tel: Telemetry, spec, *, fast: bool, otlp: bool) -> TelemetryObserver:
    return TelemetryObserver(tel)


TRAINING = Family(kind="training", service_name=TRAINER_SERVICE, loop=Trainer, console=ConsoleView,
                  otel_observer=_otel_observer, summarise=summarise, print_summary=print_summary,
                  first_signals=first_signals)


def run_training(spec, **kwargs) -> Outcome:
    """A training scenario through the run session (keyword arguments: run_session's)."""
    return run_session(spec, TRAINING, **kwargs)
