"""Drills: real faults that fire the alerts no scenario teaches, end to end (issue 16).

- A serving run whose clients send 5% malformed requests (`--set stream.invalid_rate=0.05`):
  the server rejects them, and MLLabInferenceErrors (more than 1% of a minute's requests
  failed, for 30 s) fires at Prometheus and reaches the webhook sink.
- The collector goes down: Prometheus's scrape of it fails, and MLLabTargetDown (up == 0 for
  15 s) fires and reaches the sink; the collector is started again afterwards.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from lab.repo import ROOT

HOST = socket.gethostname()


def _firing(native_stack, alertname: str, **labels: str):
    return [a for a in native_stack.prometheus_alerts()
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def _at_sink(native_stack, alertname: str, since: float, **labels: str):
    return [a for t, a in native_stack.firing_sink_alerts()
            if t >= since and a["labels"]["alertname"] == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def test_malformed_requests_fire_inference_errors_end_to_end(native_stack, drill_report):
    instance = f"{HOST}:serving-healthy:custom"  # --set makes the variant "custom"
    t0 = time.time()
    p = subprocess.Popen([sys.executable, "-m", "lab", "run", "serving-healthy", "--plain", "--telemetry", "on",
                          "--set", "stream.invalid_rate=0.05", "--set", "stream.windows=60"],
                         cwd=ROOT, env={**os.environ, **native_stack.otel_env()},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # rate() needs two samples, then for: 30s: firing about 40 s into the stream
        alert = native_stack.poll("MLLabInferenceErrors firing",
                                  lambda: _firing(native_stack, "MLLabInferenceErrors", instance=instance), 120)[0]
        fired = time.time()
        native_stack.poll("MLLabInferenceErrors at the webhook sink",
                          lambda: _at_sink(native_stack, "MLLabInferenceErrors", t0, instance=instance), 60)
    finally:
        p.send_signal(signal.SIGTERM)  # the lesson is learnt: stop the stream
        p.communicate(timeout=60)
    share = float(alert["value"])
    print(f"MLLabInferenceErrors fired {fired - t0:.0f} s after the run started, error share {share:.3f}")
    assert 0.03 < share < 0.07  # the clients' 5%, measured by the server
    drill_report("malformed requests", "serving run, clients send 5% malformed requests",
                 {"MLLabInferenceErrors firing": f"{fired - t0:.0f} s after the run started (rate over 1m + for: 30s)",
                  "error share in the alert": f"{share:.3f}", "at the webhook sink": "yes"})


def test_a_collector_that_stops_answering_scrapes_fires_target_down_end_to_end(native_stack, drill_report):
    t0 = time.time()
    with native_stack.component_down("otel-collector", signal.SIGTERM):
        native_stack.poll("MLLabTargetDown firing for the collector",
                          lambda: _firing(native_stack, "MLLabTargetDown", job="otel-collector"), 90)
        fired = time.time()
        # still down: an alert that resolves within Alertmanager's group_wait is never notified as firing
        native_stack.poll("MLLabTargetDown at the webhook sink",
                          lambda: _at_sink(native_stack, "MLLabTargetDown", t0, job="otel-collector"), 60)
    print(f"MLLabTargetDown fired {fired - t0:.0f} s after the collector went down")
    # and it clears once the collector answers again
    native_stack.poll("MLLabTargetDown resolved", lambda: not _firing(native_stack, "MLLabTargetDown"), 60)
    drill_report("collector down", "collector stopped (SIGTERM) until the alert reached the sink, then started again",
                 {"MLLabTargetDown firing": f"{fired - t0:.0f} s after the collector went down (3 failed scrapes + for: 15s)",
                  "at the webhook sink": "yes", "resolved": f"{time.time() - t0:.0f} s after it went down"})
