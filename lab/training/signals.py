"""Per-step signal bookkeeping of the training loop: rolling baselines, interval peaks, the gap.

The numbers they are judged against live in lab/thresholds.py.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from lab.thresholds import GRAD_BASELINE_MIN_STEPS, GRAD_BASELINE_WINDOW, OVERFIT_RATIO_THRESHOLD, OVERFIT_STALL_EVALS


class RollingMean:
    """Mean of the last `window` finite values, excluding the value being judged."""

    def __init__(self, window: int = GRAD_BASELINE_WINDOW, min_count: int = GRAD_BASELINE_MIN_STEPS):
        self.values: deque[float] = deque(maxlen=window)
        self.min_count = min_count
        self.total = 0.0

    @property
    def ready(self) -> bool:
        return len(self.values) >= self.min_count

    @property
    def mean(self) -> float:
        return self.total / len(self.values) if self.values else math.nan

    def judge(self, value: float) -> tuple[float, float]:
        """(baseline, value / baseline) against the previous values, then remember value.

        Both are NaN until the window holds min_count values; the ratio is NaN for a zero baseline.
        """
        base = self.mean if self.ready else math.nan
        ratio = value / base if base > 0 else math.nan
        self.push(value)
        return base, ratio

    def push(self, value: float) -> None:
        if not math.isfinite(value):
            return  # a NaN/inf step must not poison the baseline
        if len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
        self.values.append(value)
        self.total += value


class IntervalPeaks:
    """Highest value of each named quantity since the exporter last read it.

    A gauge sampled once per export interval would miss a spike lasting a few
    steps; this keeps each quantity's peak and hands it to the next collection.
    With no new value since the last read it repeats the last peak so the series
    stays fresh. Only finite values count: the spike that precedes a NaN in the
    same interval is what a divergence looks like on the way, and NaN cannot be
    exported anyway (the non-finite step counter carries the divergence itself).
    One lock for all quantities: a step updates them together (one acquire per step),
    the exporter's thread reads them.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._lock = threading.Lock()
        self._peak: dict[str, float | None] = dict.fromkeys(names)
        self._last_reported: dict[str, float | None] = dict.fromkeys(names)

    def update(self, values: tuple[float, ...]) -> None:
        """One value per name, in the order of `names`."""
        peak = self._peak
        with self._lock:
            for name, value in zip(self.names, values):
                if math.isfinite(value):
                    old = peak[name]
                    if old is None or value > old:
                        peak[name] = value

    def read(self, name: str) -> float | None:
        with self._lock:
            if self._peak[name] is not None:
                self._last_reported[name], self._peak[name] = self._peak[name], None
            return self._last_reported[name]


class OverfitTracker:
    """Validation/training loss ratio and validation loss against its running minimum."""

    def __init__(self) -> None:
        self.best_val = math.inf
        self.best_step: int | None = None
        self.evals_since_best = 0

    def update(self, step: int, train_loss: float, val_loss: float) -> dict[str, float]:
        improved = math.isfinite(val_loss) and val_loss < self.best_val
        if improved:
            self.best_val, self.best_step, self.evals_since_best = val_loss, step, 0
        else:
            self.evals_since_best += 1
        ratio = val_loss / train_loss if train_loss > 0 and math.isfinite(train_loss) else math.nan
        rise = val_loss / self.best_val if math.isfinite(self.best_val) and self.best_val > 0 else math.nan
        return {"ratio": ratio, "rise": rise, "improved": float(improved), "evals_since_best": float(self.evals_since_best)}


def overfitting(ratio: float, evals_since_best: int) -> bool:
    """The overfitting signature: generalisation gap above its threshold while validation has stalled."""
    return ratio > OVERFIT_RATIO_THRESHOLD and evals_since_best >= OVERFIT_STALL_EVALS
