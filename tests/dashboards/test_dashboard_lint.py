"""grafana/dashboard-linter (pinned in .env, built by scripts/native/build.sh) on every dashboard.

`--strict` fails on errors and warnings; the only exceptions are in the folder's `.lint`
file, each with its reason. The broken-dashboard case proves the linter really runs the
rules (and reads our files) rather than passing anything.
"""

import json
import shutil
import subprocess

import pytest

from lab.dashboards import all_dashboards, path_of
from lab.repo import ROOT

DASHBOARDS = all_dashboards()


@pytest.fixture(scope="module")
def linter(dashboard_linter):
    return dashboard_linter


def lint(linter, path):
    return subprocess.run([str(linter), "lint", "--strict", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("d", DASHBOARDS, ids=[d.uid for d in DASHBOARDS])
def test_dashboard_passes_the_linter(linter, d):
    proc = lint(linter, path_of(d))
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "❌" in ln or "⚠" in ln]
    assert proc.returncode == 0 and not problems, "\n".join(problems) or proc.stderr


def test_exceptions_have_reasons():
    import yaml

    for lint_file in {path_of(d).parent / ".lint" for d in DASHBOARDS}:
        if not lint_file.exists():
            continue
        conf = yaml.safe_load(lint_file.read_text())
        for section in ("exclusions", "warnings"):
            for rule, spec in (conf.get(section) or {}).items():
                assert spec and spec.get("reason", "").strip(), f"{lint_file}: {rule} has no reason"
                assert spec.get("entries"), f"{lint_file}: {rule} must name the panels it covers"


def test_linter_rejects_a_panel_without_description_and_unit(linter, tmp_path):
    d = next(d for d in DASHBOARDS if d.uid == "ml-lab-training-health")
    j = json.loads(path_of(d).read_text())
    panel = next(p for p in j["panels"] if p["type"] == "timeseries")
    panel["description"] = ""
    panel["fieldConfig"]["defaults"]["unit"] = ""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(j))
    shutil.copy(path_of(d).parent / ".lint", tmp_path / ".lint")
    proc = lint(linter, bad)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"panel '{panel['title']}'" in out and "description" in out and "units" in out, out


def test_wrapper_builds_the_env_version(lab_env):
    text = (ROOT / "scripts/native/dashboard-linter-wrapper/go.mod").read_text()
    assert f"github.com/grafana/dashboard-linter v{lab_env['LAB_DASHBOARD_LINTER_VERSION']}" in text
    # the two directives that make it build from the module proxy (see the go.mod header)
    assert "replace github.com/hashicorp/memberlist => github.com/grafana/memberlist" in text
    assert "replace github.com/grafana/grafana/apps/dashboard => ./dashboard-v2-stub" in text
