"""Personal data in prompts: generated like the real thing, found again by type."""

import random

import pytest

from lab.generative.pii import PII_TYPES, contact_details, find, luhn_ok


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
