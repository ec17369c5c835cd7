"""Dashboard thresholds and the alert rules use the same numbers.

Each threshold a panel draws names the alert it mirrors (lab/dashboards, `Threshold.alert`).
For every such alert present in prometheus/alerts/*.rules.yml the number must appear in the
alert's expression, and every runbook a dashboard links must be its alert rule's runbook_url
(both from LAB_RUNBOOK_BASE in .env: lab.repo.rule_runbook_url, grafana_runbook_base). Alerts not in
the rules yet must at least be ones a scenario promises (`alerts = [...]`), so a typo cannot
hide; once any lab (MLLab*) alert rule exists for a family, all of that family's must.
"""

import re

from lab.dashboards import all_dashboards
from lab.dashboards.model import ANY, INFERENCE, TRAINING
from lab.repo import RUNBOOKS_DIR, alert_rules, grafana_runbook_base, rule_runbook_url, runbook_base
from lab.specs.loader import known_scenarios, load_scenario

FAMILY_OF_KIND = {"training": TRAINING, "inference": INFERENCE}


def numbers_in(expr: str) -> set[float]:
    expr = re.sub(r"\[[^\]]*\]|offset\s+\w+", " ", expr)  # durations are not thresholds
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return {float(m) for m in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w.])", expr)}


def drawn():
    """(dashboard, panel, threshold) for every threshold that names an alert."""
    return [(d, p, t) for d in all_dashboards() for p in d.panels for t in p.thresholds if t.alert]


def promised_alerts() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in known_scenarios():
        spec = load_scenario(name)
        fam = FAMILY_OF_KIND.get(spec.kind, spec.kind)
        out.setdefault(fam, set()).update(spec.alerts)
    return out


def test_numbers_in_on_hand_built_cases():
    assert numbers_in('max_over_time(ml_training_loss_ratio{job="a"}[1m]) > 1.3 and x >= 10') == {1.3, 10.0}
    assert numbers_in("ratio > 5 offset 5m") == {5.0}


def test_every_threshold_alert_exists_or_is_promised_by_a_scenario():
    rules, promised = alert_rules(), promised_alerts()
    for d, p, t in drawn():
        fams = set(p.needs) - {ANY}
        if not fams & set(promised):
            continue  # no scenario of this family yet (serving dashboards before the inference work lands)
        known = set(rules) | set().union(*(promised.get(f, set()) for f in fams))
        assert t.alert in known, f"{d.title} / {p.title}: alert {t.alert} is neither a rule nor promised by a scenario"
        family_rules = {a for f in fams for a in promised.get(f, set())} & set(rules)
        if family_rules:
            assert t.alert in rules, f"{t.alert} ({p.title}) has no rule in prometheus/alerts while others of its family do"


def test_threshold_numbers_are_in_the_rule_expressions():
    rules = alert_rules()
    for d, p, t in drawn():
        if t.alert in rules:
            assert float(t.value) in numbers_in(rules[t.alert]["expr"]), \
                f"{d.title} / {p.title} draws {t.value} for {t.alert}, whose rule says: {rules[t.alert]['expr']}"


def test_runbook_links_match_the_rules():
    """Every alert a dashboard links a runbook for is a rule whose runbook_url is the same page."""
    rules = alert_rules()
    linked = {(d.title, p.title, a) for d in all_dashboards() for p in d.panels for a in p.runbooks}
    linked |= {(d.title, p.title, t.alert) for d, p, t in drawn()}
    assert linked
    for dash, panel, alert in sorted(linked):
        assert alert in rules, f"{dash} / {panel} links the runbook of {alert}, which has no alert rule"
        url = rules[alert].get("annotations", {}).get("runbook_url")
        assert url == rule_runbook_url(alert), f"{alert}: rule says {url}, LAB_RUNBOOK_BASE says {rule_runbook_url(alert)}"
        assert (RUNBOOKS_DIR / f"{alert}.md").is_file(), f"no docs/runbooks/{alert}.md"


def test_every_alert_rule_links_under_the_dashboards_runbook_base():
    """The overview's alert table links ${runbooks}/<alertname>.md for whatever fires."""
    for name, rule in alert_rules().items():
        assert rule.get("annotations", {}).get("runbook_url") == rule_runbook_url(name), name
        assert (RUNBOOKS_DIR / f"{name}.md").is_file(), name


def test_the_dashboards_runbooks_variable_is_the_base():
    """The same page: the rule's runbook_url and a panel link differ only in where the base is opened."""
    for d in all_dashboards():
        var = next(v for v in d.variables if v["name"] == "runbooks")
        assert var["query"] == var["current"]["value"] == grafana_runbook_base(), d.uid
    base, opened = runbook_base(), grafana_runbook_base()
    assert opened == base or (base, opened) == ("docs/runbooks", "/public/runbooks")
