"""Runbook links from one setting: LAB_RUNBOOK_BASE in .env (lab.repo, lab/dev/runbook_links.py).

The checked-in rules, their promtool tests, .pint.hcl and the dashboards agree with the
setting; pointing the setting elsewhere (a fork's published copy) rewrites all of them
consistently and back; the local default is a page of this checkout for every reader:
the rules (a repository path), `lab triage reveal` (an absolute path), Grafana (its own copy).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from lab.dashboards import all_dashboards, path_of
from lab.dev import runbook_links
from lab.practice import triage
from lab.repo import (
    ALERT_RULES_DIR,
    GRAFANA_RUNBOOK_PATH,
    LOCAL_RUNBOOK_BASE,
    ROOT,
    RUNBOOKS_DIR,
    alert_rules,
    check_runbook_base,
    grafana_runbook_base,
    read_dotenv,
    rule_runbook_url,
    runbook_base,
    runbook_location,
)

FORK = "https://github.com/someone/ml-obs-lab-fork/blob/main/docs/runbooks"


def test_the_checked_in_links_agree_with_the_setting(capsys):
    assert runbook_links.main(["--check"]) == 0, capsys.readouterr().err


def test_the_setting_is_in_env_and_defaults_to_this_checkouts_pages():
    assert runbook_base() == check_runbook_base(read_dotenv()["LAB_RUNBOOK_BASE"])
    assert (ROOT / LOCAL_RUNBOOK_BASE) == RUNBOOKS_DIR and RUNBOOKS_DIR.is_dir()
    assert runbook_base({}) == LOCAL_RUNBOOK_BASE == "docs/runbooks"


@pytest.mark.parametrize("raw,base", [("docs/runbooks/", "docs/runbooks"), ("./docs/runbooks", "docs/runbooks"),
                                      (FORK + "/", FORK), ("http://docs.internal:8000/runbooks", "http://docs.internal:8000/runbooks")])
def test_accepted_bases_are_normalised(raw, base):
    assert check_runbook_base(raw) == base


@pytest.mark.parametrize("raw", ["", "file:///work/docs/runbooks", "/abs/docs/runbooks", "docs/other", "https://a b/c",
                                 'https://x/"y', "ftp://x/runbooks"])
def test_other_bases_are_refused_naming_the_setting(raw):
    with pytest.raises(ValueError, match="LAB_RUNBOOK_BASE"):
        check_runbook_base(raw)


def test_the_local_base_is_a_page_of_this_checkout_for_every_reader():
    for name in alert_rules():
        url = rule_runbook_url(name, LOCAL_RUNBOOK_BASE)
        assert url == f"docs/runbooks/{name}.md"
        assert Path(runbook_location(url)).is_absolute() and Path(runbook_location(url)).is_file()  # lab triage reveal
    # Grafana serves docs/runbooks itself (docker-compose.yml; tests/stack/test_static_agreement.py)
    assert grafana_runbook_base(LOCAL_RUNBOOK_BASE) == GRAFANA_RUNBOOK_PATH
    assert runbook_location(f"{FORK}/MLLabLossSpike.md") == f"{FORK}/MLLabLossSpike.md"


def test_reveal_prints_pages_that_open():
    books = triage.runbooks(["MLLabOverfitting", "MLLabTrainingDiverged"])
    assert set(books) == {"MLLabOverfitting", "MLLabTrainingDiverged"}
    for alert, where in books.items():
        assert where == runbook_location(rule_runbook_url(alert))
        if runbook_base() == LOCAL_RUNBOOK_BASE:
            assert Path(where).is_file() and Path(where).parent == RUNBOOKS_DIR


def _copy_rules(tmp_path: Path) -> tuple[Path, Path]:
    alerts = tmp_path / "alerts"
    shutil.copytree(ALERT_RULES_DIR, alerts)
    pint = tmp_path / ".pint.hcl"
    shutil.copy(ROOT / ".pint.hcl", pint)
    return alerts, pint


def _expected_test_annotations(alerts: Path) -> list[tuple[str, str]]:
    """(alert, runbook_url) of every expected alert in the promtool tests."""
    out = []
    for path in sorted(alerts.glob("*.test.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for exp in case.get("exp_alerts") or []:
                    if "runbook_url" in exp.get("exp_annotations", {}):
                        out.append((case["alertname"], exp["exp_annotations"]["runbook_url"]))
    return out


def _check_everything_points_at(base: str, alerts: Path, pint: Path, texts: dict[Path, str]) -> None:
    rules = alert_rules(sorted(alerts.glob("*.rules.yml")))
    assert rules and all(r["annotations"]["runbook_url"] == f"{base}/{name}.md" for name, r in rules.items())
    expected = _expected_test_annotations(alerts)
    assert expected and all(url == f"{base}/{name}.md" for name, url in expected)
    pattern = re.search(r'annotation "runbook_url" \{[^}]*?value\s*=\s*"([^"]*)"', pint.read_text(), re.S)[1]
    assert all(re.fullmatch(pattern, r["annotations"]["runbook_url"]) for r in rules.values()), pattern
    other = FORK if base != FORK else LOCAL_RUNBOOK_BASE
    assert not re.fullmatch(pattern, f"{other}/MLLabLossSpike.md"), pattern
    for d in all_dashboards(base):
        var = next(v for v in d.variables if v["name"] == "runbooks")
        assert var["query"] == grafana_runbook_base(base) and var["query"] in texts[path_of(d)]


def test_a_fork_points_every_link_at_its_published_copy_and_back(tmp_path):
    alerts, pint = _copy_rules(tmp_path)
    originals = {p: p.read_text() for p in [*alerts.iterdir(), pint]}
    for base in (FORK, LOCAL_RUNBOOK_BASE, runbook_base()):
        texts = runbook_links.wanted(base, alerts, pint)
        for path, text in texts.items():
            if path.is_relative_to(tmp_path):
                path.write_text(text)
        _check_everything_points_at(base, alerts, pint, texts)
        assert grafana_runbook_base(base) == (GRAFANA_RUNBOOK_PATH if base == LOCAL_RUNBOOK_BASE else base)
    # Back at .env's base, the copy is the checked-in files again.
    assert {p: p.read_text() for p in originals} == originals


def test_only_runbook_lines_change(tmp_path):
    alerts, pint = _copy_rules(tmp_path)
    for path, text in runbook_links.wanted(FORK, alerts, pint, dashboards=False).items():
        before, after = path.read_text().splitlines(), text.splitlines()
        assert len(before) == len(after), path
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert all("runbook_url" in a or a.lstrip().startswith("value") for a, _ in changed), changed
        # .pint.hcl: its one pattern; a rules or test file: one line per alert (a file may hold one alert)
        assert len(changed) == 1 if path.suffix == ".hcl" else changed, path


def test_pint_pattern_is_the_base_literally():
    assert runbook_links.pint_pattern("docs/runbooks") == "docs/runbooks/MLLab[A-Za-z]+[.]md"
    assert runbook_links.pint_pattern("https://x.org/a+b") == "https://x[.]org/a[+]b/MLLab[A-Za-z]+[.]md"
