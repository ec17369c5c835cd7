"""A real telemetry-pipeline fault: the run loses its connection to the collector for a while.

Practice mode uses it as a confounder, so trainees learn to tell "the pipeline is broken"
from "the model is broken". While the gate is closed the run's OTLP exporters drop their
batches (the SDK sees failed exports) before the run's retry buffers (lab/telemetry/retry.py)
could keep them: data lost as behind a partition longer than the buffers hold. Training or
serving goes on untouched. Prometheus then sees the run's series go stale,
and the collector's accepted-points rate drop, for as long as the outage lasts.
"""

from __future__ import annotations

import threading
import time

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from lab.telemetry.wrapped import WrappedLogs, WrappedMetrics, WrappedSpans


class ExportGate:
    """Closed while the run's progress (0..1) is inside [start, end)."""

    def __init__(self, start: float, end: float) -> None:
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"outage window must satisfy 0 <= start < end <= 1, got [{start}, {end})")
        self.start, self.end = start, end
        self._lock = threading.Lock()
        self.blocked = False
        self.began_at: float | None = None  # epoch seconds, for the reveal
        self.ended_at: float | None = None
        self.dropped = 0  # export batches dropped

    def progress(self, fraction: float) -> None:
        blocked = self.start <= fraction < self.end
        with self._lock:
            if blocked and not self.blocked and self.began_at is None:
                self.began_at = time.time()
            if not blocked and self.blocked:
                self.ended_at = time.time()
            self.blocked = blocked

    def drop(self) -> bool:
        with self._lock:
            if self.blocked:
                self.dropped += 1
            return self.blocked

    def wrap(self, metric: MetricExporter, span: SpanExporter, log: LogRecordExporter):
        return WrappedMetrics(metric, self._around), WrappedSpans(span, self._around), WrappedLogs(log, self._around)

    def _around(self, batch, send) -> bool:
        return not self.drop() and send(batch)
