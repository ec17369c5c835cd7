"""Run a dashboard panel's queries against a real Prometheus the way Grafana would.

Grafana substitutes the dashboard variables and its interval macros before it sends a
query; this module does the same for a concrete run (scenario, variant) and a time
window, so tests (tests/dev/test_panel_contract.py) and the docs pictures
(lab/dev/pictures.py) see exactly what a panel would show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from lab.dashboards.model import Panel

# LAB_INTERVAL (.env): the Prometheus datasource's timeInterval = scrape interval.
INTERVAL_S = 5


def rate_interval(interval_s: int = INTERVAL_S, scrape_s: int = INTERVAL_S) -> int:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return max(interval_s + scrape_s, 4 * scrape_s)


@dataclass(frozen=True)
class Selection:
    """Values of the dashboard variables (regexes, as Grafana sends multi-value variables)."""

    scenario: str = ".+"
    variant: str = ".+"
    job: str = ".+"
    instance: str = ".+"


def expand(expr: str, sel: Selection, range_s: int, interval_s: int = INTERVAL_S) -> str:
    """Substitute $var / ${var} and Grafana's interval macros in a PromQL expression."""
    values = {
        "__rate_interval": f"{rate_interval(interval_s)}s",
        "__interval": f"{interval_s}s",
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "scenario": sel.scenario,
        "variant": sel.variant,
        "job": sel.job,
        "instance": sel.instance,
    }

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)


def query_panel(prometheus_url: str, panel: Panel, sel: Selection, start: float, end: float,
                step_s: int = INTERVAL_S) -> list[list[dict]]:
    """Each target's result (list of series) over [start, end], as the panel would query it:
    instant targets at `end`, range targets as a range query with the panel's step."""
    range_s = max(int(end - start), step_s)
    results = []
    for t in panel.targets:
        expr = expand(t.expr, sel, range_s)
        if t.instant:
            r = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr, "time": end}, timeout=30)
        else:
            r = requests.get(f"{prometheus_url}/api/v1/query_range",
                             params={"query": expr, "start": start, "end": end, "step": step_s}, timeout=30)
        body = r.json()
        if r.status_code != 200 or body.get("status") != "success":
            raise ValueError(f"{panel.title}: Prometheus rejected {expr!r}: {body.get('error', r.text)}")
        results.append(body["data"]["result"])
    return results


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
             "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, label matchers, grouping lists,
    durations and function names removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in _KEYWORDS:
            continue
        if m.start() > 0 and (s[m.start() - 1].isdigit() or s[m.start() - 1] == "."):
            continue  # 1e-3, 0.5s
        names.add(m.group(0))
    return names
