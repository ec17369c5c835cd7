"""`python -m lab ...` and the `lab` command (pyproject: lab.__main__:entry).

Ctrl-C must never print a traceback, also while the heavy modules below (OpenTelemetry, and
torch when a run starts) are still importing: until lab.cli.main takes over (where Ctrl-C
stops a run cleanly), and again after it returns (exporters flushing at exit), an interrupt
ends the process at once with status 130. The handler is installed before anything else.
"""

import _signal  # the C module, already loaded: `import signal` first builds its enums (~10 ms unguarded)
import os  # already imported by the interpreter's start-up (site)


def _quit_interrupted(signum, frame) -> None:
    os._exit(130)


_signal.signal(_signal.SIGINT, _quit_interrupted)
# A launcher may hold Ctrl-C back until here (`env --block-signal=INT`, as the Makefile does): the
# interpreter's own start-up, before this line, would otherwise print a traceback. A held-back
# interrupt arrives now, and ends the process with 130 like any other.
if hasattr(_signal, "pthread_sigmask"):
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGINT])

import signal  # noqa: E402
import sys  # noqa: E402

from lab.cli import main  # noqa: E402  (after the handler: importing takes a while)


def entry() -> int:
    code = main()
    signal.signal(signal.SIGINT, _quit_interrupted)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 141
    if code in (130, 143):
        # Stopped by a signal, and lab.cli has said so and shut telemetry down. A KeyboardInterrupt
        # that landed in code run through the C API (PyRun_String, e.g. while torch imports) leaves
        # the interpreter marked as ended by Ctrl-C although lab caught it: at exit it would kill
        # itself with SIGINT (status -2) instead of returning this status. Seen once in CI.
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(entry())
