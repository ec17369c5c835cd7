"""Answering one prompt token by token, as a streaming server does, with its timings.

The prompt is read in one pass (prefill), then each output token is one model step. Time
to first token and time per output token are measured with the wall clock around that
work; the finish reason is `stop` when the model emits its end token, `length` when
max_tokens is reached first (OpenTelemetry GenAI's gen_ai.response.finish_reasons values).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from lab.generative.model import Bot
from lab.specs.generative import DecodeSpec

STOP, LENGTH = "stop", "length"


@dataclass
class Generation:
    input_tokens: int  # the prompt's tokens and the <sep> that ends it
    prompt_ids: list[int] = field(default_factory=list)  # the prompt's tokens, <sep> excluded
    tokens: list[int] = field(default_factory=list)  # output tokens, the end token excluded
    logprobs: list[float] = field(default_factory=list)  # the model's log-probability of each emitted token
    finish_reason: str = LENGTH
    ttft_s: float = math.nan  # request start -> first output token
    duration_s: float = math.nan  # request start -> last output token (or the end token)
    text: str = ""

    @property
    def output_tokens(self) -> int:
        """Tokens generated, the end token included when the model stopped on it."""
        return len(self.tokens) + (self.finish_reason == STOP)

    @property
    def time_per_output_token_s(self) -> float:
        """(duration - TTFT) / (output tokens - 1): the decode speed after the first token
        (NaN for a one-token answer)."""
        n = self.output_tokens
        return (self.duration_s - self.ttft_s) / (n - 1) if n > 1 else math.nan

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else math.nan

    @property
    def confidence(self) -> float:
        """exp(mean token log-probability): the geometric mean probability of the answer's tokens, in (0, 1]."""
        return math.exp(self.mean_logprob) if self.logprobs else math.nan


def stream(bot: Bot, prompt_ids: list[int], decode: DecodeSpec,
           generator: torch.Generator | None = None) -> Iterator[tuple[int, float]]:
    """(token, log-probability) as each is produced; the end token last if the model stops."""
    eos = bot.tokenizer.eos
    with torch.inference_mode():
        logits, state = bot.model(torch.tensor([prompt_ids + [bot.tokenizer.sep]]))
        last = logits[0, -1]
        for _ in range(decode.max_tokens):
            logp = torch.log_softmax(last, dim=-1)
            pick = logp.clone()
            if not decode.stop_at_end_token:
                pick[eos] = -math.inf  # the release that dropped the end token
            if decode.temperature == 0:
                token = int(pick.argmax())
            else:
                token = int(torch.multinomial(torch.softmax(pick / decode.temperature, dim=-1), 1, generator=generator))
            yield token, float(logp[token])
            if token == eos:
                return
            logits, state = bot.model(torch.tensor([[token]]), state)
            last = logits[0, -1]


def generate(bot: Bot, prompt: str, decode: DecodeSpec, generator: torch.Generator | None = None) -> Generation:
    """One answer to `prompt`, timed from the moment the prompt arrives."""
    t0 = time.perf_counter()
    ids = bot.tokenizer.encode(prompt)
    g = Generation(input_tokens=len(ids) + 1, prompt_ids=ids)
    for token, logprob in stream(bot, ids, decode, generator):
        now = time.perf_counter()
        if math.isnan(g.ttft_s):
            g.ttft_s = now - t0
        g.duration_s = now - t0
        g.logprobs.append(logprob)
        if token == bot.tokenizer.eos:
            g.finish_reason = STOP
        else:
            g.tokens.append(token)
    g.text = bot.tokenizer.decode(g.tokens)
    return g
