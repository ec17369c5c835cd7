"""The support bot's telemetry: the GenAI conventions' spans and metrics, and the lab's own."""

import json

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lab.generative.export import GENAI_METRICS, GenerativeTelemetryObserver, telemetry_options
from lab.generative.judge import VERDICTS
from lab.generative.loop import BotServer
from lab.specs.generative import SERIES_PER_LEAKED_REQUEST, GenerativeSpec
from lab.telemetry.catalogue import ALLOWED_ATTRIBUTES, CATALOGUE, TOKEN_USAGE_BUCKETS, prometheus_series_count
from lab.telemetry.otel import GENERATIVE_SERVICE, RunIdentity, Telemetry

STORY = {"what_you_will_see": "-", "root_cause": "-", "what_to_do": "-"}
SMALL = {"catalogue": {"products": 8, "new_products": 4}, "model": {"hidden": 64, "epochs": 40},
         "stream": {"windows": 5, "window_size": 60, "label_share": 0.6, "label_delay": 30}}
GENERATIVE = {i.name: i for i in CATALOGUE if i.family == "generative"}
REQUIRED_SPAN_ATTRIBUTES = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                            "gen_ai.response.model", "gen_ai.request.max_tokens", "gen_ai.request.temperature",
                            "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons")


def export(**changes):
    spec = GenerativeSpec(name="bot-test", title="t", story=STORY, **{**SMALL, **changes})
    reader, spans, logs = InMemoryMetricReader(), InMemorySpanExporter(), InMemoryLogRecordExporter()
    tel = Telemetry(RunIdentity(spec.name, spec.variant, 0, service_name=GENERATIVE_SERVICE), otlp=False,
                    metric_readers=[reader], span_exporters=[spans], log_exporters=[logs], **telemetry_options(spec))
    result = BotServer(spec, 0, fast=True, observers=[GenerativeTelemetryObserver(tel)]).run()
    data = reader.get_metrics_data()
    tel.shutdown()
    return result, data, spans.get_finished_spans(), logs.get_finished_logs()


@pytest.fixture(scope="module")
def exported():
    return export(release={"from_window": 3, "decode": {"max_tokens": 30, "stop_at_end_token": False}})


def points(data):
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    yield rm.resource, m, p


def test_every_generative_instrument_is_emitted_with_its_unit_kind_and_bounded_attributes(exported):
    _, data, *_ = exported
    seen = {}
    kinds = {"gauge": Gauge, "counter": Sum, "histogram": Histogram}
    for resource, m, p in points(data):
        seen.setdefault(m.name, (m, set()))[1].add(tuple(sorted(p.attributes)))
        for k, v in p.attributes.items():
            assert v in (ALLOWED_ATTRIBUTES[k] or ("support-bot",)), f"{m.name}: {k}={v!r}"
        assert resource.attributes["service.name"] == GENERATIVE_SERVICE
    assert set(seen) == set(GENERATIVE)
    for name, (m, attr_sets) in seen.items():
        inst = GENERATIVE[name]
        assert m.unit == inst.unit and isinstance(m.data, kinds[inst.kind]), name
        assert attr_sets == {tuple(sorted(inst.attributes))}, name
        if inst.kind == "histogram":
            assert all(tuple(p.explicit_bounds) == inst.buckets for p in m.data.data_points), name


def test_values_match_the_run(exported):
    r, data, *_ = exported
    pts = {}
    for _, m, p in points(data):
        pts.setdefault(m.name, []).append(p)
    usage = {p.attributes["gen_ai.token.type"]: p for p in pts["gen_ai.client.token.usage"]}
    assert usage["input"].sum == sum(w.input_tokens for w in r.windows)
    assert usage["output"].sum == sum(w.output_tokens for w in r.windows)
    assert usage["input"].count == usage["output"].count == r.requests
    assert tuple(usage["input"].explicit_bounds) == TOKEN_USAGE_BUCKETS
    by_reason = {p.attributes["finish_reason"]: p.value for p in pts["ml.genai.requests"]}
    assert by_reason == {"stop": sum(w.finish_reasons.get("stop", 0) for w in r.windows),
                         "length": 2 * 60}  # the release's two windows
    assert [p.value for p in pts["ml.genai.cost.usd"]] == [pytest.approx(sum(w.cost_usd for w in r.windows))]
    ratings = {p.attributes["rating"]: p.value for p in pts["ml.genai.feedback"]}
    assert ratings == {"down": sum(w.complaints for w in r.windows),
                       "up": sum(w.ratings - w.complaints for w in r.windows)}
    assert [p.value for p in pts["ml.genai.quality.accuracy"]] == [r.windows[-1].accuracy]
    labels = {p.attributes["verdict"]: p.value for p in pts["ml.genai.labels"]}
    assert sum(labels.values()) == r.windows[-1].labels_total
    assert labels == {v: sum(w.label_verdicts[v] for w in r.windows) for v in VERDICTS}
    assert [p.value for p in pts["ml.genai.drift.confidence_ks_p_value"]] == [r.windows[-1].confidence_ks_pvalue]
    assert [p.value for p in pts["ml.genai.drift.prompt_length_psi"]] == [r.windows[-1].length_psi]
    assert [p.value for p in pts["ml.genai.windows"]] == [5] and [p.value for p in pts["ml.genai.running"]] == [0]


