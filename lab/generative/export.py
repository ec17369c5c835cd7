"""Turns the support bot's notifications (lab/generative/loop.py) into OpenTelemetry metrics,
spans and log records, after the OpenTelemetry GenAI semantic conventions.

Conventions followed: the gen_ai registry of opentelemetry-semantic-conventions 0.66b2
(schema 1.44.0; still Development, so its names may change: that package and this module
move together). Instrumentations of that status emit them when OTEL_SEMCONV_STABILITY_OPT_IN
holds `gen_ai_latest_experimental`; the lab is its own instrumentation and always emits the
latest, which is what that opt-in asks for.

- One span per request, INTERNAL (the model runs in the lab's own process), named
  `{gen_ai.operation.name} {gen_ai.request.model}`, with the request's model, max tokens
  and temperature, the response's model and finish reasons, and token usage. Message
  content (gen_ai.input.messages, gen_ai.output.messages) only when the scenario sets
  capture_content, as the conventions require.
- The conventions' metrics: gen_ai.client.token.usage (input and output), the client's
  operation duration, and the server's request duration, time to first token and time per
  output token; buckets and why in lab/telemetry/catalogue.py.
- The lab's own (ml.genai.*): answers by finish reason, cost, confidence, labelled quality,
  user ratings, prompt and confidence drift per window, and the personal data values the
  spans' message content carried (ml.genai.pii.exported; 0 without content capture).
"""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.trace import SpanKind

from lab.generative.judge import VERDICTS
from lab.generative.loop import BotEvent, BotResult, BotServer, BotWindow, RequestRecord
from lab.generative.pii import PII_TYPES
from lab.generative.pii import find as find_pii
from lab.specs.base import hidden
from lab.telemetry.catalogue import ALLOWED_ATTRIBUTES, BY_NAME, GENAI_OPERATION, GENAI_PROVIDER, create
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import Telemetry

PER_REQUEST = ("gen_ai.client.token.usage", "gen_ai.client.operation.duration", "gen_ai.server.request.duration",
               "gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token", "ml.genai.requests",
               "ml.genai.cost.usd", "ml.genai.confidence", "ml.genai.pii.exported")
PER_WINDOW = ("ml.genai.labels", "ml.genai.quality.accuracy", "ml.genai.quality.hallucination_rate", "ml.genai.feedback",
              "ml.genai.drift.token_js_distance", "ml.genai.drift.oov_rate", "ml.genai.drift.prompt_length_psi",
              "ml.genai.drift.confidence_ks", "ml.genai.drift.confidence_ks_p_value", "ml.genai.running", "ml.genai.windows")


GENAI_METRICS = tuple(n for n in PER_REQUEST if n.startswith("gen_ai."))


def bounded_views() -> list[View]:
    """The cardinality fix as an SDK view: the gen_ai metrics keep only their bounded keys.

    gen_ai.response.model goes: a value per run normally, but the one key a client bug can fill
    with a per-request value (scenarios/bot-cardinality.toml)."""
    keep = {k for k in ALLOWED_ATTRIBUTES if k.startswith("gen_ai.") and k != "gen_ai.response.model"}
    return [View(instrument_name=n, attribute_keys=keep,
                 aggregation=ExplicitBucketHistogramAggregation(list(BY_NAME[n].buckets))) for n in GENAI_METRICS]


def telemetry_options(spec) -> dict:
    """Extra Telemetry settings of a bot run: the fix's view, where the scenario asks for it."""
    return {"views": bounded_views()} if spec.leak is not None and spec.leak.view_drops_attribute else {}


