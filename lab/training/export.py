"""Turns training-loop notifications into OpenTelemetry metrics, spans and log records.

Instruments come from the catalogue's factory (lab.telemetry.catalogue.create).
Per-step values are not exported per step: evaluation-cadence values use
synchronous gauges, per-step values are kept as the peak over the export
interval (lab.training.signals.IntervalPeaks) and read by observable callbacks.
Epoch spans open at an epoch's first step and close at the next epoch's first step
(or the run's end).
"""

from __future__ import annotations

import math

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import Observation
from opentelemetry.trace import Span, Status, StatusCode

from lab.specs.base import hidden
from lab.telemetry.catalogue import create
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import Telemetry
from lab.training.loop import EvalRecord, Event, RunResult, StepRecord, Trainer
from lab.training.signals import IntervalPeaks

_EVENT_SEVERITY = {
    "nonfinite": SeverityNumber.ERROR,
    "diverged": SeverityNumber.ERROR,
    "fault_injected": SeverityNumber.WARN,
    "lr_change": SeverityNumber.WARN,
    "early_stop": SeverityNumber.INFO,
}


def _attributes(attrs: dict) -> dict:
    """Span and log attributes with NaN/inf written as text ("nan", "inf"): a diverged run's
    losses stay readable, and trace backends that reject non-finite numbers (Jaeger's v1 query
    API answers 500 for such a trace) still serve the trace."""
    return {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in attrs.items()}


