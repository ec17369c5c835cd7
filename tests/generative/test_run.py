"""`lab run` of a generative scenario: the terminal view, the summary, and bad settings."""

import json
import os
import subprocess
import sys

import pytest

from lab.repo import ROOT

SCENARIO = """\
name = "bot-small"
title = "a small support bot whose release drops the end token"
kind = "generative"

[catalogue]
products = 8
new_products = 4

[model]
hidden = 64
epochs = 40

[stream]
windows = 8
window_size = 60

[release]
from_window = 2
decode = { max_tokens = 40, stop_at_end_token = false }

[story]
what_you_will_see = "answers cut at max_tokens"
root_cause = "the release dropped the end token"
what_to_do = "restore the stop condition"
"""


def lab(tmp_path, *args):
    (tmp_path / "bot-small.toml").write_text(SCENARIO)
    env = {**os.environ, "LAB_SCENARIOS_DIR": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "lab", "run", "bot-small", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_fast_run_shows_its_windows_and_writes_its_summary(tmp_path):
    out = tmp_path / "summary.json"
    p = lab(tmp_path, "--fast", "--telemetry", "off", "--plain", "--summary-json", str(out))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stdout.splitlines() if line.startswith("window")]
    assert len(lines) == 8 and "CUT" not in lines[1] and "CUT" in lines[-1]
    s = json.loads(out.read_text())
    assert s["kind"] == "generative" and s["requests"] == 8 * 60 and s["stopped"] == "completed"
    assert {x["name"] for x in s["signatures"]} >= {"runaway_generation", "cost"}
    assert s["onsets"]["runaway_generation"] >= 2 and s["onsets"]["quality_slo"] is None


@pytest.mark.parametrize("setting, message", [
    ("decode.max_tokens=0", "decode.max_tokens"),
    ("release.from_window=99", "release.from_window=99"),
    ("stream.feedback_noise=0.9", "stream.feedback_noise"),
])
def test_bad_settings_are_clear_errors(tmp_path, setting, message):
    p = lab(tmp_path, "--fast", "--telemetry", "off", "--set", setting)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
