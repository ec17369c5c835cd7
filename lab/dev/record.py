"""Record every scenario (and its fix) with seed 0: the recordings the replay tests use.

    python -m lab.dev.record --out tests/alerts/recordings [NAME ...]     (make record-alerts)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.families import record_run
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.record import recording_name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.dev.record", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="directory for <scenario>[-fix].json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("names", nargs="*", help="scenarios (default: all)")
    args = p.parse_args(argv)
    for name in args.names or known_scenarios():
        for fix in (False, True):
            if fix and not load_scenario(name).has_fix:
                continue
            spec = load_scenario(name, fix=fix)
            path = args.out / recording_name(spec.name, spec.variant)
            _, rec = record_run(spec, path, seed=args.seed)
            print(f"{path}: {len(rec.samples)} samples, {rec.steps} steps, {rec.stopped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
