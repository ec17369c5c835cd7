"""Serving signatures: when (if ever) a served stream showed each drift failure the lab teaches.

Each signature is a per-window flag that must hold for SUSTAINED_WINDOWS consecutive
windows (as an alert's `for:` does). Used by the scenario tests, `lab run`'s summary
and the drift benchmark; the alert rules express the same definitions in PromQL.
"""

from __future__ import annotations

import math

from lab.drift import JS_THRESHOLD, PSI_MAJOR
from lab.serve import ServeResult, WindowRecord
from lab.signals import ACCURACY_DROP, ECE_THRESHOLD, SUSTAINED_WINDOWS

FLAGS = {
    # KS on every feature, Bonferroni-adjusted p < 0.05 for at least one: the monitor's decision
    "input_drift": lambda w: w.report.drifted,
    "psi_major": lambda w: w.report.max_psi > PSI_MAJOR,
    "js_drift": lambda w: w.report.max_js > JS_THRESHOLD,
    "output_drift": lambda w: w.output.psi > PSI_MAJOR,
    "accuracy_degraded": lambda w: w.accuracy < w.baseline_accuracy - ACCURACY_DROP,
    "miscalibrated": lambda w: w.ece > ECE_THRESHOLD,
}
SERVE_SIGNATURES = tuple(FLAGS)


def flags(w: WindowRecord) -> dict[str, bool]:
    return {k: bool(f(w)) for k, f in FLAGS.items()}  # NaN accuracy/ECE compares False: no labels yet


def onsets(result: ServeResult, windows: list[WindowRecord] | None = None) -> dict[str, int | None]:
    """First window at which each signature has held for SUSTAINED_WINDOWS windows (None: never)."""
    out: dict[str, int | None] = dict.fromkeys(SERVE_SIGNATURES)
    streak = dict.fromkeys(SERVE_SIGNATURES, 0)
    for w in result.windows if windows is None else windows:
        for k, v in flags(w).items():
            streak[k] = streak[k] + 1 if v else 0
            if out[k] is None and streak[k] >= SUSTAINED_WINDOWS:
                out[k] = w.index
    return out


def tail_onsets(result: ServeResult, last: int) -> dict[str, int | None]:
    """Signatures that hold within the last `last` windows (a fix must end clear)."""
    return onsets(result, result.windows[-last:])


def flag_rates(result: ServeResult) -> dict[str, float]:
    """Share of windows on which each flag was raised (single windows, no persistence)."""
    n = max(len(result.windows), 1)
    return {k: sum(flags(w)[k] for w in result.windows) / n for k in SERVE_SIGNATURES}


def _finite(values):
    return [v for v in values if math.isfinite(v)]


def peaks(result: ServeResult) -> dict[str, float | None]:
    ws = result.windows
    acc = _finite(w.accuracy for w in ws)
    ece = _finite(w.ece for w in ws)
    return {
        "max_psi": max((w.report.max_psi for w in ws), default=None),
        "max_js": max((w.report.max_js for w in ws), default=None),
        "max_drifted_share": max((w.report.drifted_share for w in ws), default=None),
        "max_output_psi": max((w.output.psi for w in ws), default=None),
        "min_accuracy": min(acc) if acc else None,
        "max_ece": max(ece) if ece else None,
    }
