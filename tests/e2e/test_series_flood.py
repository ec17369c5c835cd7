"""Series floods: the collector's guard stops one, Prometheus's series alerts catch what bypasses it.

The drills of issue 16, on the native stack:
- one OTLP request of junk into the collector (a gauge named outside `ml.*` with 12,000
  distinct label values, ~0.5 MB of protobuf, the shape of a label with unbounded values):
  the cardinality guard (otel-collector/config.yaml) drops it, Prometheus gains none of it,
  and MLLabCollectorDroppingForeignMetrics fires and reaches the sink;
- a lab metric tagged with a per-request attribute: the guard keeps only the catalogue's keys;
- the same junk written straight into Prometheus's OTLP receiver, past the collector: the
  rule's threshold (SERIES_GROWTH_5M), which lab runs cannot reach, is crossed and
  MLLabSeriesGrowth fires and reaches the sink.
The junk stays in this test stack's Prometheus only.
"""

import time

import pytest
import requests

from lab.dev.stack import otlp_gauge_request
from lab.thresholds import SERIES_GROWTH_5M

JUNK_SERIES = 12_000
PROTOBUF = {"Content-Type": "application/x-protobuf"}

@pytest.fixture(scope="module")
def native_stack(own_stack):
    """This module breaks its stack on purpose: one of its own (tests/e2e/conftest.py)."""
    return own_stack


def _head_series(native_stack) -> float:
    return float(native_stack.wait_for_series('prometheus_tsdb_head_series{job="prometheus"}')[0]["value"][1])


def test_the_collector_guard_drops_a_foreign_flood_and_says_so(native_stack, drill_report):
    # The alert's second half counts a counter born at the first drop only where the collector
    # was scraped a minute before (a restarted Prometheus does not page on old drops).
    native_stack.wait_for_series('up{job="otel-collector"} offset 1m', timeout=90)
    before = _head_series(native_stack)
    dropped_before = native_stack.collector_metrics().get("otelcol_processor_filter_datapoints_filtered_total", 0.0)
    body = otlp_gauge_request("drill.flood", "request_id", JUNK_SERIES, time.time_ns(), "drill-flood")
    t0 = time.time()
    r = requests.post(f"{native_stack.otlp_http_endpoint}/v1/metrics", data=body, timeout=30, headers=PROTOBUF)
    assert r.status_code == 200, r.text  # accepted: the sender sees no error, hence the alert
    dropped = native_stack.poll("the guard counting the flood", lambda: native_stack.collector_metrics().get(
        "otelcol_processor_filter_datapoints_filtered_total", 0.0) - dropped_before >= JUNK_SERIES, 30)
    assert dropped
    alert = native_stack.poll("MLLabCollectorDroppingForeignMetrics firing",
                              lambda: native_stack.firing_alerts("MLLabCollectorDroppingForeignMetrics"), 90)[0]
    fired = time.time()
    got = native_stack.wait_for_sink_alert("MLLabCollectorDroppingForeignMetrics", timeout=60)
    assert any(a["labels"]["filter"] == "filter/guard" for rec in got for a in rec["payload"]["alerts"])
    assert float(alert["value"]) >= JUNK_SERIES
    # nothing of it reached Prometheus (a few hundred series of other tests' runs may come and go)
    assert not native_stack.query("count(drill_flood_ratio)")
    added = _head_series(native_stack) - before
    assert added < JUNK_SERIES / 10, added

    # A lab metric with a per-request attribute keeps only its catalogued keys: one series.
    tagged = otlp_gauge_request("ml.training.loss", "request_id", 1, time.time_ns(), "drill-guard")
    r = requests.post(f"{native_stack.otlp_http_endpoint}/v1/metrics", data=tagged, timeout=30, headers=PROTOBUF)
    assert r.status_code == 200, r.text
    [series] = native_stack.wait_for_series('ml_training_loss_ratio{job="drill-guard"}')
    assert "request_id" not in series["metric"], series["metric"]
    drill_report("foreign flood", f"one OTLP request of {JUNK_SERIES:,} junk series ({len(body) / 1e6:.2f} MB) named "
                 "outside ml.* into the collector",
                 {"dropped by the guard": f"{JUNK_SERIES:,} points", "head series added": f"{added:,.0f} (other runs)",
                  "MLLabCollectorDroppingForeignMetrics firing": f"{fired - t0:.0f} s after the request",
                  "at the webhook sink": "yes", "a lab metric tagged request_id": "stored without it"})


def test_a_flood_past_the_collector_fires_series_growth_end_to_end(native_stack, drill_report):
    assert JUNK_SERIES > SERIES_GROWTH_5M  # the drill must be able to cross the threshold
    before = _head_series(native_stack)
    body = otlp_gauge_request("drill.bypass", "request_id", JUNK_SERIES, time.time_ns(), "drill-bypass")
    r = requests.post(f"{native_stack.prometheus_url}/api/v1/otlp/v1/metrics", data=body, timeout=30, headers=PROTOBUF)
    assert r.status_code == 200, r.text
    native_stack.wait_for_series(f'count(drill_bypass_ratio) >= {JUNK_SERIES}', timeout=60)
    after = native_stack.wait_for_series(
        f'prometheus_tsdb_head_series{{job="prometheus"}} >= {before + JUNK_SERIES}', timeout=60)
    assert float(after[0]["value"][1]) - before >= JUNK_SERIES

    # evaluated every 5 s, for: 10s; then Alertmanager's group_wait before the sink sees it
    sent = time.time()
    native_stack.poll("MLLabSeriesGrowth firing in Prometheus", lambda: native_stack.firing_alerts("MLLabSeriesGrowth"), 60)
    got = native_stack.wait_for_sink_alert("MLLabSeriesGrowth", timeout=60)
    alert = next(a for rec in got for a in rec["payload"]["alerts"] if a["labels"]["alertname"] == "MLLabSeriesGrowth")
    assert alert["labels"]["job"] == "prometheus" and alert["labels"]["severity"] == "warning"
    gained = int(alert["annotations"]["description"].split(" gained ")[1].split()[0])
    assert gained >= JUNK_SERIES
    drill_report("series flood past the collector", f"the same {JUNK_SERIES:,} junk series written straight into "
                 "Prometheus's OTLP receiver",
                 {"head series added": f"{float(after[0]['value'][1]) - before:,.0f}",
                  "MLLabSeriesGrowth at the webhook sink": f"{time.time() - sent:.0f} s after the series were queryable",
                  "gained (alert's value)": f"{gained:,}"})