def test_request_spans_follow_the_genai_conventions_and_carry_no_content(exported):
    r, _, spans, logs = exported
    req = [s for s in spans if s.name == "chat support-bot"]
    assert len(req) == r.requests and all(s.kind.name == "INTERNAL" for s in req)
    for s in req:
        assert all(a in s.attributes for a in REQUIRED_SPAN_ATTRIBUTES), s.attributes
        assert not any(k.endswith("messages") for k in s.attributes)
    late = [s for s in req if s.attributes["lab.window"] >= 3]
    assert all(s.attributes["gen_ai.response.finish_reasons"] == ("length",) for s in late)
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 30 == s.attributes["gen_ai.request.max_tokens"] for s in late)
    assert len([s for s in spans if s.name == "window_check"]) == 5
    assert [x.log_record.attributes["lab.event"] for x in logs] == ["serve_start", "release", "serve_end"]


def test_content_capture_puts_prompt_and_answer_on_the_span():
    r, _, spans, _ = export(stream={**SMALL["stream"], "windows": 1}, capture_content=True)
    s = next(s for s in spans if s.name == "chat support-bot")
    prompt = json.loads(s.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
    answer = json.loads(s.attributes["gen_ai.output.messages"])[0]
    assert prompt and answer["role"] == "assistant" and answer["finish_reason"] in ("stop", "length")


def _series(data) -> int:
    """Prometheus series of the exported points: a histogram's buckets (+Inf too), sum and count."""
    return sum(len(p.explicit_bounds) + 3 if isinstance(m.data, Histogram) else 1 for _, m, p in points(data))


def test_a_run_exports_its_documented_series_budget(exported):
    _, data, *_ = exported
    assert _series(data) == prometheus_series_count(family="generative")


def test_the_spec_counts_a_leaked_requests_series_as_the_catalogue_does():
    assert SERIES_PER_LEAKED_REQUEST == sum(len(GENERATIVE[n].buckets) + 3 for n in GENAI_METRICS) + \
        (len(GENERATIVE["gen_ai.client.token.usage"].buckets) + 3)  # token usage: input and output


def test_a_per_request_response_model_multiplies_the_series_and_the_fix_view_drops_it():
    stream, leak = {**SMALL["stream"], "windows": 3}, {"from_window": 1, "every": 20}
    r, data, spans, _ = export(stream=stream, leak=leak)
    tagged = [s for s in spans if s.name == "chat support-bot" and s.attributes["gen_ai.response.model"] != "support-bot"]
    assert len(tagged) == r.spec.leaked_requests == 6  # requests 60, 80, ..., 160
    assert all(s.attributes["gen_ai.response.model"] == s.attributes["gen_ai.response.id"] for s in tagged)
    one_token = sum(s.attributes["gen_ai.usage.output_tokens"] == 1 for s in tagged)  # no time per output token
    tpot = len(GENERATIVE["gen_ai.server.time_per_output_token"].buckets) + 3
    assert _series(data) == prometheus_series_count(family="generative") + \
        SERIES_PER_LEAKED_REQUEST * len(tagged) - tpot * one_token
    assert r.windows[-1].metric_series == _series(data)  # what the loop counts is what was exported
    r, data, spans, _ = export(stream=stream, leak={**leak, "view_drops_attribute": True})
    assert _series(data) == prometheus_series_count(family="generative") == r.windows[-1].metric_series
    assert not any("gen_ai.response.model" in p.attributes for _, m, p in points(data) if m.name in GENAI_METRICS)
    assert sum(s.attributes["gen_ai.response.model"] != "support-bot" for s in spans if s.name == "chat support-bot") == 6


@pytest.mark.parametrize("leak, message", [
    ({"from_window": 9, "every": 20}, "not inside the run"),
    ({"from_window": 0, "every": 2}, "at most 50"),
])
def test_a_leak_is_bounded_and_inside_the_run(leak, message):
    with pytest.raises(ValueError, match=message):
        GenerativeSpec(name="bot-test", title="t", story=STORY, leak=leak, **SMALL)


def _pii(data):
    return {p.attributes["pii_type"]: p.value for _, m, p in points(data) if m.name == "ml.genai.pii.exported"}


def test_personal_data_reaches_telemetry_only_with_content_capture():
    stream = {**SMALL["stream"], "windows": 2, "pii_share": 0.5}
    r, data, spans, _ = export(stream=stream)
    assert sum(w.pii_prompts for w in r.windows) > 20
    assert _pii(data) == {"email": 0, "phone": 0, "card": 0}
    assert not any("@" in str(v) for s in spans for v in s.attributes.values())
    r, data, spans, _ = export(stream=stream, capture_content=True)
    exported = _pii(data)
    assert sum(exported.values()) >= sum(w.pii_prompts for w in r.windows) and min(exported.values()) > 0
    assert any("@" in s.attributes.get("gen_ai.input.messages", "") for s in spans)
