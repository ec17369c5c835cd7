"""The instrumented training loop every training scenario uses.

It trains for real and reports what happened to observers through the one protocol
of lab/telemetry/observer.py (a step is the unit, an evaluation the report); it
never writes a signal value of its own making.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from lab.specs.base import hidden
from lab.specs.training import CorruptBatch, LrBurst, TrainingSpec
from lab.telemetry.observer import Observer
from lab.thresholds import MAX_NONFINITE_STREAK
from lab.training.data import Splits, load_splits
from lab.training.models import MLP, build_model
from lab.training.probes import probe_activations
from lab.training.signals import OverfitTracker, RollingMean

# --fast runs settle steps and hand their records to observers this many at a time (Trainer._dispatch).
UNIT_BURST = 32


@dataclass(slots=True)
class StepRecord:
    step: int
    epoch: int
    loss: float
    grad_norm: float
    grad_baseline: float  # mean of the previous steps' norms (NaN until ready)
    grad_ratio: float  # grad_norm / grad_baseline (NaN until ready)
    loss_ratio: float  # loss / mean of the previous steps' losses (NaN until ready)
    lr: float
    batch_size: int
    duration_s: float
    nonfinite: bool
    elapsed_s: float
    planned_steps: int

    @property
    def clock(self) -> int:
        """Position on the paced clock, in steps (step k runs at k / steps per second)."""
        return self.step


@dataclass
class EvalRecord:
    step: int
    epoch: int
    train_loss: float
    val_loss: float
    train_acc: float
    val_acc: float
    ratio: float
    rise: float
    evals_since_best: int
    activation_mean: dict[str, float]
    dead_ratio: dict[str, float]
    start_ns: int
    end_ns: int
    elapsed_s: float


@dataclass
class Event:
    name: str  # evaluation-independent notable moment, e.g. checkpoint, lr_change
    step: int
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass
class RunResult:
    spec: TrainingSpec
    seed: int
    steps: int = 0
    planned_steps: int = 0
    epochs: int = 0
    stopped: str = "completed"  # completed | early_stopped | diverged | interrupted
    evals: list[EvalRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    grad_ratios: list[float] = field(default_factory=list)
    loss_ratios: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    compute_s: float = 0.0
    eval_s: float = 0.0  # wall time spent in evaluations (validation, probes, checkpoints)

    @property
    def units(self) -> int:
        """Units of work done (the observer protocol's unit: a step)."""
        return self.steps

    def first_eval(self, predicate) -> EvalRecord | None:
        return next((e for e in self.evals if predicate(e)), None)


def _optimizer(spec: TrainingSpec, model: nn.Module) -> torch.optim.Optimizer:
    o = spec.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def global_grad_norm(params: list[torch.Tensor]) -> float:
    """L2 norm of all gradients together (what clip_grad_norm_ measures).

    One BLAS dot product per gradient, summed in a Python float: inside the training loop
    this costs ~228 us a step on the 64-1024-1024-10 model against ~276 us for
    torch._foreach_norm + vector_norm, and 35 against 47 us on the overfit model (medians
    of 450 steps each, one torch thread). torch.nn.utils.get_total_norm gives the same
    number but spends ~25 us more grouping tensors by device. Like torch's norm, the
    float32 squares overflow to inf above ~1.8e19, and NaN stays NaN.
    """
    total = 0.0
    for p in params:
        if p.grad is not None:
            g = p.grad.view(-1)
            total += torch.dot(g, g).item()
    return math.sqrt(total)


@dataclass(slots=True)
class StepOutput:
    """What one optimiser step produced, before any bookkeeping."""

    logits: torch.Tensor
    loss: float
    grad_norm: float  # NaN when not instrumented
    duration_s: float


class TrainWindow:
    """Minibatch loss and accuracy since the previous evaluation (the `split=train` values).

    Accuracy is not counted per step: each step only keeps a reference to its (detached)
    logits and labels, and every FOLD steps (and when the window is taken) they are scored
    in one pass. On a 1 ms step the four tensor ops of a per-step count were most of the
    signals' cost. FOLD bounds the batches kept alive: at 256 the steps were measurably
    slower than at 32, and memory stays bounded however rarely a run evaluates.
    """

    FOLD = 32

    def __init__(self) -> None:
        self.loss = 0.0
        self.n = 0
        self.correct = 0
        self._logits: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def add(self, loss: float, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss * len(y)
        self.n += len(y)
        self._logits.append(logits.detach())
        self._labels.append(y)
        if len(self._logits) >= self.FOLD:
            self._fold()

    def _fold(self) -> None:
        if self._logits:
            hits = torch.cat(self._logits).argmax(1) == torch.cat(self._labels)
            self.correct += int(hits.sum().item())
            self._logits.clear()
            self._labels.clear()

    def take(self) -> tuple[float, float]:
        """(mean loss, accuracy) of the window, then start a new one."""
        self._fold()
        loss = self.loss / self.n if self.n else math.nan
        acc = self.correct / self.n if self.n else math.nan
        self.__init__()
        return loss, acc


class Trainer:
    def __init__(self, spec: TrainingSpec, seed: int = 0, *, fast: bool = False, speed: float = 1.0,
                 observers: list[Observer] = (), instrument: bool = True, max_steps: int | None = None,
                 progress: Callable[[str], None] | None = None):
        """progress: told what the set-up is doing (the terminal view's `note`), before the first step."""
        self.spec, self.seed, self.fast, self.speed = spec, seed, fast, speed
        self.observers = list(observers)
        self.instrument = instrument  # False = bare loop, for the overhead benchmark
        say = progress or (lambda text: None)
        torch.manual_seed(seed)
        # No sizes or names here: practice mode shows these lines too, and they must not fingerprint a case.
        say("loading data ...")
        self.data: Splits = load_splits(spec.data, seed)
        say("building the model ...")
        self.model: MLP = build_model(self.data.n_features, self.data.n_classes, spec.model)
        say("preparing the optimizer ...")  # torch.optim's first use imports a lot: seconds on a busy machine
        self.optimizer = _optimizer(spec, self.model)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=spec.train.label_smoothing)
        self.steps_per_epoch = math.ceil(len(self.data.x_train) / spec.train.batch_size)
        self.planned_steps = spec.train.epochs * self.steps_per_epoch
        if max_steps is not None:
            self.planned_steps = min(self.planned_steps, max_steps)
        self._params = list(self.model.parameters())  # walking modules every step costs ~70 us
        self.result = RunResult(spec=spec, seed=seed, planned_steps=self.planned_steps)

    @property
    def planned_units(self) -> int:
        return self.planned_steps

    # -- schedule -----------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        t = self.spec.train
        base = self.spec.optimizer.lr
        if t.lr_schedule == "cosine":
            base *= 0.5 * (1 + math.cos(math.pi * min(step, self.planned_steps) / self.planned_steps))
        elif t.lr_schedule == "step":
            base *= t.lr_step_gamma ** ((step - 1) // t.lr_step_every)
        for f in self.spec.faults:
            if isinstance(f, LrBurst) and f.at_step <= step < f.at_step + f.steps:
                base *= f.factor
        return base

    def _corrupt(self, step: int, x: torch.Tensor) -> torch.Tensor:
        for f in self.spec.faults:
            if isinstance(f, CorruptBatch) and f.at_step <= step < f.at_step + f.steps:
                x = x * f.scale
        return x

    # -- notifications ------------------------------------------------------------
    def _dispatch(self) -> None:
        """Settle the pending steps and hand their records to the observers, in step order.

        Paced runs dispatch every step as it ends. --fast runs settle and hand them over
        in bursts of UNIT_BURST: the same work in the same order, but the bookkeeping and
        the observers' code stay in the CPU's caches instead of being evicted by every
        step's tensors, which makes per-step telemetry several times cheaper on a small
        model. Pending steps are dispatched before any report, event or the end, so every
        observer still sees units, reports and events in the order they happened.
        """
        pending, self._pending = self._pending, []
        observers = self.observers
        for i, raw in enumerate(pending):
            rec = self._settle(*raw)
            for j, o in enumerate(observers):
                try:
                    o.on_unit(rec)
                except BaseException:
                    # An interrupt mid-burst: the steps not yet handed over stay pending for the
                    # run's end, and this one still reaches the observers after the interrupted one.
                    self._pending = pending[i + 1:] + self._pending
                    for rest in observers[j + 1:]:
                        rest.on_unit(rec)
                    raise

    def _emit(self, name: str, step: int, message: str, **attrs: Any) -> None:
        self._dispatch()
        ev = Event(name, step, message, attrs, time.monotonic() - self._t0)
        self.result.events.append(ev)
        for o in self.observers:
            o.on_event(ev)

    @property
    def _running(self) -> bool:
        return self.result.stopped == "completed"

    # -- the loop -----------------------------------------------------------------
    def run(self) -> RunResult:
        self._begin()
        try:
            for epoch in range(1, self.spec.train.epochs + 1):
                if self._run_epoch(epoch):
                    break
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        return self._finish()

    def _begin(self) -> None:
        torch.manual_seed(self.seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._grad_baseline = RollingMean()
        self._loss_baseline = RollingMean()
        self._overfit = OverfitTracker()
        self._window = TrainWindow()
        self._best_state: dict | None = None
        self._nonfinite_streak = 0
        self._prev_lr: float | None = None
        self._compute = 0.0
        self._pending: list[StepRecord] = []
        self.step = 0
        self._t0 = time.monotonic()
        for o in self.observers:
            o.on_start(self)
        if hidden(self.spec):  # a practice case: the planned length would name the scenario
            self._emit("run_start", 0, f"{self.spec.name} ({self.spec.variant}): run started")
        else:
            self._emit("run_start", 0, f"{self.spec.name} ({self.spec.variant}) seed {self.seed}: {self.planned_steps} steps planned",
                       planned_steps=self.planned_steps)
        self.model.train()

    def _run_epoch(self, epoch: int) -> bool:
        """One pass over the training data; True when the run is over."""
        spec, data = self.spec, self.data
        order = torch.randperm(len(data.x_train), generator=self._gen)
        for i in range(0, len(order), spec.train.batch_size):
            if self.step >= self.planned_steps:
                break
            self.step += 1
            idx = order[i:i + spec.train.batch_size]
            x, y = self._corrupt(self.step, data.x_train[idx]), data.y_train[idx]
            lr = self._apply_lr(self.step)
            out = self._train_step(x, y)
            if not self.instrument:
                continue
            self._observe_step(epoch, y, lr, out)
            if self.step % spec.train.eval_every == 0 or self.step == self.planned_steps or not self._running:
                self._evaluate(epoch)
            if not self._running:
                break
            self._pace()
        self.result.epochs = epoch
        return not self._running or self.step >= self.planned_steps

    def _apply_lr(self, step: int) -> float:
        lr = self.lr_at(step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        if self._prev_lr is not None and abs(lr - self._prev_lr) > 0.2 * self._prev_lr:
            self._emit("lr_change", step, f"learning rate {self._prev_lr:.3g} -> {lr:.3g}", old=self._prev_lr, new=lr)
        self._prev_lr = lr
        return lr

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        """Forward, backward, (clip,) update; only the optimiser step is timed."""
        t_start = time.perf_counter()
        logits = self.model(x)
        loss = self.criterion(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.spec.train.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self._params, self.spec.train.grad_clip, foreach=True).item()
        elif self.instrument:
            norm = global_grad_norm(self._params)
        else:
            norm = math.nan
        self.optimizer.step()
        loss_v = loss.item()
        duration = time.perf_counter() - t_start
        self._compute += duration
        # Detached: a step's logits wait up to UNIT_BURST steps for their accuracy count, and
        # holding them with their autograd graph cost ~6% of a step on the larger bench model.
        return StepOutput(logits.detach(), loss_v, norm, duration)

    def _observe_step(self, epoch: int, y: torch.Tensor, lr: float, out: StepOutput) -> None:
        """Divergence check now; the step's signals are worked out when it is dispatched."""
        loss_v, norm = out.loss, out.grad_norm
        nonfinite = not (math.isfinite(loss_v) and math.isfinite(norm))
        self._pending.append((self.step, epoch, lr, y, out, nonfinite, time.monotonic() - self._t0))
        if not self.fast or len(self._pending) >= UNIT_BURST:
            self._dispatch()
        if not nonfinite:
            self._nonfinite_streak = 0
            return
        self._nonfinite_streak += 1
        if self._nonfinite_streak == 1:
            self._emit("nonfinite", self.step, f"loss {loss_v} / gradient norm {norm} is not finite",
                       loss=str(loss_v), grad_norm=str(norm))
        if self._nonfinite_streak >= MAX_NONFINITE_STREAK:
            self._emit("diverged", self.step, f"{self._nonfinite_streak} consecutive non-finite steps: stopping")
            self.result.stopped = "diverged"

    def _settle(self, step: int, epoch: int, lr: float, y: torch.Tensor, out: StepOutput, nonfinite: bool,
                elapsed: float) -> StepRecord:
        """A step's signals against their rolling baselines; steps are settled in order."""
        loss_v, norm = out.loss, out.grad_norm
        self._window.add(loss_v, out.logits, y)
        base, ratio = self._grad_baseline.judge(norm)
        _, lratio = self._loss_baseline.judge(loss_v)
        r = self.result
        r.grad_ratios.append(ratio)
        r.loss_ratios.append(lratio)
        r.losses.append(loss_v)
        return StepRecord(step, epoch, loss_v, norm, base, ratio, lratio, lr, len(y), out.duration_s, nonfinite, elapsed,
                          self.planned_steps)

    @torch.no_grad()
    def _validate(self) -> tuple[float, float, dict[str, float], dict[str, float]]:
        """Validation loss and accuracy, and activation statistics from the same pass."""
        logits, means, dead = probe_activations(self.model, self.data.x_val)
        loss = self.criterion(logits, self.data.y_val).item()
        acc = (logits.argmax(1) == self.data.y_val).float().mean().item()
        return loss, acc, means, dead

    def _evaluate(self, epoch: int) -> None:
        """Validation and probes, the generalisation gap, to the observers; checkpoint; early stop."""
        t0 = time.perf_counter()
        try:
            self._evaluate_now(epoch)
        finally:
            self.result.eval_s += time.perf_counter() - t0

    def _evaluate_now(self, epoch: int) -> None:
        self._dispatch()  # the training window holds every step before this evaluation
        t_ns = time.time_ns()
        val_loss, val_acc, means, dead = self._validate()
        train_loss, train_acc = self._window.take()
        gap = self._overfit.update(self.step, train_loss, val_loss)
        rec = EvalRecord(self.step, epoch, train_loss, val_loss, train_acc, val_acc, gap["ratio"], gap["rise"],
                         int(gap["evals_since_best"]), means, dead, t_ns, time.time_ns(), time.monotonic() - self._t0)
        self.result.evals.append(rec)
        for o in self.observers:
            o.on_report(rec)
        if gap["improved"]:
            self._best_state = copy.deepcopy(self.model.state_dict())
            self._emit("checkpoint", self.step, f"new best validation loss {val_loss:.4f}", val_loss=val_loss)
        self._maybe_stop_early()

    def _maybe_stop_early(self) -> None:
        patience = self.spec.train.early_stopping_patience
        if not (patience and self._overfit.evals_since_best >= patience and self._running):
            return
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        best = self._overfit.best_step
        self._emit("early_stop", self.step, f"no improvement for {patience} evaluations: stopping, best was step {best}",
                   best_step=best, best_val_loss=self._overfit.best_val)
        self.result.stopped = "early_stopped"

    def _pace(self) -> None:
        """Paced runs: step k finishes no earlier than k / (steps per second x speed) after the start."""
        if self.fast:
            return
        delay = self._t0 + self.step / (self.spec.pace.steps_per_second * self.speed) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _finish(self) -> RunResult:
        self._dispatch()
        self.result.steps = self.step
        self.result.wall_s = time.monotonic() - self._t0
        self.result.compute_s = self._compute
        self._emit("run_end", self.step, f"run {self.result.stopped} after {self.step} steps", outcome=self.result.stopped)
        for o in self.observers:
            o.on_end(self.result)
        return self.result
