"""The metric catalogue: every instrument the lab emits, in one place.

docs/metrics.md is checked against this table by tests/telemetry/test_metric_catalogue.py,
and the end-to-end tests check the Prometheus names against a real Prometheus.
``create`` is the one instrument factory: observers name an entry, never a unit or
a description of their own.
Attributes are bounded: `split` is train|validation, `layer` is a hidden layer's
name (layer1, layer2, ...). Run identity lives in resource attributes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from lab.thresholds import KS_ALPHA, OVERFIT_RATIO_THRESHOLD

# Step-duration buckets (seconds): from a tiny MLP step (~1 ms) to a paced/slow step.
STEP_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

ALLOWED_ATTRIBUTES = {"split": ("train", "validation"), "layer": None}  # None: one value per hidden layer
# Inference and drift (lab/serving): `model` is the served model's name (one per scenario),
# `outcome` ok|error, `feature` one of the model's input feature names (lab.specs.serving.FEATURES).
ALLOWED_ATTRIBUTES.update({"model": None, "outcome": ("ok", "error"), "feature": None})
# Request latency (seconds): a tiny classifier answers in ~50 us; room for a slow host.
REQUEST_DURATION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
# Prediction confidence (max class probability): a binary model's lies in [0.5, 1].
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# The support bot (lab/generative). The OpenTelemetry GenAI conventions' metrics carry their
# attributes: one operation, the lab as provider, one model per scenario, input|output tokens.
# The lab's own ml.genai.* metrics carry `model`, the answer's `finish_reason`, a user
# `rating` and a label's `verdict` (lab.generative.judge's four).
GENAI_OPERATION, GENAI_PROVIDER = "chat", "ml-lab"
ALLOWED_ATTRIBUTES.update({"gen_ai.operation.name": (GENAI_OPERATION,), "gen_ai.provider.name": (GENAI_PROVIDER,),
                           "gen_ai.request.model": None, "gen_ai.response.model": None,
                           "gen_ai.token.type": ("input", "output"), "finish_reason": ("stop", "length"),
                           "rating": ("up", "down"), "pii_type": ("email", "phone", "card"),
                           "verdict": ("correct", "wrong", "hallucination", "unanswered")})
GENAI_ATTRIBUTES = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model")
# The conventions' advisory boundaries for gen_ai.client.token.usage (powers of 4, 1 to 4^13).
TOKEN_USAGE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# Seconds. The conventions advise 10 ms to 82 s for request durations and 1 ms to 10 s for
# time to first token: a hosted model's scale. The lab's bot answers in about a millisecond
# (measured: TTFT p95 ~0.3 ms, request p95 ~0.8 ms, 2 cores), so on those boundaries every
# request would fall in the first bucket; these start at 50 us and end where the conventions'
# begin, so a percentile means something. Same for the time per output token (~80 us).
GENAI_DURATION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
GENAI_TOKEN_TIME_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01)
# exp(mean token log-probability): from a forced run-on (~0.03) to a sure answer (~1).
GENAI_CONFIDENCE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class Instrument:
    name: str  # OpenTelemetry instrument name
    kind: Literal["gauge", "counter", "histogram"]
    unit: str
    attributes: tuple[str, ...]
    prometheus: str  # series name after OTLP -> Prometheus translation (UnderscoreEscapingWithSuffixes)
    signal: str  # the classic signal name from the ML literature
    cadence: str
    description: str
    family: str = "training"  # training | inference (lab/serving) | generative | collector (made by the collector)
    buckets: tuple[float, ...] = ()  # histograms: explicit bucket boundaries


def _inference(*args, buckets: tuple[float, ...] = ()) -> Instrument:
    return Instrument(*args, family="inference", buckets=buckets)


def _generative(*args, buckets: tuple[float, ...] = ()) -> Instrument:
    return Instrument(*args, family="generative", buckets=buckets)


def _collector(*args) -> Instrument:
    """Made by the OpenTelemetry Collector, not by any run's SDK (otel-collector/config.yaml: the count/pii
    connector): no run creates it, and it is in no run's series budget."""
    return Instrument(*args, family="collector")


