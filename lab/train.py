"""The instrumented training loop every training scenario uses.

It trains for real and reports what happened to observers (telemetry, the
terminal view, recorders); it never writes a signal value of its own making.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from lab.config import CorruptBatch, LrBurst, ScenarioSpec
from lab.data import Splits, load_splits
from lab.models import MLP, build_model
from lab.probes import probe_activations
from lab.signals import OverfitTracker, RollingMean

# Consecutive non-finite steps after which a run is declared diverged and stopped.
MAX_NONFINITE_STREAK = 20


@dataclass
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
    spec: ScenarioSpec
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

    def first_eval(self, predicate) -> EvalRecord | None:
        return next((e for e in self.evals if predicate(e)), None)


class Observer(Protocol):
    def on_start(self, run: "Trainer") -> None: ...
    def on_epoch_start(self, epoch: int) -> None: ...
    def on_step(self, rec: StepRecord) -> None: ...
    def on_eval(self, rec: EvalRecord) -> None: ...
    def on_event(self, ev: Event) -> None: ...
    def on_epoch_end(self, epoch: int) -> None: ...
    def on_end(self, result: RunResult) -> None: ...


class BaseObserver:
    """No-op observer to subclass."""

    def on_start(self, run: "Trainer") -> None: pass
    def on_epoch_start(self, epoch: int) -> None: pass
    def on_step(self, rec: StepRecord) -> None: pass
    def on_eval(self, rec: EvalRecord) -> None: pass
    def on_event(self, ev: Event) -> None: pass
    def on_epoch_end(self, epoch: int) -> None: pass
    def on_end(self, result: RunResult) -> None: pass


def _optimizer(spec: ScenarioSpec, model: nn.Module) -> torch.optim.Optimizer:
    o = spec.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def global_grad_norm(params: list[torch.Tensor]) -> float:
    """L2 norm of all gradients together (what clip_grad_norm_ measures).

    torch.nn.utils.get_total_norm gives the same number but spends ~25 us per call
    grouping tensors by device; on a 1 ms CPU step that alone is 2%.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).item()


