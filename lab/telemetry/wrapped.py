"""One way to put a step around a run's three OTLP exporters (metrics, spans, log records).

A run's exporters are wrapped three times (lab/telemetry/otel.py, Telemetry): the retry buffers
(retry.py), the practice mode's outage gate (outage.py) and the delivery counter (otel.py).
Each gives an `around(batch, send) -> bool`: `send(batch)` exports through the inner exporter
and says whether it succeeded; `around` decides what to send and returns whether the export
succeeded. `on_shutdown` runs before the inner exporter shuts down. The inner metric
exporter's temporality and aggregation are kept, so cumulative series resume intact.
"""

from __future__ import annotations

from typing import Any, Callable

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

Around = Callable[[Any, Callable[[Any], bool]], bool]


def _nothing() -> None:
    pass


class WrappedMetrics(MetricExporter):
    def __init__(self, inner: MetricExporter, around: Around, on_shutdown: Callable[[], None] = _nothing) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self._inner, self._around, self._on_shutdown = inner, around, on_shutdown

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        def send(batch) -> bool:
            return self._inner.export(batch, timeout_millis=timeout_millis, **kwargs) == MetricExportResult.SUCCESS

        return MetricExportResult.SUCCESS if self._around(metrics_data, send) else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self._on_shutdown()
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class _WrappedBatches:
    """Spans and log records: the same exporter shape, only the result type differs."""

    RESULT: Any

    def __init__(self, inner, around: Around, on_shutdown: Callable[[], None] = _nothing) -> None:
        self._inner, self._around, self._on_shutdown = inner, around, on_shutdown

    def export(self, batch):
        ok = self._around(batch, lambda b: self._inner.export(b) == self.RESULT.SUCCESS)
        return self.RESULT.SUCCESS if ok else self.RESULT.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._on_shutdown()
        self._inner.shutdown()


class WrappedSpans(_WrappedBatches, SpanExporter):
    RESULT = SpanExportResult


class WrappedLogs(_WrappedBatches, LogRecordExporter):
    RESULT = LogRecordExportResult
