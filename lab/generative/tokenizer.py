"""The support bot's word-level tokenizer: lower-cased words, punctuation dropped.

The vocabulary is the training corpus's words plus four special tokens; a word outside it
becomes <unk> (the out-of-vocabulary rate the drift monitor watches). Token counts on spans
and metrics (gen_ai.usage.*) are this tokenizer's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PAD, UNK, SEP, EOS = "<pad>", "<unk>", "<sep>", "<eos>"
SPECIALS = (PAD, UNK, SEP, EOS)
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
        self.pad, self.unk, self.sep, self.eos = (self.stoi[t] for t in SPECIALS)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, self.unk) for w in words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i not in (self.pad, self.eos))

    def unknown_share(self, ids: list[int]) -> float:
        """Share of the tokens that are <unk> (0 for an empty prompt)."""
        return sum(i == self.unk for i in ids) / len(ids) if ids else 0.0
