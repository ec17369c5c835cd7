"""The terminal view of a run: key signals live, notable events, and a summary.

On a terminal it redraws a compact panel (rich); otherwise (pipes, CI) it prints
one line per evaluation and one per notable event, so logs stay readable.
"""

from __future__ import annotations

import math
import re
from collections import deque

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from lab.telemetry.terminal import TerminalView
from lab.thresholds import DEAD_RATIO_THRESHOLD, GRAD_SPIKE_WARNING, OVERFIT_RATIO_THRESHOLD, OVERFIT_STALL_EVALS
from lab.training.loop import EvalRecord, Event, RunResult, StepRecord, Trainer
from lab.training.signals import overfitting

_BARS = "▁▂▃▄▅▆▇█"
# Events worth a line on the terminal (checkpoints happen at most evaluations: too chatty).
_SHOWN_EVENTS = {"run_start", "lr_change", "fault_injected", "nonfinite", "diverged", "early_stop", "run_end"}


def sparkline(values: list[float], width: int = 40) -> str:
    vals = values[-width:]
    finite = [v for v in vals if math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join("!" if not math.isfinite(v) else _BARS[min(7, int((v - lo) / span * 7.999))] for v in vals)


def fmt(v: float, spec: str = ".4f") -> str:
    return format(v, spec) if math.isfinite(v) else str(v)


class ConsoleView(TerminalView):
    def __init__(self, *, live: bool | None = None, quiet: bool = False, stream=None, verdicts: bool = True,
                 counts: bool = True):
        super().__init__(quiet=quiet, stream=stream)
        self.live_mode = self.console.is_terminal if live is None else live
        self.train_hist: list[float] = []
        self.val_hist: list[float] = []
        self.ratio_hist: list[float] = []
        self.events: deque[str] = deque(maxlen=6)
        self.last_eval: EvalRecord | None = None
        self.last_step: StepRecord | None = None
        self.max_grad_ratio = 0.0
        self._live: Live | None = None
        self._header = ""
        # Named diagnoses next to the signals; practice mode turns them off (they are the answer).
        self.verdicts = verdicts
        # Steps, the step total, the pace and the seed; practice mode shows the share of the run
        # instead (a step total at a pace names a scenario).
        self.counts = counts
        self._planned = 1

    # -- observer -------------------------------------------------------------------
    def on_start(self, run: Trainer) -> None:
        s = run.spec
        self._planned = max(run.planned_steps, 1)
        if self.counts:
            self._header = f"[bold]{s.name}[/] ({s.variant}) · seed {run.seed} · {run.planned_steps} steps · {'fast' if run.fast else f'paced {s.pace.steps_per_second * run.speed:g} steps/s'}"
        else:
            self._header = f"[bold]{s.name}[/] ({s.variant}) · {'fast' if run.fast else 'paced'} · progress in % of the run"
        if self.quiet:
            return
        if self.live_mode:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self.say(self._header)

    def on_unit(self, rec: StepRecord) -> None:
        self.last_step = rec
        if math.isfinite(rec.grad_ratio):
            self.max_grad_ratio = max(self.max_grad_ratio, rec.grad_ratio)
        if self._live and rec.step % 5 == 0:
            self._live.update(self._render())

    def on_report(self, rec: EvalRecord) -> None:
        self.last_eval = rec
        self.train_hist.append(rec.train_loss)
        self.val_hist.append(rec.val_loss)
        self.ratio_hist.append(rec.ratio)
        if self._live:
            self._live.update(self._render())
        elif not self.quiet:
            flag = " OVERFITTING" if self.verdicts and overfitting(rec.ratio, rec.evals_since_best) else (f" >{OVERFIT_RATIO_THRESHOLD}" if rec.ratio > OVERFIT_RATIO_THRESHOLD else "")
            dead = max((v for v in rec.dead_ratio.values()), default=math.nan)
            self.say(f"{self._at(rec.step)}  train {fmt(rec.train_loss)}  val {fmt(rec.val_loss)}  "
                     f"ratio {fmt(rec.ratio, '.2f')}{flag}  val_acc {fmt(rec.val_acc, '.3f')}  "
                     f"max_dead {fmt(dead, '.2f')}  grad_x {fmt(self.max_grad_ratio, '.1f')}")
            self.max_grad_ratio = 0.0

    def on_event(self, ev: Event) -> None:
        if ev.name not in _SHOWN_EVENTS:
            return
        message = self._message(ev)
        at = f"step {ev.step}" if self.counts else f"{self._share(ev.step)}%"
        line = f"[{ev.elapsed_s:6.1f}s] {at}: {message}"
        self.events.append(line)
        if self._live:
            self._live.update(self._render())
        elif ev.name not in {"run_start"}:
            self.say(f"  event {ev.name}: {message}")

    def on_end(self, result: RunResult) -> None:
        if self._live:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    # -- progress -------------------------------------------------------------------
    def _share(self, step: int) -> int:
        """Percent of the planned steps done (rounded down: 100 only at the last)."""
        return min(100, 100 * step // self._planned)

    def _at(self, step: int) -> str:
        return f"step {step:5d}" if self.counts else f"run {self._share(step):3d}%"

    def _message(self, ev: Event) -> str:
        """The loop's words, with its step numbers as shares of the run when counts are off."""
        if self.counts:
            return ev.message
        if ev.name == "run_start":  # names the seed and the step total
            return "run started"
        if ev.name == "run_end":
            return f"run {ev.attributes.get('outcome', 'over')}"
        return re.sub(r"\bstep (\d+)", lambda m: f"{self._share(int(m[1]))}% of the run", ev.message)

    # -- rendering ------------------------------------------------------------------
    def _render(self):
        t = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        t.add_column("signal")
        t.add_column("now", justify="right")
        t.add_column("threshold", justify="right")
        t.add_column("history (one mark per evaluation)")
        e, s = self.last_eval, self.last_step
        if e:
            t.add_row("training loss", fmt(e.train_loss), "", sparkline(self.train_hist))
            t.add_row("validation loss", fmt(e.val_loss), "", sparkline(self.val_hist))
            over = e.ratio > OVERFIT_RATIO_THRESHOLD
            t.add_row("val / train loss", Text(fmt(e.ratio, ".2f"), style="bold red" if over else "green"),
                      f"{OVERFIT_RATIO_THRESHOLD}", sparkline(self.ratio_hist))
            t.add_row("validation vs its best", fmt(e.rise, ".3f"), "", f"{e.evals_since_best} evaluations since the best (stall: {OVERFIT_STALL_EVALS})")
            t.add_row("accuracy train / val", f"{fmt(e.train_acc, '.3f')} / {fmt(e.val_acc, '.3f')}", "", "")
            for layer, d in e.dead_ratio.items():
                t.add_row(f"dead units {layer}", Text(fmt(d, ".2f"), style="bold red" if d > DEAD_RATIO_THRESHOLD else ""),
                          f"{DEAD_RATIO_THRESHOLD}", f"activation mean {fmt(e.activation_mean.get(layer, math.nan), '.3f')}")
        if s:
            t.add_row("gradient norm", fmt(s.grad_norm, ".3f"), "", "")
            t.add_row("grad norm / baseline (peak)", Text(fmt(self.max_grad_ratio, ".1f"), style="bold red" if self.max_grad_ratio > GRAD_SPIKE_WARNING else ""),
                      f"{GRAD_SPIKE_WARNING}", "")
            t.add_row("learning rate", f"{s.lr:.3g}", "", f"step {s.step}/{s.planned_steps} · epoch {s.epoch}" if self.counts
                      else f"{self._share(s.step)}% of the run")
        parts = [Text.from_markup(self._header), t]
        if self.verdicts and e and overfitting(e.ratio, e.evals_since_best):
            parts.append(Text(f"OVERFITTING: validation/training loss > {OVERFIT_RATIO_THRESHOLD} and no new best validation "
                              f"loss for {OVERFIT_STALL_EVALS} evaluations", style="bold red"))
        parts.append(Text("\n".join(self.events), style="dim"))
        return Group(*parts)
