"""Serving signatures: when (if ever) a served stream showed each failure the lab teaches.

Each signature is a per-window flag that must hold for SUSTAINED_WINDOWS consecutive
windows (as an alert's `for:` does). Used by the scenario tests, `lab run`'s summary,
practice mode and the drift benchmark; the alert rules express the same definitions in
PromQL; thresholds live in lab/thresholds.py.
"""

from __future__ import annotations

import math

from lab.serving.loop import ServeResult, WindowRecord
from lab.thresholds import (
    ACCURACY_DROP,
    ECE_THRESHOLD,
    ERROR_BUDGET,
    JS_THRESHOLD,
    KS_ALPHA,
    LATENCY_BUDGET,
    LATENCY_OBJECTIVE_S,
    PSI_MAJOR,
    SUSTAINED_WINDOWS,
)

FLAGS = {
    # KS on every feature, adjusted p < KS_ALPHA for at least one: the monitor's decision
    "input_drift": lambda w: w.report.drifted,
    "psi_major": lambda w: w.report.max_psi > PSI_MAJOR,
    "js_drift": lambda w: w.report.max_js > JS_THRESHOLD,
    "output_drift": lambda w: w.output.psi > PSI_MAJOR,
    "accuracy_degraded": lambda w: w.accuracy < w.baseline_accuracy - ACCURACY_DROP,
    "miscalibrated": lambda w: w.ece > ECE_THRESHOLD,
    # more of the window's requests answered later than the objective than its budget allows
    "latency_slo": lambda w: w.slow_share > LATENCY_BUDGET,
    # more of the window's requests failed than the error budget allows
    "error_rate": lambda w: w.error_share > ERROR_BUDGET,
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


# What each signature means, for the run summary.
LABELS = {
    "input_drift": f"input drift (KS, adjusted p < {KS_ALPHA} on a feature)",
    "psi_major": f"PSI above {PSI_MAJOR} on a feature",
    "js_drift": f"Jensen-Shannon distance above {JS_THRESHOLD} on a feature",
    "output_drift": f"confidence distribution PSI above {PSI_MAJOR}",
    "accuracy_degraded": f"accuracy more than {ACCURACY_DROP} below baseline",
    "miscalibrated": f"calibration error above {ECE_THRESHOLD}",
    "latency_slo": f"more than {LATENCY_BUDGET:.0%} of requests slower than {LATENCY_OBJECTIVE_S:g} s",
    "error_rate": f"more than {ERROR_BUDGET:.0%} of requests failed",
}


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
        "max_slow_share": max((w.slow_share for w in ws), default=None),
        "max_error_rate": max((w.error_share for w in ws), default=None),
    }


# Each signature's signal in peaks() and the threshold it is judged against (None: a decision,
# not one number: the KS test's adjusted p-value on any feature; accuracy: the run's own baseline).
PEAK_OF = {
    "input_drift": ("max_drifted_share", None),
    "psi_major": ("max_psi", PSI_MAJOR),
    "js_drift": ("max_js", JS_THRESHOLD),
    "output_drift": ("max_output_psi", PSI_MAJOR),
    "accuracy_degraded": ("min_accuracy", None),
    "miscalibrated": ("max_ece", ECE_THRESHOLD),
    "latency_slo": ("max_slow_share", LATENCY_BUDGET),
    "error_rate": ("max_error_rate", ERROR_BUDGET),
}


def reached(result: ServeResult) -> list[dict]:
    """Every signature the stream reached, in order of onset: the `signatures` list of the run summary.

    The shape of lab/training/signatures.py's: {name, at (window), unit, elapsed_s (wall seconds at
    the end of that window), paced_s (the same on the paced clock at speed 1), peak {signal, value,
    threshold}}; accuracy's threshold is the run's baseline minus ACCURACY_DROP.
    """
    p = peaks(result)
    stream = result.spec.stream
    out = []
    for sig, w in onsets(result).items():
        if w is None:
            continue
        rec = next((r for r in result.windows if r.index == w), None)
        key, threshold = PEAK_OF[sig]
        if sig == "accuracy_degraded" and result.baseline_accuracy is not None:
            threshold = round(result.baseline_accuracy - ACCURACY_DROP, 4)
        out.append({"name": sig, "at": w, "unit": "window", "elapsed_s": None if rec is None else round(rec.elapsed_s, 2),
                    "paced_s": round((w + 1) * stream.window_size / stream.requests_per_second, 1),
                    "peak": {"signal": key, "value": p[key], "threshold": threshold}})
    return sorted(out, key=lambda s: s["at"])
