"""Each change to the bot's stream reaches its signatures and no other; the healthy stream none.

One test seed here (TEST_SEEDS, never calibrated on); the thresholds were set on seeds 10-15
(lab/thresholds.py).
"""

import pytest

from lab.dev.calibrate import TEST_SEEDS
from lab.generative.loop import BotServer
from lab.generative.signatures import BOT_SIGNATURES, onsets, reached
from lab.specs.generative import GenerativeSpec

STORY = {"what_you_will_see": "-", "root_cause": "-", "what_to_do": "-"}
CHANGES = {
    "healthy": ({}, set()),
    "new-topic": ({"topic": {"start_window": 6, "ramp_windows": 6, "new_product_share": 0.35}},
                  {"quality_slo", "hallucination", "input_drift", "confidence_drift"}),
    "prompt-bloat": ({"history": {"start_window": 6, "turns": 12}}, {"prompt_bloat", "cost"}),
    "runaway": ({"release": {"from_window": 6, "decode": {"max_tokens": 64, "stop_at_end_token": False}}},
                {"runaway_generation", "cost", "confidence_drift"}),
}


@pytest.mark.parametrize("name", CHANGES)
def test_each_change_reaches_its_signatures_only(name):
    change, expected = CHANGES[name]
    spec = GenerativeSpec(name=name, title=name, story=STORY, stream={"windows": 20}, **change)
    r = BotServer(spec, TEST_SEEDS[1], fast=True).run()
    assert reached(r) == expected, onsets(r)
    at = onsets(r)
    assert all(at[k] >= 6 for k in expected)  # nothing before the change
    assert set(at) == set(BOT_SIGNATURES)
