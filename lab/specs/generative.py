"""Generative scenario specification: a support bot in production (`kind = "generative"`).

The support bot (lab/generative) answers customer questions about a fictional product
catalogue generated in code. The tables fix what it knows (the catalogue), how it is
trained (a small GRU language model), how it decodes (token by token, streaming), the
request stream it serves and what changes in it: questions about products launched after
training, clients sending the whole conversation, a release that changes decoding.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lab.specs.base import ScenarioHeader, Strict


class CatalogueSpec(Strict):
    products: int = Field(48, ge=8, le=150, description="products the bot is trained on")
    new_products: int = Field(12, ge=0, le=50, description="products launched after training: questions about "
                                                          "them are the new-topic scenario's unseen inputs")
    heldout_paraphrases: int = Field(2, ge=1, le=4, description="question phrasings per kind kept out of training: "
                                                                "the holdout's questions are worded unlike any trained one")
    data_seed: int = Field(0, description="fixes the catalogue (names, prices, features) across run seeds")


class BotModelSpec(Strict):
    name: str = Field("support-bot", pattern=r"^[a-z][a-z0-9-]*$", description="gen_ai.request.model")
    embedding: int = Field(64, ge=8, le=512)
    hidden: int = Field(192, ge=16, le=1024, description="GRU hidden units")
    epochs: int = Field(30, ge=1, le=500)
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(4e-3, gt=0, le=1.0)
    word_dropout: float = Field(0.25, ge=0.0, lt=1.0, description="share of a training question's words (the product "
                                                                  "name excepted) read as <unk>: the bot learns the "
                                                                  "words that carry the meaning, not whole sentences")
    history_share: float = Field(0.3, ge=0.0, le=1.0, description="share of training questions sent after earlier "
                                                                 "turns of a conversation, as chat clients do")
    history_turns: int = Field(4, ge=1, le=50, description="earlier turns (question and answer) before such a "
                                                           "question: 1 to this many")
    contact_share: float = Field(0.1, ge=0.0, le=1.0, description="share of training questions sent with contact "
                                                                  "details (an e-mail address, phone or card number), "
                                                                  "as support chats are; the tokenizer reads each "
                                                                  "value as one placeholder token")
    knows_new_products: bool = Field(False, description="trained on the new products too (the new-topic fix: retrain "
                                                        "with the new catalogue entries)")


class DecodeSpec(Strict):
    max_tokens: int = Field(24, ge=1, le=4096, description="gen_ai.request.max_tokens: generation stops here "
                                                           "(finish reason `length`)")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0: greedy; above 0: sampled from softmax(logits / T)")
    stop_at_end_token: bool = Field(True, description="stop at the model's end token (finish reason `stop`); "
                                                      "off, generation runs on to max_tokens")


class BotStreamSpec(Strict):
    windows: int = Field(30, gt=0, le=10_000, description="windows the run serves (each one export and one drift check)")
    window_size: int = Field(200, ge=50, le=100_000, description="requests per window")
    requests_per_second: float = Field(40.0, gt=0, description="paced runs; --fast ignores it (40: one window of "
                                                               "200 per 5 s export, as the lab's other streams)")
    policy_share: float = Field(0.1, ge=0.0, le=1.0, description="share of questions about store policy, not a product")
    label_share: float = Field(0.2, gt=0.0, le=1.0, description="share of answers sent for labelling against the catalogue")
    label_delay: int = Field(400, ge=0, description="requests between an answer and the arrival of its label")
    quality_window: int = Field(200, ge=20, description="latest labels that accuracy and hallucination rate are computed on")
    feedback_share: float = Field(0.3, ge=0.0, le=1.0, description="share of answers a user rates (thumbs up or down)")
    feedback_noise: float = Field(0.05, ge=0.0, le=0.5, description="share of ratings that say the opposite of the "
                                                                    "answer's real correctness")
    feedback_delay: int = Field(100, ge=0, description="requests between an answer and its rating")
    pii_share: float = Field(0.0, ge=0.0, le=1.0, description="share of questions a customer sends with contact "
                                                              "details (an e-mail address, phone or card number)")
    price_per_1k_input_tokens: float = Field(0.5, ge=0.0, description="USD; what a hosted model of this size would charge")
    price_per_1k_output_tokens: float = Field(1.5, ge=0.0, description="USD")


class TopicShift(Strict):
    """Customers start asking about products launched after training."""

    start_window: int = Field(ge=0)
    ramp_windows: int = Field(0, ge=0, description="windows over which the share grows to new_product_share")
    new_product_share: float = Field(gt=0.0, le=1.0, description="share of product questions about the new products")


class PromptHistory(Strict):
    """A client starts sending the conversation so far with every question."""

    start_window: int = Field(ge=0)
    turns: int = Field(ge=1, le=500, description="earlier questions and answers sent before the question")
    keep_turns: int | None = Field(None, ge=0, description="turns the bot's gateway keeps, the latest ones (the fix: "
                                                            "0, this bot answers each question on its own); unset: all")


class Release(Strict):
    """New decoding settings released at a window (a runaway generation, or its fix)."""

    from_window: int = Field(ge=0)
    decode: DecodeSpec


# A request tagged by the leak adds this many series: every gen_ai histogram's buckets, sum and
# count for one new gen_ai.response.model value (token usage 2 x 17, durations 16 + 16 + 16, time
# per output token 12; lab.telemetry.catalogue counts them).
SERIES_PER_LEAKED_REQUEST = 94
# At most this many requests tagged in a run: ~4,700 series, 5% of the stack's head budget
# (lab/thresholds.py HEAD_SERIES_LIMIT), so the cardinality scenario cannot harm the stack.
MAX_LEAKED_REQUESTS = 50


class ResponseModelLeak(Strict):
    """A client-library release copies each response's id into gen_ai.response.model (cardinality explosion).

    The collector's guard keeps that key, a conventions' metric attribute whose value is one
    per run normally; tagged with a per-request value, every gen_ai histogram grows a new set
    of series per request."""

    from_window: int = Field(ge=0)
    every: int = Field(200, ge=1, description="one request in this many comes from the upgraded client "
                                             "(the run may tag at most 50: the stack must not suffer)")
    view_drops_attribute: bool = Field(False, description="the fix: an SDK view keeps only the bounded keys on the "
                                                          "gen_ai metrics, dropping gen_ai.response.model")


class GenerativeSpec(ScenarioHeader):
    """kind = "generative": the support bot trained at start, then serving a stream of questions."""

    kind: Literal["generative"] = "generative"
    catalogue: CatalogueSpec = CatalogueSpec()
    model: BotModelSpec = BotModelSpec()
    decode: DecodeSpec = DecodeSpec()
    stream: BotStreamSpec = BotStreamSpec()
    topic: TopicShift | None = None
    history: PromptHistory | None = None
    release: Release | None = None
    leak: ResponseModelLeak | None = None
    # The GenAI conventions: message content is not captured unless asked for. On, each request
    # span carries the prompt and the answer (gen_ai.input.messages, gen_ai.output.messages).
    capture_content: bool = Field(False, description="put prompts and answers on the request spans")
    # Where the run's telemetry enters the collector: its default OTLP entry point, or the
    # redacting one (receiver otlp/redacted, otel-collector/config.yaml), whose redaction step
    # masks e-mail addresses, phone and card numbers before any backend (the PII fix).
    collector_redaction: bool = Field(False, description="send the run's telemetry to the collector's redacting "
                                                         "entry point (LAB_OTLP_REDACTED_ENDPOINT, else .env's "
                                                         "LAB_OTLP_REDACTED_*_PORT): personal data is masked in "
                                                         "spans and logs before they reach Jaeger or VictoriaLogs")

    @property
    def units_per_second(self) -> float:
        return self.stream.requests_per_second

    @model_validator(mode="after")
    def _changes_inside_the_run(self):
        for what, change in (("topic", self.topic), ("history", self.history)):
            if change is not None and change.start_window >= self.stream.windows:
                raise ValueError(f"{what}.start_window={change.start_window} is not inside the run's "
                                 f"{self.stream.windows} windows (stream.windows)")
        if self.release is not None and self.release.from_window >= self.stream.windows:
            raise ValueError(f"release.from_window={self.release.from_window} is not inside the run's "
                             f"{self.stream.windows} windows (stream.windows)")
        if self.leak is not None:
            if self.leak.from_window >= self.stream.windows:
                raise ValueError(f"leak.from_window={self.leak.from_window} is not inside the run's "
                                 f"{self.stream.windows} windows (stream.windows)")
            if self.leaked_requests > MAX_LEAKED_REQUESTS:
                raise ValueError(f"leak would tag {self.leaked_requests} requests, each adding "
                                 f"{SERIES_PER_LEAKED_REQUEST} series; at most {MAX_LEAKED_REQUESTS} are allowed "
                                 f"(raise leak.every or leak.from_window)")
        if self.topic is not None and self.catalogue.new_products == 0:
            raise ValueError("topic needs products launched after training (catalogue.new_products > 0)")
        return self

    @property
    def leaked_requests(self) -> int:
        """Requests the leak tags in a whole run: every `every`-th request from from_window on."""
        if self.leak is None:
            return 0
        first, end = self.leak.from_window * self.stream.window_size, self.stream.windows * self.stream.window_size
        return len(range(_next_multiple(first, self.leak.every), end, self.leak.every))

    def leaks(self, window: int, index: int) -> bool:
        """Request `index` (0-based over the run) carries a per-request gen_ai.response.model."""
        return self.leak is not None and window >= self.leak.from_window and index % self.leak.every == 0

    def decode_at(self, window: int) -> DecodeSpec:
        return self.release.decode if self.release is not None and window >= self.release.from_window else self.decode

    def new_product_share_at(self, window: int) -> float:
        t = self.topic
        if t is None or window < t.start_window:
            return 0.0
        if t.ramp_windows == 0:
            return t.new_product_share
        return t.new_product_share * min(1.0, (window - t.start_window + 1) / t.ramp_windows)

    def history_turns_at(self, window: int) -> int:
        h = self.history
        if h is None or window < h.start_window:
            return 0
        return h.turns if h.keep_turns is None else min(h.turns, h.keep_turns)


def _next_multiple(n: int, k: int) -> int:
    return -(-n // k) * k
