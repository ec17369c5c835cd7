"""Personal data in prompts: what customers paste into a support chat, and finding it again.

Some customers add their contact details to a question (stream.pii_share): an e-mail
address, a phone number or a payment card number, generated in code (the card numbers pass
the Luhn check, as real ones do, and belong to no one: the 4000-prefixed test range). `find`
counts what a text carries, by type; the exporter uses it to count the personal data its
telemetry would carry (content capture on), which is what has to reach zero in the backends.
"""

from __future__ import annotations

import random
import re

PII_TYPES = ("email", "phone", "card")

_EMAIL = re.compile(r"\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\d-])\+?\d{1,3}[ -]\d{2,4}[ -]\d{3,4}[ -]\d{3,4}(?![\d-])")
_CARD = re.compile(r"(?<!\d)(?:\d{4}[ -]){3}\d{4}(?!\d)")
_NAMES = ("jane", "sam", "alex", "maria", "li", "omar", "ines", "kofi")
_DOMAINS = ("example.com", "mail.example.org", "example.net")


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def find(text: str) -> dict[str, int]:
    """Personal data in `text`, by type (cards only when their digits pass the Luhn check)."""
    cards = [m for m in _CARD.findall(text) if luhn_ok(re.sub(r"\D", "", m))]
    rest = _CARD.sub(" ", text)
    return {"email": len(_EMAIL.findall(rest)), "phone": len(_PHONE.findall(rest)), "card": len(cards)}


def _card(rng: random.Random) -> str:
    body = "4000" + "".join(str(rng.randrange(10)) for _ in range(11))
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    digits = body + check
    return " ".join(digits[i:i + 4] for i in range(0, 16, 4))


def contact_details(rng: random.Random) -> tuple[str, str]:
    """(PII type, a sentence a customer might add to a question carrying it)."""
    kind = rng.choice(PII_TYPES)
    if kind == "email":
        value = f"{rng.choice(_NAMES)}.{rng.choice(_NAMES)}{rng.randrange(100)}@{rng.choice(_DOMAINS)}"
        return kind, f"my email is {value}"
    if kind == "phone":
        value = f"+44 20 {rng.randrange(1000, 10000)} {rng.randrange(1000, 10000)}"
        return kind, f"call me on {value}"
    return kind, f"my card is {_card(rng)}"
