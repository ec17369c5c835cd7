"""grafana/dashboard-linter's rules, re-expressed as our own tests, on every provisioned dashboard.

The linter itself is no longer built: its Go module pulls github.com/grafana/loki/v3 (AGPL)
into the binary, and this project compiles no AGPL code (docs/stack.md). Each rule below is
named after the linter rule it replaces, so the exceptions in the folder's `.lint` file
(same format as the linter's, each with a reason and the panels it covers) keep their
meaning. PromQL is parsed by the pinned promtool (`promtool check rules`), the same parser
Prometheus uses. Files are read as Grafana reads them (grafana/dashboards/<folder>/*.json);
nothing here imports the generator. A broken dashboard proves each rule really fires.

    .venv/bin/python -m pytest tests/dashboards/test_dashboard_rules.py
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
DS = "${datasource}"
# Grafana's unit ids the dashboards may use (a subset of Grafana's valueFormats; an unknown
# id is shown as a bare number, which the linter's units rule calls "no unit").
UNITS = {"none", "short", "percent", "percentunit", "s", "ms", "µs", "ns", "reqps", "ops", "sci", "bytes", "decbytes", "currencyUSD",
         "bps", "Bps", "cps", "wps", "rps", "dtdurations", "dateTimeAsIso", "bool", "string"}
UNIT_PANELS = {"timeseries", "stat", "gauge", "bargauge", "heatmap", "table"}
RANGE_FUNCS = ("rate", "irate", "increase", "delta", "idelta", "deriv")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def exprs(dash: dict, annotations: bool = False) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target (the linter's rules look at these only), and of
    every Prometheus annotation when `annotations` (the PromQL parse check)."""
    out = [(f"panel '{p['title']}'", t["expr"]) for p in panels(dash) for t in p.get("targets", []) if t.get("expr")]
    if annotations:
        out += [(f"annotation '{a['name']}'", a["expr"]) for a in dash["annotations"]["list"] if a.get("expr")]
    return out


def variables(dash: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dash["templating"]["list"]}


def selectors(expr: str) -> list[str]:
    """The label matchers inside {...} of each vector selector of `expr`."""
    return re.findall(r"\{([^{}]*)\}", re.sub(r"\{\{[^}]*\}\}", "", expr))


# --- the rules: each returns problems as "<rule>: <where>: <what>" -------------------------


def template_datasource_rule(dash):
    v = variables(dash).get("datasource")
    if not v or v["type"] != "datasource" or v.get("query") != "prometheus" or v.get("label") != "Data source":
        return ["template-datasource-rule: dashboard: needs a `datasource` variable (type datasource, query prometheus, label 'Data source')"]
    return []


def _query_var_rule(rule, name, label):
    def check(dash):
        v = variables(dash).get(name)
        if v is None:
            return [f"{rule}: dashboard: no `{name}` variable"]
        problems = []
        if v["type"] != "query" or v.get("datasource", {}).get("uid") != DS:
            problems.append(f"{rule}: variable {name}: must be a query variable on {DS}")
        if v.get("label") != label or not v.get("multi") or not v.get("includeAll"):
            problems.append(f"{rule}: variable {name}: must be labelled '{label}', multi-select, with All")
        return problems
    check.__name__ = rule.replace("-", "_")
    return check


template_job_rule = _query_var_rule("template-job-rule", "job", "Job")
template_instance_rule = _query_var_rule("template-instance-rule", "instance", "Instance")


def template_on_time_change_reload_rule(dash):
    return [f"template-on-time-change-reload-rule: variable {v['name']}: refresh must be 2 (on time range change)"
            for v in dash["templating"]["list"] if v["type"] == "query" and v.get("refresh") != 2]


def template_uneditable_rule(dash):
    return [] if dash.get("editable") is False else ["template-uneditable-rule: dashboard: must not be editable"]


def panel_datasource_rule(dash):
    return [f"panel-datasource-rule: panel '{p['title']}': datasource must be {DS}"
            for p in panels(dash) if p["type"] != "text" and p.get("datasource", {}).get("uid") != DS]


def panel_title_description_rule(dash):
    return [f"panel-title-description-rule: panel '{p.get('title', '?')}': needs a title and a description"
            for p in panels(dash) if not (p.get("title") or "").strip() or not (p.get("description") or "").strip()]


def panel_units_rule(dash):
    return [f"panel-units-rule: panel '{p['title']}': no valid units ({p.get('fieldConfig', {}).get('defaults', {}).get('unit')!r})"
            for p in panels(dash) if p["type"] in UNIT_PANELS
            and p.get("fieldConfig", {}).get("defaults", {}).get("unit") not in UNITS]


def panel_no_targets_rule(dash):
    return [f"panel-no-targets-rule: panel '{p['title']}': no targets" for p in panels(dash)
            if p["type"] != "text" and not p.get("targets")]


def target_rate_interval_rule(dash):
    problems = []
    for where, expr in exprs(dash):
        for func, window in re.findall(rf"\b({'|'.join(RANGE_FUNCS)})\s*\([^\[]*\[([^\]]+)\]", expr):
            if window not in ("$__rate_interval", "$__range"):
                problems.append(f"target-rate-interval-rule: {where}: {func}(...[{window}]) should use $__rate_interval")
    return problems


