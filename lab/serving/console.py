"""The terminal view of an inference run: one line per drift window (and per retrain).

Readable paced or in a pipe; practice mode turns the verdicts (the injected shift,
the ground truth of the lesson) off.
"""

from __future__ import annotations

import math
import sys

from rich.console import Console

from lab.serving.loop import ServeEvent, Server, WindowRecord
from lab.serving.signatures import flags
from lab.telemetry.observer import BaseObserver
from lab.thresholds import PSI_MAJOR


def fmt(v: float, spec: str = ".3f") -> str:
    return format(v, spec) if math.isfinite(v) else "  -  "


class ServeConsole(BaseObserver):
    def __init__(self, *, quiet: bool = False, stream=None, live: bool | None = None, verdicts: bool = True):
        # live: accepted for the session's one console signature; one line per window needs no redraw.
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.verdicts = verdicts

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def on_start(self, server: Server) -> None:
        s = server.spec
        self.say(f"[bold]{s.name}[/] ({s.variant}) · seed {server.seed} · model {s.model.name} "
                 f"(baseline accuracy {server.baseline_accuracy:.3f}) · {server.windows} windows of {s.stream.window_size} "
                 f"requests · {'fast' if server.fast else f'{s.stream.requests_per_second * server.speed:g} requests/s'}")

    def on_report(self, w: WindowRecord) -> None:
        fl = flags(w)
        drifted = [f.feature for f in w.report.features if f.drifted]
        shift = max(w.true_shift.values(), default=0.0)
        mark = "[red]DRIFT[/]" if fl["input_drift"] else "     "
        acc_mark = "[red]LOW[/]" if fl["accuracy_degraded"] else "   "
        self.say(f"window {w.index:3d}  drifted {len(drifted)}/{len(w.report.features)} {mark} "
                 f"max PSI {w.report.max_psi:5.3f}{'!' if w.report.max_psi > PSI_MAJOR else ' '} "
                 f"JS {w.report.max_js:5.3f}  out PSI {w.output.psi:5.3f}  "
                 f"acc {fmt(w.accuracy)} {acc_mark} (base {w.baseline_accuracy:.3f})  ECE {fmt(w.ece)}  "
                 f"errors {w.errors}" + (f"  [dim]true shift {shift:.2f} SD[/]" if shift and self.verdicts else "")
                 + (f"  [dim]{', '.join(drifted)}[/]" if drifted else ""))

    def on_event(self, ev: ServeEvent) -> None:
        self.say(f"[yellow]{ev.message}[/]")
