"""Building blocks for the lab's Grafana dashboards: classic dashboard JSON as plain dicts.

The dashboards are written in Python (lab/dashboards/*.py) so that units, thresholds and
selectors come from one place; `python -m lab.dashboards` writes the JSON that Grafana
provisions from grafana/dashboards/ and `--check` fails if the checked-in files differ.

Every panel carries, besides its Grafana JSON, the scenario families whose runs must give
its queries data (`needs`). tests/dev/test_panel_contract.py runs scenarios on the
native stack and holds each panel to that promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Dashboard JSON schema version of the pinned Grafana (LAB_GRAFANA_VERSION=13.1.0): the
# default `schemaVersion` of the dashboard kind in @grafana/schema 13.1.0 (npm), the last
# version of the classic (v1) model. tests/dashboards/test_dashboards.py checks it against
# LAB_GRAFANA_DASHBOARD_SCHEMA_VERSION in .env.
SCHEMA_VERSION = 42
# The legend of a per-run series: every dashboard narrows runs by scenario and variant.
RUN_LEGEND = "{{lab_scenario}}/{{lab_variant}}"

DS = {"type": "prometheus", "uid": "${datasource}"}
# The trainer's and the inference server's OTLP job names (service.namespace/service.name).
# Selectors every lab panel applies (dashboard-linter's job/instance rules; the scenario and
# variant variables pick the run).
RUN = 'job=~"$job",instance=~"$instance",lab_scenario=~"$scenario",lab_variant=~"$variant"'

# Scenario families (tests/dev/test_panel_contract.py maps each scenario to one).
TRAINING = "training"
INFERENCE = "inference"
DRIFT = "drift"
GENERATIVE = "generative"  # the support bot (lab/generative)
ANY = "any"  # the stack itself: data whatever runs
FAMILIES = (TRAINING, INFERENCE, DRIFT, GENERATIVE)

GREEN, YELLOW, ORANGE, RED = "green", "yellow", "orange", "red"


@dataclass(frozen=True)
class Threshold:
    """A threshold line/area on a panel. `alert` names the alert rule whose expression holds
    the same number (tests/dashboards/test_thresholds_match_rules.py compares them)."""

    value: float
    color: str
    alert: str | None = None


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = "__auto"
    instant: bool = False
    exemplar: bool = False
    fmt: str = "time_series"  # or "table"


@dataclass
class Panel:
    title: str
    description: str
    unit: str
    targets: list[Target]
    kind: str = "timeseries"  # timeseries | stat | table | heatmap | bargauge
    needs: tuple[str, ...] = ()  # scenario families whose runs must give data
    # Known gaps of --fast runs: scenario -> why a --fast run of it may leave this panel empty.
    # The contract test then holds the panel to data on a paced run of that scenario instead
    # (tests/dev/test_panel_contract.py, PACED_RUNS).
    gaps: dict[str, str] = field(default_factory=dict)
    thresholds: list[Threshold] = field(default_factory=list)
    # Thresholds mark values BELOW them as bad (accuracy, a p-value): the colour runs from the
    # lowest threshold's colour under it to green above the highest.
    bad_below: bool = False
    runbooks: list[str] = field(default_factory=list)  # alert names
    width: int = 12
    height: int = 8
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    log_scale: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Row:
    title: str


@dataclass
class Dashboard:
    uid: str
    title: str
    folder: str  # sub-directory of grafana/dashboards/ = Grafana folder
    filename: str
    description: str
    tags: list[str]
    items: list[Panel | Row]
    variables: list[dict[str, Any]]
    annotations: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def panels(self) -> list[Panel]:
        return [p for p in self.items if isinstance(p, Panel)]


def runbook_url(alert: str) -> str:
    """Where an alert's runbook lives: the `runbooks` dashboard variable + docs/runbooks/<Alert>.md."""
    return "${runbooks}/" + alert + ".md"


# --- variables ---------------------------------------------------------------------------


def datasource_var() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "description": "Prometheus holding the lab's series (provisioned with uid `prometheus`).",
    }


