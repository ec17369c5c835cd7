"""What every family's terminal view shares: two channels, one for signals and one for the rest.

``say`` writes the run itself (header, signal lines, events, the summary) to stdout, so
``lab run ... > run.log`` or ``| grep`` keeps exactly the signals. ``note`` (progress:
"loading data ...", where the run streams) and ``warn`` (no collector, failed exports) go
to stderr, as diagnostics do, so they never mix into piped output and still show on a
terminal. A view given an explicit ``stream`` (tests, recordings) writes both there.
``quiet`` silences all three.
"""

from __future__ import annotations

import sys

from rich.console import Console

from lab.telemetry.observer import BaseObserver


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit with status 1 here; the command line's one handler (lab/cli.py) owns a
        # closed stdout (quiet, status 141), and the run's telemetry still shuts down on the way.
        self.quiet = True
        raise BrokenPipeError("stdout was closed")


class TerminalView(BaseObserver):
    def __init__(self, *, quiet: bool = False, stream=None):
        self.console = _Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        # stderr=True resolves sys.stderr at each write, so a live panel's redirect still applies.
        self.diagnostics = (_Console(file=stream, highlight=False, soft_wrap=True) if stream is not None
                            else _Console(stderr=True, highlight=False, soft_wrap=True))
        self.quiet = quiet

    def say(self, text: str) -> None:
        """A line of the run itself: stdout."""
        if not self.quiet:
            self.console.print(text)

    def note(self, text: str) -> None:
        """Progress and where the run goes: stderr."""
        if not self.quiet:
            self.diagnostics.print(f"[dim]{text}[/]")

    def warn(self, text: str) -> None:
        """Something the user should act on (the run goes on): stderr."""
        if not self.quiet:
            self.diagnostics.print(f"[yellow]{text}[/]")
