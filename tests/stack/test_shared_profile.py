"""The shared-host profile (`make up LAB_PROFILE=shared`; docs/stack.md "Shared hosts") on a
private native stack: without its credentials another local user cannot write series (through
the collector or straight into Prometheus), read Prometheus, post or silence alerts, stop or
reload Prometheus, or write to and wipe the webhook sink. With them everything works: alerts
travel Prometheus -> Alertmanager -> sink on the profile's credentials, and a `lab run` that
finds the stack through its stack.env streams with the token. The session's stack, in the
default profile, takes the same requests without any credential."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from lab.dev.stack import NativeStack, otlp_gauge_request, private_native_stack
from lab.practice.triage import Case, fired_alerts
from lab.repo import ROOT, read_stack_env

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def shared() -> NativeStack:
    # LAB_PORT_OFFSET=0: the private stack's ports are already free ones of its own.
    with private_native_stack(settings={"LAB_PROFILE": "shared", "LAB_PORT_OFFSET": "0"}) as stack:
        yield stack


def credentials(stack: NativeStack) -> dict[str, str]:
    return read_stack_env(stack.state_dir / "auth" / "credentials.env")


def basic(stack: NativeStack) -> tuple[str, str]:
    c = credentials(stack)
    return c["LAB_AUTH_USER"], c["LAB_AUTH_PASSWORD"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}  # lower case: gRPC metadata requires it


def series_request(name: str) -> bytes:
    return otlp_gauge_request(name, "probe", 1, time.time_ns(), "shared-profile-test")


def silence(minutes: float = 1) -> dict:
    now = datetime.now(timezone.utc)
    return {"matchers": [{"name": "alertname", "value": "MLLabProfileProbe", "isRegex": False}],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            "createdBy": "tests/stack/test_shared_profile.py", "comment": "profile probe"}


def fake_alert() -> list[dict]:
    ends = datetime.now(timezone.utc) + timedelta(seconds=30)
    return [{"labels": {"alertname": "MLLabProfileProbe", "severity": "none"}, "endsAt": ends.isoformat()}]


def grpc_export(stack: NativeStack, headers: dict[str, str] | None) -> bool:
    """One export over OTLP/gRPC; True if the collector took it."""
    exporter = OTLPMetricExporter(endpoint=stack.otlp_grpc_endpoint, insecure=True, headers=headers, timeout=5)
    try:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        provider.get_meter("t").create_counter("ml.lab.profile_probe").add(1)
        data = reader.get_metrics_data()
        return exporter.export(data).name == "SUCCESS"
    finally:
        exporter.shutdown()


# --- the shared profile --------------------------------------------------------------------

def test_without_credentials_nothing_can_be_written_or_stopped(shared):
    prom, am, sink = shared.prometheus_url, shared.alertmanager_url, shared.webhook_sink_url
    refused = {
        "OTLP/HTTP write to the collector": requests.post(f"{shared.otlp_http_endpoint}/v1/metrics",
                                                          data=series_request("ml.lab.forged"), headers=PROTOBUF),
        "OTLP/HTTP write to the redacting entry point": requests.post(f"{shared.otlp_redacted_http_endpoint}/v1/metrics",
                                                                      data=series_request("ml.lab.forged"), headers=PROTOBUF),
        "OTLP write straight into Prometheus": requests.post(f"{prom}/api/v1/otlp/v1/metrics",
                                                             data=series_request("ml.lab.forged"), headers=PROTOBUF),
        "Prometheus query": requests.get(f"{prom}/api/v1/query", params={"query": "up"}),
        "Prometheus quit": requests.post(f"{prom}/-/quit"),
        "Prometheus reload": requests.post(f"{prom}/-/reload"),
        "Alertmanager silence": requests.post(f"{am}/api/v2/silences", json=silence()),
        "Alertmanager alert post": requests.post(f"{am}/api/v2/alerts", json=fake_alert()),
        "Alertmanager reload": requests.post(f"{am}/-/reload"),
        "sink write": requests.post(f"{sink}/alertmanager", json={"version": "4", "alerts": []}),
        "sink wipe": requests.delete(f"{sink}/alerts"),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 401)
    assert not grpc_export(shared, None), "an OTLP/gRPC export without the token was accepted"
    # Wrong credentials are no better than none.
    assert requests.get(f"{prom}/api/v1/query", params={"query": "up"}, auth=("lab", "guess")).status_code == 401
    assert requests.post(f"{shared.otlp_http_endpoint}/v1/metrics", data=series_request("ml.lab.forged"),
                         headers={**PROTOBUF, **bearer("guess")}).status_code == 401


def test_with_credentials_everything_works_but_the_lifecycle_api(shared):
    c, auth = credentials(shared), basic(shared)
    prom, am = shared.prometheus_url, shared.alertmanager_url
    r = requests.post(f"{shared.otlp_http_endpoint}/v1/metrics", data=series_request("ml.lab.profile_probe"),
                      headers={**PROTOBUF, **bearer(c["LAB_OTLP_TOKEN"])})
    assert r.status_code == 200, r.text
    assert grpc_export(shared, bearer(c["LAB_OTLP_TOKEN"]))
    # The collector passes it on to Prometheus with the profile's basic auth.
    def probe_series():
        r = requests.get(f"{prom}/api/v1/query", params={"query": '{__name__=~"ml_lab_profile_probe.*"}'}, auth=auth)
        return r.ok and r.json()["data"]["result"]
    shared.poll("the authenticated write in Prometheus", probe_series, timeout=30)
    s = requests.post(f"{am}/api/v2/silences", json=silence(), auth=auth)
    assert s.status_code == 200, s.text
    assert requests.delete(f"{am}/api/v2/silence/{s.json()['silenceID']}", auth=auth).status_code == 200
    assert requests.post(f"{am}/api/v2/alerts", json=fake_alert(), auth=auth).status_code == 200
    # Lifecycle off: even the owner stops Prometheus by its PID (make down), not over HTTP.
    assert requests.post(f"{prom}/-/quit", auth=auth).status_code == 403
    assert requests.get(f"{prom}/-/ready", auth=auth).status_code == 200


def test_alerts_reach_the_sink_on_the_profiles_credentials(shared):
    auth = basic(shared)

    def up():
        r = requests.get(f"{shared.prometheus_url}/api/v1/query", params={"query": "up"}, auth=auth)
        return r.ok and {s["metric"]["job"]: s["value"][1] for s in r.json()["data"]["result"]}

    # Prometheus scrapes itself and Alertmanager with basic auth; the collector's metrics stay open.
    jobs = shared.poll("every scrape target up", lambda: (j := up()) and set(j.values()) == {"1"} and len(j) >= 3 and j,
                       timeout=30)
    assert {"prometheus", "alertmanager", "otel-collector"} <= set(jobs)
    # The Watchdog, always firing, reaches the sink: Prometheus -> Alertmanager (basic auth) -> sink (its token).
    shared.poll("the Watchdog at the sink", lambda: requests.get(f"{shared.webhook_sink_url}/alerts",
                                                                 params={"alertname": "MLLabWatchdog"}).json(), timeout=60)


def test_a_lab_run_finds_the_token_in_stack_env_and_streams(shared):
    env_file = read_stack_env(shared.state_dir / "stack.env")
    assert env_file["LAB_PROFILE"] == "shared" and env_file["OTEL_EXPORTER_OTLP_HEADERS"].startswith("authorization=Bearer%20")
    # Only its owner can read the state: the token and the password are in it.
    for path in (shared.state_dir, shared.state_dir / "auth"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((shared.state_dir / "stack.env").stat().st_mode) == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["LAB_STATE_DIR"] = str(shared.state_dir)
    for var in [k for k in env if k.startswith("LAB_") and (k.endswith("_PORT") or k.endswith("_URL"))]:
        del env[var]  # the run must find the stack through stack.env alone
    proc = subprocess.run([sys.executable, "-m", "lab", "run", "stalled", "--fast", "--plain", "--seed", "0",
                           "--telemetry", "on", "--set", "train.epochs=1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    auth = basic(shared)

    def steps():
        r = requests.get(f"{shared.prometheus_url}/api/v1/query",
                         params={"query": 'ml_training_steps_total{lab_scenario="stalled"}'}, auth=auth)
        return r.ok and r.json()["data"]["result"]
    shared.poll("the run's steps in Prometheus", steps, timeout=30)


def test_practice_mode_asks_the_shared_prometheus_with_the_profiles_password(shared, monkeypatch):
    case = Case(case_id="c0ffee", seed=0, scenario="stalled", diagnosis="stalled", run_seed=0, started_at=time.time() - 60)
    monkeypatch.delenv("LAB_AUTH_DIR", raising=False)
    assert fired_alerts(case, shared.prometheus_url) is None  # refused: as good as unreachable
    monkeypatch.setenv("LAB_AUTH_DIR", str(shared.state_dir / "auth"))  # what stack.env gives `lab triage`
    assert fired_alerts(case, shared.prometheus_url) == {}


# --- the default profile: the same requests, no credential ----------------------------------

def test_the_default_profile_takes_the_same_requests_without_credentials(native_stack):
    prom, am = native_stack.prometheus_url, native_stack.alertmanager_url
    r = requests.post(f"{native_stack.otlp_http_endpoint}/v1/metrics", data=series_request("ml.lab.profile_probe"),
                      headers=PROTOBUF)
    assert r.status_code == 200, r.text
    assert requests.get(f"{prom}/api/v1/query", params={"query": "up"}).status_code == 200
    s = requests.post(f"{am}/api/v2/silences", json=silence())
    assert s.status_code == 200, s.text
    assert requests.delete(f"{am}/api/v2/silence/{s.json()['silenceID']}").status_code == 200
    assert requests.post(f"{am}/api/v2/alerts", json=fake_alert()).status_code == 200
    # The lifecycle API is on (one flag opens /-/reload and /-/quit; reloading leaves the stack up).
    assert requests.post(f"{prom}/-/reload").status_code == 200
    assert json.loads(requests.get(f"{prom}/api/v1/status/flags").text)["data"]["web.enable-lifecycle"] == "true"
