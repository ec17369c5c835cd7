"""The terminal view of an inference run: one line per drift window (and per retrain).

Readable paced or in a pipe; practice mode turns the verdicts (the injected shift,
the ground truth of the lesson) off.
"""

from __future__ import annotations

import math
import re

from lab.serving.loop import ServeEvent, Server, WindowRecord
from lab.serving.signatures import flags
from lab.telemetry.terminal import TerminalView
from lab.thresholds import PSI_MAJOR


def fmt(v: float, spec: str = ".3f") -> str:
    return format(v, spec) if math.isfinite(v) else "  -  "


class ServeConsole(TerminalView):
    def __init__(self, *, quiet: bool = False, stream=None, live: bool | None = None, verdicts: bool = True,
                 counts: bool = True):
        # live: accepted for the session's one console signature; one line per window needs no redraw.
        super().__init__(quiet=quiet, stream=stream)
        self.verdicts = verdicts
        # Window numbers, their count and size, the pace and the seed; practice mode shows the
        # share of the run instead (a window count at a pace names a scenario).
        self.counts = counts
        self._windows = 1

    def on_start(self, server: Server) -> None:
        s = server.spec
        self._windows = max(server.windows, 1)
        if not self.counts:
            self.say(f"[bold]{s.name}[/] ({s.variant}) · model {s.model.name} (baseline accuracy "
                     f"{server.baseline_accuracy:.3f}) · {'fast' if server.fast else 'paced'} · progress in % of the run")
            return
        self.say(f"[bold]{s.name}[/] ({s.variant}) · seed {server.seed} · model {s.model.name} "
                 f"(baseline accuracy {server.baseline_accuracy:.3f}) · {server.windows} windows of {s.stream.window_size} "
                 f"requests · {'fast' if server.fast else f'{s.stream.requests_per_second * server.speed:g} requests/s'}")

    def _share(self, window: int) -> int:
        """Percent of the run done when `window` (from 0) closes."""
        return min(100, 100 * (window + 1) // self._windows)

    def on_report(self, w: WindowRecord) -> None:
        fl = flags(w)
        drifted = [f.feature for f in w.report.features if f.drifted]
        shift = max(w.true_shift.values(), default=0.0)
        mark = "[red]DRIFT[/]" if fl["input_drift"] else "     "
        acc_mark = "[red]LOW[/]" if fl["accuracy_degraded"] else "   "
        at = f"window {w.index:3d}" if self.counts else f"run {self._share(w.index):3d}%"
        self.say(f"{at}  drifted {len(drifted)}/{len(w.report.features)} {mark} "
                 f"max PSI {w.report.max_psi:5.3f}{'!' if w.report.max_psi > PSI_MAJOR else ' '} "
                 f"JS {w.report.max_js:5.3f}  out PSI {w.output.psi:5.3f}  "
                 f"acc {fmt(w.accuracy)} {acc_mark} (base {w.baseline_accuracy:.3f})  ECE {fmt(w.ece)}  "
                 f"errors {w.errors}  slow {w.slow_share:4.0%} {'[red]SLOW[/]' if fl['latency_slo'] else '    '}" + (f"  [dim]true shift {shift:.2f} SD[/]" if shift and self.verdicts else "")
                 + (f"  [dim]{', '.join(drifted)}[/]" if drifted else ""))

    def on_event(self, ev: ServeEvent) -> None:
        message = ev.message if self.counts else \
            re.sub(r"\bwindow (\d+)", lambda m: f"{self._share(int(m[1]))}% of the run", ev.message)
        self.say(f"[yellow]{message}[/]")
