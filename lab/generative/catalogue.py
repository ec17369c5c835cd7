"""The support bot's world: a fictional product catalogue and what customers ask about it.

Everything is generated in code from CatalogueSpec.data_seed: product names made of
syllables, a category, a price, two features and a warranty per product, and the store's
policies. Each question kind has several phrasings; `heldout_paraphrases` of them never
appear in training, so the labelled holdout is worded unlike anything the bot learned.
An answer states one fact in a fixed form (ANSWER_FORMS), which is what lets lab.generative.judge
check it against the catalogue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lab.specs.generative import CatalogueSpec

SYLLABLES = ("zor", "vex", "kel", "mo", "tri", "dax", "lu", "min", "qua", "pel", "ron", "sy",
             "fa", "nor", "bi", "ta", "gen", "ul", "xo", "ri", "ba", "ko", "spi", "den")
CATEGORIES = ("speaker", "kettle", "lamp", "backpack", "router", "blender", "camera", "drill")
# Launched after training: the new-topic scenario's products are of these categories, words
# the trained bot has never seen.
NEW_CATEGORIES = ("smartwatch", "scooter", "projector", "thermostat")
FEATURES = ("waterproof", "bluetooth", "rechargeable", "foldable", "wireless", "dishwasher-safe",
            "solar", "voice-controlled", "usb-c", "dimmable", "portable", "silent")
PRICES = tuple(range(19, 500, 20))  # 25 price points, each one token
WARRANTY_YEARS = (1, 2, 3, 5)
POLICIES = {"returns": (14, 30, 60), "shipping": (2, 3, 5)}  # policy question kind -> days

# question kind -> phrasings ({p}: the product). The last `heldout_paraphrases` of each are
# the holdout's: new arrangements of words the trained phrasings use, so a bot that learned
# what the words mean answers them and one that memorised the sentences does not.
QUESTIONS = {
    "price": ("how much is the {p}", "what does the {p} cost", "what is the price of the {p}",
              "how much does the {p} cost", "tell me the price of the {p}", "price of the {p} please",
              "tell me how much the {p} is", "what is the {p} price"),
    "warranty": ("how long is the warranty on the {p}", "what warranty does the {p} have",
                 "how many years of warranty does the {p} have", "warranty of the {p} please",
                 "tell me about the {p} warranty", "is there a warranty on the {p}",
                 "how long is the {p} warranty", "what is the warranty of the {p}"),
    "features": ("what features does the {p} have", "what can the {p} do", "tell me the features of the {p}",
                 "which features does the {p} have", "list the features of the {p}", "features of the {p} please",
                 "what are the {p} features", "tell me what the {p} can do"),
    "category": ("what kind of product is the {p}", "what is the {p}", "what type of product is the {p}",
                 "which category is the {p} in", "tell me what the {p} is", "the {p} is what kind of thing",
                 "what kind of thing is the {p}", "which type of product is the {p}"),
    "returns": ("what is your return policy", "can i return a product", "how long do i have to return a product",
                "how many days do i have for a return", "tell me about returns", "what are the rules for returns",
                "how many days do i have to return a product", "what is the return policy"),
    "shipping": ("how long does shipping take", "when will my order arrive", "how many days is shipping",
                 "tell me about shipping", "what are the shipping times", "how fast is shipping",
                 "how many days does shipping take", "when does shipping arrive"),
}
# question kind -> the one form its answer takes ({v}: the value); the subject is the product asked about.
ANSWER_FORMS = {
    "price": "it costs {v} dollars",
    "warranty": "it has a {v} year warranty",
    "features": "it is {v}",  # "{feature} and {feature}", in catalogue order
    "category": "it is a {v}",
    "returns": "you can return any product within {v} days",
    "shipping": "shipping takes {v} days",
}
PRODUCT_KINDS = ("price", "warranty", "features", "category")
POLICY_KINDS = tuple(POLICIES)


@dataclass(frozen=True)
class Product:
    name: str
    category: str
    price: int
    features: tuple[str, str]
    warranty: int
    new: bool  # launched after training

    def fact(self, kind: str) -> str:
        return {"price": str(self.price), "warranty": str(self.warranty),
                "features": " and ".join(self.features), "category": self.category}[kind]


@dataclass(frozen=True)
class Question:
    kind: str
    product: str | None  # None for a policy question
    text: str
    answer: str  # the correct answer, in its ANSWER_FORMS form
    heldout: bool  # worded with a held-out phrasing


@dataclass(frozen=True)
class Catalogue:
    products: dict[str, Product]
    policies: dict[str, int]
    heldout_paraphrases: int

    @property
    def known(self) -> list[Product]:
        return [p for p in self.products.values() if not p.new]

    @property
    def new(self) -> list[Product]:
        return [p for p in self.products.values() if p.new]

    def answer(self, kind: str, product: str | None) -> str:
        if kind in POLICY_KINDS:
            return ANSWER_FORMS[kind].format(v=self.policies[kind])
        return ANSWER_FORMS[kind].format(v=self.products[product].fact(kind))

    def questions(self, products: list[Product], *, heldout: bool) -> list[Question]:
        """Every question about these products (and the policy questions), in the trained
        phrasings or in the held-out ones."""
        out = []
        for kind, phrasings in QUESTIONS.items():
            cut = len(phrasings) - self.heldout_paraphrases
            chosen = phrasings[cut:] if heldout else phrasings[:cut]
            subjects = [None] if kind in POLICY_KINDS else [p.name for p in products]
            for name in subjects:
                for text in chosen:
                    out.append(Question(kind, name, text.format(p=name), self.answer(kind, name), heldout))
        return out

    def ask(self, rng: random.Random, products: list[Product], *, heldout: bool | None = None,
            policy_share: float = 0.1) -> Question:
        """One customer question: a policy question with probability policy_share, else one of the
        product kinds about a product drawn uniformly; any phrasing unless `heldout` says which."""
        if rng.random() < policy_share or not products:
            kind, name = rng.choice(POLICY_KINDS), None
        else:
            kind, name = rng.choice(PRODUCT_KINDS), rng.choice(products).name
        phrasings = QUESTIONS[kind]
        cut = len(phrasings) - self.heldout_paraphrases
        pool = phrasings if heldout is None else (phrasings[cut:] if heldout else phrasings[:cut])
        text = rng.choice(pool)
        return Question(kind, name, text.format(p=name), self.answer(kind, name), phrasings.index(text) >= cut)


def _names(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.sample(SYLLABLES, rng.choice((2, 3)))))
    return sorted(names)


def make_catalogue(spec: CatalogueSpec) -> Catalogue:
    """The catalogue of one world: `products` known ones and `new_products` launched later."""
    rng = random.Random(spec.data_seed)
    names = _names(rng, spec.products + spec.new_products)
    rng.shuffle(names)
    products = {}
    for i, name in enumerate(names):
        new = i >= spec.products
        features = tuple(sorted(rng.sample(FEATURES, 2), key=FEATURES.index))
        products[name] = Product(name, rng.choice(NEW_CATEGORIES if new else CATEGORIES), rng.choice(PRICES),
                                 features, rng.choice(WARRANTY_YEARS), new)
    policies = {k: rng.choice(v) for k, v in POLICIES.items()}
    return Catalogue(products, policies, spec.heldout_paraphrases)