class Trainer:
    def __init__(self, spec: ScenarioSpec, seed: int = 0, *, fast: bool = False, speed: float = 1.0,
                 observers: list[Observer] = (), instrument: bool = True, max_steps: int | None = None):
        self.spec, self.seed, self.fast, self.speed = spec, seed, fast, speed
        self.observers = list(observers)
        self.instrument = instrument  # False = bare loop, for the overhead benchmark
        torch.manual_seed(seed)
        self.data: Splits = load_splits(spec.data, seed)
        self.model: MLP = build_model(self.data.n_features, self.data.n_classes, spec.model)
        self.optimizer = _optimizer(spec, self.model)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=spec.train.label_smoothing)
        self.steps_per_epoch = math.ceil(len(self.data.x_train) / spec.train.batch_size)
        self.planned_steps = spec.train.epochs * self.steps_per_epoch
        if max_steps is not None:
            self.planned_steps = min(self.planned_steps, max_steps)
        self._params = list(self.model.parameters())  # walking modules every step costs ~70 us
        self.result = RunResult(spec=spec, seed=seed, planned_steps=self.planned_steps)

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
    def _emit(self, name: str, step: int, message: str, **attrs: Any) -> None:
        ev = Event(name, step, message, attrs, time.monotonic() - self._t0)
        self.result.events.append(ev)
        for o in self.observers:
            o.on_event(ev)

    # -- evaluation ---------------------------------------------------------------
    @torch.no_grad()
    def _evaluate(self) -> tuple[float, float, dict[str, float], dict[str, float]]:
        """Validation loss and accuracy, and activation statistics from the same pass."""
        logits, means, dead = probe_activations(self.model, self.data.x_val)
        loss = self.criterion(logits, self.data.y_val).item()
        acc = (logits.argmax(1) == self.data.y_val).float().mean().item()
        return loss, acc, means, dead

    def run(self) -> RunResult:
        spec, data, model, opt = self.spec, self.data, self.model, self.optimizer
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        baseline = RollingMean()
        loss_baseline = RollingMean()
        overfit = OverfitTracker()
        best_state: dict | None = None
        nonfinite_streak = 0
        win_loss = win_n = 0.0
        win_correct = torch.zeros((), dtype=torch.long)  # a tensor: no .item() sync per step
        steps_per_s = spec.pace.steps_per_second * self.speed
        self._t0 = time.monotonic()
        compute = 0.0
        step = 0
        prev_lr = None
        for o in self.observers:
            o.on_start(self)
        self._emit("run_start", 0, f"{spec.name} ({spec.variant}) seed {self.seed}: {self.planned_steps} steps planned",
                   planned_steps=self.planned_steps)
        model.train()
        try:
            for epoch in range(1, spec.train.epochs + 1):
                for o in self.observers:
                    o.on_epoch_start(epoch)
                order = torch.randperm(len(data.x_train), generator=gen)
                for i in range(0, len(order), spec.train.batch_size):
                    if step >= self.planned_steps:
                        break
                    step += 1
                    idx = order[i:i + spec.train.batch_size]
                    x, y = self._corrupt(step, data.x_train[idx]), data.y_train[idx]
                    lr = self.lr_at(step)
                    for g in opt.param_groups:
                        g["lr"] = lr
                    if prev_lr is not None and abs(lr - prev_lr) > 0.2 * prev_lr:
                        self._emit("lr_change", step, f"learning rate {prev_lr:.3g} -> {lr:.3g}", old=prev_lr, new=lr)
                    prev_lr = lr

                    t_start = time.perf_counter()
                    logits = model(x)
                    loss = self.criterion(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if spec.train.grad_clip is not None:
                        norm = nn.utils.clip_grad_norm_(self._params, spec.train.grad_clip, foreach=True).item()
                    elif self.instrument:
                        norm = global_grad_norm(self._params)
                    else:
                        norm = math.nan
                    opt.step()
                    loss_v = loss.item()
                    duration = time.perf_counter() - t_start
                    compute += duration

                    if not self.instrument:
                        continue
                    bsz = len(idx)
                    win_loss += loss_v * bsz
                    win_correct += (logits.detach().argmax(1) == y).sum()
                    win_n += bsz
                    nonfinite = not (math.isfinite(loss_v) and math.isfinite(norm))
                    base, ratio = baseline.judge(norm)
                    _, lratio = loss_baseline.judge(loss_v)
                    self.result.grad_ratios.append(ratio)
                    self.result.loss_ratios.append(lratio)
                    self.result.losses.append(loss_v)
                    rec = StepRecord(step, epoch, loss_v, norm, base, ratio, lratio, lr, bsz, duration, nonfinite,
                                     time.monotonic() - self._t0, self.planned_steps)
                    for o in self.observers:
                        o.on_step(rec)
                    if nonfinite:
                        nonfinite_streak += 1
                        if nonfinite_streak == 1:
                            self._emit("nonfinite", step, f"loss {loss_v} / gradient norm {norm} is not finite",
                                       loss=str(loss_v), grad_norm=str(norm))
                        if nonfinite_streak >= MAX_NONFINITE_STREAK:
                            self._emit("diverged", step, f"{nonfinite_streak} consecutive non-finite steps: stopping")
                            self.result.stopped = "diverged"
                    else:
                        nonfinite_streak = 0

                    last = step == self.planned_steps or self.result.stopped != "completed"
                    if step % spec.train.eval_every == 0 or last:
                        t_ns = time.time_ns()
                        val_loss, val_acc, means, dead = self._evaluate()
                        train_loss = win_loss / win_n if win_n else math.nan
                        train_acc = win_correct.item() / win_n if win_n else math.nan
                        win_loss = win_n = 0.0
                        win_correct = torch.zeros((), dtype=torch.long)
                        o_ = overfit.update(step, train_loss, val_loss)
                        ev = EvalRecord(step, epoch, train_loss, val_loss, train_acc, val_acc, o_["ratio"], o_["rise"],
                                        int(o_["evals_since_best"]), means, dead, t_ns,
                                        time.time_ns(), time.monotonic() - self._t0)
                        self.result.evals.append(ev)
                        for o in self.observers:
                            o.on_eval(ev)
                        if o_["improved"]:
                            best_state = copy.deepcopy(model.state_dict())
                            self._emit("checkpoint", step, f"new best validation loss {val_loss:.4f}",
                                       val_loss=val_loss)
                        patience = spec.train.early_stopping_patience
                        if patience and overfit.evals_since_best >= patience and self.result.stopped == "completed":
                            if best_state is not None:
                                model.load_state_dict(best_state)
                            self._emit("early_stop", step,
                                       f"no improvement for {patience} evaluations: stopping, best was step {overfit.best_step}",
                                       best_step=overfit.best_step, best_val_loss=overfit.best_val)
                            self.result.stopped = "early_stopped"
                    if self.result.stopped != "completed":
                        break
                    if not self.fast:
                        delay = self._t0 + step / steps_per_s - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                self.result.epochs = epoch
                for o in self.observers:
                    o.on_epoch_end(epoch)
                if self.result.stopped != "completed" or step >= self.planned_steps:
                    break
        except KeyboardInterrupt:
            self.result.stopped = "interrupted"
        self.result.steps = step
        self.result.wall_s = time.monotonic() - self._t0
        self.result.compute_s = compute
        self._emit("run_end", step, f"run {self.result.stopped} after {step} steps", outcome=self.result.stopped)
        for o in self.observers:
            o.on_end(self.result)
        return self.result
