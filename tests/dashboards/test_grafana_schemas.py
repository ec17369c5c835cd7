"""Dashboards against the pinned Grafana's dashboard schema; provisioning against the dashboards.

    .venv/bin/python -m pytest tests/dashboards/test_grafana_schemas.py

Grafana is the one component no test can start (no Grafana server can be built or pulled
here), so its inputs are proven as far as files allow:
- every dashboard validates against JSON schemas generated from @grafana/schema at
  LAB_GRAFANA_VERSION (the Dashboard kind and each panel plugin's Options/FieldConfig;
  scripts/grafana-schema/check.sh, a test-only npm install under ~/.cache/ml-obs-lab), and its
  schemaVersion is that kind's default;
- every datasource uid a dashboard names is provisioned, with the plugin type the panel says.
Known differences from the kind are listed below, each with its reason; anything else fails.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.repo import ROOT

FILES = sorted((ROOT / "grafana/dashboards").glob("*/*.json"))
DATASOURCES = yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text())["datasources"]
CHECK = ROOT / "scripts/grafana-schema/check.sh"

# (regex on the error, reason). Keys Grafana reads and keeps though the kind does not model them.
KNOWN = [
    (r"^dashboard/templating/list/\d+ must NOT have additional properties \(definition\)$",
     "`definition` is what Grafana's query-variable editor writes beside `query` (the text it shows); "
     "the kind's VariableModel does not list it, Grafana keeps it"),
    (r"^dashboard/annotations/list/\d+ must NOT have additional properties \((expr|step|titleFormat|textFormat|useValueForTime)\)$",
     "Prometheus annotations in the datasource's own top-level fields, which the Prometheus datasource still "
     "reads; the kind models only the generic `target` query"),
    (r"^panel '[^']+' options must NOT have additional properties \(footer\)$",
     "table `options.footer`: the pinned Grafana's table panel no longer has it (footers moved to a field "
     "option); it is ignored, the panels render without a footer"),
]


def check(*files: Path) -> dict:
    proc = subprocess.run([str(CHECK), *map(str, files)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def report() -> dict:
    return check(*FILES)


def unexplained(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(re.match(rx, e) for rx, _ in KNOWN)]


def test_the_schema_is_the_pinned_grafanas(report, lab_env):
    assert report["package"] == f"@grafana/schema@{lab_env['LAB_GRAFANA_VERSION']}"
    assert report["schemaVersion"] == int(lab_env["LAB_GRAFANA_DASHBOARD_SCHEMA_VERSION"])
    assert {"timeseries", "table"} <= set(report["panelTypes"])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_dashboard_validates_against_the_kind(report, path):
    assert unexplained(report["results"][str(path)]) == []


def test_the_known_differences_still_occur(report):
    # an entry that no longer matches anything must go (the generator changed, or Grafana)
    errors = [e for errs in report["results"].values() for e in errs]
    for rx, reason in KNOWN:
        assert any(re.match(rx, e) for e in errors), f"stale exception: {reason}"


def test_the_schema_rejects_a_broken_dashboard(tmp_path):
    path = next(p for p in FILES if p.stem == "training-health")
    dash = copy.deepcopy(json.loads(path.read_text()))
    panel = next(p for p in dash["panels"] if p["type"] == "timeseries")
    panel["gridPos"]["w"] = "wide"                              # wrong type
    panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] = "dots"  # not an enum value
    panel["options"]["legend"]["placement"] = "top"             # not an enum value
    panel["titel"] = "typo"                                     # unknown key
    dash["schemaVersion"] = 39
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dash))
    errors = unexplained(check(bad)["results"][str(bad)])
    text = "\n".join(errors)
    for needle in ("/gridPos/w must be number", "drawStyle must be equal to one of the allowed values",
                   "placement must be equal to one of the allowed values", "(titel)", "schemaVersion 39 != "):
        assert needle in text, f"{needle!r} not reported:\n{text}"


def test_every_datasource_a_dashboard_names_is_provisioned_with_its_type():
    provisioned = {d["uid"]: d["type"] for d in DATASOURCES}
    for path in FILES:
        dash = json.loads(path.read_text())
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        used = set()
        for node in _walk(dash):
            ds = node.get("datasource") if isinstance(node, dict) else None
            if isinstance(ds, dict) and ds.get("uid"):
                uid = ds["uid"]
                if uid.startswith("${"):
                    var = variables[uid[2:-1]]
                    assert var["type"] == "datasource"
                    uid = var["current"]["value"]
                    assert provisioned.get(uid) == var["query"], f"{path.name}: ${{{var['name']}}} default {uid}"
                if uid != "-- Grafana --":
                    used.add((uid, ds.get("type")))
        for uid, typ in used:
            assert uid in provisioned, f"{path.name}: datasource uid {uid} is not provisioned"
            assert typ in (None, provisioned[uid]), f"{path.name}: {uid} is {provisioned[uid]}, panel says {typ}"


def _walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
