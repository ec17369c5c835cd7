"""Replays of recorded runs against the alert rules (lab/telemetry/record.py -> lab/dev/replay.py -> promtool).

    .venv/bin/python -m pytest tests/alerts/test_replay.py     (part of `make test-alerts`)

tests/alerts/recordings/ holds one recording per scenario and fix variant (seed 0,
`make record-alerts`). For each, the generated promtool test must pass: the scenario's
expected alerts fire and no other does; fixes and the healthy baseline fire none.
tests/scenarios/test_recorded_replay.py records fresh runs and replays them too, and
tests/dev/test_alert_matrix.py compares the recorder's series with a real Prometheus's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.dev.replay import promtool_test
from lab.repo import ROOT
from lab.specs.loader import known_scenarios, load_scenario
from lab.telemetry.catalogue import CATALOGUE
from lab.telemetry.record import Recording, format_le, prometheus_name, recording_name, spec_digest

RECORDINGS = ROOT / "tests" / "alerts" / "recordings"


def expected_recordings() -> list[tuple[str, bool]]:
    out = []
    for name in known_scenarios():
        out.append((name, False))
        if load_scenario(name).has_fix:
            out.append((name, True))
    return out


def replay(promtool: Path, rec: Recording, tmp_path: Path) -> subprocess.CompletedProcess:
    test = tmp_path / f"{rec.scenario}-{rec.variant}.test.yml"
    test.write_text(promtool_test(rec))
    return subprocess.run([str(promtool), "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name,fix", expected_recordings(), ids=lambda v: str(v))
def test_every_scenario_has_a_current_recording(name, fix):
    spec = load_scenario(name, fix=fix)
    path = RECORDINGS / recording_name(spec.name, spec.variant)
    assert path.exists(), f"no recording {path.relative_to(ROOT)}: run `make record-alerts`"
    rec = Recording.load(path)
    assert rec.spec_digest == spec_digest(spec), f"{path.name} was recorded from other settings: `make record-alerts`"
    assert rec.expected_alerts == spec.alerts


@pytest.mark.parametrize("path", sorted(RECORDINGS.glob("*.json")), ids=lambda p: p.stem)
def test_replay_fires_exactly_the_expected_alerts(promtool, tmp_path, path):
    rec = Recording.load(path)
    proc = replay(promtool, rec, tmp_path)
    assert proc.returncode == 0, f"{path.name} (expects {rec.expected_alerts or 'no alert'}):\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("path,wrong", [("overfit.json", []), ("healthy.json", ["MLLabOverfitting"]),
                                        ("stalled.json", ["MLLabTrainingDiverged"])])
def test_replay_rejects_wrong_expectations(promtool, tmp_path, path, wrong):
    # Control: the generated test really checks which alerts fire.
    rec = Recording.load(RECORDINGS / path)
    rec.expected_alerts = wrong
    assert replay(promtool, rec, tmp_path).returncode != 0


def test_recordings_hold_the_catalogued_series():
    names = set()
    for inst in CATALOGUE:
        names |= ({inst.prometheus + s for s in ("_bucket", "_sum", "_count")} if inst.kind == "histogram"
                  else {inst.prometheus})
    for path in RECORDINGS.glob("*.json"):
        rec = Recording.load(path)
        recorded = {key.split("{", 1)[0] for key in rec.series()}
        assert recorded <= names, f"{path.name}: {sorted(recorded - names)} not in lab/telemetry/catalogue.py"
        assert rec.interval_s == 5 and len(rec.samples) >= 2


def test_name_translation_matches_the_catalogue():
    # The catalogue's names are checked against a real Prometheus in tests/e2e.
    for inst in CATALOGUE:
        assert prometheus_name(inst.name, inst.unit, inst.kind, monotonic=True) == inst.prometheus


@pytest.mark.parametrize("unit,kind,expected", [("1", "gauge", "x_ratio"), ("1", "histogram", "x"), ("s", "histogram", "x_seconds"),
                                                ("{step}", "counter", "x_total"), ("", "gauge", "x"), ("By", "gauge", "x_bytes")])
def test_name_translation_rules(unit, kind, expected):
    assert prometheus_name("x", unit, kind, monotonic=True) == expected


def test_unknown_unit_is_an_error():
    with pytest.raises(ValueError, match="UNIT_SUFFIXES"):
        prometheus_name("x", "furlong", "gauge")


@pytest.mark.parametrize("bound,text", [(0.0005, "0.0005"), (1.0, "1"), (0.25, "0.25"), (1e-05, "0.00001"),
                                        (float("inf"), "+Inf")])
def test_le_is_formatted_like_prometheus(bound, text):
    assert format_le(bound) == text
