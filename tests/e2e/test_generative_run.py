"""A real --fast support-bot run through the real collector into Prometheus and Jaeger.

The bot serves in this process and exports over OTLP to the session's native stack
(tests/conftest.py: `native_stack`), under an instance of its own. Names, labels and the
series budget are checked against the catalogue (family "generative"; docs/metrics.md);
spans against the OpenTelemetry GenAI conventions, with no message content.
"""

import uuid

import pytest
import requests

from lab.generative.export import GenerativeTelemetryObserver
from lab.generative.loop import BotServer
from lab.specs.generative import GenerativeSpec
from lab.telemetry.catalogue import CATALOGUE, prometheus_series_count
from lab.telemetry.otel import GENERATIVE_SERVICE, RunIdentity, Telemetry

GENERATIVE = [i for i in CATALOGUE if i.family == "generative"]
STORY = {"what_you_will_see": "-", "root_cause": "-", "what_to_do": "-"}
WINDOWS = 4
SPEC = GenerativeSpec(name="bot-e2e", title="support bot end to end", story=STORY,
                      catalogue={"products": 8, "new_products": 4}, model={"hidden": 64, "epochs": 40},
                      stream={"windows": WINDOWS, "window_size": 60, "label_share": 0.6, "label_delay": 30},
                      release={"from_window": 2, "decode": {"max_tokens": 30, "stop_at_end_token": False}})


@pytest.fixture(scope="module")
def bot_run(native_stack):
    instance = f"e2e-bot-{uuid.uuid4().hex[:8]}"
    identity = RunIdentity(SPEC.name, SPEC.variant, 1, service_name=GENERATIVE_SERVICE, instance=instance)
    with pytest.MonkeyPatch.context() as env:
        for k, v in native_stack.otel_env().items():
            env.setenv(k, v)
        tel = Telemetry(identity, otlp=True)
        result = BotServer(SPEC, 1, fast=True, observers=[GenerativeTelemetryObserver(tel, flush_every_window=True)]).run()
        tel.shutdown()
    assert not tel.export_errors.count, tel.export_errors.last
    sel = f'job="ml-lab/{GENERATIVE_SERVICE}",instance="{instance}"'
    native_stack.wait_for_series(f"ml_genai_windows_total{{{sel}}} == {WINDOWS} and ml_genai_running{{{sel}}} == 0",
                                 timeout=90)
    return result, sel, identity.run_id


@pytest.mark.parametrize("inst", GENERATIVE, ids=lambda i: i.prometheus)
def test_every_generative_series_is_queryable_with_its_labels(native_stack, bot_run, inst):
    _, sel, _ = bot_run
    name = inst.prometheus + ("_count" if inst.kind == "histogram" else "")
    series = native_stack.query(f'{{__name__="{name}",{sel}}}')
    assert series, f"{name} not in Prometheus"
    for s in series:
        extra = set(s["metric"]) - {"__name__", "job", "instance", "lab_scenario", "lab_variant", "le", "otel_scope_name",
                                    "otel_scope_version", "otel_scope_schema_url"}
        assert extra == {a.replace(".", "_") for a in inst.attributes}, f"{name}: {sorted(extra)} != {inst.attributes}"
    if inst.kind == "histogram":
        buckets = native_stack.query(f'{{__name__="{inst.prometheus}_bucket",{sel}}}')
        assert len(buckets) == (len(inst.buckets) + 1) * len(series)


def test_the_run_makes_its_series_budget_in_prometheus(native_stack, bot_run):
    _, sel, _ = bot_run
    [count] = native_stack.query(f'count({{__name__=~"(ml_genai|gen_ai)_.+",{sel}}})')
    assert int(count["value"][1]) == prometheus_series_count(family="generative")


def test_values_match_the_run(native_stack, bot_run):
    r, sel, _ = bot_run
    q = lambda promql: float(native_stack.query(promql)[0]["value"][1])  # noqa: E731
    assert q(f"sum(ml_genai_requests_total{{{sel}}})") == r.requests == WINDOWS * 60
    assert q(f'ml_genai_requests_total{{{sel},finish_reason="length"}}') == 2 * 60  # the release's windows
    assert q(f'gen_ai_client_token_usage_sum{{{sel},gen_ai_token_type="input"}}') == sum(w.input_tokens for w in r.windows)
    assert q(f'gen_ai_client_token_usage_sum{{{sel},gen_ai_token_type="output"}}') == sum(w.output_tokens for w in r.windows)
    assert q(f"ml_genai_cost_usd_total{{{sel}}}") == pytest.approx(sum(w.cost_usd for w in r.windows))
    assert q(f"ml_genai_quality_accuracy_ratio{{{sel}}}") == pytest.approx(r.windows[-1].accuracy)


def test_request_spans_reach_jaeger_with_the_genai_attributes_and_no_content(native_stack, bot_run):
    r, _, run_id = bot_run
    written = native_stack.wait_for_exported(
        "traces", lambda s: s["resource"].get("lab.run.id") == run_id and s["name"] == "chat support-bot", timeout=60)
    assert all(not k.endswith(".messages") for s in written for k in s["attributes"])
    url = f"http://127.0.0.1:{native_stack.ports['LAB_JAEGER_UI_PORT']}/api/traces"

    def jaeger():
        got = requests.get(url, params={"service": GENERATIVE_SERVICE, "operation": "chat support-bot", "limit": 50},
                           timeout=10).json().get("data") or []
        return [{t["key"]: t["value"] for t in s["tags"]} for trace in got for s in trace["spans"]
                if s["operationName"] == "chat support-bot"]

    found = native_stack.poll("the bot's request spans in Jaeger", jaeger, timeout=60)
    for tags in found:
        assert tags["gen_ai.operation.name"] == "chat" and tags["gen_ai.provider.name"] == "ml-lab"
        assert tags["gen_ai.request.model"] == tags["gen_ai.response.model"] == "support-bot"
        assert tags["gen_ai.usage.input_tokens"] > 0 and tags["gen_ai.usage.output_tokens"] > 0
        assert not [k for k in tags if k.endswith(".messages")]
        if tags["lab.window"] >= 2:  # the release: no end token, cut at 30
            assert tags["gen_ai.usage.output_tokens"] == 30 == tags["gen_ai.request.max_tokens"]
            assert "length" in str(tags["gen_ai.response.finish_reasons"])
