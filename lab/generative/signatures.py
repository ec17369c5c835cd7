"""The support bot's signatures: when (if ever) its stream showed each failure the lab teaches.

Each signature is a per-window flag that must hold for SUSTAINED_WINDOWS consecutive windows
(as an alert's `for:` does). Thresholds and where they come from: lab/thresholds.py.
"""

from __future__ import annotations

from lab.generative.loop import BotResult, BotWindow
from lab.thresholds import (
    COST_PER_1K_REQUESTS_USD,
    HALLUCINATION_RATE_THRESHOLD,
    KS_ALPHA,
    LENGTH_FINISH_SHARE,
    OOV_RATE_THRESHOLD,
    PSI_MAJOR,
    QUALITY_SLI_OBJECTIVE,
    RUN_SERIES_LIMIT,
    SUSTAINED_WINDOWS,
)

FLAGS = {
    # accuracy on the latest labelled answers below the quality objective (NaN: too few labels, no flag)
    "quality_slo": lambda w: w.accuracy < QUALITY_SLI_OBJECTIVE,
    "hallucination": lambda w: w.hallucination_rate > HALLUCINATION_RATE_THRESHOLD,
    # today's prompts use words the bot never learned
    "input_drift": lambda w: w.oov_rate > OOV_RATE_THRESHOLD,
    # the answers' confidences no longer look like the reference window's (KS)
    "confidence_drift": lambda w: w.confidence_ks_pvalue < KS_ALPHA,
    # prompts much longer than the training prompts (PSI of the length, the usual "major shift")
    "prompt_bloat": lambda w: w.length_psi > PSI_MAJOR,
    "runaway_generation": lambda w: w.length_share > LENGTH_FINISH_SHARE,
    "cost": lambda w: 1000 * w.cost_usd / w.requests > COST_PER_1K_REQUESTS_USD,
    # the run's metrics hold far more series than its budget: an attribute took per-request values
    "series_growth": lambda w: w.metric_series > RUN_SERIES_LIMIT,
    # customers' contact details in span content that reaches the trace backend (any is too many)
    "pii_in_telemetry": lambda w: w.pii_to_backends > 0,
}
BOT_SIGNATURES = tuple(FLAGS)
LABELS = {"quality_slo": "accuracy below the quality objective", "hallucination": "hallucinations",
          "input_drift": "unknown words in prompts", "confidence_drift": "confidence drifted",
          "prompt_bloat": "prompts grew", "runaway_generation": "answers cut at max_tokens",
          "cost": "cost over budget", "series_growth": "metric series exploded",
          "pii_in_telemetry": "personal data sent to the trace backend"}


def flags(w: BotWindow) -> dict[str, bool]:
    return {k: bool(f(w)) for k, f in FLAGS.items()}


def onsets(result: BotResult) -> dict[str, int | None]:
    """First window at which each signature has held for SUSTAINED_WINDOWS windows (None: never)."""
    out: dict[str, int | None] = dict.fromkeys(BOT_SIGNATURES)
    streak = dict.fromkeys(BOT_SIGNATURES, 0)
    for w in result.windows:
        for k, v in flags(w).items():
            streak[k] = streak[k] + 1 if v else 0
            if out[k] is None and streak[k] >= SUSTAINED_WINDOWS:
                out[k] = w.index
    return out


def reached(result: BotResult) -> set[str]:
    return {k for k, at in onsets(result).items() if at is not None}
