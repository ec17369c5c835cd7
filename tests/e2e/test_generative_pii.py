"""PII in telemetry, end to end: scenario bot-pii and its fix through the real collector.

Both variants run `--fast` (3 windows of 100 questions, test seed lab.dev.calibrate.TEST_SEEDS[0])
through the run session, as `lab run bot-pii [--fix]` does, against the session's native stack
(tests/conftest.py: `native_stack`), each under an instance of its own. The fault sends to the
collector's default OTLP entry point; the fix (collector_redaction) to its redacting one
(LAB_OTLP_REDACTED_ENDPOINT, set by NativeStack.otel_env). Each run knows the personal data it
sent: the e-mail addresses, phone and card numbers in its prompts (RequestRecord.prompt).

- fault: those values are in the request spans in Jaeger, and the collector's exit count
  (ml_collector_pii_spans_total) equals, per type, the spans that carried one;
- fix: not one of them is anywhere in Jaeger, in VictoriaLogs or in a Prometheus label value;
  the exit count has no series and ml_collector_pii_masked_total equals the spans that carried one.
"""

import json
import re
import time
import uuid

import pytest
import requests

from lab.dev.calibrate import TEST_SEEDS
from lab.generative.pii import PII_TYPES
from lab.generative.pii import find as find_pii
from lab.generative.run import run_generative
from lab.specs.loader import load_scenario
from lab.telemetry.observer import BaseObserver
from lab.telemetry.otel import GENERATIVE_SERVICE

SEED = TEST_SEEDS[0]
SHORT = ["stream.windows=3", "stream.window_size=100"]
OPERATION = "chat support-bot"
# How lab.generative.pii.contact_details writes each value into a question.
VALUES = {"email": re.compile(r"my email is (\S+@\S+)"), "phone": re.compile(r"call me on (\+\d+ \d+ \d+ \d+)"),
          "card": re.compile(r"my card is (\d{4} \d{4} \d{4} \d{4})")}


class Requests(BaseObserver):
    def __init__(self):
        self.records = []

    def on_unit(self, rec) -> None:
        self.records.append(rec)


class Run:
    def __init__(self, fix: bool, stack):
        spec = load_scenario("bot-pii", fix=fix, overrides=SHORT)
        assert spec.capture_content and spec.stream.pii_share > 0 and spec.collector_redaction == fix
        self.instance = f"e2e-pii-{uuid.uuid4().hex[:8]}-{'fix' if fix else 'fault'}"
        seen = Requests()
        self.start_us = int(time.time() * 1e6)
        self.outcome = run_generative(spec, seed=SEED, fast=True, telemetry="on", quiet=True, instance=self.instance,
                                      extra_observers=[seen])
        assert self.outcome.streamed and self.outcome.exports_delivered > 0 and not self.outcome.exports_failed
        self.records = seen.records
        self.run_id = self.outcome.identity.run_id
        self.values = {kind: {v for r in self.records for v in VALUES[kind].findall(r.prompt)} for kind in PII_TYPES}
        # request spans carrying each type in their content (prompt or answer), as the collector counts
        self.spans = {kind: sum(1 for r in self.records if r.pii[kind] + find_pii(r.answer)[kind]) for kind in PII_TYPES}
        self.sel = f'job="ml-lab/{GENERATIVE_SERVICE}",instance="{self.instance}"'

    @property
    def all_values(self) -> set[str]:
        return set().union(*self.values.values())


@pytest.fixture(scope="module")
def runs(native_stack):
    with pytest.MonkeyPatch.context() as env:
        for k, v in native_stack.otel_env().items():
            env.setenv(k, v)
        fault, fix = Run(False, native_stack), Run(True, native_stack)
    for run in (fault, fix):
        assert all(run.values.values()), f"every type sent: {run.values}"
        assert sum(len(v) for v in run.values.values()) == sum(sum(r.pii.values()) for r in run.records)
    return fault, fix


def jaeger_spans(stack, run) -> list[dict]:
    """The run's request spans in Jaeger: each span's tags, the run's resource (process) tags checked."""
    url = f"http://127.0.0.1:{stack.ports['LAB_JAEGER_UI_PORT']}/api/traces"
    got = requests.get(url, params={"service": GENERATIVE_SERVICE, "operation": OPERATION, "start": run.start_us,
                                    "limit": 5000}, timeout=20).json().get("data") or []
    out = []
    for trace in got:
        for s in trace["spans"]:
            process = {t["key"]: t["value"] for t in trace["processes"][s["processID"]]["tags"]}
            if s["operationName"] == OPERATION and process.get("lab.run.id") == run.run_id:
                out.append({t["key"]: t["value"] for t in s["tags"]})
    return out


