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


# What a customer writes before the value: the words are the bot's own (it is trained on chats
# that carry contact details), so only the values themselves are new to it.
LEAD_INS = {"email": "my email is", "phone": "call me on", "card": "my card is"}


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, PII type) of each personal data value in `text`, in order (as `find` counts them)."""
    found = [(m.start(), m.end(), "card") for m in _CARD.finditer(text) if luhn_ok(re.sub(r"\D", "", m.group()))]
    rest = _CARD.sub(lambda m: " " * len(m.group()), text)  # a card's digits are not also a phone number
    found += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(rest)]
    found += [(m.start(), m.end(), "phone") for m in _PHONE.finditer(rest)]
    return sorted(found)


def contact_details(rng: random.Random) -> tuple[str, str]:
    """(PII type, a sentence a customer might add to a question carrying it)."""
    kind = rng.choice(PII_TYPES)
    if kind == "email":
        value = f"{rng.choice(_NAMES)}.{rng.choice(_NAMES)}{rng.randrange(100)}@{rng.choice(_DOMAINS)}"
        return kind, f"{LEAD_INS[kind]} {value}"
    if kind == "phone":
        value = f"+44 20 {rng.randrange(1000, 10000)} {rng.randrange(1000, 10000)}"
        return kind, f"{LEAD_INS[kind]} {value}"
    return kind, f"{LEAD_INS[kind]} {_card(rng)}"
