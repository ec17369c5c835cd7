"""The support bot in production: a stream of customer questions, answered token by token.

BotServer trains the bot (lab/generative/model.py), then serves `windows` x `window_size`
questions. Every answer is a unit (RequestRecord); every window a report (BotWindow) with
what an operator of a real LLM feature can know:
  operations  tokens in and out, finish reasons, time to first token, time per output
              token, request duration, cost (the spec's price per 1,000 tokens)
  quality     accuracy and hallucination rate on the latest labelled answers (a share of
              answers is judged against the catalogue and the verdict arrives label_delay
              requests later), and the complaint rate of user ratings (thumbs down, driven
              by the answer's real correctness, with feedback_noise of them flipped)
  drift       the prompts against the training prompts: Jensen-Shannon distance of the
              token distribution, out-of-vocabulary rate, PSI of the prompt length on the
              reference's decile bins; the answers' confidence against a reference sample
              answered at start (KS statistic and p-value, mean)
A request's own verdict and whether it asked about a new product are ground truth for
teaching and tests; exporters send only what the labels and ratings tell.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lab.generative.catalogue import Question
from lab.generative.generate import Generation, generate
from lab.generative.judge import CORRECT, HALLUCINATION, VERDICTS, verdict
from lab.generative.model import trained_bot, training_questions
from lab.generative.pii import contact_details
from lab.generative.pii import find as find_pii
from lab.specs.generative import SERIES_PER_LEAKED_REQUEST, GenerativeSpec
from lab.stats import bin_counts, js_distance, ks_pvalue, ks_statistic, proportions, psi, reference_edges
from lab.telemetry.catalogue import BY_NAME, prometheus_series_count
from lab.telemetry.observer import Observer
from lab.thresholds import N_BINS

# A one-token answer records no time per output token: a leaked value adds none of its series.
_TPOT_SERIES = len(BY_NAME["gen_ai.server.time_per_output_token"].buckets) + 3
MIN_LABELS = 50  # fewer labelled answers than this: accuracy and hallucination rate are not reported (NaN)


@dataclass(slots=True)
class RequestRecord:
    index: int
    clock: int  # the paced clock, in requests
    window: int
    kind: str  # the question's kind (price, warranty, ..., returns, shipping)
    input_tokens: int
    output_tokens: int
    finish_reason: str  # stop | length
    ttft_s: float
    time_per_output_token_s: float  # NaN for a one-token answer
    duration_s: float
    confidence: float
    unknown_share: float  # share of the prompt's tokens outside the vocabulary
    pii: dict[str, int]  # personal data values in the prompt, by type (lab.generative.pii.find)
    start_ns: int
    end_ns: int
    prompt: str  # content: exported only where a scenario turns content capture on
    answer: str
    response_id: str  # gen_ai.response.id: one per request, on its span only
    response_model: str  # gen_ai.response.model: the model's name, or the response id where a leak copies it
    verdict: str  # ground truth (lab.generative.judge), never exported per request
    new_product: bool  # ground truth: asked about a product launched after training


@dataclass
class BotWindow:
    index: int
    requests: int
    input_tokens: int
    output_tokens: int
    finish_reasons: dict[str, int]
    ttft_p50_s: float
    ttft_p95_s: float
    tpot_p50_s: float
    duration_p95_s: float
    cost_usd: float
    accuracy: float  # on the latest quality_window labels; NaN below MIN_LABELS
    hallucination_rate: float
    labels: int  # labels the two above are computed on
    labels_total: int
    label_verdicts: dict[str, int]  # verdicts of the labels that arrived during the window
    ratings: int  # ratings that arrived during the window
    complaints: int  # of them thumbs down
    token_js: float  # prompt tokens against the training prompts (Jensen-Shannon distance, base 2)
    oov_rate: float
    length_psi: float
    confidence_mean: float
    confidence_ks: float
    confidence_ks_pvalue: float
    new_product_share: float  # ground truth: the share the stream was asked to draw
    history_turns: int
    pii_prompts: int  # prompts carrying personal data (found in them, lab.generative.pii)
    pii_to_backends: int  # of their values, those the spans' content carries past the collector to the backends
    metric_series: int  # series the run's metrics hold so far (its budget, plus what a leak added)
    elapsed_s: float
    start_ns: int
    end_ns: int

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.ratings if self.ratings else math.nan

    @property
    def length_share(self) -> float:
        """Share of the window's answers cut at max_tokens."""
        return self.finish_reasons.get("length", 0) / self.requests if self.requests else 0.0


