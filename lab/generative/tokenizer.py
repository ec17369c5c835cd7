"""The support bot's word-level tokenizer: lower-cased words, punctuation dropped.

The vocabulary is the training corpus's words plus the special tokens; a word outside it
becomes <unk> (the out-of-vocabulary rate the drift monitor watches). Token counts on spans
and metrics (gen_ai.usage.*) are this tokenizer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lab.generative.pii import PII_TYPES
from lab.generative.pii import spans as pii_spans

PAD, UNK, SEP, EOS = "<pad>", "<unk>", "<sep>", "<eos>"
# Contact details become one placeholder token each, as NLP pipelines normalise entities: the
# model never reads a customer's address or number (the prompt on a span still carries it).
PLACEHOLDERS = {kind: f"<{kind}>" for kind in PII_TYPES}
SPECIALS = (PAD, UNK, SEP, EOS, *PLACEHOLDERS.values())
# a word: letters/digits, joined by inner hyphens, dots or @ (usb-c, an e-mail address)
_WORD = re.compile(r"[a-z0-9]+(?:[-.@][a-z0-9]+)*")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Tokenizer:
    def __init__(self, corpus: Iterable[str], *, itos: list[str] | None = None):
        """The vocabulary of `corpus`; or, with `itos`, a saved one (id -> word, specials first)."""
        if itos is None:
            itos = [*SPECIALS, *sorted({w for text in corpus for w in words(text)})]
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.pad, self.unk, self.sep, self.eos = (self.stoi[t] for t in (PAD, UNK, SEP, EOS))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        ids, at = [], 0
        for start, end, kind in pii_spans(text):
            ids += [self.stoi.get(w, self.unk) for w in words(text[at:start])]
            ids.append(self.stoi[PLACEHOLDERS[kind]])
            at = end
        return ids + [self.stoi.get(w, self.unk) for w in words(text[at:])]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i not in (self.pad, self.eos))

    def unknown_share(self, ids: list[int]) -> float:
        """Share of the tokens that are <unk> (0 for an empty prompt)."""
        return sum(i == self.unk for i in ids) / len(ids) if ids else 0.0
