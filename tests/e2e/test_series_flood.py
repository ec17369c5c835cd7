"""A series flood through the real collector fires MLLabSeriesGrowth, at Prometheus and at the sink.

The drill of issue 16: one OTLP request of junk (a gauge with 12,000 distinct label values,
~0.5 MB of protobuf, the shape of a label with unbounded values) sent to the native
collector's OTLP/HTTP receiver. Lab runs cannot reach the rule's threshold
(SERIES_GROWTH_5M); this must. The junk stays in this test stack's Prometheus only.
"""

import time

import requests

from lab.dev.stack import otlp_gauge_request
from lab.thresholds import SERIES_GROWTH_5M

JUNK_SERIES = 12_000


def test_a_series_flood_fires_series_growth_end_to_end(native_stack, drill_report):
    assert JUNK_SERIES > SERIES_GROWTH_5M  # the drill must be able to cross the threshold
    before = float(native_stack.wait_for_series('prometheus_tsdb_head_series{job="prometheus"}')[0]["value"][1])
    body = otlp_gauge_request("drill.flood", "request_id", JUNK_SERIES, time.time_ns(), "drill-flood")
    r = requests.post(f"{native_stack.otlp_http_endpoint}/v1/metrics", data=body, timeout=30,
                      headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
    native_stack.wait_for_series(f'count(drill_flood_ratio) >= {JUNK_SERIES}', timeout=60)
    after = native_stack.wait_for_series(
        f'prometheus_tsdb_head_series{{job="prometheus"}} >= {before + JUNK_SERIES}', timeout=60)
    assert float(after[0]["value"][1]) - before >= JUNK_SERIES

    # evaluated every 5 s, for: 10s; then Alertmanager's group_wait before the sink sees it
    sent = time.time()
    native_stack.poll("MLLabSeriesGrowth firing in Prometheus",
                      lambda: [a for a in native_stack.prometheus_alerts()
                               if a["labels"]["alertname"] == "MLLabSeriesGrowth" and a["state"] == "firing"], 60)
    got = native_stack.wait_for_sink_alert("MLLabSeriesGrowth", timeout=60)
    alert = next(a for rec in got for a in rec["payload"]["alerts"] if a["labels"]["alertname"] == "MLLabSeriesGrowth")
    assert alert["labels"]["job"] == "prometheus" and alert["labels"]["severity"] == "warning"
    gained = int(alert["annotations"]["description"].split(" gained ")[1].split()[0])
    assert gained >= JUNK_SERIES
    drill_report("series flood", f"one OTLP request of {JUNK_SERIES:,} junk series ({len(body) / 1e6:.2f} MB) into the collector",
                 {"head series added": f"{float(after[0]['value'][1]) - before:,.0f}",
                  "MLLabSeriesGrowth at the webhook sink": f"{time.time() - sent:.0f} s after the series were queryable",
                  "gained (alert's value)": f"{gained:,}"})