class TelemetryObserver(BaseObserver):
    def __init__(self, telemetry: Telemetry):
        self.t = telemetry
        m = telemetry.meter
        self._peaks = IntervalPeaks(("batch_loss", "loss_ratio", "grad_norm", "grad_ratio", "lr"))
        self._latest: dict[str, float | None] = {"baseline": None, "progress": None, "running": None}
        # Best training loss so far against the first evaluation's (the `stalled` signature).
        self._first_train_loss: float | None = None
        self._best_train_loss = math.inf
        # Cumulative counts read by observable counters: an int increment per step
        # instead of an SDK call (~5 us each, a measurable share of a 1 ms step).
        self._counts = {"steps": 0, "samples": 0, "epochs": 0, "nonfinite": 0}

        def gauge(name):
            return create(m, name)

        def observable_counter(name, key):
            return create(m, name, lambda: [Observation(self._counts[key])])

        def observable(name, key, source):
            def read():
                v = source.read(key) if isinstance(source, IntervalPeaks) else source[key]
                # The SDK refuses non-finite values; skip them explicitly (no warning spam).
                return [] if v is None or not math.isfinite(v) else [Observation(v)]

            return create(m, name, read)

        self.loss = gauge("ml.training.loss")
        self.loss_ratio = gauge("ml.training.loss_ratio")
        self.val_rise = gauge("ml.training.validation.loss_rise")
        self.since_best = gauge("ml.training.validation.evals_since_best")
        self.accuracy = gauge("ml.training.accuracy")
        self.act_mean = gauge("ml.training.activation.mean")
        self.dead = gauge("ml.training.activation.dead_ratio")
        self.best_loss = gauge("ml.training.best_loss")
        observable("ml.training.batch_loss", "batch_loss", self._peaks)
        observable("ml.training.batch_loss_ratio", "loss_ratio", self._peaks)
        observable("ml.training.gradient.norm", "grad_norm", self._peaks)
        observable("ml.training.gradient.norm_ratio", "grad_ratio", self._peaks)
        observable("ml.training.learning_rate", "lr", self._peaks)
        observable("ml.training.gradient.norm.baseline", "baseline", self._latest)
        observable("ml.training.progress", "progress", self._latest)
        observable("ml.training.running", "running", self._latest)
        observable_counter("ml.training.steps", "steps")
        observable_counter("ml.training.epochs", "epochs")
        observable_counter("ml.training.samples", "samples")
        observable_counter("ml.training.nonfinite_steps", "nonfinite")
        self.step_duration = create(m, "ml.training.step.duration")
        self._run_span: Span | None = None
        self._epoch_span: Span | None = None
        self._epoch_ctx = None  # the epoch span's context, made once per epoch rather than per step
        self._epoch = 0

    # -- spans ----------------------------------------------------------------------
    def on_start(self, run: Trainer) -> None:
        spec = run.spec
        self._latest["running"] = 1
        attrs = {"lab.scenario": spec.name, "lab.variant": spec.variant}
        if not hidden(spec):  # a practice case's span must not carry its recipe or length
            attrs |= {"lab.seed": run.seed, "lab.planned_steps": run.planned_steps, "lab.dataset": spec.data.dataset,
                      "lab.optimizer": spec.optimizer.name, "lab.model.hidden": list(spec.model.hidden)}
        self._run_span = self.t.tracer.start_span(f"train {spec.name}", attributes=attrs)

    def _ctx(self):
        span = self._epoch_span or self._run_span
        return trace.set_span_in_context(span) if span else None

    def _start_epoch(self, epoch: int) -> None:
        self._end_epoch()
        self._epoch = epoch
        self._counts["epochs"] = epoch - 1  # the epochs before this one are complete
        self._epoch_span = self.t.tracer.start_span("epoch", context=trace.set_span_in_context(self._run_span),
                                                    attributes={"lab.epoch": epoch})
        self._epoch_ctx = trace.set_span_in_context(self._epoch_span)

    def _end_epoch(self) -> None:
        if self._epoch_span:
            self._epoch_span.end()
            self._epoch_span = self._epoch_ctx = None

    # -- metrics --------------------------------------------------------------------
    def on_unit(self, rec: StepRecord) -> None:
        if rec.epoch != self._epoch:
            self._start_epoch(rec.epoch)
        # interval peaks of finite values only (NaN/inf steps are counted below, not plotted)
        self._peaks.update((rec.loss, rec.loss_ratio, rec.grad_norm, rec.grad_ratio, rec.lr))
        if not math.isnan(rec.grad_baseline):
            self._latest["baseline"] = rec.grad_baseline
        self._latest["progress"] = rec.step / rec.planned_steps
        self._counts["steps"] += 1
        self._counts["samples"] += rec.batch_size
        # in the epoch span's context, so the histogram keeps exemplars that carry the run's trace id
        # (the SDK's default exemplar filter is trace-based); Grafana links them to Jaeger
        self.step_duration.record(rec.duration_s, context=self._epoch_ctx)
        if rec.nonfinite:
            self._counts["nonfinite"] += 1

    def on_report(self, rec: EvalRecord) -> None:
        # The OTel Python SDK drops NaN/inf measurements (it cannot carry them to Prometheus),
        # so non-finite values are skipped here and the non-finite step counter and the
        # `nonfinite`/`diverged` log records carry a divergence (docs/metrics.md).
        def put(gauge, v, attrs=None):
            if math.isfinite(v):
                gauge.set(v, attrs)

        put(self.loss, rec.train_loss, {"split": "train"})
        put(self.loss, rec.val_loss, {"split": "validation"})
        put(self.accuracy, rec.train_acc, {"split": "train"})
        put(self.accuracy, rec.val_acc, {"split": "validation"})
        put(self.loss_ratio, rec.ratio)
        put(self.val_rise, rec.rise)
        put(self.since_best, rec.evals_since_best)
        if self._first_train_loss is None:
            self._first_train_loss = rec.train_loss
        if math.isfinite(rec.train_loss):
            self._best_train_loss = min(self._best_train_loss, rec.train_loss)
        first = self._first_train_loss
        if math.isfinite(first) and first > 0:  # the `stalled` signature's quantity
            put(self.best_loss, self._best_train_loss / first)
        for layer, v in rec.activation_mean.items():
            put(self.act_mean, v, {"layer": layer})
        for layer, v in rec.dead_ratio.items():
            put(self.dead, v, {"layer": layer})
        attrs = _attributes({"lab.step": rec.step, "lab.epoch": rec.epoch, "lab.train_loss": rec.train_loss,
                             "lab.val_loss": rec.val_loss, "lab.val_accuracy": rec.val_acc, "lab.loss_ratio": rec.ratio})
        span = self.t.tracer.start_span("evaluate", context=self._ctx(), start_time=rec.start_ns, attributes=attrs)
        span.add_event("evaluation", attributes=attrs, timestamp=rec.end_ns)
        span.end(end_time=rec.end_ns)
        self._log("evaluation", f"step {rec.step}: train loss {rec.train_loss:.4f}, validation loss {rec.val_loss:.4f}, ratio {rec.ratio:.2f}",
                  attrs, SeverityNumber.INFO)

    # -- events ---------------------------------------------------------------------
    def _log(self, name: str, body: str, attrs: dict, severity: SeverityNumber) -> None:
        self.t.logger.emit(body=body, event_name=f"lab.{name}", severity_number=severity,
                           severity_text=severity.name, attributes={"lab.event": name, **attrs}, context=self._ctx())

    def on_event(self, ev: Event) -> None:
        attrs = _attributes({"lab.step": ev.step, **{f"lab.{k}": (v if isinstance(v, (int, float, str, bool)) else str(v))
                                                     for k, v in ev.attributes.items() if v is not None}})
        span = self._epoch_span or self._run_span
        if span is not None:
            span.add_event(ev.name, attributes=attrs)
        self._log(ev.name, ev.message, attrs, _EVENT_SEVERITY.get(ev.name, SeverityNumber.INFO))

    def on_end(self, result: RunResult) -> None:
        self._latest["running"] = 0  # the final export (Telemetry.shutdown) says the run has ended
        self._counts["epochs"] = result.epochs
        self._end_epoch()
        if self._run_span:
            self._run_span.set_attribute("lab.steps", result.steps)
            self._run_span.set_attribute("lab.outcome", result.stopped)
            if result.stopped == "diverged":
                self._run_span.set_status(Status(StatusCode.ERROR, "training diverged"))
            self._run_span.end()