def query_var(name: str, label: str, query: str, description: str, *, hide: int = 0) -> dict[str, Any]:
    """A multi-select Prometheus label_values variable with All = .+ (dashboard-linter's rules)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var", "qryType": 1},
        "refresh": 2,  # on time range change: a run that just started appears
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": hide,
        "description": description,
    }


def runbooks_var(base: str) -> dict[str, Any]:
    return {
        "name": "runbooks",
        "label": "Runbooks",
        "type": "textbox",
        "query": base,
        "current": {"text": base, "value": base},
        "options": [{"selected": True, "text": base, "value": base}],
        "hide": 2,  # set it in the dashboard URL (var-runbooks=...) to point at a fork or a local copy
        "description": "Where docs/runbooks/ opens (panel links append <AlertName>.md): LAB_RUNBOOK_BASE in .env.",
    }


def run_variables(metric: str, runbooks_base: str) -> list[dict[str, Any]]:
    """datasource, job, instance, scenario, variant (each narrowing the next) and runbooks."""
    return [
        datasource_var(),
        query_var("job", "Job", f"label_values({metric}, job)",
                  "OTLP job = service.namespace/service.name of the process that exported the series."),
        query_var("scenario", "Scenario", f'label_values({metric}{{job=~"$job"}}, lab_scenario)',
                  "The lab scenario (lab.scenario resource attribute)."),
        query_var("variant", "Variant", f'label_values({metric}{{job=~"$job",lab_scenario=~"$scenario"}}, lab_variant)',
                  "fault = the scenario as written (the broken configuration), fix = with its [fix] applied "
                  "(--fix), custom = with --set overrides (kept apart from the canonical runs), "
                  "case = a practice-mode hidden run (lab triage)."),
        query_var("instance", "Instance",
                  f'label_values({metric}{{job=~"$job",lab_scenario=~"$scenario",lab_variant=~"$variant"}}, instance)',
                  "One run: host:scenario:variant (service.instance.id)."),
        runbooks_var(runbooks_base),
    ]


def prometheus_annotation(name: str, expr: str, title: str, text: str, color: str) -> dict[str, Any]:
    """An annotation from a Prometheus query, OFF by default: practice mode must not give away
    when a fault was injected. Trainees turn it on from the dashboard's annotation toggles."""
    return {
        "name": name,
        "datasource": DS,
        "enable": False,
        "hide": False,  # the toggle is shown; only its default is off
        "iconColor": color,
        "expr": expr,
        "step": "5s",
        "titleFormat": title,
        "textFormat": text,
        "useValueForTime": False,
    }


def builtin_annotation() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


# --- rendering ---------------------------------------------------------------------------


def _threshold_steps(panel: Panel) -> dict[str, Any]:
    ordered = sorted(panel.thresholds, key=lambda t: t.value)
    steps: list[dict[str, Any]]
    if panel.bad_below and ordered:
        # red under the lowest threshold, ..., green from the highest
        colors = [t.color for t in ordered] + [GREEN]
        steps = [{"color": colors[0], "value": None}]
        steps += [{"color": c, "value": t.value} for t, c in zip(ordered, colors[1:])]
    else:
        steps = [{"color": GREEN, "value": None}]
        steps += [{"color": t.color, "value": t.value} for t in ordered]
    return {"mode": "absolute", "steps": steps}


def _target(t: Target, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "datasource": DS,
        "editorMode": "code",
        "expr": t.expr,
        "legendFormat": t.legend,
        "refId": ref,
        "range": not t.instant,
        "instant": t.instant,
        "format": t.fmt,
    }
    if t.exemplar:
        out["exemplar"] = True
    return out


def _field_custom(panel: Panel) -> dict[str, Any]:
    if panel.kind != "timeseries":
        return {}
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": 0,
        "showPoints": "never",
        "spanNulls": False,
        "axisSoftMin": panel.min if panel.min is not None else None,
        "thresholdsStyle": {"mode": "line+area" if panel.thresholds else "off"},
    }
    if panel.log_scale:
        custom["scaleDistribution"] = {"type": "log", "log": 10}
    return {k: v for k, v in custom.items() if v is not None}


def _options(panel: Panel) -> dict[str, Any]:
    base: dict[str, Any]
    if panel.kind == "timeseries":
        base = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    elif panel.kind == "stat":
        base = {"colorMode": "background", "graphMode": "area", "justifyMode": "auto", "textMode": "value_and_name",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif panel.kind == "bargauge":
        base = {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    elif panel.kind == "table":
        base = {"showHeader": True, "cellHeight": "sm"}
    elif panel.kind == "heatmap":
        base = {"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                "yAxis": {"unit": panel.unit}, "legend": {"show": True}, "tooltip": {"mode": "single"}}
    else:
        raise ValueError(f"panel kind {panel.kind!r}: allowed timeseries, stat, bargauge, table, heatmap")
    return {**base, **panel.options}


def render_panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _threshold_steps(panel), "color": {"mode": "palette-classic" if panel.kind == "timeseries" else "thresholds"}}
    if panel.kind == "timeseries":
        defaults["custom"] = _field_custom(panel)
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    links = [{"title": f"Runbook: {a}", "url": runbook_url(a), "targetBlank": True} for a in panel.runbooks]
    links += panel.links
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DS,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "options": _options(panel),
        "targets": [_target(t, chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
        "links": links,
    }
    if panel.transformations:
        out["transformations"] = panel.transformations
    return out


def render(d: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = row_h = 0
    pid = 1
    for item in d.items:
        if isinstance(item, Row):
            if x:
                y, x, row_h = y + row_h, 0, 0
            panels.append({"id": pid, "type": "row", "title": item.title, "collapsed": False, "panels": [],
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
            y += 1
        else:
            if x + item.width > 24:
                y, x, row_h = y + row_h, 0, 0
            panels.append(render_panel(item, pid, x, y))
            x += item.width
            row_h = max(row_h, item.height)
        pid += 1
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": d.tags,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,  # provisioned from the repository: change the Python, not the UI
        "graphTooltip": 1,  # shared crosshair: line the signals up in time
        "timezone": "browser",
        "time": {"from": "now-15m", "to": "now"},
        "refresh": "5s",
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": [builtin_annotation(), *d.annotations]},
        "templating": {"list": d.variables},
        "links": d.links,
        "panels": panels,
    }
