"""The support bot's world: generated in code, fixed by its data seed, questions worded two ways."""

import random

from lab.generative.catalogue import (
    ANSWER_FORMS,
    NEW_CATEGORIES,
    POLICY_KINDS,
    PRODUCT_KINDS,
    QUESTIONS,
    make_catalogue,
)
from lab.generative.tokenizer import words
from lab.specs.generative import CatalogueSpec


def test_the_data_seed_fixes_the_world():
    a, b = make_catalogue(CatalogueSpec()), make_catalogue(CatalogueSpec())
    assert a == b
    assert make_catalogue(CatalogueSpec(data_seed=1)).products != a.products


def test_known_and_new_products():
    c = make_catalogue(CatalogueSpec(products=20, new_products=5))
    assert len(c.known) == 20 and len(c.new) == 5
    assert len(c.products) == 25  # names are unique
    assert all(p.category in NEW_CATEGORIES for p in c.new)
    assert not {p.category for p in c.known} & set(NEW_CATEGORIES)
    assert all(len(set(p.features)) == 2 for p in c.products.values())


def test_every_question_has_its_answer_in_the_fixed_form():
    c = make_catalogue(CatalogueSpec(products=10, new_products=0, heldout_paraphrases=2))
    trained, heldout = c.questions(c.known, heldout=False), c.questions(c.known, heldout=True)
    per_kind = len(next(iter(QUESTIONS.values())))
    assert len(trained) == len(PRODUCT_KINDS) * 10 * (per_kind - 2) + len(POLICY_KINDS) * (per_kind - 2)
    assert len(heldout) == len(PRODUCT_KINDS) * 10 * 2 + len(POLICY_KINDS) * 2
    assert not {q.text for q in trained} & {q.text for q in heldout}
    for q in trained + heldout:
        p = c.products.get(q.product)
        value = c.policies[q.kind] if p is None else p.fact(q.kind)
        assert q.answer == ANSWER_FORMS[q.kind].format(v=value)


def test_held_out_phrasings_use_only_words_the_trained_ones_use():
    """The holdout tests generalisation to new wordings, not vocabulary the bot never saw."""
    cut = len(next(iter(QUESTIONS.values()))) - CatalogueSpec().heldout_paraphrases
    trained = {w for ps in QUESTIONS.values() for t in ps[:cut] for w in words(t.format(p="x"))}
    for kind, ps in QUESTIONS.items():
        for t in ps[cut:]:
            assert set(words(t.format(p="x"))) <= trained, (kind, t)


def test_ask_draws_reproducibly_and_says_how_it_is_worded():
    c = make_catalogue(CatalogueSpec())
    draws = [c.ask(random.Random(3), c.known) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    qs = [c.ask(rng, c.known, heldout=True) for _ in range(200)]
    assert all(q.heldout for q in qs)
    assert {q.kind for q in qs} == set(QUESTIONS)
    assert all(q.product is None or q.product in c.products and not c.products[q.product].new for q in qs)
    assert all(c.ask(rng, c.new, policy_share=0.0).product in {p.name for p in c.new} for _ in range(20))