class GenerativeTelemetryObserver(BaseObserver):
    """flush_every_window: export metrics after every window (--fast runs, whose windows take a
    fraction of a second). Stops flushing after the first failed export, so a collector that
    goes away cannot stall the run."""

    def __init__(self, telemetry: Telemetry, *, flush_every_window: bool = False):
        self.t = telemetry
        self.flush_every_window = flush_every_window
        self.i = {n: create(telemetry.meter, n) for n in PER_REQUEST + PER_WINDOW}
        self._run_span = None

    def on_start(self, server: BotServer) -> None:
        spec = server.spec
        self.spec, self.model = spec, spec.model.name
        self._genai = {"gen_ai.operation.name": GENAI_OPERATION, "gen_ai.provider.name": GENAI_PROVIDER,
                       "gen_ai.request.model": self.model, "gen_ai.response.model": self.model}
        self._input = {**self._genai, "gen_ai.token.type": "input"}
        self._output = {**self._genai, "gen_ai.token.type": "output"}
        self._model = {"model": self.model}
        attrs = {"lab.scenario": spec.name, "lab.variant": spec.variant, "gen_ai.request.model": self.model}
        if not hidden(spec):  # a practice case's span must not carry its length
            attrs |= {"lab.seed": server.seed, "lab.windows": server.windows, "lab.window_size": spec.stream.window_size}
        self._run_span = self.t.tracer.start_span(f"serve {spec.name}", attributes=attrs)
        self._ctx = trace.set_span_in_context(self._run_span)
        self.i["ml.genai.running"].set(1)
        # Counters start at 0 so the series exist (and increase() works) before their first event.
        for reason in ("stop", "length"):
            self.i["ml.genai.requests"].add(0, {**self._model, "finish_reason": reason})
        for rating in ("up", "down"):
            self.i["ml.genai.feedback"].add(0, {**self._model, "rating": rating})
        for v in VERDICTS:
            self.i["ml.genai.labels"].add(0, {**self._model, "verdict": v})
        for kind in PII_TYPES:
            self.i["ml.genai.pii.exported"].add(0, {**self._model, "pii_type": kind})
        self.i["ml.genai.cost.usd"].add(0, self._model)
        self._flush()
        length = "" if hidden(spec) else f" for {server.windows} windows of {spec.stream.window_size} requests"
        self._log("serve_start", f"serving {self.model}{length}", {"gen_ai.request.model": self.model}, SeverityNumber.INFO)

    def on_unit(self, rec: RequestRecord) -> None:
        i, s = self.i, self.spec.stream
        decode = self.spec.decode_at(rec.window)
        genai, tin, tout = self._genai, self._input, self._output
        if rec.response_model != self.model:  # the cardinality fault: a per-request value on every gen_ai metric
            genai = {**genai, "gen_ai.response.model": rec.response_model}
            tin, tout = {**genai, "gen_ai.token.type": "input"}, {**genai, "gen_ai.token.type": "output"}
        span = self.t.tracer.start_span(
            f"{GENAI_OPERATION} {self.model}", context=None, kind=SpanKind.INTERNAL, start_time=rec.start_ns,
            attributes={**genai, "gen_ai.response.id": rec.response_id, "gen_ai.request.max_tokens": decode.max_tokens,
                        "gen_ai.request.temperature": decode.temperature,
                        "gen_ai.usage.input_tokens": rec.input_tokens, "gen_ai.usage.output_tokens": rec.output_tokens,
                        "gen_ai.response.finish_reasons": [rec.finish_reason], "lab.window": rec.window})
        if self.spec.capture_content and span.is_recording():
            # What leaves the process: the personal data in the content this span now carries.
            in_answer = find_pii(rec.answer)  # the prompt's were counted when it arrived (rec.pii)
            for kind in PII_TYPES:
                if n := rec.pii[kind] + in_answer[kind]:
                    self.i["ml.genai.pii.exported"].add(n, {**self._model, "pii_type": kind})
            span.set_attribute("gen_ai.input.messages", json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": rec.prompt}]}]))
            span.set_attribute("gen_ai.output.messages", json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": rec.answer}],
                  "finish_reason": rec.finish_reason}]))
        ctx = trace.set_span_in_context(span)  # exemplars on the duration histograms carry the trace id
        i["gen_ai.client.token.usage"].record(rec.input_tokens, tin)
        i["gen_ai.client.token.usage"].record(rec.output_tokens, tout)
        i["gen_ai.client.operation.duration"].record(rec.duration_s, genai, context=ctx)
        i["gen_ai.server.request.duration"].record(rec.duration_s, genai, context=ctx)
        i["gen_ai.server.time_to_first_token"].record(rec.ttft_s, genai, context=ctx)
        if rec.time_per_output_token_s == rec.time_per_output_token_s:  # not NaN: more than one token
            i["gen_ai.server.time_per_output_token"].record(rec.time_per_output_token_s, genai)
        i["ml.genai.requests"].add(1, {**self._model, "finish_reason": rec.finish_reason})
        i["ml.genai.cost.usd"].add((rec.input_tokens * s.price_per_1k_input_tokens +
                                    rec.output_tokens * s.price_per_1k_output_tokens) / 1000, self._model)
        i["ml.genai.confidence"].record(rec.confidence, self._model)
        span.end(end_time=rec.end_ns)

    def on_report(self, rec: BotWindow) -> None:
        i = self.i
        for v, n in rec.label_verdicts.items():
            if n:
                i["ml.genai.labels"].add(n, {**self._model, "verdict": v})
        if rec.accuracy == rec.accuracy:  # not NaN: enough labels arrived
            i["ml.genai.quality.accuracy"].set(rec.accuracy, self._model)
            i["ml.genai.quality.hallucination_rate"].set(rec.hallucination_rate, self._model)
        i["ml.genai.feedback"].add(rec.ratings - rec.complaints, {**self._model, "rating": "up"})
        i["ml.genai.feedback"].add(rec.complaints, {**self._model, "rating": "down"})
        i["ml.genai.drift.token_js_distance"].set(rec.token_js)
        i["ml.genai.drift.oov_rate"].set(rec.oov_rate)
        i["ml.genai.drift.prompt_length_psi"].set(rec.length_psi)
        i["ml.genai.drift.confidence_ks"].set(rec.confidence_ks)
        i["ml.genai.drift.confidence_ks_p_value"].set(rec.confidence_ks_pvalue)
        i["ml.genai.windows"].add(1)
        attrs = {"lab.window": rec.index, "lab.token_js": rec.token_js, "lab.oov_rate": rec.oov_rate,
                 "lab.prompt_length_psi": rec.length_psi, "lab.confidence_ks": rec.confidence_ks,
                 "lab.length_share": rec.length_share}
        if rec.accuracy == rec.accuracy:
            attrs |= {"lab.accuracy": rec.accuracy, "lab.hallucination_rate": rec.hallucination_rate}
        span = self.t.tracer.start_span("window_check", context=self._ctx, start_time=rec.start_ns, attributes=attrs)
        span.end(end_time=rec.end_ns)
        self._flush()

    def on_event(self, ev: BotEvent) -> None:
        attrs = {"lab.window": ev.window, **{f"lab.{k}": v for k, v in ev.attributes.items()}}
        if self._run_span is not None:
            self._run_span.add_event(ev.name, attributes=attrs)
        self._log(ev.name, ev.message, attrs, SeverityNumber.INFO)  # a release: a change to correlate with what follows

    def on_end(self, result: BotResult) -> None:
        self.i["ml.genai.running"].set(0)
        if self._run_span is not None:
            self._run_span.set_attribute("lab.requests", result.requests)
            self._run_span.set_attribute("lab.outcome", result.stopped)
            self._log("serve_end", f"answered {result.requests} questions in {len(result.windows)} windows",
                      {"lab.outcome": result.stopped, "lab.requests": result.requests}, SeverityNumber.INFO)
            self._run_span.end()

    def _flush(self) -> None:
        if self.flush_every_window and not self.t.export_errors.count:
            self.t.meter_provider.force_flush(timeout_millis=5000)

    def _log(self, name: str, body: str, attrs: dict, severity: SeverityNumber) -> None:
        self.t.logger.emit(body=body, event_name=f"lab.{name}", severity_number=severity, severity_text=severity.name,
                           attributes={"lab.event": name, **attrs}, context=self._ctx)
