"""`make up` with ports overridden on the make command line, then a plain `lab run`: it lands there.

The user's path end to end, on a native stack of its own (free ports, a temporary state
directory): `make up LAB_NATIVE=1 LAB_OTLP_HTTP_PORT=… …` records the stack in stack.env, a
`lab run --fast` with nothing in its environment saying where the stack is delivers its
telemetry to that collector (Prometheus has the run), and `make down` removes the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from lab.dev.stack import PORT_VARS, free_ports, poll
from lab.repo import ROOT, read_stack_env


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "OTEL_")) or k == "LAB_CACHE_DIR"}
    return {**env, **extra}


def _make(target: str, make_vars: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", target, *(f"{k}={v}" for k, v in make_vars.items())], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=900)


def test_make_up_with_other_ports_is_where_lab_run_delivers(native_bins, tmp_path):
    state = tmp_path / "state"
    make_vars = {"LAB_NATIVE": "1", "LAB_STATE_DIR": str(state),
                 **{var: str(port) for var, port in zip(PORT_VARS, free_ports(len(PORT_VARS)))}}
    try:
        up = _make("up", make_vars)
        assert up.returncode == 0, up.stderr[-3000:]
        stack = read_stack_env(state / "stack.env")
        assert stack["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://127.0.0.1:{make_vars['LAB_OTLP_HTTP_PORT']}"
        assert stack["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert stack["LAB_PROMETHEUS_URL"] == f"http://127.0.0.1:{make_vars['LAB_PROMETHEUS_PORT']}"

        summary = tmp_path / "summary.json"
        # Only the state directory (where `make up` wrote stack.env; <repo>/.lab by default) is given.
        run = subprocess.run([sys.executable, "-m", "lab", "run", "overfit", "--fast", "--plain", "--telemetry", "on",
                              "--set", "train.epochs=10", "--summary-json", str(summary)],
                             cwd=ROOT, env=_env(LAB_STATE_DIR=str(state)), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr  # --telemetry on: 3 if nothing reached the collector
        assert f"over OTLP to {stack['OTEL_EXPORTER_OTLP_ENDPOINT']}" in run.stderr
        run_id = json.loads(summary.read_text())["run_id"]

        def series():
            r = requests.get(f"{stack['LAB_PROMETHEUS_URL']}/api/v1/query", timeout=5,
                             params={"query": f'target_info{{lab_run_id="{run_id}"}}'})
            return r.json()["data"]["result"]

        poll(f"the run {run_id} in the stack's Prometheus", series, timeout=60)
    finally:
        down = _make("down", make_vars)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not (state / "stack.env").exists()
    assert not list((state / "run").glob("*.pid")), "make down left pid files"

