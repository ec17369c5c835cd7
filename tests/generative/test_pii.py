"""Personal data in prompts: generated like the real thing, found again by type; and the collector's
patterns (its redaction step and its exit count, otel-collector/config.yaml) agree with the lab's."""

import json
import random
import re

import pytest
import yaml

from lab.generative.catalogue import make_catalogue
from lab.generative.pii import PII_TYPES, contact_details, find, luhn_ok
from lab.repo import ROOT
from lab.specs.generative import CatalogueSpec


@pytest.mark.parametrize("digits, ok", [("4111111111111111", True), ("4111111111111112", False),
                                        ("79927398713", True), ("0", True)])
def test_luhn_by_hand(digits, ok):
    assert luhn_ok(digits) == ok


def test_every_generated_detail_is_found_as_its_type():
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        kind, sentence = contact_details(rng)
        seen.add(kind)
        assert find(f"how much is the kelmo {sentence}") == {k: int(k == kind) for k in PII_TYPES}, sentence
    assert seen == set(PII_TYPES)


@pytest.mark.parametrize("text", [
    "it costs 139 dollars", "it has a 2 year warranty", "you can return any product within 30 days",
    "4111 1111 1111 1112",  # card-shaped, fails the Luhn check
    "usb-c and dimmable", "what is the price of the zorvex",
])
def test_the_bots_own_words_are_not_personal_data(text):
    assert sum(find(text).values()) == 0


def test_several_values_are_counted():
    text = "a.b@example.com or c@example.org, +44 20 1234 5678, card 4111 1111 1111 1111"
    assert find(text) == {"email": 2, "phone": 1, "card": 1}


# --- the collector's patterns (otel-collector/config.yaml): the same personal data, in Go's RE2 ---------

COLLECTOR = yaml.safe_load((ROOT / "otel-collector" / "config.yaml").read_text())
BLOCKED = COLLECTOR["processors"]["redaction"]["blocked_values"]
ORDER = ("card", "phone", "email")  # the redaction's order: a card is masked whole before the phone pattern looks
CONDITION = re.compile(r'IsMatch\(span\.attributes\["gen_ai\.(input|output)\.messages"\], "(.*)"\)')


def _masked(text: str) -> str:
    """What the redaction processor makes of a value: each pattern in order, every match ****."""
    for pattern in BLOCKED:
        text = re.sub(pattern, "****", text)
    return text


def _content(text: str) -> str:
    """A prompt as the span attribute gen_ai.input.messages carries it (lab/generative/export.py)."""
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def test_the_exit_count_looks_for_exactly_what_the_redaction_masks():
    spans = COLLECTOR["connectors"]["count/pii"]["spans"]
    assert len(BLOCKED) == len(ORDER)
    for kind, pattern in zip(ORDER, BLOCKED):
        found = [CONDITION.fullmatch(c).groups() for c in spans[f"ml.collector.pii.spans.{kind}"]["conditions"]]
        # OTTL string literals double each backslash
        assert found == [("input", pattern.replace("\\", "\\\\")), ("output", pattern.replace("\\", "\\\\"))], kind
        assert not re.search(r"\(\?<?[=!]", pattern), f"{kind}: look-around is not RE2 (Go's regexp)"
        re.compile(pattern)
    assert set(spans) == {f"ml.collector.pii.spans.{k}" for k in PII_TYPES} | {"ml.collector.pii.masked"}


def test_the_collector_patterns_find_every_generated_value_as_its_type_and_mask_it():
    patterns = {kind: re.compile(p) for kind, p in zip(ORDER, BLOCKED)}
    rng = random.Random(1)
    seen = set()
    for _ in range(500):
        kind, sentence = contact_details(rng)
        seen.add(kind)
        content = _content(f"how much is the kelmo {sentence}")
        assert {k for k, p in patterns.items() if p.search(content)} == {kind}, sentence
        masked = _masked(content)
        assert "****" in masked and sum(find(masked).values()) == 0, masked
        value = sentence.rsplit(" ", 4 if kind != "email" else 1)[1:]
        assert not any(part in masked for part in value if len(part) > 2), (sentence, masked)
        json.loads(masked)  # still the same JSON: no quote or bracket masked
    assert seen == set(PII_TYPES)


def test_the_collector_patterns_find_at_least_what_find_counts():
    # Masking more than the lab counts is fine (cards without the Luhn check), less is a leak.
    patterns = {kind: re.compile(p) for kind, p in zip(ORDER, BLOCKED)}
    text = "a.b@example.com or c@example.org, +44 20 1234 5678, card 4111 1111 1111 1111, 4111 1111 1111 1112"
    assert {k for k, p in patterns.items() if p.search(text)} == {k for k, n in find(text).items() if n}
    assert sum(find(_masked(text)).values()) == 0
    assert "4111 1111 1111 1112" not in _masked(text)  # card-shaped, not Luhn-valid: masked all the same


def test_the_bots_own_words_and_the_runs_identity_are_not_masked():
    catalogue = make_catalogue(CatalogueSpec())
    questions = catalogue.questions(catalogue.known + catalogue.new, heldout=False)
    questions += catalogue.questions(catalogue.known + catalogue.new, heldout=True)
    identity = ["20261205T062652-abc123", "host:bot-pii:fault", "ml-lab-generative", "0.1.0", "chat support-bot"]
    for text in [*(q.text for q in questions), *(q.answer for q in questions), *identity]:
        assert _masked(text) == text, text
