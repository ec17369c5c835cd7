"""The support bot in production: the stream, its windows, and what each change does to them."""

import math

import pytest
from pydantic import ValidationError

from lab.dev.calibrate import TEST_SEEDS
from lab.generative.loop import MIN_LABELS, BotServer
from lab.specs.generative import GenerativeSpec
from lab.telemetry.observer import BaseObserver

STORY = {"what_you_will_see": "-", "root_cause": "-", "what_to_do": "-"}
# A small world and model: the loop's mechanics, in seconds.
SMALL = {"catalogue": {"products": 8, "new_products": 4}, "model": {"hidden": 64, "epochs": 40}}


def spec(**kw):
    return GenerativeSpec(name="bot-test", title="t", story=STORY, **kw)


class Log(BaseObserver):
    def __init__(self):
        self.calls = []

    def on_start(self, run):
        self.calls.append(("start", run.planned_units))

    def on_unit(self, rec):
        self.calls.append(("unit", rec.clock))

    def on_report(self, rec):
        self.calls.append(("report", rec.index))

    def on_event(self, ev):
        self.calls.append(("event", ev.name))

    def on_end(self, result):
        self.calls.append(("end", result.stopped))


def test_the_observer_protocol_in_order():
    log = Log()
    s = spec(**SMALL, stream={"windows": 3, "window_size": 50})
    r = BotServer(s, 0, fast=True, observers=[log]).run()
    assert log.calls[0] == ("start", 150) and log.calls[-1] == ("end", "completed")
    units = [c for _, c in log.calls if _ == "unit"]
    assert units == list(range(150)) and r.requests == 150
    assert [c for c in log.calls if c[0] == "report"] == [("report", 0), ("report", 1), ("report", 2)]
    assert log.calls.index(("report", 0)) == 51  # after the window's 50 units


def test_a_healthy_window():
    s = spec(**SMALL, stream={"windows": 6, "window_size": 100, "label_share": 0.5, "label_delay": 50})
    r = BotServer(s, 1, fast=True).run()
    w = r.windows[-1]
    assert w.requests == 100 and w.finish_reasons == {"stop": 100} and w.length_share == 0.0
    assert w.oov_rate == 0.0 and w.new_product_share == 0.0 and w.history_turns == 0 and w.pii_prompts == 0
    st = s.stream
    assert w.cost_usd == pytest.approx((w.input_tokens * st.price_per_1k_input_tokens +
                                        w.output_tokens * st.price_per_1k_output_tokens) / 1000)
    assert math.isnan(r.windows[0].accuracy)  # no label has arrived yet
    assert w.labels >= MIN_LABELS and 0 <= w.accuracy <= 1 and 0 <= w.hallucination_rate <= 1 - w.accuracy
    assert r.windows[-1].labels_total > r.windows[-2].labels_total
    assert sum(x.ratings for x in r.windows) > 0 and 0 <= w.complaints <= w.ratings
    assert 0 < w.ttft_p50_s <= w.ttft_p95_s and w.tpot_p50_s > 0


def test_a_release_without_the_end_token_runs_every_answer_to_max_tokens():
    log = Log()
    s = spec(**SMALL, stream={"windows": 4, "window_size": 50},
             release={"from_window": 2, "decode": {"max_tokens": 48, "stop_at_end_token": False}})
    r = BotServer(s, 0, fast=True, observers=[log]).run()
    before, after = r.windows[1], r.windows[2]
    assert before.length_share == 0.0 and after.length_share == 1.0
    assert after.output_tokens == 48 * after.requests > 4 * before.output_tokens
    assert after.cost_usd > 3 * before.cost_usd
    assert [c for c in log.calls if c[0] == "event"] == [("event", "release")]


def test_conversation_history_multiplies_input_tokens_and_moves_the_length_distribution():
    s = spec(**SMALL, stream={"windows": 4, "window_size": 50}, history={"start_window": 2, "turns": 10})
    r = BotServer(s, 0, fast=True).run()
    before, after = r.windows[1], r.windows[3]
    assert after.history_turns == 10 and before.history_turns == 0
    assert after.input_tokens > 10 * before.input_tokens
    assert after.length_psi > 1.0 > before.length_psi


@pytest.fixture(scope="module")
def new_topic():
    """The default bot; from window 2 a third of the product questions are about new products."""
    s = spec(stream={"windows": 8, "window_size": 200},
             topic={"start_window": 2, "ramp_windows": 0, "new_product_share": 0.35})
    healthy = spec(stream={"windows": 8, "window_size": 200})
    return BotServer(healthy, TEST_SEEDS[0], fast=True).run(), BotServer(s, TEST_SEEDS[0], fast=True).run()


def test_new_topic_moves_quality_and_input_drift_not_tokens(new_topic):
    healthy, shifted = new_topic
    h, s = healthy.windows[-1], shifted.windows[-1]
    assert s.accuracy < h.accuracy - 0.08 and s.hallucination_rate > h.hallucination_rate + 0.05
    assert s.complaint_rate > h.complaint_rate
    assert s.oov_rate > 0.01 and h.oov_rate == 0.0
    assert s.confidence_mean < h.confidence_mean
    assert s.input_tokens == pytest.approx(h.input_tokens, rel=0.1)
    assert s.output_tokens == pytest.approx(h.output_tokens, rel=0.1)
    assert s.length_share == h.length_share == 0.0


def test_conversation_history_costs_tokens_not_quality(new_topic):
    """Prompt bloat: the bot was trained on conversations too, so the last question still gets its answer."""
    healthy, _ = new_topic
    s = spec(stream={"windows": 8, "window_size": 200}, history={"start_window": 2, "turns": 12})
    bloated = BotServer(s, TEST_SEEDS[0], fast=True).run()
    h, b = healthy.windows[-1], bloated.windows[-1]
    assert b.input_tokens > 10 * h.input_tokens and b.cost_usd > 3 * h.cost_usd
    assert b.accuracy > h.accuracy - 0.07 and b.hallucination_rate < h.hallucination_rate + 0.05
    assert b.output_tokens == pytest.approx(h.output_tokens, rel=0.1)


def test_an_interrupt_ends_the_run_cleanly():
    class Stop(Log):
        def on_unit(self, rec):
            super().on_unit(rec)
            if rec.index == 70:
                raise KeyboardInterrupt

    log = Stop()
    r = BotServer(spec(**SMALL, stream={"windows": 3, "window_size": 50}), 0, fast=True, observers=[log]).run()
    assert r.stopped == "interrupted" and len(r.windows) == 1 and log.calls[-1] == ("end", "interrupted")


@pytest.mark.parametrize("bad, message", [
    ({"topic": {"start_window": 9, "new_product_share": 0.3}}, "topic.start_window=9"),
    ({"history": {"start_window": 9, "turns": 3}}, "history.start_window=9"),
    ({"release": {"from_window": 9, "decode": {}}}, "release.from_window=9"),
    ({"catalogue": {"new_products": 0}, "topic": {"start_window": 1, "new_product_share": 0.3}}, "new_products > 0"),
])
def test_changes_outside_the_run_are_rejected(bad, message):
    with pytest.raises(ValidationError, match=message.replace(".", r"\.").replace(">", ">")):
        spec(stream={"windows": 5}, **bad)