def wait_for_spans(stack, run) -> list[dict]:
    return stack.poll(f"the {len(run.records)} request spans of {run.instance} in Jaeger",
                      lambda: (s := jaeger_spans(stack, run)) and len(s) == len(run.records) and s, timeout=30)


def exit_counts(stack, run, metric: str) -> dict[str, float]:
    return {s["metric"].get("pii_type", ""): float(s["value"][1]) for s in stack.query(f"{metric}{{{run.sel}}}")}


def test_fault_personal_data_reaches_jaeger_and_the_exit_count_sees_every_span(native_stack, runs):
    fault, _ = runs
    spans = wait_for_spans(native_stack, fault)
    content = " ".join(str(s.get("gen_ai.input.messages", "")) for s in spans)
    for kind, values in fault.values.items():
        assert all(v in content for v in values), f"{kind} values missing from Jaeger"
    assert not [s for s in spans if "redaction.masked.count" in s]
    expected = {k: float(n) for k, n in fault.spans.items()}
    native_stack.poll("ml_collector_pii_spans_total by type == the spans that carried one",
                      lambda: exit_counts(native_stack, fault, "ml_collector_pii_spans_total") == expected, timeout=20)
    assert sum(expected.values()) > 0
    assert not native_stack.query(f"ml_collector_pii_masked_total{{{fault.sel}}}")
    # the SDK's count of values sent says the same from the bot's side
    sent = {s["metric"]["pii_type"]: float(s["value"][1])
            for s in native_stack.query(f"ml_genai_pii_exported_total{{{fault.sel}}}")}
    assert sent == {k: float(sum(r.pii[k] + find_pii(r.answer)[k] for r in fault.records)) for k in PII_TYPES}


def test_fix_no_personal_data_in_jaeger_victorialogs_or_prometheus(native_stack, runs):
    fault, fix = runs
    spans = wait_for_spans(native_stack, fix)
    carrying = sum(1 for r in fix.records if any(r.pii.values()))
    masked = [s for s in spans if s.get("redaction.masked.count")]
    assert len(masked) == carrying > 0
    assert all("****" in s["gen_ai.input.messages"] for s in masked)
    # the collector counted the masking, and nothing leaving it carried personal data
    native_stack.poll("ml_collector_pii_masked_total == the spans that carried personal data",
                      lambda: exit_counts(native_stack, fix, "ml_collector_pii_masked_total") == {"": float(carrying)},
                      timeout=20)
    assert not native_stack.query(f"ml_collector_pii_spans_total{{{fix.sel}}}")
    secrets = fix.all_values
    # Jaeger: every span of the bot's service since the fix started (all operations, tags, events, process)
    url = f"http://127.0.0.1:{native_stack.ports['LAB_JAEGER_UI_PORT']}/api/traces"
    traces = requests.get(url, params={"service": GENERATIVE_SERVICE, "start": fix.start_us, "limit": 5000},
                          timeout=20).json()["data"]
    dump = json.dumps(traces)
    assert fix.run_id in dump and not [v for v in secrets if v in dump]
    # VictoriaLogs: the run's records, and each value searched for anywhere
    logs = f"http://127.0.0.1:{native_stack.ports['LAB_VICTORIALOGS_PORT']}/select/logsql/query"
    records = native_stack.poll("the fix run's log records in VictoriaLogs", lambda: requests.get(
        logs, params={"query": f'"lab.run.id":"{fix.run_id}"', "limit": 1000}, timeout=10).text.strip(), timeout=30)
    assert "lab.serve_start" in records and not [v for v in secrets if v in records]
    for value in sorted(secrets)[:10]:
        assert not requests.get(logs, params={"query": json.dumps(value), "limit": 10}, timeout=10).text.strip(), value
    # Prometheus: no label value anywhere holds one
    prom = native_stack.prometheus_url
    names = requests.get(f"{prom}/api/v1/labels", timeout=10).json()["data"]
    label_values = {v for n in names for v in requests.get(f"{prom}/api/v1/label/{n}/values", timeout=10).json()["data"]}
    assert fix.instance in label_values
    assert not [v for v in secrets | fault.all_values if any(v in lv for lv in label_values)]


def test_logs_carry_no_content_even_without_redaction(native_stack, runs):
    # The bot's log records are events (serve_start, serve_end), never prompts: VictoriaLogs holds no
    # personal data even from the fault run (docs/generative.md).
    fault, _ = runs
    logs = f"http://127.0.0.1:{native_stack.ports['LAB_VICTORIALOGS_PORT']}/select/logsql/query"
    records = native_stack.poll("the fault run's log records in VictoriaLogs", lambda: requests.get(
        logs, params={"query": f'"lab.run.id":"{fault.run_id}"', "limit": 1000}, timeout=10).text.strip(), timeout=30)
    assert not [v for v in fault.all_values if v in records]