CATALOGUE: tuple[Instrument, ...] = (
    Instrument("ml.training.loss", "gauge", "", ("split",), "ml_training_loss",
               "training_loss / validation_loss", "every evaluation",
               "Loss at the latest evaluation: split=train is the mean minibatch loss since the previous "
               "evaluation, split=validation the loss on the whole fixed validation set."),
    Instrument("ml.training.loss_ratio", "gauge", "1", (), "ml_training_loss_ratio",
               "generalization_gap (validation_loss / training_loss)", "every evaluation",
               f"Validation loss divided by training loss; above {OVERFIT_RATIO_THRESHOLD} the model generalises worse than it fits."),
    Instrument("ml.training.validation.loss_rise", "gauge", "1", (), "ml_training_validation_loss_rise_ratio",
               "validation_loss_vs_best", "every evaluation",
               "Validation loss divided by its running minimum in this run; 1 while it improves, above 1.1 when "
               "validation is getting worse."),
    Instrument("ml.training.validation.evals_since_best", "gauge", "{evaluation}", (),
               "ml_training_validation_evals_since_best", "early_stopping_patience", "every evaluation",
               "Evaluations since validation loss last reached a new minimum (what early stopping counts)."),
    Instrument("ml.training.accuracy", "gauge", "1", ("split",), "ml_training_accuracy_ratio",
               "training_accuracy / validation_accuracy", "every evaluation",
               "Accuracy at the latest evaluation: split=train over the minibatches since the previous "
               "evaluation, split=validation on the whole validation set."),
    Instrument("ml.training.batch_loss", "gauge", "", (), "ml_training_batch_loss",
               "minibatch_loss (peak)", "every step, peak per export interval",
               "Highest minibatch training loss since the previous export; shows loss spikes that a sampled "
               "value would miss."),
    Instrument("ml.training.batch_loss_ratio", "gauge", "1", (), "ml_training_batch_loss_ratio",
               "loss_spike (minibatch loss / rolling mean, peak)", "every step, peak per export interval",
               "Highest ratio of a minibatch loss to the mean of the previous 50 minibatch losses since the previous "
               "export; a loss spike shows as a jump far above 1."),
    Instrument("ml.training.gradient.norm", "gauge", "", (), "ml_training_gradient_norm",
               "gradient_norm (peak)", "every step, peak per export interval",
               "Highest global L2 gradient norm (before clipping) since the previous export."),
    Instrument("ml.training.gradient.norm.baseline", "gauge", "", (), "ml_training_gradient_norm_baseline",
               "gradient_norm_rolling_mean", "every step, latest value",
               "Mean global gradient norm over the previous 50 steps (the rolling baseline)."),
    Instrument("ml.training.gradient.norm_ratio", "gauge", "1", (), "ml_training_gradient_norm_ratio",
               "gradient_norm / rolling mean (peak)", "every step, peak per export interval",
               "Highest ratio of a step's gradient norm to the mean of the previous 50 steps since the previous "
               "export; 5x means instability, 10x an explosion."),
    Instrument("ml.training.learning_rate", "gauge", "", (), "ml_training_learning_rate",
               "learning_rate", "every step, peak per export interval",
               "Highest learning rate applied since the previous export (so a short burst is not missed)."),
    Instrument("ml.training.activation.mean", "gauge", "", ("layer",), "ml_training_activation_mean",
               "activation_mean", "every evaluation",
               "Mean output of a hidden layer's activation over the fixed probe batch (the validation inputs); not exported while "
               "the layer produces non-finite values (see NaN above)."),
    Instrument("ml.training.activation.dead_ratio", "gauge", "1", ("layer",), "ml_training_activation_dead_ratio",
               "dead_neuron_ratio", "every evaluation",
               "Share of a hidden layer's units whose pre-activation is <= 0 for every probe sample (dead for "
               "ReLU; saturated-negative for LeakyReLU); not exported while non-finite."),
    Instrument("ml.training.progress", "gauge", "1", (), "ml_training_progress_ratio",
               "progress", "every step, latest value",
               "Completed steps divided by the steps the run plans; 1 at the end."),
    Instrument("ml.training.best_loss", "gauge", "1", (), "ml_training_best_loss_ratio",
               "loss_improvement (best / initial training loss)", "every evaluation",
               "Best training loss so far in this run divided by the training loss at the first evaluation; 1 "
               "at the start, falls as the model learns. Still at or above 0.9 a quarter into the run means "
               "training has stalled."),
    Instrument("ml.training.running", "gauge", "", (), "ml_training_running",
               "run_state", "every export",
               "1 while the run is in progress, 0 in the run's final export; a 1 that stops being refreshed "
               "means the run's telemetry stopped arriving."),
    Instrument("ml.training.steps", "counter", "{step}", (), "ml_training_steps_total",
               "step", "every step", "Optimiser steps taken."),
    Instrument("ml.training.epochs", "counter", "{epoch}", (), "ml_training_epochs_total",
               "epoch", "every epoch", "Epochs completed."),
    Instrument("ml.training.samples", "counter", "{sample}", (), "ml_training_samples_total",
               "throughput", "every step", "Training samples processed (rate() gives samples per second)."),
    Instrument("ml.training.nonfinite_steps", "counter", "{step}", (), "ml_training_nonfinite_steps_total",
               "divergence (NaN/inf)", "every step",
               "Steps whose loss or gradient norm was NaN or infinite."),
    Instrument("ml.training.step.duration", "histogram", "s", (), "ml_training_step_duration_seconds",
               "step_time", "every step",
               "Wall time of one optimiser step (forward, backward, update), excluding pacing sleeps.",
               buckets=STEP_DURATION_BUCKETS),
) + (
    _inference("ml.inference.requests", "counter", "{request}", ("model", "outcome"), "ml_inference_requests_total",
     "request_rate / error_rate", "every request",
     "Prediction requests served; outcome=error for requests rejected by input validation (a missing value)."),
    _inference("ml.inference.request.duration", "histogram", "s", ("model", "outcome"), "ml_inference_request_duration_seconds",
     "latency", "every request", "Wall time of one request: input validation, its wait in the server's batch queue (if batching) and the model's forward pass.", buckets=REQUEST_DURATION_BUCKETS),
    _inference("ml.inference.confidence", "histogram", "1", ("model",), "ml_inference_confidence",
     "prediction_confidence", "every request", "The model's confidence in its prediction (highest class probability).", buckets=CONFIDENCE_BUCKETS),
    _inference("ml.inference.labels", "counter", "{label}", ("model",), "ml_inference_labels_total",
     "delayed_labels", "every label", "True labels received for earlier predictions (they arrive with a delay)."),
    _inference("ml.inference.accuracy", "gauge", "1", ("model",), "ml_inference_accuracy_ratio",
     "accuracy (delayed labels)", "every drift window",
     "Accuracy of the current model on the latest labelled requests (stream.accuracy_window, 500); absent until 100 "
     "labels of the current model arrived."),
    _inference("ml.inference.accuracy.baseline", "gauge", "1", ("model",), "ml_inference_accuracy_baseline_ratio",
     "baseline_accuracy", "every drift window",
     "Accuracy of the current model on held-out reference data, measured when it was trained."),
    _inference("ml.inference.calibration_error", "gauge", "1", ("model",), "ml_inference_calibration_error_ratio",
     "expected_calibration_error", "every drift window",
     "Expected calibration error (10 equal-width confidence bins) on the same labelled requests as accuracy."),
    _inference("ml.inference.retrains", "counter", "{retrain}", ("model",), "ml_inference_retrains_total",
     "retraining", "every retrain", "Times the model was retrained on recent labelled requests and swapped in."),
    _inference("ml.drift.psi", "gauge", "", ("feature",), "ml_drift_psi", "PSI (population stability index)", "every drift window",
     "PSI of the latest window against the reference on the reference's decile bins (empty bins floored at 1e-4)."),
    _inference("ml.drift.ks.statistic", "gauge", "", ("feature",), "ml_drift_ks_statistic", "Kolmogorov-Smirnov statistic",
     "every drift window", "Largest gap between the window's and the reference's empirical distribution functions."),
    _inference("ml.drift.ks.p_value", "gauge", "1", ("feature",), "ml_drift_ks_p_value_ratio", "KS p-value (adjusted)",
     "every drift window",
     f"Two-sample KS p-value adjusted for testing every feature (Bonferroni by default); below {KS_ALPHA:g} the feature drifted."),
    _inference("ml.drift.kl_divergence", "gauge", "", ("feature",), "ml_drift_kl_divergence", "KL divergence",
     "every drift window", "KL divergence of the window from the reference, in nats, on the PSI bins (empty bins floored at 1e-4)."),
    _inference("ml.drift.js_distance", "gauge", "", ("feature",), "ml_drift_js_distance", "Jensen-Shannon distance",
     "every drift window", "Jensen-Shannon distance (base 2, in [0, 1]) between window and reference on the PSI bins."),
    _inference("ml.drift.drifted_share", "gauge", "1", (), "ml_drift_drifted_share_ratio", "share of drifted features",
     "every drift window", f"Share of the model's features whose adjusted KS p-value is below {KS_ALPHA:g} in the latest window."),
    _inference("ml.drift.output.psi", "gauge", "", (), "ml_drift_output_psi", "prediction drift (PSI)", "every drift window",
     "PSI of the model's confidence in the latest window against its confidence on held-out reference data."),
    _inference("ml.drift.output.js_distance", "gauge", "", (), "ml_drift_output_js_distance", "prediction drift (Jensen-Shannon)",
     "every drift window", "Jensen-Shannon distance of the same confidence distributions."),
    _inference("ml.inference.running", "gauge", "", (), "ml_inference_running", "run_state", "every export",
     "1 while the serving run is in progress, 0 in the run's final export; a 1 that stops being refreshed means "
     "the run's telemetry stopped arriving."),
    _inference("ml.drift.windows", "counter", "{window}", (), "ml_drift_windows_total", "drift_window", "every drift window",
     "Drift windows evaluated."),
    # -- the support bot: the OpenTelemetry GenAI conventions' metrics ------------------
    _generative("gen_ai.client.token.usage", "histogram", "{token}", (*GENAI_ATTRIBUTES, "gen_ai.token.type"),
                "gen_ai_client_token_usage", "token_usage (input / output)", "every request",
                "Tokens of one request, by the bot's own tokenizer: the prompt (gen_ai.token.type=input, its end "
                "marker included) and the answer (output, the end token included when the model stopped on it).",
                buckets=TOKEN_USAGE_BUCKETS),
    _generative("gen_ai.client.operation.duration", "histogram", "s", GENAI_ATTRIBUTES,
                "gen_ai_client_operation_duration_seconds", "latency (client)", "every request",
                "Wall time of one request as its caller sees it: prompt arrival to the last output token.",
                buckets=GENAI_DURATION_BUCKETS),
    _generative("gen_ai.server.request.duration", "histogram", "s", GENAI_ATTRIBUTES,
                "gen_ai_server_request_duration_seconds", "latency (server)", "every request",
                "Time the model server spent on one request, from reading the prompt to the last output token.",
                buckets=GENAI_DURATION_BUCKETS),
    _generative("gen_ai.server.time_to_first_token", "histogram", "s", GENAI_ATTRIBUTES,
                "gen_ai_server_time_to_first_token_seconds", "time_to_first_token", "every request",
                "Prompt arrival to the first output token: the prompt's prefill pass and one decoding step.",
                buckets=GENAI_DURATION_BUCKETS),
    _generative("gen_ai.server.time_per_output_token", "histogram", "s", GENAI_ATTRIBUTES,
                "gen_ai_server_time_per_output_token_seconds", "time_per_output_token", "every request",
                "Decoding time per output token after the first: (duration - time to first token) / (output tokens - 1); "
                "not recorded for a one-token answer.", buckets=GENAI_TOKEN_TIME_BUCKETS),
    # -- the support bot: the lab's own --------------------------------------------------
    _generative("ml.genai.requests", "counter", "{request}", ("model", "finish_reason"), "ml_genai_requests_total",
                "request_rate / finish_reason share", "every request",
                "Answers served, by finish reason: stop (the model's end token) or length (cut at max_tokens)."),
    _generative("ml.genai.cost.usd", "counter", "{USD}", ("model",), "ml_genai_cost_usd_total", "cost", "every request",
                "What the answers would cost at the scenario's price per 1,000 input and output tokens, in US dollars."),
    _generative("ml.genai.confidence", "histogram", "1", ("model",), "ml_genai_confidence", "answer_confidence",
                "every request", "exp(mean token log-probability) of an answer: the geometric mean probability the "
                "model gave its own tokens.", buckets=GENAI_CONFIDENCE_BUCKETS),
    _generative("ml.genai.labels", "counter", "{label}", ("model", "verdict"), "ml_genai_labels_total",
                "labelled_samples / quality SLI", "every label",
                "Answers judged against the catalogue (a share of them, arriving with a delay), by verdict: correct, "
                "wrong, hallucination, unanswered. The quality SLO's SLI is the correct share of them."),
    _generative("ml.genai.quality.accuracy", "gauge", "1", ("model",), "ml_genai_quality_accuracy_ratio",
                "accuracy (labelled samples)", "every window",
                "Share of the latest labelled answers (stream.quality_window) that state the fact asked for; absent "
                "until 50 labels arrived."),
    _generative("ml.genai.quality.hallucination_rate", "gauge", "1", ("model",),
                "ml_genai_quality_hallucination_rate_ratio", "hallucination_rate", "every window",
                "Share of the same labelled answers that assert something false in the catalogue (a price, warranty, "
                "feature or category the product does not have)."),
    _generative("ml.genai.feedback", "counter", "{rating}", ("model", "rating"), "ml_genai_feedback_total",
                "user_feedback (complaints)", "every rating",
                "User ratings of answers, thumbs up or down (rating=down: a complaint); they arrive with a delay."),
    _generative("ml.genai.drift.token_js_distance", "gauge", "", (), "ml_genai_drift_token_js_distance",
                "input drift (Jensen-Shannon, prompt tokens)", "every window",
                "Jensen-Shannon distance (base 2) between the window's prompt-token distribution and the training prompts'."),
    _generative("ml.genai.drift.oov_rate", "gauge", "1", (), "ml_genai_drift_oov_rate_ratio", "out_of_vocabulary_rate",
                "every window", "Share of the window's prompt tokens outside the bot's vocabulary."),
    _generative("ml.genai.drift.prompt_length_psi", "gauge", "", (), "ml_genai_drift_prompt_length_psi",
                "input drift (PSI, prompt length)", "every window",
                "PSI of the window's prompt lengths against the training prompts' on the reference's decile bins."),
    _generative("ml.genai.drift.confidence_ks", "gauge", "", (), "ml_genai_drift_confidence_ks",
                "confidence drift (Kolmogorov-Smirnov)", "every window",
                "KS statistic between the window's answer confidences and those of a reference window answered at start."),
    _generative("ml.genai.drift.confidence_ks_p_value", "gauge", "1", (), "ml_genai_drift_confidence_ks_p_value_ratio",
                "confidence drift (KS p-value)", "every window",
                "Asymptotic two-sided KS p-value of the same comparison (as scipy.stats.ks_2samp(method=\"asymp\")): "
                "below 0.01 the confidences have drifted."),
    _generative("ml.genai.pii.exported", "counter", "{value}", ("model", "pii_type"), "ml_genai_pii_exported_total",
                "PII in telemetry", "every request",
                "Personal data values (e-mail addresses, phone and payment card numbers) in the message content the "
                "bot's spans carry: 0 unless content capture is on and customers send such details."),
    _generative("ml.genai.running", "gauge", "", (), "ml_genai_running", "run_state", "every export",
                "1 while the bot's run is in progress, 0 in the run's final export."),
    _generative("ml.genai.windows", "counter", "{window}", (), "ml_genai_windows_total", "window", "every window",
                "Windows of requests the bot has served."),
)

