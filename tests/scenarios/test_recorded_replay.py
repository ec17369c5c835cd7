"""Fresh recordings replayed against the alert rules: every scenario, seed 1.

    .venv/bin/python -m pytest tests/scenarios/test_recorded_replay.py     (part of `make test`)

The committed recordings (tests/alerts/recordings/, seed 0) make `make test-alerts`
fast; this test records new runs with another seed, so the rules are judged on data
they were not written against.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.dev.replay import promtool_test
from lab.families import record_run
from lab.repo import ROOT
from lab.specs.loader import known_scenarios, load_scenario


def variants():
    # The support bot's fixes are judged on the stack, paced, by the alert matrix (one seed in
    # make test, five in make alert-matrix) and replayed from their committed seed-0 recordings:
    # a fresh flat-out run of each here would add about 3 minutes of CPU to make test.
    for name in known_scenarios():
        spec = load_scenario(name)
        yield pytest.param(name, False, id=name)
        if spec.has_fix and spec.kind != "generative":
            yield pytest.param(name, True, id=f"{name}-fix")


@pytest.mark.parametrize("name,fix", list(variants()))
def test_fresh_recording_fires_exactly_the_expected_alerts(promtool, tmp_path, name, fix):
    spec = load_scenario(name, fix=fix)
    _, rec = record_run(spec, tmp_path / "rec.json", seed=1)
    assert rec.samples, "nothing recorded"
    test = tmp_path / "replay.test.yml"
    test.write_text(promtool_test(rec))
    proc = subprocess.run([str(promtool), "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{name} ({spec.variant}, seed 1) expects {spec.alerts or 'no alert'}:\n{proc.stdout}"


def test_record_option_writes_a_replayable_file(tmp_path):
    out = tmp_path / "healthy.json"
    proc = subprocess.run([sys.executable, "-m", "lab", "run", "healthy", "--fast", "--record", str(out),
                           "--set", "train.epochs=1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Recorded" in proc.stdout and out.exists()
    assert "ml_training_running" in out.read_text()
