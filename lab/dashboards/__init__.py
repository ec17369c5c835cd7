"""The lab's Grafana dashboards, defined in Python and written as provisioned JSON.

    python -m lab.dashboards            # (re)write grafana/dashboards/**.json
    python -m lab.dashboards --check    # exit 1 if the checked-in JSON differs

See lab/dashboards/model.py for the building blocks and docs/dashboards.md for how to read them.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab.dashboards import overview, serving, training
from lab.dashboards.model import Dashboard, render
from lab.repo import ROOT

OUT_DIR = ROOT / "grafana" / "dashboards"
# Where docs/runbooks/ is published: the one runbook base of the project. Dashboard links append
# <AlertName>.md (the hidden `runbooks` variable, overridable in the URL); every alert rule's
# runbook_url is exactly RUNBOOKS_BASE/<AlertName>.md (prometheus/alerts/*.rules.yml repeat it
# literally; tests/alerts/test_alert_rules.py and tests/dashboards/test_thresholds_match_rules.py
# hold both to this constant).
RUNBOOKS_BASE = "https://github.com/ml-obs-lab/ml-obs-lab/blob/main/docs/runbooks"


def all_dashboards() -> list[Dashboard]:
    return [overview.dashboard(RUNBOOKS_BASE), training.dashboard(RUNBOOKS_BASE),
            serving.drift_dashboard(RUNBOOKS_BASE), serving.ops_dashboard(RUNBOOKS_BASE)]


def path_of(d: Dashboard) -> Path:
    return OUT_DIR / d.folder / d.filename


def to_json(d: Dashboard) -> str:
    return json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
