"""`python -m lab ...` and the `lab` command (pyproject: lab.__main__:entry).

Ctrl-C must never print a traceback, also while the heavy modules below (OpenTelemetry, and
torch when a run starts) are still importing: until lab.cli.main takes over (where Ctrl-C
stops a run cleanly), and again after it returns (exporters flushing at exit), an interrupt
ends the process at once with status 130. The handler is installed before anything else.
"""

import os
import signal
import sys


def _quit_interrupted(signum, frame) -> None:
    os._exit(130)


signal.signal(signal.SIGINT, _quit_interrupted)

from lab.cli import main  # noqa: E402  (after the handler: importing takes a while)


def entry() -> int:
    code = main()
    signal.signal(signal.SIGINT, _quit_interrupted)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 141
    return code


if __name__ == "__main__":
    raise SystemExit(entry())
