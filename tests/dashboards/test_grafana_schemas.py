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
    (r"^dashboard/annotations/list/\d+ must NOT have additional properties \((expr|step|titleFormat|textFormat|useValueForTime)\)$",
     "Prometheus annotations in the datasource's own top-level fields, which the Prometheus datasource still "
     "reads; the kind models only the generic `target` query"),
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


# --- provisioning files --------------------------------------------------------------------------
# Grafana publishes no schema for its provisioning files and its YAML reader drops unknown keys
# without a word (a typo'd `isDefualt` or `datasourceUID` is simply lost). The schema in
# scripts/grafana-schema/provisioning.schema.json is transcribed from the sources that define them
# (each part names its source) and is strict; the files are checked as Grafana reads them: after
# its ${VAR} expansion with the environment docker-compose.yml gives the container.

PROVISIONING = {
    "datasourcesFile": ROOT / "grafana/provisioning/datasources/datasources.yaml",
    "dashboardsFile": ROOT / "grafana/provisioning/dashboards/dashboards.yaml",
}
GRAFANA_MACRO = re.compile(r"\$\{__[\w.]+\}")  # Grafana's link macros (${__trace.traceId}, ${__value.raw})


def grafana_env(lab_env) -> dict[str, str]:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]["environment"]
    return {k: re.sub(r"\$\{(\w+)\}", lambda m: lab_env[m.group(1)], str(v)) for k, v in raw.items()}


def expand(node, env: dict[str, str]):
    """Grafana's expansion of provisioning values: $VAR / ${VAR} from its environment, `$$` a literal `$`."""
    if isinstance(node, dict):
        return {k: expand(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [expand(v, env) for v in node]
    if not isinstance(node, str):
        return node
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        assert name in env, f"provisioning uses ${name}, which the grafana service's environment does not set"
        return env[name]
    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", one, node)


def check_provisioning(tmp_path: Path, docs: dict[str, dict]) -> dict[str, list[str]]:
    args = []
    for kind, doc in docs.items():
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(doc))
        args.append(f"{kind}={path}")
    proc = subprocess.run([str(CHECK), "--provisioning", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    return {kind: results[str(tmp_path / f"{kind}.json")] for kind in docs}


@pytest.fixture(scope="module")
def provisioned(lab_env) -> dict[str, dict]:
    env = grafana_env(lab_env)
    return {kind: expand(yaml.safe_load(path.read_text()), env) for kind, path in PROVISIONING.items()}


def test_provisioning_files_validate_as_grafana_reads_them(provisioned, tmp_path):
    assert check_provisioning(tmp_path, provisioned) == {kind: [] for kind in PROVISIONING}
    # after expansion only Grafana's own link macros are left
    leftovers = [s for s in _walk(provisioned) if isinstance(s, str) and "$" in GRAFANA_MACRO.sub("", s)]
    assert leftovers == []
    jaeger = next(d for d in provisioned["datasourcesFile"]["datasources"] if d["type"] == "jaeger")
    assert jaeger["jsonData"]["tracesToLogsV2"]["query"] == 'trace_id:"${__trace.traceId}"'


@pytest.mark.parametrize("where, mutate, needle", [
    ("datasourcesFile", lambda f: f["datasources"][0].update(isDefualt=True), "(isDefualt)"),
    ("datasourcesFile", lambda f: f["datasources"][0].update(access="server"), "access must be equal to one of"),
    ("datasourcesFile", lambda f: f["datasources"][0]["jsonData"].update(timeInterval="5 seconds"),
     "timeInterval must match pattern"),
    ("datasourcesFile", lambda f: f["datasources"][1]["jsonData"]["tracesToLogsV2"].update(datasourceUID="x"),
     "(datasourceUID)"),
    ("datasourcesFile", lambda f: f["datasources"][2]["jsonData"]["derivedFields"][0].update(matcherType="field"),
     "matcherType must be equal to one of"),
    ("datasourcesFile", lambda f: f["datasources"][3]["jsonData"].update(implementation="thanos"),
     "implementation must be equal to one of"),
    ("datasourcesFile", lambda f: f["datasources"][0].update(uid="not a uid"), "/uid must match pattern"),
    ("datasourcesFile", lambda f: f.update(apiVersion=2), "apiVersion must be equal to constant"),
    ("dashboardsFile", lambda f: f["providers"][0]["options"].update(path="dashboards"), "path must match pattern"),
    ("dashboardsFile", lambda f: f["providers"][0].update(foldersFromFilesStructure=True),
     "(foldersFromFilesStructure)"),
])
def test_the_provisioning_schema_rejects_a_broken_file(provisioned, tmp_path, where, mutate, needle):
    doc = copy.deepcopy(provisioned[where])
    # the order the mutations assume: prometheus, jaeger, victorialogs, alertmanager
    if where == "datasourcesFile":
        assert [d["type"] for d in doc["datasources"]] == ["prometheus", "jaeger", "victoriametrics-logs-datasource",
                                                             "alertmanager"]
    mutate(doc)
    errors = check_provisioning(tmp_path, {where: doc})[where]
    assert any(needle in e for e in errors), errors
