"""Generative scenario specification, first part: the support bot's world, model and decoding.

The support bot (lab/generative) answers customer questions about a fictional product
catalogue generated in code. These tables fix what it knows (the catalogue), how it is
trained (a small GRU language model) and how it decodes (token by token, streaming). The
scenario kind that serves it (its stream, releases and faults) builds on them.
"""

from __future__ import annotations

from pydantic import Field

from lab.specs.base import Strict


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
    knows_new_products: bool = Field(False, description="trained on the new products too (the new-topic fix: retrain "
                                                        "with the new catalogue entries)")


class DecodeSpec(Strict):
    max_tokens: int = Field(24, ge=1, le=4096, description="gen_ai.request.max_tokens: generation stops here "
                                                           "(finish reason `length`)")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0: greedy; above 0: sampled from softmax(logits / T)")
    stop_at_end_token: bool = Field(True, description="stop at the model's end token (finish reason `stop`); "
                                                      "off, generation runs on to max_tokens")