# -- made by the collector (count/pii in otel-collector/config.yaml), with the resource of the spans it
# counted (a bot run: its job and instance). Counted in both traces pipelines at their exit, so they
# say what reached Jaeger; emitted only once a count is above zero (no series before the first).
CATALOGUE += (
    _collector("ml.collector.pii.spans", "counter", "{span}", ("pii_type",), "ml_collector_pii_spans_total",
               "PII in telemetry (at the collector's exit)", "every span batch with personal data",
               "Spans the collector exported to the trace backend whose message content (gen_ai.input.messages, "
               "gen_ai.output.messages) still matches the pattern of an e-mail address, phone or payment card "
               "number; a span carrying two types counts in both. 0 (absent) when nothing leaked."),
    _collector("ml.collector.pii.masked", "counter", "{span}", (), "ml_collector_pii_masked_total",
               "PII redacted (the redacting entry point)", "every span batch the redaction changed",
               "Spans in which the collector's redaction step (the redacting entry point, otlp/redacted) masked at "
               "least one value before export (its redaction.masked.count attribute)."),
)

BY_NAME = {i.name: i for i in CATALOGUE}


# Attributes with no fixed set of values that still take one value per run: the model's name.
ONE_PER_RUN = ("model", "gen_ai.request.model", "gen_ai.response.model")


