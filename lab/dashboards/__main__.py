"""python -m lab.dashboards [--check]: write (or verify) grafana/dashboards/**.json."""

from __future__ import annotations

import argparse
import sys

from lab.dashboards import all_dashboards, path_of, to_json
from lab.repo import ROOT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.dashboards", description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if a checked-in dashboard differs from the generated one")
    args = ap.parse_args(argv)
    stale = []
    for d in all_dashboards():
        path, text = path_of(d), to_json(d)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run `python -m lab.dashboards`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
