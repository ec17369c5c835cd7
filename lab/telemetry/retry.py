"""Outage-tolerant export: a batch the collector did not take is kept in the run and sent late.

The SDK's OTLP exporters give up on a batch after their timeout (3 s here) and keep nothing:
a 20 s collector outage once cost a run 25 s of metrics, 11 of 48 spans and 6 of 48 log
records, and a gradient spike inside it could never alert (interval peaks reset when read).
Here each exporter keeps what failed in a bounded backlog and, at its next export, sends
the backlog oldest first, then the new batch. Prometheus takes the late samples at their own
timestamps (prometheus.yml: out_of_order_time_window 30m); Jaeger and VictoriaLogs take late
spans and records like any others. While the collector stays away only the oldest batch is
tried per export: one timeout per interval, not one per buffered batch.

Bounds: BUFFER_SECONDS of metric exports, MAX_BUFFERED_ITEMS spans and as many log records.
What overflows is dropped oldest first; what is still held when the run ends and the collector
is still away is dropped too. Both are counted (Backlog.stats) and reported by the session.

`--telemetry auto` with no collector at the start: a CollectorProbe makes the backlog hold
every batch without trying, checks the endpoint at most once per probe interval, and the run
streams, backlog first, from the moment a collector answers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from lab.telemetry.wrapped import WrappedLogs, WrappedMetrics, WrappedSpans

# Twice the 60 s of outage a run must ride out (issue 16): 24 metric exports at 5 s.
BUFFER_SECONDS = 120
# Spans and log records: a paced serving run samples ~20 request spans a second, so 60 s of
# outage is ~1,200; 20,000 leaves room for --fast runs and costs ~40 MB at most (~2 KB each).
MAX_BUFFERED_ITEMS = 20_000


class CollectorProbe:
    """Whether a collector answers yet; asks `reachable` at most once per `every_s` until it does."""

    def __init__(self, reachable: Callable[[], bool], every_s: float) -> None:
        self._reachable, self.every_s = reachable, every_s
        self._lock = threading.Lock()
        self._next = 0.0
        self.appeared_at: float | None = None  # epoch seconds of the first answer

    def ready(self) -> bool:
        with self._lock:
            if self.appeared_at is not None:
                return True
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + self.every_s
            if self._reachable():
                self.appeared_at = time.time()
            return self.appeared_at is not None


@dataclass
class BacklogStats:
    late: int = 0  # items delivered after being held (an outage, or before the collector appeared)
    dropped: int = 0  # items given up: the backlog overflowed, or the run ended with the collector away
    peak: int = 0  # most items held at once


class Backlog:
    """Batches not delivered yet, oldest first, at most `limit` items (a metric export counts 1)."""

    def __init__(self, limit: int, probe: CollectorProbe | None = None) -> None:
        self.limit, self.probe = limit, probe
        self.stats = BacklogStats()
        self._queue: deque[list[Any]] = deque()  # [batch, items, held before]
        self._items = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._items

    def send(self, batch: Any, items: int, deliver: Callable[[Any], bool]) -> bool:
        """Queue `batch`, then deliver oldest first until one fails; True if nothing is left held."""
        with self._lock:
            self._queue.append([batch, items, False])
            self._items += items
            if self.probe is None or self.probe.ready():
                while self._queue and deliver(self._queue[0][0]):
                    _, n, held = self._queue.popleft()
                    self._items -= n
                    if held:
                        self.stats.late += n
            for entry in self._queue:
                entry[2] = True
            while self._items > self.limit and len(self._queue) > 1:
                self._give_up_oldest()
            self.stats.peak = max(self.stats.peak, self._items)
            return not self._queue

    def abandon(self) -> None:
        """The run is over: whatever is still held is lost."""
        with self._lock:
            while self._queue:
                self._give_up_oldest()

    def _give_up_oldest(self) -> None:
        _, n, _ = self._queue.popleft()
        self._items -= n
        self.stats.dropped += n


class RetryBuffers:
    """One backlog per signal; wraps a run's three OTLP exporters."""

    KINDS = ("metric exports", "spans", "log records")

    def __init__(self, interval_ms: int, probe: CollectorProbe | None = None) -> None:
        self.probe = probe
        metric_limit = max(1, -(-BUFFER_SECONDS * 1000 // interval_ms))
        self.backlogs = dict(zip(self.KINDS, (Backlog(metric_limit, probe), Backlog(MAX_BUFFERED_ITEMS, probe),
                                             Backlog(MAX_BUFFERED_ITEMS, probe))))

    def wrap(self, metric: MetricExporter, span: SpanExporter, log: LogRecordExporter):
        m, s, lg = (self.backlogs[k] for k in self.KINDS)
        return (WrappedMetrics(metric, lambda data, send: m.send(data, 1, send), m.abandon),
                WrappedSpans(span, lambda spans, send: s.send(list(spans), len(spans), send), s.abandon),
                WrappedLogs(log, lambda batch, send: lg.send(list(batch), len(batch), send), lg.abandon))

    def late(self) -> dict[str, int]:
        return {k: b.stats.late for k, b in self.backlogs.items() if b.stats.late}

    def dropped(self) -> dict[str, int]:
        return {k: b.stats.dropped for k, b in self.backlogs.items() if b.stats.dropped}
