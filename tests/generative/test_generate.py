"""Streaming generation: finish reasons, token counts and timings come from the model's own work."""

import math

import pytest
import torch

from lab.generative.generate import LENGTH, STOP, generate
from lab.generative.model import trained_bot
from lab.specs.generative import BotModelSpec, CatalogueSpec, DecodeSpec

SMALL = CatalogueSpec(products=8, new_products=2)


@pytest.fixture(scope="module")
def bot():
    return trained_bot(SMALL, BotModelSpec(epochs=40, hidden=64), 0)


def a_question(bot):
    return bot.catalogue.questions(bot.catalogue.known, heldout=False)[0]


def test_a_stopped_answer(bot):
    q = a_question(bot)
    g = generate(bot, q.text, DecodeSpec())
    assert g.finish_reason == STOP and g.text == q.answer
    assert g.output_tokens == len(g.tokens) + 1 == len(g.logprobs)  # the end token counts
    assert g.input_tokens == len(bot.tokenizer.encode(q.text)) + 1
    assert 0 < g.ttft_s <= g.duration_s
    assert g.time_per_output_token_s == pytest.approx((g.duration_s - g.ttft_s) / (g.output_tokens - 1))
    assert all(lp <= 0 for lp in g.logprobs) and 0 < g.confidence <= 1
    assert g.confidence == pytest.approx(math.exp(sum(g.logprobs) / len(g.logprobs)))


def test_max_tokens_cuts_an_answer(bot):
    g = generate(bot, a_question(bot).text, DecodeSpec(max_tokens=2))
    assert g.finish_reason == LENGTH and g.output_tokens == 2 == len(g.tokens)


def test_without_the_end_token_generation_runs_to_max_tokens(bot):
    q = a_question(bot)
    g = generate(bot, q.text, DecodeSpec(max_tokens=40, stop_at_end_token=False))
    assert g.finish_reason == LENGTH and g.output_tokens == 40
    assert bot.tokenizer.eos not in g.tokens
    assert g.text.startswith(q.answer)  # the answer, then a run-on


def test_sampling_is_reproducible_with_its_generator(bot):
    q, d = a_question(bot), DecodeSpec(temperature=1.5, max_tokens=12)
    a, b = (generate(bot, q.text, d, torch.Generator().manual_seed(7)) for _ in range(2))
    assert a.tokens == b.tokens


def test_a_longer_prompt_is_more_input_tokens(bot):
    q = a_question(bot)
    history = " ".join(x.text + " " + x.answer for x in bot.catalogue.questions(bot.catalogue.known, heldout=False)[:20])
    short, long = generate(bot, q.text, DecodeSpec()), generate(bot, history + " " + q.text, DecodeSpec())
    assert long.input_tokens > 10 * short.input_tokens