def prometheus_series_count(n_layers: int = 0, family: str = "training") -> int:
    """Series one run of `family` produces in Prometheus (histogram: buckets + +Inf + _sum + _count
    per attribute set); `layer` takes n_layers values."""
    total = 0
    for inst in CATALOGUE:
        if inst.family != family:
            continue
        per_attr = 1
        for a in inst.attributes:
            values = ALLOWED_ATTRIBUTES[a]
            if a == "layer":
                per_attr *= n_layers
            elif values is not None:
                per_attr *= len(values)
            elif a not in ONE_PER_RUN:
                raise ValueError(f"{inst.name}: attribute {a!r} has no fixed set of values")
        total += per_attr * (len(inst.buckets) + 3 if inst.kind == "histogram" else 1)
    return total


def create(meter: Meter, name: str, callback: Callable[[], Iterable[Observation]] | None = None):
    """The instrument `name` of the catalogue on `meter`, with its unit, description and buckets.

    With `callback` (returning the observations of one collection) a gauge becomes an
    observable gauge and a counter an observable counter, read at every export.
    """
    inst = BY_NAME[name]
    if inst.family == "collector":
        raise ValueError(f"{name} is made by the collector (otel-collector/config.yaml), not by a run's SDK")
    args = {"unit": inst.unit, "description": inst.description}
    if callback is not None:
        def cb(_options: CallbackOptions) -> Iterable[Observation]:
            return callback()

        if inst.kind == "gauge":
            return meter.create_observable_gauge(inst.name, callbacks=[cb], **args)
        if inst.kind == "counter":
            return meter.create_observable_counter(inst.name, callbacks=[cb], **args)
        raise ValueError(f"{name}: a {inst.kind} cannot be observed through a callback")
    if inst.kind == "gauge":
        return meter.create_gauge(inst.name, **args)
    if inst.kind == "counter":
        return meter.create_counter(inst.name, **args)
    return meter.create_histogram(inst.name, explicit_bucket_boundaries_advisory=list(inst.buckets), **args)
