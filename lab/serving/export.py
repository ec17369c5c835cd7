"""Turns the serving loop's notifications (lab/serving/loop.py) into OpenTelemetry metrics, spans and log records.

Instruments come from the catalogue's factory (lab.telemetry.catalogue.create:
`ml.inference.*`, `ml.drift.*`). Per-request values go to counters and
histograms; per-window values (drift statistics, accuracy, calibration) to
synchronous gauges holding the latest window.

Spans: one per request, named `{operation} {model}` after the OpenTelemetry GenAI
conventions' `{gen_ai.operation.name} {gen_ai.request.model}` pattern. Those
conventions cover generative models only, so a tabular classifier's attributes use
the lab's `ml.` namespace in the same shape (`ml.operation.name`, `ml.model.name`),
with the general conventions' `error.type` and an ERROR status for a failed request.
Requests are head-sampled (stream.trace_sample_ratio); metrics count every request.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from lab.serving.loop import RequestRecord, ServeEvent, Server, ServeResult, WindowRecord
from lab.specs.base import hidden
from lab.telemetry.catalogue import create
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import Telemetry

OPERATION = "predict"


class RequestSampler(Sampler):
    """Head-samples request spans at `ratio`; the run and drift-check spans are always kept."""

    def __init__(self, ratio: float):
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        sampler = self._ratio if (attributes or {}).get("ml.operation.name") == OPERATION else ALWAYS_ON
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"RequestSampler({self._ratio.get_description()})"


class InferenceTelemetryObserver(BaseObserver):
    """flush_every_window: export metrics after every window (for --fast runs, whose windows take
    milliseconds: each window's values then reach Prometheus as their own samples, and counters
    have more than one sample for rate()). Stops after the first failed export, so a collector
    that goes away cannot stall the run."""

    def __init__(self, telemetry: Telemetry, *, flush_every_window: bool = False):
        self.t = telemetry
        self.flush_every_window = flush_every_window
        m = telemetry.meter
        names = ("ml.inference.requests", "ml.inference.labels", "ml.inference.accuracy", "ml.inference.accuracy.baseline",
                 "ml.inference.calibration_error", "ml.inference.retrains", "ml.drift.psi", "ml.drift.ks.statistic",
                 "ml.drift.ks.p_value", "ml.drift.kl_divergence", "ml.drift.js_distance", "ml.drift.drifted_share",
                 "ml.drift.output.psi", "ml.drift.output.js_distance", "ml.drift.windows", "ml.inference.running",
                 "ml.inference.request.duration", "ml.inference.confidence")
        self.i = {n: create(m, n) for n in names}
        self._run_span = None
        self._labels_seen = 0

    def on_start(self, server: Server) -> None:
        spec = server.spec
        self.model = spec.model.name
        self._attrs = {"model": self.model}
        self._ok = {"model": self.model, "outcome": "ok"}
        self._err = {"model": self.model, "outcome": "error"}
        attrs = {"lab.scenario": spec.name, "lab.variant": spec.variant, "ml.model.name": self.model}
        if not hidden(spec):  # a practice case's span must not carry its length
            attrs |= {"lab.seed": server.seed, "lab.windows": server.windows, "lab.window_size": spec.stream.window_size}
        self._run_span = self.t.tracer.start_span(f"serve {spec.name}", attributes=attrs)
        self._ctx = trace.set_span_in_context(self._run_span)
        # 1 until on_end sets 0 for the final export (MLLabTelemetryStopped tells a stop from a death).
        self.i["ml.inference.running"].set(1)
        # Counters start at 0 so the series exist (and increase() works) before the first label or retrain.
        self.i["ml.inference.labels"].add(0, self._attrs)
        self.i["ml.inference.retrains"].add(0, self._attrs)
        for attrs in (self._ok, self._err):
            self.i["ml.inference.requests"].add(0, attrs)
        self._flush()
        length = "" if hidden(spec) else f" for {server.windows} windows of {spec.stream.window_size} requests"
        self._log("serve_start", f"serving {self.model}{length}",
                  {"ml.model.name": self.model}, SeverityNumber.INFO)

    def on_unit(self, rec: RequestRecord) -> None:
        ok = rec.outcome == "ok"
        attrs = self._ok if ok else self._err
        self.i["ml.inference.requests"].add(1, attrs)
        # A new trace per request, as each request of a real service has its own.
        span = self.t.tracer.start_span(
            f"{OPERATION} {self.model}", context=None, kind=SpanKind.SERVER, start_time=rec.start_ns,
            attributes={"ml.operation.name": OPERATION, "ml.model.name": self.model,
                        "ml.model.version": rec.model_version, "lab.window": rec.window})
        # Recorded in the request span's context: a sampled request leaves an exemplar with its
        # trace id on the latency histogram (the SDK's default exemplar filter is trace-based).
        self.i["ml.inference.request.duration"].record(rec.latency_s, attrs, context=trace.set_span_in_context(span))
        if ok:
            self.i["ml.inference.confidence"].record(rec.confidence, self._attrs)
        if span.is_recording():
            if ok:
                span.set_attribute("ml.prediction.class", rec.prediction)
                span.set_attribute("ml.prediction.confidence", rec.confidence)
            else:
                span.set_attribute("error.type", rec.error_type)
                span.set_status(Status(StatusCode.ERROR, "input has a missing value"))
        span.end(end_time=rec.end_ns)

    def on_report(self, rec: WindowRecord) -> None:
        for f in rec.report.features:
            a = {"feature": f.feature}
            self.i["ml.drift.psi"].set(f.psi, a)
            self.i["ml.drift.ks.statistic"].set(f.ks_statistic, a)
            self.i["ml.drift.ks.p_value"].set(f.ks_pvalue_adjusted, a)
            self.i["ml.drift.kl_divergence"].set(f.kl, a)
            self.i["ml.drift.js_distance"].set(f.js, a)
        self.i["ml.drift.drifted_share"].set(rec.report.drifted_share)
        self.i["ml.drift.output.psi"].set(rec.output.psi)
        self.i["ml.drift.output.js_distance"].set(rec.output.js)
        self.i["ml.drift.windows"].add(1)
        self.i["ml.inference.accuracy.baseline"].set(rec.baseline_accuracy, self._attrs)
        if rec.labels_total > self._labels_seen:
            self.i["ml.inference.labels"].add(rec.labels_total - self._labels_seen, self._attrs)
            self._labels_seen = rec.labels_total
        if rec.accuracy == rec.accuracy:  # not NaN: enough labels of the current model
            self.i["ml.inference.accuracy"].set(rec.accuracy, self._attrs)
            self.i["ml.inference.calibration_error"].set(rec.ece, self._attrs)
        drifted = [f.feature for f in rec.report.features if f.drifted]
        attrs = {"lab.window": rec.index, "lab.drifted_share": rec.report.drifted_share,
                 "lab.drifted_features": ",".join(drifted), "lab.max_psi": rec.report.max_psi,
                 "lab.max_js": rec.report.max_js, "lab.output_psi": rec.output.psi, "ml.model.version": rec.model_version}
        if rec.accuracy == rec.accuracy:
            attrs.update({"lab.accuracy": rec.accuracy, "lab.calibration_error": rec.ece})
        span = self.t.tracer.start_span("drift_check", context=self._ctx, start_time=rec.start_ns, attributes=attrs)
        span.end(end_time=rec.end_ns)
        if drifted:
            self._log("input_drift", f"window {rec.index}: {len(drifted)}/{len(rec.report.features)} features drifted "
                      f"({', '.join(drifted)}); max PSI {rec.report.max_psi:.3f}", attrs, SeverityNumber.WARN)

        self._flush()

    def _flush(self) -> None:
        if self.flush_every_window and not self.t.export_errors.count:
            self.t.meter_provider.force_flush(timeout_millis=5000)

    def on_event(self, ev: ServeEvent) -> None:
        if ev.name == "retrain":
            self.i["ml.inference.retrains"].add(1, self._attrs)
        attrs = {"lab.window": ev.window, **{f"lab.{k}": v for k, v in ev.attributes.items()}}
        if self._run_span is not None:
            self._run_span.add_event(ev.name, attributes=attrs)
        # A retrain answers an alarm; a release is a change to correlate with what follows.
        self._log(ev.name, ev.message, attrs, SeverityNumber.WARN if ev.name == "retrain" else SeverityNumber.INFO)

    def _log(self, name: str, body: str, attrs: dict, severity: SeverityNumber) -> None:
        self.t.logger.emit(body=body, event_name=f"lab.{name}", severity_number=severity, severity_text=severity.name,
                           attributes={"lab.event": name, **attrs}, context=self._ctx)

    def on_end(self, result: ServeResult) -> None:
        self.i["ml.inference.running"].set(0)
        if self._run_span is not None:
            self._run_span.set_attribute("lab.requests", result.requests)
            self._run_span.set_attribute("lab.errors", result.errors)
            self._run_span.set_attribute("lab.outcome", result.stopped)
            self._log("serve_end", f"served {result.requests} requests ({result.errors} rejected) in {len(result.windows)} windows",
                      {"lab.outcome": result.stopped, "lab.requests": result.requests}, SeverityNumber.INFO)
            self._run_span.end()
