"""Failure signatures: when (if ever) a run showed each failure the lab teaches.

Used by the scenario tests (every fault reaches its own signature; healthy runs
and fixes reach none), by the run summary, by practice mode and by
`python -m lab.dev.calibrate`. The alert rules express the same definitions in PromQL;
thresholds live in lab/thresholds.py.
"""

from __future__ import annotations

import math

from lab.thresholds import (
    DEAD_RATIO_THRESHOLD,
    DEAD_SUSTAINED_EVALS,
    GRAD_SPIKE_WARNING,
    LOSS_SPIKE_THRESHOLD,
    STALL_AFTER_PROGRESS,
    STALL_LOSS_FRACTION,
)
from lab.training.loop import RunResult
from lab.training.signals import overfitting

SIGNATURES = ("overfitting", "gradient_spike", "loss_spike", "dead_units", "stalled", "diverged")


def _peak(values) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else None


def onsets(result: RunResult) -> dict[str, int | None]:
    """First step at which each signature holds (None: never)."""
    out: dict[str, int | None] = dict.fromkeys(SIGNATURES)
    e0 = result.evals[0] if result.evals else None
    streak = 0
    best_train = math.inf
    planned = result.planned_steps or max(result.steps, 1)
    for e in result.evals:
        if out["overfitting"] is None and overfitting(e.ratio, e.evals_since_best):
            out["overfitting"] = e.step
        dead = [d for d in e.dead_ratio.values() if math.isfinite(d)]
        streak = streak + 1 if dead and max(dead) > DEAD_RATIO_THRESHOLD else 0
        if out["dead_units"] is None and streak >= DEAD_SUSTAINED_EVALS:
            out["dead_units"] = e.step
        if math.isfinite(e.train_loss):
            best_train = min(best_train, e.train_loss)
        if (out["stalled"] is None and e0 is not None and e.step / planned >= STALL_AFTER_PROGRESS
                and best_train >= STALL_LOSS_FRACTION * e0.train_loss):
            out["stalled"] = e.step
    for i, (g, lr_, loss) in enumerate(zip(result.grad_ratios, result.loss_ratios, result.losses), start=1):
        if out["gradient_spike"] is None and g > GRAD_SPIKE_WARNING:
            out["gradient_spike"] = i
        if out["loss_spike"] is None and lr_ > LOSS_SPIKE_THRESHOLD:
            out["loss_spike"] = i
        if out["diverged"] is None and not math.isfinite(loss):
            out["diverged"] = i
    return out


def peaks(result: RunResult) -> dict[str, float | None]:
    """The largest value each signature's signal reached (its margin to the threshold)."""
    return {
        "loss_ratio_val_train": _peak(e.ratio for e in result.evals),
        "gradient_norm_ratio": _peak(result.grad_ratios),
        "batch_loss_ratio": _peak(result.loss_ratios),
        "dead_ratio": _peak(d for e in result.evals for d in e.dead_ratio.values()),
        "best_train_loss_fraction": (min((e.train_loss for e in result.evals if math.isfinite(e.train_loss)), default=math.nan)
                                     / result.evals[0].train_loss) if result.evals else None,
        "nonfinite_steps": float(sum(not math.isfinite(x) for x in result.losses)),
    }
