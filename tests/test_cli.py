"""The `lab` command as a user meets it: help, errors, exit codes, runs without a stack."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lab.repo import ROOT


def lab(*args, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is released


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["list", "--help"], ["show", "--help"]])
def test_help_everywhere(args):
    r = lab(*args)
    assert r.returncode == 0 and "usage: lab" in r.stdout


def test_list_shows_every_scenario():
    r = lab("list")
    assert r.returncode == 0
    assert "overfit" in r.stdout and "MLLabOverfitting" in r.stdout


def test_show_tells_the_story():
    r = lab("show", "overfit")
    assert r.returncode == 0
    assert "Root cause" in r.stdout and "What to do" in r.stdout and '"train_size": 150' in r.stdout


def test_unknown_scenario_lists_known_ones_and_fails():
    r = lab("run", "overfitting", "--fast")
    assert r.returncode == 2
    assert "unknown scenario 'overfitting'" in r.stderr and "overfit" in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_setting_names_the_field_and_allowed_values():
    r = lab("run", "overfit", "--fast", "--set", "optimizer.name=rmsprop")
    assert r.returncode == 2
    assert "optimizer.name" in r.stderr and "'sgd', 'adam' or 'adamw'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,field", [(["--speed", "0"], "--speed"), (["--seed", "-1"], "--seed"),
                                        (["--telemetry", "maybe"], "--telemetry")])
def test_invalid_options_name_the_option(args, field):
    r = lab("run", "overfit", "--fast", *args)
    assert r.returncode == 2 and field in r.stderr


def test_data_setting_the_dataset_cannot_satisfy():
    r = lab("run", "overfit", "--fast", "--set", "data.train_size=5000")
    assert r.returncode == 2 and "data.train_size=5000" in r.stderr and "Traceback" not in r.stderr


def test_without_a_collector_the_run_trains_shows_signals_and_says_how_to_start_the_stack(tmp_path):
    port = _closed_port()
    summary = tmp_path / "s.json"
    r = lab("run", "overfit", "--fast", "--seed", "1", "--summary-json", str(summary),
            env_extra={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert r.returncode == 0, r.stderr
    assert f"No OpenTelemetry collector at http://127.0.0.1:{port}" in r.stdout
    assert "make up" in r.stdout
    assert "ratio" in r.stdout and "step " in r.stdout  # the signals, line by line (not a terminal)
    assert "Traceback" not in r.stdout + r.stderr
    s = json.loads(summary.read_text())
    assert s["steps"] == 600 and s["loss_ratio_above_threshold"] is not None


def test_a_collector_that_is_down_never_crashes_a_run(tmp_path):
    # --telemetry on forces the OTLP exporters although nothing listens: every
    # export fails, the run still finishes, and the failures are reported once.
    port = _closed_port()
    r = lab("run", "overfit", "--fast", "--telemetry", "on", "--set", "train.epochs=10",
            env_extra={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_METRIC_EXPORT_INTERVAL": "200"},
            timeout=180)
    assert r.returncode == 0, r.stderr
    assert "telemetry exports failed" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert "Run completed: 50 steps" in r.stdout
