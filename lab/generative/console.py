"""The terminal view of a support-bot run: one line per window (and per release).

Readable paced or in a pipe; practice mode turns the verdicts (the share of questions about
new products, the ground truth of the lesson) off.
"""

from __future__ import annotations

import math
import re

from lab.generative.loop import BotEvent, BotServer, BotWindow
from lab.generative.signatures import flags
from lab.telemetry.terminal import TerminalView


def fmt(v: float, spec: str = ".3f") -> str:
    return format(v, spec) if math.isfinite(v) else "  -  "


def duration(seconds: float) -> str:
    """A latency in the unit that reads best: the bot answers in a fraction of a millisecond."""
    return "  -  " if not math.isfinite(seconds) else f"{1e3 * seconds:.2f} ms"


class BotConsole(TerminalView):
    def __init__(self, *, quiet: bool = False, stream=None, live: bool | None = None, verdicts: bool = True,
                 counts: bool = True):
        # live: accepted for the session's one console signature; one line per window needs no redraw.
        super().__init__(quiet=quiet, stream=stream)
        self.verdicts = verdicts
        self.counts = counts  # window numbers and sizes; practice mode shows the share of the run instead
        self._windows = 1

    def on_start(self, server: BotServer) -> None:
        s = server.spec
        self._windows = max(server.windows, 1)
        head = (f"[bold]{s.name}[/] ({s.variant}) · model {s.model.name} (reference accuracy "
                f"{server.result.reference_accuracy:.3f}, {server.result.parameters:,} parameters, trained in "
                f"{server.result.train_s:.1f} s)")
        if not self.counts:
            self.say(f"{head} · {'fast' if server.fast else 'paced'} · progress in % of the run")
            return
        pace = "fast" if server.fast else f"{s.stream.requests_per_second * server.speed:g} requests/s"
        self.say(f"{head} · seed {server.seed} · {server.windows} windows of {s.stream.window_size} questions · {pace}")

    def _share(self, window: int) -> int:
        return min(100, 100 * (window + 1) // self._windows)

    def on_report(self, w: BotWindow) -> None:
        fl = flags(w)
        at = f"window {w.index:3d}" if self.counts else f"run {self._share(w.index):3d}%"

        def mark(name: str, text: str) -> str:
            return f"[red]{text}[/]" if fl[name] else " " * len(text)

        self.say(f"{at}  tokens in {w.input_tokens / w.requests:6.1f} out {w.output_tokens / w.requests:5.1f} "
                 f"cut {w.length_share:4.0%}{mark('runaway_generation', ' CUT')}  "
                 f"TTFT p95 {duration(w.ttft_p95_s)}  ${1000 * w.cost_usd / w.requests:6.2f}/1k{mark('cost', ' $$')}  "
                 f"acc {fmt(w.accuracy)}{mark('quality_slo', ' LOW')}  halluc {fmt(w.hallucination_rate)}"
                 f"{mark('hallucination', ' !')}  complaints {fmt(w.complaint_rate, '.2f')}  "
                 f"OOV {w.oov_rate:.3f}{mark('input_drift', ' NEW')}  len PSI {w.length_psi:5.2f}"
                 f"{mark('prompt_bloat', ' LONG')}  conf {w.confidence_mean:.3f} (KS {w.confidence_ks:.2f})"
                 + (f"  [dim]new products {w.new_product_share:.0%}[/]" if self.verdicts and w.new_product_share else ""))

    def on_event(self, ev: BotEvent) -> None:
        message = ev.message if self.counts else \
            re.sub(r"\bwindow (\d+)", lambda m: f"{self._share(int(m[1]))}% of the run", ev.message)
        self.say(f"[yellow]{message}[/]")
