"""Answers judged against the catalogue."""

import pytest

from lab.generative.catalogue import Question, make_catalogue
from lab.generative.judge import CORRECT, HALLUCINATION, UNANSWERED, WRONG, read_claim, verdict
from lab.specs.generative import CatalogueSpec

CAT = make_catalogue(CatalogueSpec())
P = CAT.known[0]
OTHER_PRICE = next(p.price for p in CAT.known if p.price != P.price)


def q(kind, product=P.name):
    return Question(kind, None if kind in ("returns", "shipping") else product, "?", CAT.answer(kind, product), False)


@pytest.mark.parametrize("kind, answer, expected", [
    ("price", f"it costs {P.price} dollars", CORRECT),
    ("price", f"it costs {P.price} dollars it costs 19 dollars and more", CORRECT),  # run-on: first claim judged
    ("price", f"it costs {OTHER_PRICE} dollars", HALLUCINATION),
    ("price", f"it has a {P.warranty} year warranty", WRONG),  # true, but not what was asked
    ("price", f"it has a {P.warranty + 7} year warranty", HALLUCINATION),
    ("features", f"it is {P.features[1]} and {P.features[0]}", CORRECT),  # order does not matter
    ("features", f"it is {P.features[0]} and nothing", HALLUCINATION),
    ("category", f"it is a {P.category}", CORRECT),
    ("category", "it is a smartwatch" if P.category != "smartwatch" else "it is a lamp", HALLUCINATION),
    ("returns", f"you can return any product within {CAT.policies['returns']} days", CORRECT),
    ("returns", f"shipping takes {CAT.policies['shipping']} days", WRONG),
    ("shipping", f"shipping takes {CAT.policies['shipping'] + 100} days", HALLUCINATION),
    ("price", "", UNANSWERED),
    ("price", "dollars costs it", UNANSWERED),
    ("price", f"costs {P.price} dollars", UNANSWERED),  # a claim must be whole
])
def test_verdicts(kind, answer, expected):
    assert verdict(CAT, q(kind), answer) == expected


def test_any_claim_about_a_product_the_catalogue_lacks_is_a_hallucination():
    question = Question("price", "nosuchthing", "how much is the nosuchthing", "", False)
    assert verdict(CAT, question, f"it costs {P.price} dollars") == HALLUCINATION


def test_every_correct_answer_reads_as_its_own_claim():
    for question in CAT.questions(CAT.known, heldout=False):
        assert read_claim(question.answer)[0] == question.kind
        assert verdict(CAT, question, question.answer) == CORRECT
