"""Command line: `lab list`, `lab show NAME`, `lab run NAME [--seed N] [--fast] [--fix] ...`.

Examples:
    lab run overfit              # paced for people; streams to a collector if one answers
    lab run overfit --fast --fix # flat out, the fix variant
    lab run overfit --set optimizer.lr=3e-3 --seed 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.families import record_run, run
from lab.practice import cli as triage_cli
from lab.specs.base import SpecError
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.session import write_summary


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab", description="ML observability lab: train real models into failure and watch the signals.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="list the scenarios", description="List the scenarios with their expected alerts.")

    show = sub.add_parser("show", help="show a scenario's story and settings", description="Show what a scenario teaches and its settings.")
    show.add_argument("name", help="scenario name (see `lab list`)")
    show.add_argument("--fix", action="store_true", help="show the fix variant's settings")

    run = sub.add_parser("run", help="run a scenario", description="Train a scenario's model for real (training scenarios) or "
                         "serve a real model a drifting request stream (inference scenarios), and stream the signals.")
    run.add_argument("name", help="scenario name (see `lab list`)")
    run.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    run.add_argument("--fix", action="store_true", help="run the fix variant: the remedy for the failure")
    run.add_argument("--fast", action="store_true", help="run flat out (for tests); default is paced for people")
    run.add_argument("--speed", type=_positive_float, default=1.0, help="pace multiplier for paced runs (default 1)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a setting, e.g. --set optimizer.lr=0.01 (repeatable)")
    run.add_argument("--telemetry", choices=("auto", "on", "off"), default="auto",
                     help="auto: stream over OTLP if a collector answers (default); on: always; off: never")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--plain", action="store_true", help="line-by-line output even on a terminal")
    run.add_argument("--summary-json", type=Path, metavar="FILE", help="write the run summary as JSON")
    run.add_argument("--record", type=Path, metavar="FILE",
                     help="record the series Prometheus would store, one sample per 5 s of the paced clock, instead of "
                          "streaming (replay them against the alert rules with python -m lab.dev.replay)")
    triage_cli.add_parser(sub)
    return p


def _cmd_list() -> int:
    names = known_scenarios()
    width = max((len(n) for n in names), default=4)
    print(f"{'NAME':<{width}}  KIND       FIX  ALERTS                 TITLE")
    for n in names:
        s = load_scenario(n)
        print(f"{n:<{width}}  {s.kind:<9}  {'yes' if s.has_fix else 'no ':<3}  {', '.join(s.alerts) or '-':<22} {s.title}")
    return 0


def _cmd_show(args) -> int:
    s = load_scenario(args.name, fix=args.fix)
    print(f"{s.name} ({s.variant}): {s.title}\n")
    for label, text in (("What you will see", s.story.what_you_will_see), ("Root cause", s.story.root_cause),
                        ("What the signals show", s.story.what_the_signals_show), ("What to do", s.story.what_to_do),
                        ("The fix (--fix)", s.story.fix)):
        if text:
            print(f"{label}:\n  {text}\n")
    print("Settings:")
    print(s.model_dump_json(indent=2, exclude={"story"}))
    return 0


def _cmd_run(args) -> int:
    spec = load_scenario(args.name, fix=args.fix, overrides=args.overrides)
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
    return 130 if outcome.result.stopped == "interrupted" else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "show":
            return _cmd_show(args)
        if args.command == "triage":
            return triage_cli.main(args)
        return _cmd_run(args)
    except SpecError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a data setting the dataset cannot satisfy
        print(f"lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
