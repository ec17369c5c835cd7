"""Judging an answer against the catalogue: correct, wrong, hallucination or unanswered.

An answer's first claim is read in the fixed forms the bot was trained on
(catalogue.ANSWER_FORMS), about the product the question asked about; what follows it (a
run-on generation) is not judged.
  correct        the claim is the fact that was asked for
  hallucination  the claim is false in the catalogue: a price, warranty, feature set or
                 category the product does not have (every claim about a product the
                 catalogue lacks), or a policy the store does not have
  wrong          a true claim that does not answer (another kind of fact than asked)
  unanswered     no claim can be read (empty or garbled)
"""

from __future__ import annotations

import re

from lab.generative.catalogue import Catalogue, Question

CORRECT, WRONG, HALLUCINATION, UNANSWERED = "correct", "wrong", "hallucination", "unanswered"
VERDICTS = (CORRECT, WRONG, HALLUCINATION, UNANSWERED)

# Features before category: "it is a lamp" is a category; "it is solar and silent" features.
_CLAIMS = (
    ("price", re.compile(r"it costs (\d+) dollars(?:\s|$)")),
    ("warranty", re.compile(r"it has a (\d+) year warranty(?:\s|$)")),
    ("features", re.compile(r"it is (\S+ and \S+)(?:\s|$)")),
    ("category", re.compile(r"it is a (\S+)(?:\s|$)")),
    ("returns", re.compile(r"you can return any product within (\d+) days(?:\s|$)")),
    ("shipping", re.compile(r"shipping takes (\d+) days(?:\s|$)")),
)


def read_claim(answer: str) -> tuple[str, str] | None:
    """(kind, value) of the answer's first claim, or None."""
    for kind, form in _CLAIMS:
        m = form.match(answer)
        if m:
            return kind, m.group(1)
    return None


def is_true(catalogue: Catalogue, kind: str, value: str, product: str | None) -> bool:
    """Whether the claim holds: a policy claim for the store, any other for `product`."""
    if kind in catalogue.policies:
        return str(catalogue.policies[kind]) == value
    p = catalogue.products.get(product) if product is not None else None
    if p is None:
        return False
    if kind == "features":
        return set(value.split(" and ")) == set(p.features)
    return p.fact(kind) == value


def verdict(catalogue: Catalogue, question: Question, answer: str) -> str:
    claim = read_claim(answer)
    if claim is None:
        return UNANSWERED
    kind, value = claim
    if not is_true(catalogue, kind, value, question.product):
        return HALLUCINATION
    return CORRECT if kind == question.kind else WRONG
