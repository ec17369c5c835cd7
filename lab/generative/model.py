"""The support bot's model: a small GRU language model trained, at scenario start, to answer.

Each training sequence is `question <sep> answer <eos>`, a share of them after earlier turns
of a conversation; the loss counts the answer and its end token only, so the model learns
to answer the last question, not to ask. About 0.19 M parameters at the
defaults; a trained bot is kept per machine (LAB_CACHE_DIR/bots), keyed by its specs, seed and code.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lab.generative.catalogue import Catalogue, Question, make_catalogue
from lab.generative.pii import LEAD_INS, contact_details
from lab.generative.tokenizer import Tokenizer
from lab.repo import cache_dir
from lab.specs.generative import BotModelSpec, CatalogueSpec

IGNORE = -100  # cross_entropy's ignore_index: question tokens and padding are not targets
# Policy questions are 2 kinds about no product against 4 kinds per product: repeated so
# that each policy phrasing is seen about as often as each product's.
POLICY_REPEAT = 24


class BotLM(nn.Module):
    def __init__(self, vocab: int, embedding: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.rnn = nn.GRU(embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state


@dataclass(frozen=True)
class Bot:
    """A trained bot: its world, its tokenizer and its model (in eval mode)."""

    catalogue: Catalogue
    tokenizer: Tokenizer
    model: BotLM
    train_s: float  # wall time of the training
    trained_on: int  # training sequences

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def training_questions(catalogue: Catalogue, knows_new_products: bool) -> list[Question]:
    products = list(catalogue.products.values()) if knows_new_products else catalogue.known
    qs = catalogue.questions(products, heldout=False)
    return [q for q in qs if q.product is not None] + [q for q in qs if q.product is None] * POLICY_REPEAT


def _batch(tok: Tokenizer, qs: list[tuple[str, Question]], word_dropout: float = 0.0,
           rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets, padded: the model reads [history] q <sep> a and predicts a <eos>."""
    seqs, targets = [], []
    for history, q in qs:
        prompt = tok.encode(q.text)
        if word_dropout:
            keep = tok.stoi.get(q.product or "", -1)
            prompt = [i if i == keep or rng.random() >= word_dropout else tok.unk for i in prompt]
        prompt, answer = tok.encode(history) + prompt + [tok.sep], tok.encode(q.answer) + [tok.eos]
        seq = prompt + answer
        seqs.append(seq[:-1])
        targets.append([IGNORE] * (len(prompt) - 1) + answer)
    width = max(map(len, seqs))
    x = torch.full((len(seqs), width), tok.pad, dtype=torch.long)
    y = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, (s, t) in enumerate(zip(seqs, targets)):
        x[i, :len(s)] = torch.tensor(s)
        y[i, :len(t)] = torch.tensor(t)
    return x, y


def _epoch(qs: list[Question], spec: BotModelSpec, rng: random.Random) -> list[list[tuple[str, Question]]]:
    """One epoch's batches of (history, question). A share of the questions follows 1 to
    history_turns earlier turns, as a chat client sends them; those are batched apart, so
    that a short question is not padded to a conversation's length."""
    plain, chats = [], []
    for q in qs:
        history = ""
        if rng.random() < spec.history_share:
            turns = rng.choices(qs, k=rng.randint(1, spec.history_turns))
            history = " ".join(f"{t.text} {t.answer}" for t in turns)
        if rng.random() < spec.contact_share:  # as customers write them: before the question
            history = f"{history} {contact_details(rng)[1]}".strip()
        (chats if history else plain).append((history, q))
    rng.shuffle(plain)
    chats.sort(key=lambda c: len(c[0]))
    batches = [group[i:i + spec.batch_size] for group in (plain, chats) for i in range(0, len(group), spec.batch_size)]
    rng.shuffle(batches)
    return batches


def train_bot(catalogue: Catalogue, spec: BotModelSpec, seed: int) -> Bot:
    t0 = time.perf_counter()
    qs = training_questions(catalogue, spec.knows_new_products)
    tok = Tokenizer([q.text for q in qs] + [q.answer for q in qs] + list(LEAD_INS.values()))
    torch.manual_seed(seed)
    model = BotLM(len(tok), spec.embedding, spec.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    rng = random.Random(seed)
    for _ in range(spec.epochs):
        for batch in _epoch(qs, spec, rng):
            x, y = _batch(tok, batch, spec.word_dropout, rng)
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return Bot(catalogue, tok, model.eval(), time.perf_counter() - t0, len(qs))


# What a trained bot depends on besides its specs and seed: the code that builds the world and
# trains it, and torch. A change to any of them trains anew instead of loading a stale model.
_CODE = (Path(__file__).parent / "catalogue.py", Path(__file__).parent / "tokenizer.py",
         Path(__file__).parent / "pii.py", Path(__file__),
         Path(sys.modules[BotModelSpec.__module__].__file__))


def cache_key(catalogue_json: str, model_json: str, seed: int) -> str:
    h = hashlib.sha256()
    for part in (catalogue_json, model_json, str(seed), torch.__version__):
        h.update(part.encode() + b"\0")
    for path in _CODE:
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def _load(path: Path, catalogue: Catalogue, spec: BotModelSpec) -> Bot:
    saved = torch.load(path, weights_only=True)
    tok = Tokenizer((), itos=saved["itos"])
    model = BotLM(len(tok), spec.embedding, spec.hidden)
    model.load_state_dict(saved["state_dict"])
    return Bot(catalogue, tok, model.eval(), float(saved["train_s"]), int(saved["trained_on"]))


def _save(bot: Bot, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save({"state_dict": bot.model.state_dict(), "itos": bot.tokenizer.itos, "train_s": bot.train_s,
                "trained_on": bot.trained_on}, tmp)
    tmp.replace(path)  # whole or not at all: a reader never sees half a file


@functools.lru_cache(maxsize=8)
def _trained(catalogue_json: str, model_json: str, seed: int) -> Bot:
    """Trained once per machine: kept in LAB_CACHE_DIR/bots by cache_key (a few hundred kB each);
    a process that finds another training the same bot waits for it (a file lock) and loads it."""
    catalogue = make_catalogue(CatalogueSpec.model_validate_json(catalogue_json))
    spec = BotModelSpec.model_validate_json(model_json)
    folder = cache_dir() / "bots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cache_key(catalogue_json, model_json, seed)}.pt"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            try:
                return _load(path, catalogue, spec)
            except Exception:  # unreadable (a torch change, a damaged file): train it again
                path.unlink(missing_ok=True)
        bot = train_bot(catalogue, spec, seed)
        _save(bot, path)
        return bot


def trained_bot(catalogue: CatalogueSpec, model: BotModelSpec, seed: int) -> Bot:
    """The bot of this world, model spec and seed; trained once per machine (_trained), a copy
    each call (a release may change the model it serves). train_s is the training's own time."""
    bot = _trained(catalogue.model_dump_json(), model.model_dump_json(), seed)
    return Bot(bot.catalogue, bot.tokenizer, copy.deepcopy(bot.model), bot.train_s, bot.trained_on)