@dataclass
class BotEvent:
    name: str  # release
    window: int
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class BotResult:
    spec: GenerativeSpec
    seed: int
    windows: list[BotWindow] = field(default_factory=list)
    events: list[BotEvent] = field(default_factory=list)
    requests: int = 0
    reference_accuracy: float = math.nan  # of the reference sample answered at start
    reference_confidence: float = math.nan  # its mean confidence
    parameters: int = 0
    train_s: float = 0.0
    wall_s: float = 0.0
    stopped: str = "completed"  # completed | interrupted

    @property
    def units(self) -> int:
        return self.requests


class _Reference:
    """What today's prompts and answers are compared with."""

    def __init__(self, vocab: int, prompts: list[list[int]], confidences: list[float]):
        lengths = np.array([len(p) for p in prompts], dtype=float)
        self.tokens = np.bincount(np.concatenate(prompts), minlength=vocab)
        self.edges = reference_edges(lengths, N_BINS)
        self.lengths = proportions(bin_counts(lengths, self.edges))
        self.confidence = np.sort(np.asarray(confidences, dtype=float))


class BotServer:
    def __init__(self, spec: GenerativeSpec, seed: int = 0, *, fast: bool = False, speed: float = 1.0,
                 observers: list[Observer] = (), max_windows: int | None = None,
                 progress: Callable[[str], None] | None = None):
        self.spec, self.seed, self.fast, self.speed = spec, seed, fast, speed
        self.observers = list(observers)
        self._progress = progress or (lambda text: None)
        self.windows = min(spec.stream.windows, max_windows or spec.stream.windows)
        self.result = BotResult(spec, seed)
        self.rng = random.Random(seed + 7919)
        self.generator = torch.Generator().manual_seed(seed + 7919)

    @property
    def planned_units(self) -> int:
        return self.windows * self.spec.stream.window_size

    def run(self) -> BotResult:
        self._begin()
        try:
            for w in range(self.windows):
                self._serve_window(w)
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        self.result.wall_s = time.monotonic() - self._t_start
        for o in self.observers:
            o.on_end(self.result)
        return self.result

    # set-up ---------------------------------------------------------------------------
    def _begin(self) -> None:
        spec, res = self.spec, self.result
        self._t_start = time.monotonic()
        self._progress("training the support bot (seconds), then serving it ...")
        self.bot = trained_bot(spec.catalogue, spec.model, self.seed)
        res.parameters, res.train_s = self.bot.parameters, self.bot.train_s
        self._reference = self._answer_reference()
        self._labels: deque[tuple[int, str]] = deque()  # (due, verdict), in arrival order
        self._ratings: deque[tuple[int, bool]] = deque()  # (due, thumbs down)
        self._quality: deque[str] = deque(maxlen=spec.stream.quality_window)
        self._labels_total = 0
        self._arrived: dict[str, int] = dict.fromkeys(VERDICTS, 0)  # verdicts of this window's labels
        self._turns: deque[str] = deque(maxlen=max(1, spec.history.turns if spec.history else 1))
        self._i = 0
        self._ids = random.Random(self.seed + 7919)
        self._series = prometheus_series_count(family="generative")
        for o in self.observers:
            o.on_start(self)
        self._t0 = time.monotonic()

    def _answer_reference(self) -> _Reference:
        """The training prompts, and the confidence of answers to a window of healthy questions."""
        spec, bot = self.spec, self.bot
        tok = bot.tokenizer
        prompts = [tok.encode(q.text) + [tok.sep] for q in training_questions(bot.catalogue, spec.model.knows_new_products)]
        rng = random.Random(self.seed + 104729)
        answers = []
        for _ in range(spec.stream.window_size):
            q = bot.catalogue.ask(rng, bot.catalogue.known, policy_share=spec.stream.policy_share)
            g = generate(bot, q.text, spec.decode, self.generator)
            answers.append((verdict(bot.catalogue, q, g.text), g.confidence))
        self.result.reference_accuracy = sum(v == CORRECT for v, _ in answers) / len(answers)
        self.result.reference_confidence = float(np.mean([c for _, c in answers]))
        return _Reference(len(tok), prompts, [c for _, c in answers])

    # the stream -------------------------------------------------------------------------
    def _question(self, window: int) -> tuple[Question, bool]:
        cat, share = self.bot.catalogue, self.spec.new_product_share_at(window)
        new = share > 0 and self.rng.random() < share
        return cat.ask(self.rng, cat.new if new else cat.known, policy_share=self.spec.stream.policy_share), new

    def _pace(self) -> None:
        if self.fast:
            return
        delay = self._t0 + self._i / (self.spec.stream.requests_per_second * self.speed) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _serve_window(self, w: int) -> None:
        spec, s = self.spec, self.spec.stream
        decode, turns = spec.decode_at(w), spec.history_turns_at(w)
        if spec.release is not None and w == spec.release.from_window:
            self._emit("release", w, f"release: max_tokens={decode.max_tokens}, "
                                     f"stop at end token={'yes' if decode.stop_at_end_token else 'no'}",
                       max_tokens=decode.max_tokens, stop_at_end_token=decode.stop_at_end_token)
        start_ns, t_w = time.time_ns(), time.monotonic()
        recs: list[RequestRecord] = []
        prompt_ids: list[list[int]] = []
        ratings = complaints = 0
        self._arrived = dict.fromkeys(VERDICTS, 0)
        for _ in range(s.window_size):
            self._pace()
            arrived = self._collect(self._i)
            ratings, complaints = ratings + arrived[0], complaints + arrived[1]
            q, new = self._question(w)
            history = " ".join(list(self._turns)[-turns:]) if turns else ""
            if s.pii_share and self.rng.random() < s.pii_share:  # the details go before the question
                history = f"{history} {contact_details(self.rng)[1]}".strip()
            prompt = f"{history} {q.text}" if history else q.text
            t_ns = time.time_ns()
            g = generate(self.bot, prompt, decode, self.generator)
            rec = self._record(w, q, new, prompt, g, t_ns)
            if rec.response_model != spec.model.name and not spec.leak.view_drops_attribute:
                # a new value on every gen_ai histogram (the fix's SDK view drops it: no new series)
                self._series += SERIES_PER_LEAKED_REQUEST - (0 if g.output_tokens > 1 else _TPOT_SERIES)
            self._after(rec, q)
            recs.append(rec)
            prompt_ids.append(g.prompt_ids + [self.bot.tokenizer.sep])
            for o in self.observers:
                o.on_unit(rec)
            self._i += 1
            self.result.requests += 1
        report = self._report(w, recs, prompt_ids, ratings, complaints, start_ns, t_w, turns)
        self.result.windows.append(report)
        for o in self.observers:
            o.on_report(report)

    def _record(self, w: int, q: Question, new: bool, prompt: str, g: Generation, t_ns: int) -> RequestRecord:
        rid = f"resp_{self._ids.getrandbits(64):016x}"  # its own generator: the stream's draws stay the same
        return RequestRecord(self._i, self._i, w, q.kind, g.input_tokens, g.output_tokens, g.finish_reason, g.ttft_s,
                             g.time_per_output_token_s, g.duration_s, g.confidence,
                             self.bot.tokenizer.unknown_share(g.prompt_ids), find_pii(prompt), t_ns,
                             t_ns + int(g.duration_s * 1e9), prompt, g.text, rid,
                             rid if self.spec.leaks(w, self._i) else self.spec.model.name,
                             verdict(self.bot.catalogue, q, g.text), new)

    def _after(self, rec: RequestRecord, q: Question) -> None:
        """The answer joins the conversation; its label and rating are scheduled."""
        s = self.spec.stream
        self._turns.append(f"{q.text} {rec.answer}")
        if self.rng.random() < s.label_share:
            self._labels.append((rec.index + s.label_delay, rec.verdict))
        if self.rng.random() < s.feedback_share:
            down = (rec.verdict != CORRECT) != (self.rng.random() < s.feedback_noise)
            self._ratings.append((rec.index + s.feedback_delay, down))

    def _collect(self, i: int) -> tuple[int, int]:
        """Labels and ratings due by request i arrive: (ratings, of them thumbs down)."""
        while self._labels and self._labels[0][0] <= i:
            v = self._labels.popleft()[1]
            self._quality.append(v)
            self._arrived[v] += 1
            self._labels_total += 1
        ratings = downs = 0
        while self._ratings and self._ratings[0][0] <= i:
            ratings += 1
            downs += self._ratings.popleft()[1]
        return ratings, downs

    def _report(self, w: int, recs: list[RequestRecord], prompt_ids: list[list[int]], ratings: int, complaints: int,
                start_ns: int, t_w: float, turns: int) -> BotWindow:
        s, ref = self.spec.stream, self._reference
        tin, tout = sum(r.input_tokens for r in recs), sum(r.output_tokens for r in recs)
        reasons: dict[str, int] = {}
        for r in recs:
            reasons[r.finish_reason] = reasons.get(r.finish_reason, 0) + 1
        ttft = np.array([r.ttft_s for r in recs])
        tpot = np.array([r.time_per_output_token_s for r in recs if not math.isnan(r.time_per_output_token_s)])
        q = list(self._quality)
        enough = len(q) >= MIN_LABELS
        tokens = np.concatenate(prompt_ids)
        lengths = np.array([len(p) for p in prompt_ids], dtype=float)
        conf = np.array([r.confidence for r in recs])
        d = ks_statistic(ref.confidence, conf)
        return BotWindow(
            index=w, requests=len(recs), input_tokens=tin, output_tokens=tout, finish_reasons=reasons,
            ttft_p50_s=float(np.percentile(ttft, 50)), ttft_p95_s=float(np.percentile(ttft, 95)),
            tpot_p50_s=float(np.percentile(tpot, 50)) if tpot.size else math.nan,
            duration_p95_s=float(np.percentile([r.duration_s for r in recs], 95)),
            cost_usd=(tin * s.price_per_1k_input_tokens + tout * s.price_per_1k_output_tokens) / 1000,
            accuracy=sum(v == CORRECT for v in q) / len(q) if enough else math.nan,
            hallucination_rate=sum(v == HALLUCINATION for v in q) / len(q) if enough else math.nan,
            labels=len(q), labels_total=self._labels_total,
            label_verdicts=dict(self._arrived), ratings=ratings, complaints=complaints,
            token_js=js_distance(np.bincount(tokens, minlength=ref.tokens.size), ref.tokens),
            oov_rate=float(np.mean(tokens == self.bot.tokenizer.unk)),
            length_psi=psi(ref.lengths, proportions(bin_counts(lengths, ref.edges))),
            confidence_mean=float(conf.mean()), confidence_ks=d,
            confidence_ks_pvalue=float(ks_pvalue(d, ref.confidence.size, conf.size)),
            new_product_share=self.spec.new_product_share_at(w), history_turns=turns,
            pii_prompts=sum(any(r.pii.values()) for r in recs), pii_to_backends=self._pii_to_backends(recs),
            metric_series=self._series,
            elapsed_s=time.monotonic() - t_w, start_ns=start_ns, end_ns=time.time_ns())

    def _pii_to_backends(self, recs: list[RequestRecord]) -> int:
        """Personal data values in the content the spans carry to Jaeger: none without content capture,
        none through the collector's redacting entry point (its redaction step masks them)."""
        if not self.spec.capture_content or self.spec.collector_redaction:
            return 0
        return sum(sum(r.pii.values()) + sum(find_pii(r.answer).values()) for r in recs)

    def _emit(self, name: str, window: int, message: str, **attrs: Any) -> None:
        ev = BotEvent(name, window, message, attrs)
        self.result.events.append(ev)
        for o in self.observers:
            o.on_event(ev)
