"""Point every runbook link at LAB_RUNBOOK_BASE (.env): rules, their tests, pint, dashboards.

    python -m lab.dev.runbook_links            # rewrite them from .env   (`make runbook-links`)
    python -m lab.dev.runbook_links --check    # exit 1 naming the files that disagree

The rules stay hand-written YAML (their comments are the documentation); only their
`runbook_url:` lines are rewritten, to <base>/<AlertName>.md (lab.repo.rule_runbook_url), and
so are the `runbook_url:` lines the promtool tests expect (prometheus/alerts/*.test.yml).
.pint.hcl's runbook_url pattern becomes <base>/MLLab….md, so pint checks the same rule on its
own, and grafana/dashboards/**.json are regenerated (python -m lab.dashboards) with the
base as Grafana opens it (lab.repo.grafana_runbook_base). tests/alerts/test_runbook_links.py
runs --check, and rewrites a copy to another base.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lab.dashboards import all_dashboards, path_of, to_json
from lab.repo import ALERT_RULES_DIR, ROOT, check_runbook_base, runbook_base

PINT_CONFIG = ROOT / ".pint.hcl"
# A `runbook_url: <anything>/<AlertName>.md` line of a rule file or a promtool test.
RUNBOOK_LINE = re.compile(r"^(?P<key>[ \t]*runbook_url:[ \t]*)(?P<url>\S+/)?(?P<page>MLLab[A-Za-z]+\.md)[ \t]*$", re.M)
# The value pattern inside .pint.hcl's `annotation "runbook_url" { ... }` block.
PINT_VALUE = re.compile(r'(annotation "runbook_url" \{[^}]*?\bvalue\s*=\s*")([^"]*)(")', re.S)
_LITERAL = re.compile(r"[A-Za-z0-9/_:~%-]")


def pint_pattern(base: str) -> str:
    """pint's (RE2) pattern of a runbook_url under `base`: the base literally, then MLLab<Name>.md."""
    return "".join(c if _LITERAL.fullmatch(c) else f"[{c}]" for c in check_runbook_base(base)) + "/MLLab[A-Za-z]+[.]md"


def rewrite_runbook_urls(text: str, base: str) -> str:
    """Every runbook_url line of a rule file or promtool test, pointed at `base` (the page name kept)."""
    base = check_runbook_base(base)
    return RUNBOOK_LINE.sub(lambda m: f"{m['key']}{base}/{m['page']}", text)


def rewrite_pint(text: str, base: str) -> str:
    new, n = PINT_VALUE.subn(lambda m: m[1] + pint_pattern(base) + m[3], text)
    if n != 1:
        raise ValueError('.pint.hcl: expected one `annotation "runbook_url"` block with a value')
    return new


def wanted(base: str, alerts_dir: Path = ALERT_RULES_DIR, pint_config: Path = PINT_CONFIG,
           dashboards: bool = True) -> dict[Path, str]:
    """{file: the content it must have} for `base`."""
    out = {p: rewrite_runbook_urls(p.read_text(), base)
           for p in sorted(alerts_dir.glob("*.rules.yml")) + sorted(alerts_dir.glob("*.test.yml"))}
    out[pint_config] = rewrite_pint(pint_config.read_text(), base)
    if dashboards:
        out.update({path_of(d): to_json(d) for d in all_dashboards(base)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.dev.runbook_links", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a file disagrees with LAB_RUNBOOK_BASE")
    args = ap.parse_args(argv)
    base = runbook_base()
    stale = []
    for path, text in wanted(base).items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"runbook links differ from LAB_RUNBOOK_BASE={base} (run `make runbook-links`): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