def _target_label_rule(rule, label):
    def check(dash):
        return [f"{rule}: {where}: selector {{{sel}}} lacks {label}=~\"${label}\""
                for where, expr in exprs(dash) for sel in selectors(expr) if f'{label}=~"${label}"' not in sel]
    check.__name__ = rule.replace("-", "_")
    return check


target_job_rule = _target_label_rule("target-job-rule", "job")
target_instance_rule = _target_label_rule("target-instance-rule", "instance")


def target_counter_agg_rule(dash):
    # a counter (…_total) read bare shows one ever-growing line per series: as the linter's rule,
    # it must be the argument of a function or an aggregation (rate, increase, timestamp, max by …)
    problems = []
    for where, expr in exprs(dash):
        for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*_total)\b", expr):
            if not re.search(r"\(\s*$", expr[: m.start()]):
                problems.append(f"target-counter-agg-rule: {where}: counter {m.group(1)} is not inside rate()/increase()")
    return problems


RULES = [template_datasource_rule, template_job_rule, template_instance_rule, template_on_time_change_reload_rule,
         template_uneditable_rule, panel_datasource_rule, panel_title_description_rule, panel_units_rule,
         panel_no_targets_rule, target_rate_interval_rule, target_job_rule, target_instance_rule,
         target_counter_agg_rule]


def exclusions(path: Path, dash: dict) -> dict[str, set[str]]:
    """rule -> panel titles excluded for this dashboard by the folder's .lint file."""
    lint = path.parent / ".lint"
    conf = yaml.safe_load(lint.read_text()) if lint.exists() else {}
    out: dict[str, set[str]] = {}
    for rule, spec in (conf.get("exclusions") or {}).items():
        for entry in spec.get("entries") or []:
            if entry.get("dashboard") == dash["title"]:
                out.setdefault(rule, set()).add(entry.get("panel"))
    return out


def problems_of(path: Path, dash: dict) -> list[str]:
    excluded = exclusions(path, dash)
    out = []
    for rule in RULES:
        for problem in rule(dash):
            name = problem.split(":", 1)[0]
            m = re.search(r"panel '([^']*)'", problem)
            if m and m.group(1) in excluded.get(name, set()):
                continue
            out.append(problem)
    return out


# --- tests -------------------------------------------------------------------------------


def test_there_are_dashboards():
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_dashboard_passes_every_rule(path):
    assert problems_of(path, load(path)) == []


def test_exclusions_have_reasons_and_name_real_panels():
    titles = {load(p)["title"]: {q["title"] for q in panels(load(p))} for p in FILES}
    known = {r.__name__.replace("_", "-") for r in RULES}
    for lint in {p.parent / ".lint" for p in FILES if (p.parent / ".lint").exists()}:
        conf = yaml.safe_load(lint.read_text())
        for section in ("exclusions", "warnings"):
            for rule, spec in (conf.get(section) or {}).items():
                assert rule in known, f"{lint}: {rule} is not a rule of this test"
                assert spec and spec.get("reason", "").strip(), f"{lint}: {rule} has no reason"
                assert spec.get("entries"), f"{lint}: {rule} must name the panels it covers"
                for e in spec["entries"]:
                    assert e["panel"] in titles.get(e["dashboard"], set()), f"{lint}: {rule}: no panel {e}"


def test_every_expression_is_valid_promql(promtool, tmp_path):
    # Grafana's variables and macros replaced by values Grafana could substitute.
    subst = [("$__rate_interval", "1m"), ("$__range", "1h"), ("$__interval", "5s"), ("${datasource}", "prometheus")]
    rules = []
    for path in FILES:
        for i, (where, expr) in enumerate(exprs(load(path), annotations=True)):
            for k, v in subst:
                expr = expr.replace(k, v)
            expr = re.sub(r"\$\{?(\w+)\}?", "x", expr)
            rules.append({"record": f"check:{path.stem.replace('-', '_')}:{i}", "expr": expr})
    f = tmp_path / "exprs.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([str(promtool), "check", "rules", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules)} rules found" in proc.stdout


def test_the_rules_fire_on_a_broken_dashboard(tmp_path):
    path = next(p for p in FILES if p.stem == "training-health")
    dash = copy.deepcopy(load(path))
    dash["editable"] = True
    dash["templating"]["list"] = [v for v in dash["templating"]["list"] if v["name"] != "job"]
    p = next(p for p in panels(dash) if p["type"] == "timeseries" and p.get("targets"))
    p["description"] = ""
    p["fieldConfig"]["defaults"]["unit"] = ""
    p["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    p["targets"][0]["expr"] = 'ml_training_steps_total{lab_scenario="x"} + sum(rate(ml_training_steps_total[5m]))'
    found = {problem.split(":", 1)[0] for problem in problems_of(path, dash)}
    assert found >= {"template-uneditable-rule", "template-job-rule", "panel-title-description-rule", "panel-units-rule",
                     "panel-datasource-rule", "target-rate-interval-rule", "target-job-rule", "target-instance-rule",
                     "target-counter-agg-rule"}, found


def test_no_agpl_linter_left_in_the_repository():
    assert not (ROOT / "scripts/native/dashboard-linter-wrapper").exists()
    for gomod in ROOT.glob("scripts/**/go.mod"):
        text = gomod.read_text()
        for module in ("github.com/grafana/loki", "github.com/grafana/tempo", "github.com/grafana/grafana ",
                       "github.com/grafana/grafana/apps/dashboard", "github.com/grafana/dashboard-linter"):
            assert module not in text, f"{gomod} requires {module.strip()}"
