"""The lab's Grafana dashboards, defined in Python and written as provisioned JSON.

    python -m lab.dashboards            # (re)write grafana/dashboards/**.json
    python -m lab.dashboards --check    # exit 1 if the checked-in JSON differs

See lab/dashboards/model.py for the building blocks and docs/dashboards.md for how to read them.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab.dashboards import generative, overview, serving, training
from lab.dashboards.model import Dashboard, render
from lab.repo import ROOT, grafana_runbook_base

OUT_DIR = ROOT / "grafana" / "dashboards"


def all_dashboards(runbook_base: str | None = None) -> list[Dashboard]:
    """Every dashboard; runbook links under `runbook_base` (default: LAB_RUNBOOK_BASE of .env).

    Panel links append <AlertName>.md to the hidden `runbooks` variable (overridable in the URL,
    var-runbooks=...), which is that base as Grafana opens it (lab.repo.grafana_runbook_base:
    Grafana's own copy of docs/runbooks/ for the local base), so a panel link and the alert
    rule's runbook_url name the same page (tests/dashboards/test_thresholds_match_rules.py).
    """
    links = grafana_runbook_base(runbook_base)
    return [overview.dashboard(links), training.dashboard(links),
            serving.drift_dashboard(links), serving.ops_dashboard(links), *generative.dashboards(links)]


def path_of(d: Dashboard) -> Path:
    return OUT_DIR / d.folder / d.filename


def to_json(d: Dashboard) -> str:
    return json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
