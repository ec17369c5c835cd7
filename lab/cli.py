"""Command line: `lab list`, `lab show NAME`, `lab run NAME [--seed N] [--fast] [--fix] ...`, `lab triage ...`.

Examples:
    lab run overfit              # paced for people; streams to a collector if one answers
    lab run overfit --fast --fix # flat out, the fix variant
    lab run overfit --set optimizer.lr=3e-3 --seed 2
    lab list --json              # machine-readable
    lab schema                   # the JSON Schema of a scenario file (docs/scenario.schema.json)

Where the stack is: the OTEL_EXPORTER_OTLP_* variables and LAB_PROMETHEUS_URL (and the other
LAB_*_URL) when the environment sets them, else what `make up` recorded in .lab/stack.env
($LAB_STATE_DIR/stack.env), else the defaults (OTLP/HTTP on localhost:4318, Prometheus on
localhost:9090).

Output: the run itself (header, signal lines, summary) and the answers of `list`, `show`
and `triage` go to stdout; progress, warnings and errors go to stderr.

Exit status (every command):
    0    success
    1    an unexpected error (one line; `--debug` shows the traceback), or a wrong `triage answer`
    2    invalid command line, option value, scenario file or --set override
    3    `run --telemetry on` delivered nothing: every OTLP export failed
    130  interrupted (Ctrl-C), at any moment, also while starting up
    143  terminated (SIGTERM: `timeout`, `docker stop`, systemd, CI cancellation); a run stops
         exactly as on Ctrl-C (final export, run-end record, root span, running=0, summary)
    141  stdout was closed early (e.g. `lab list | head -1`): the rest is dropped quietly
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import lab
from lab import options
from lab.families import record_run, run
from lab.practice import cli as triage_cli
from lab.repo import stack_env_defaults
from lab.specs.base import SpecError
from lab.specs.loader import known_scenarios, load_scenario, scenario_json_schema
from lab.telemetry.session import write_summary

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_DELIVERED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process the signal killed
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away

DEBUG_FLAG = "--debug"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab", description="ML observability lab: train real models into failure and watch the signals.",
                                epilog="Exit status: 0 ok, 1 unexpected error (see --debug), 2 invalid input, "
                                       "3 --telemetry on delivered nothing, 130 interrupted, 141 stdout closed, 143 terminated.")
    p.add_argument("--version", action="version", version=f"lab {lab.__version__}")
    p.add_argument(DEBUG_FLAG, action="store_true", help="show the traceback of an unexpected error (allowed anywhere on the line)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ls = sub.add_parser("list", help="list the scenarios", description="List the scenarios with their expected alerts.")
    ls.add_argument("--json", action="store_true", help="machine-readable: {scenarios: [...], invalid: [...]}")

    show = sub.add_parser("show", help="show a scenario's story and settings", description="Show what a scenario teaches and its settings.")
    show.add_argument("name", help="scenario name (see `lab list`)")
    show.add_argument("--fix", action="store_true", help="show the fix variant's settings")
    show.add_argument("--json", action="store_true", help="machine-readable: the validated scenario, story included")

    run = sub.add_parser("run", help="run a scenario", description="Train a scenario's model for real (training scenarios) or "
                         "serve a real model a drifting request stream (inference scenarios), and stream the signals.")
    run.add_argument("name", help="scenario name (see `lab list`)")
    run.add_argument("--seed", type=options.seed, default=0,
                     help=f"random seed, {options.SEED_MIN} to {options.SEED_MAX} (default 0)")
    run.add_argument("--fix", action="store_true", help="run the fix variant: the remedy for the failure")
    run.add_argument("--fast", action="store_true", help="run flat out (for tests); default is paced for people")
    run.add_argument("--speed", type=options.speed, default=1.0,
                     help=f"pace multiplier for paced runs, {options.SPEED_MIN:g} to {options.SPEED_MAX:g} (default 1)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting, e.g. --set optimizer.lr=0.003 (repeatable; the run's variant becomes 'custom')")
    run.add_argument("--telemetry", choices=("auto", "on", "off"), default="auto",
                     help="auto: stream over OTLP if a collector answers (default); on: always, and exit 3 if nothing "
                          "was delivered; off: never")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--plain", action="store_true", help="line-by-line output even on a terminal")
    run.add_argument("--summary-json", type=Path, metavar="FILE", help="write the run summary as JSON")
    run.add_argument("--record", type=Path, metavar="FILE",
                     help="record the series Prometheus would store, one sample per 5 s of the paced clock, instead of "
                          "streaming (replay them against the alert rules with python -m lab.dev.replay)")
    triage_cli.add_parser(sub)
    sub.add_parser("schema", help="print the JSON Schema of a scenario file",
                   description="Print the JSON Schema of a scenario file (docs/scenario.schema.json), for editor completion.")
    return p


def _cmd_list(args) -> int:
    rows, invalid = [], []
    for n in known_scenarios():
        try:
            s = load_scenario(n)
        except SpecError as exc:  # one bad file must not hide the others
            invalid.append({"name": n, "error": str(exc)})
            continue
        rows.append({"name": n, "kind": s.kind, "title": s.title, "has_fix": s.has_fix, "alerts": list(s.alerts)})
    for bad in invalid:
        print(f"lab: skipped scenario {bad['name']!r}: {bad['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"scenarios": rows, "invalid": invalid}, indent=2))
        return EXIT_OK
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"{'NAME':<{width}}  KIND       FIX  ALERTS                 TITLE")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['kind']:<9}  {'yes' if r['has_fix'] else 'no ':<3}  "
              f"{', '.join(r['alerts']) or '-':<22} {r['title']}")
    return EXIT_OK


def _cmd_show(args) -> int:
    s = load_scenario(args.name, fix=args.fix)
    if args.json:
        print(s.model_dump_json(indent=2))
        return EXIT_OK
    print(f"{s.name} ({s.variant}): {s.title}\n")
    for label, text in (("What you will see", s.story.what_you_will_see), ("Root cause", s.story.root_cause),
                        ("What the signals show", s.story.what_the_signals_show), ("What to do", s.story.what_to_do),
                        ("The fix (--fix)", s.story.fix)):
        if text:
            print(f"{label}:\n  {text}\n")
    print("Settings:")
    print(s.model_dump_json(indent=2, exclude={"story"}))
    return EXIT_OK


def _cmd_run(args) -> int:
    spec = load_scenario(args.name, fix=args.fix, overrides=args.overrides)
    if not args.quiet:  # the first line within a second: the family's imports (torch) take a few
        print(f"Starting {spec.name} ({spec.variant}): loading PyTorch ...", file=sys.stderr, flush=True)
    live = False if args.plain else None
    if args.record:
        if args.telemetry == "on":
            raise ValueError("--record: recording replaces streaming; drop --telemetry on (allowed with --record: auto, off)")
        outcome, recording = record_run(spec, args.record, seed=args.seed, speed=args.speed, quiet=args.quiet, live=live)
        if not args.quiet:
            print(f"Recorded {len(recording.series())} series x {len(recording.samples)} samples to {args.record}")
    else:
        outcome = run(spec, seed=args.seed, fast=args.fast, speed=args.speed, telemetry=args.telemetry,
                      quiet=args.quiet, live=live)
    if args.summary_json:
        write_summary(args.summary_json, outcome)
    if outcome.result.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if args.telemetry == "on" and outcome.delivered_nothing:
        _error(f"--telemetry on: nothing was delivered ({outcome.exports_failed} exports failed, none reached the "
               "collector); the run itself completed.")
        return EXIT_NOT_DELIVERED
    return EXIT_OK


def _cmd_schema(args) -> int:
    print(json.dumps(scenario_json_schema(), indent=2))
    return EXIT_OK


COMMANDS = {"list": _cmd_list, "show": _cmd_show, "run": _cmd_run, "triage": triage_cli.main, "schema": _cmd_schema}


def _error(message: str, prefix: str = "lab: error: ") -> None:
    try:
        print(f"{prefix}{message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed as well: nothing left to tell
        pass


def _stdout_closed() -> int:
    """The reader of stdout went away (`| head`): drop the rest quietly (the Python docs' recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush then writes nowhere
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


_interrupted = threading.Event()  # set by Ctrl-C: the exit status is 130 even if the interrupt was swallowed
_terminated = threading.Event()  # set by SIGTERM: 143


def _on_stop_signal(signum, frame) -> None:
    (_terminated if signum == signal.SIGTERM else _interrupted).set()
    raise KeyboardInterrupt


def _interrupts_raise() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt from here on: a run stops cleanly and says so.

    SIGTERM is what `timeout`, `docker stop`, systemd and a cancelled CI job send: without a
    handler the process died with no final export, no run-end record and `running` stuck at 1
    (MLLabTelemetryStopped then paged for a deliberate stop). lab/__main__.py quits at once on
    Ctrl-C before this; SIGTERM keeps its default there (no Python frame runs, no traceback).
    The flags set the exit status also when the signal landed where Python ignores
    exceptions (a finalizer, an exporter's flush at shutdown).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_stop_signal)
        signal.signal(signal.SIGTERM, _on_stop_signal)


def _stop_status(code: int) -> int:
    """The exit status after a stop signal: 143 for SIGTERM, 130 for Ctrl-C, else the command's own."""
    if _terminated.is_set() and code in (EXIT_OK, EXIT_INTERRUPTED):
        return EXIT_TERMINATED
    if _interrupted.is_set() and code == EXIT_OK:
        return EXIT_INTERRUPTED
    return code


class _StackAddress:
    """The running stack's address from .lab/stack.env (`make up`), for the length of one command.

    Every command sees the variables the environment does not set itself (lab.repo
    stack_env_defaults: explicit variables win, the OTLP endpoint and protocol as one pair),
    so the SDK's exporters and `lab triage`'s Prometheus queries go where `make up` started the
    stack. Undone afterwards: a caller of main() in the same process (tests) keeps its environment.
    """

    def __enter__(self):
        self.added = stack_env_defaults(os.environ)
        os.environ.update(self.added)
        return self

    def __exit__(self, *exc) -> None:
        for key in self.added:
            os.environ.pop(key, None)


def main(argv: list[str] | None = None) -> int:
    """Every command's one top-level handler: no traceback reaches a user unless --debug asks for it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("LAB_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]  # a global flag, accepted before or after the command
    _interrupts_raise()
    with _StackAddress():
        return _main(argv, debug)


def _main(argv: list[str], debug: bool) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return _stop_status(code)
    except SystemExit as exc:  # argparse: --help, --version (0), a usage error (2, already explained)
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_USAGE
    except KeyboardInterrupt:
        _error("terminated (SIGTERM)" if _terminated.is_set() else "interrupted", prefix="lab: ")
        return _stop_status(EXIT_INTERRUPTED)
    except BrokenPipeError:
        return _stdout_closed()
    except (SpecError, ValueError) as exc:  # invalid input: a scenario, a --set, a data setting the dataset cannot satisfy
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            traceback.print_exc()
            return EXIT_ERROR
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _error(f"{type(exc).__name__}: {first} (run again with --debug to see the traceback)")
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
