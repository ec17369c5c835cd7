"""Overload drills on a stack of their own: a flood the collector refuses, a Prometheus past its series budget.

- Prometheus's head passes HEAD_SERIES_LIMIT (one request of junk written straight into its
  OTLP receiver): MLLabHeadSeriesHigh fires after its `for:` and reaches the webhook sink.
- Meanwhile four clients flood the collector with 0.8 MB requests: its memory limiter refuses
  them (HTTP 503) and MLLabCollectorRefusingData fires and reaches the sink, while the
  collector stays up.

A private stack, not the session's: the first drill leaves Prometheus above its series budget
until the next head compaction (hours), which would page through every later test; and the
collector gets small memory limits (LAB_COLLECTOR_MEMORY_LIMIT_MIB=64, spike 16) so that a
flood a test can afford reaches them. Everything stays on 127.0.0.1.
"""

import threading
import time

import pytest
import requests

from lab.dev.stack import StackError, otlp_gauge_request, private_native_stack
from lab.thresholds import HEAD_SERIES_LIMIT

PROTOBUF = {"Content-Type": "application/x-protobuf"}
MEMORY = {"LAB_COLLECTOR_MEMORY_LIMIT_MIB": "64", "LAB_COLLECTOR_MEMORY_SPIKE_MIB": "16"}


@pytest.fixture(scope="module")
def stack(native_bins):
    try:
        with private_native_stack(settings=MEMORY) as s:
            yield s
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_overload_fires_head_series_high_and_refusing_data(stack, drill_report):
    # Both floods at once: their alerts' waits (for: 30s, for: 10s, Alertmanager) overlap.
    before = float(stack.wait_for_series('prometheus_tsdb_head_series{job="prometheus"}')[0]["value"][1])
    # A lab run has used the collector before any flood (its refusal counter then exists, at 0).
    first = otlp_gauge_request("ml.training.loss", "split", 1, time.time_ns(), "drill-overload")
    assert requests.post(f"{stack.otlp_http_endpoint}/v1/metrics", data=first, timeout=30, headers=PROTOBUF).ok
    # ... and Prometheus has scraped it: a counter whose first sample already holds the refusals is
    # seen only by the rule's second half, a minute after the collector's first scrape
    stack.wait_for_series('otelcol_receiver_refused_metric_points{transport="http"} == 0', timeout=60)
    n = HEAD_SERIES_LIMIT + 2_000  # past the budget whatever the stack held before
    budget = otlp_gauge_request("drill.budget", "request_id", n, time.time_ns(), "drill-budget")
    t0 = time.time()
    r = requests.post(f"{stack.prometheus_url}/api/v1/otlp/v1/metrics", data=budget, timeout=120, headers=PROTOBUF)
    assert r.status_code == 200, r.text
    stack.wait_for_series(f'prometheus_tsdb_head_series{{job="prometheus"}} > {HEAD_SERIES_LIMIT}', timeout=60)
    over = time.time()  # the scrape that shows it: MLLabHeadSeriesHigh's for: 30s starts about here

    body = otlp_gauge_request("ml.training.loss", "split", 20_000, time.time_ns(), "drill-overload")
    stop, codes, lock = threading.Event(), {}, threading.Lock()

    def flood():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    code = session.post(f"{stack.otlp_http_endpoint}/v1/metrics", data=body, timeout=30,
                                        headers=PROTOBUF).status_code
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with lock:
                    codes[code] = codes.get(code, 0) + 1

    clients = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    f0 = time.time()
    for c in clients:
        c.start()
    try:
        refused = stack.poll("the collector refusing the flood", lambda: stack.collector_metrics().get(
            "otelcol_receiver_refused_metric_points_total", 0), 60)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=60)
    flood_s = time.time() - f0
    assert codes.get(503), codes  # refused at the door: the senders were told

    refusing = stack.poll("MLLabCollectorRefusingData firing", lambda: stack.firing_alerts("MLLabCollectorRefusingData"), 90)[0]
    refusing_at = time.time()
    high = stack.poll("MLLabHeadSeriesHigh firing", lambda: stack.firing_alerts("MLLabHeadSeriesHigh"), 90)[0]
    high_at = time.time()
    stack.poll("both at the webhook sink", lambda: stack.sink_alerts("MLLabCollectorRefusingData")
               and stack.sink_alerts("MLLabHeadSeriesHigh"), 60)
    assert refusing["labels"]["receiver"] == "otlp" and float(refusing["value"]) > 0
    assert stack.query("up{job='otel-collector'} == 1")  # refused, and survived
    assert float(high["value"]) > HEAD_SERIES_LIMIT
    assert high_at - over >= 25  # a level held for its for: 30s (less a scrape), not a spike
    drill_report("collector flood", "4 clients sending 0.8 MB requests of 20,000 points to a collector with a 64 MiB "
                 "memory limit (a private stack)",
                 {"requests": ", ".join(f"{v} x {k}" for k, v in sorted(codes.items(), key=str)),
                  "refused points": f"{refused:,.0f} in {flood_s:.1f} s", "collector": "still up",
                  "MLLabCollectorRefusingData firing": f"{refusing_at - f0:.0f} s after the flood began",
                  "at the webhook sink": "yes"})
    drill_report("Prometheus past its series budget",
                 f"one request of {n:,} junk series ({len(budget) / 1e6:.1f} MB) straight into Prometheus's OTLP "
                 "receiver (a private stack)",
                 {"head series": f"{before:,.0f} -> {float(high['value']):,.0f}",
                  "MLLabHeadSeriesHigh firing": f"{high_at - over:.0f} s after the head passed {HEAD_SERIES_LIMIT:,} "
                  f"({high_at - t0:.0f} s after the request)", "at the webhook sink": "yes"})
