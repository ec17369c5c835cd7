"""The one reader of the repository's own files: .env, the alert rule files, the Alertmanager config.

Runtime code (practice mode's reveal) and dev tooling (benchmarks, the alert matrix,
replays) and the tests all read these through here, so a file's format is parsed once.
Scenario files are read by lab/specs/loader.py, which owns their schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERT_RULES_DIR = ROOT / "prometheus" / "alerts"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse .env the way scripts/native/lib.sh does: KEY=VALUE lines, # comments, no quoting."""
    env: dict[str, str] = {}
    for line in (path or ROOT / ".env").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def rule_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or ALERT_RULES_DIR).glob("*.rules.yml"))


def rule_groups(files: list[Path] | None = None) -> list[dict]:
    """Every rule group of the given rule files (default: all of prometheus/alerts)."""
    groups: list[dict] = []
    for path in rule_files() if files is None else files:
        groups += (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    return groups


def alert_rules(files: list[Path] | None = None) -> dict[str, dict]:
    """{alert name: rule} of the alerting rules (recording rules left out)."""
    return {r["alert"]: r for g in rule_groups(files) for r in g.get("rules", []) if "alert" in r}


def duration_s(text: str | None) -> float:
    """A Prometheus duration (`5m`, `1h30m`, `30s`) in seconds; None or empty is 0."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text or "")))


def alertmanager_route() -> dict:
    """The top-level route of alertmanager/alertmanager.yml (group_wait, group_interval, ...)."""
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
