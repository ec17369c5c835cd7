"""One address for the stack: what `make up` records in $LAB_STATE_DIR/stack.env is what `lab` uses.

No stack runs here: the file is written by the very shell function `make up` calls
(scripts/native/lib.sh lab_write_stack_env, both modes), then read back by a shell and by
`lab`. tests/stack/test_stack_address.py does the same through a real `make up`.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lab.cli import main
from lab.practice import triage
from lab.repo import OTLP_PAIR, ROOT, read_stack_env, stack_basic_auth, stack_env_defaults, stack_env_path
from lab.specs.loader import load_scenario

LIB = ROOT / "scripts" / "native" / "lib.sh"
PORT_VARS = ("LAB_OTLP_GRPC_PORT", "LAB_OTLP_HTTP_PORT", "LAB_COLLECTOR_HEALTH_PORT", "LAB_COLLECTOR_METRICS_PORT",
             "LAB_PROMETHEUS_PORT", "LAB_ALERTMANAGER_PORT", "LAB_WEBHOOK_SINK_PORT", "LAB_GRAFANA_PORT",
             "LAB_JAEGER_UI_PORT", "LAB_VICTORIALOGS_PORT", "LAB_JAEGER_OTLP_GRPC_PORT", "LAB_JAEGER_QUERY_GRPC_PORT",
             "LAB_JAEGER_HEALTH_PORT")
# Not the .env defaults: an override must survive into the file.
PORTS = {var: str(21000 + i) for i, var in enumerate(PORT_VARS)}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that says where a stack is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "OTEL_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def write_stack_env(state: Path, mode: str, ports: dict[str, str] = PORTS) -> dict[str, str]:
    """Run lab_write_stack_env as `make up` does (native: after lab_native_env) in state dir `state`."""
    setup = "lab_native_env; " if mode == "native" else ""
    subprocess.run(["bash", "-c", f'source "{LIB}"; {setup}lab_write_stack_env {mode}'],
                   env=clean_env(LAB_STATE_DIR=str(state), **ports), check=True, capture_output=True, text=True)
    return read_stack_env(state / "stack.env")


@pytest.mark.parametrize("mode", ["native", "compose"])
def test_sourcing_stack_env_gives_an_endpoint_and_the_protocol_of_that_port(tmp_path, mode):
    state = tmp_path / "state dir"  # a space: values are quoted for the shell where needed
    written = write_stack_env(state, mode)
    assert written["LAB_STACK_MODE"] == mode
    # What a shell gets by sourcing the file, and what the lab's SDK setup makes of it.
    probe = ("from lab.telemetry.otel import otlp_endpoint, otlp_protocol; import os, json; "
             "print(json.dumps({'endpoint': otlp_endpoint(), 'protocol': otlp_protocol(), "
             "'files': os.environ['LAB_COLLECTOR_FILE_DIR'], 'prometheus': os.environ['LAB_PROMETHEUS_URL']}))")
    out = subprocess.run(["bash", "-c", f'set -a; . "{state}/stack.env"; set +a; exec "{sys.executable}" -c "{probe}"'],
                         env=clean_env(), check=True, capture_output=True, text=True).stdout
    seen = json.loads(out)
    # The pair: OTLP/HTTP on the collector's HTTP port (gRPC on 4317 with the HTTP protocol was the bug).
    assert (seen["endpoint"], seen["protocol"]) == (f"http://127.0.0.1:{PORTS['LAB_OTLP_HTTP_PORT']}", "http/protobuf")
    assert seen["prometheus"] == f"http://127.0.0.1:{PORTS['LAB_PROMETHEUS_PORT']}"
    assert seen["files"] == str(state / "otelcol")
    assert written["LAB_OTLP_GRPC_ENDPOINT"] == f"http://127.0.0.1:{PORTS['LAB_OTLP_GRPC_PORT']}"
    for var in ("LAB_ALERTMANAGER_URL", "LAB_WEBHOOK_SINK_URL", "LAB_JAEGER_URL", "LAB_VICTORIALOGS_URL"):
        assert written[var].startswith("http://127.0.0.1:2"), (var, written[var])
    assert ("LAB_GRAFANA_URL" in written) == (mode == "compose")


def test_make_down_of_one_mode_leaves_the_other_modes_file(tmp_path):
    write_stack_env(tmp_path, "compose")
    remove = ["bash", "-c", f'source "{LIB}"; lab_remove_stack_env "$0"']
    subprocess.run([*remove, "native"], env=clean_env(LAB_STATE_DIR=str(tmp_path)), check=True)
    assert (tmp_path / "stack.env").exists()
    subprocess.run([*remove, "compose"], env=clean_env(LAB_STATE_DIR=str(tmp_path)), check=True)
    assert not (tmp_path / "stack.env").exists()


def test_both_modes_write_it_when_up_and_remove_it_when_down():
    stack_sh = (ROOT / "scripts" / "stack.sh").read_text()
    up_sh, down_sh = ((ROOT / "scripts" / "native" / f"{n}.sh").read_text() for n in ("up", "down"))
    assert "lab_write_stack_env native" in up_sh and "lab_remove_stack_env native" in down_sh
    assert "lab_write_stack_env compose" in stack_sh and "lab_remove_stack_env compose" in stack_sh
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in up_sh  # one writer (lib.sh), one pair


# --- lab's resolution: environment, then stack.env, then the defaults -----------------------------

STACK = {"LAB_STACK_MODE": "native", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:14318",
         "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "LAB_OTLP_HTTP_ENDPOINT": "http://127.0.0.1:14318",
         "LAB_PROMETHEUS_URL": "http://127.0.0.1:19090", "LAB_JAEGER_URL": "http://127.0.0.1:26686"}


def test_without_a_file_nothing_is_added(tmp_path):
    env = {"LAB_STATE_DIR": str(tmp_path)}
    assert stack_env_path(env) == tmp_path / "stack.env"
    assert read_stack_env(tmp_path / "stack.env") == {} and stack_env_defaults(env) == {}


def test_the_file_supplies_the_otlp_pair_and_the_urls():
    added = stack_env_defaults({}, STACK)
    assert {k: added[k] for k in OTLP_PAIR} == {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:14318",
                                                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert added["LAB_PROMETHEUS_URL"] == "http://127.0.0.1:19090" and added["LAB_JAEGER_URL"] == "http://127.0.0.1:26686"
    assert "LAB_STACK_MODE" not in added


@pytest.mark.parametrize("var,value", [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),  # a protocol alone must not be paired with the file's HTTP port
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://collector:4318/v1/metrics"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
])
def test_any_otlp_variable_in_the_environment_keeps_the_files_pair_out(var, value):
    added = stack_env_defaults({var: value}, STACK)
    assert not set(OTLP_PAIR) & set(added)
    assert added["LAB_PROMETHEUS_URL"] == STACK["LAB_PROMETHEUS_URL"]  # the rest still comes from the file


def test_a_shared_profile_token_goes_only_with_the_files_endpoint():
    shared = {**STACK, "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t0ken"}
    assert stack_env_defaults({}, shared)["OTEL_EXPORTER_OTLP_HEADERS"] == "authorization=Bearer%20t0ken"
    # another endpoint must never receive this stack's token; headers the user set win
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in stack_env_defaults({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://elsewhere:4318"}, shared)
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in stack_env_defaults({"OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x=y"}, shared)
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in stack_env_defaults({}, STACK)  # the default profile has none


def test_a_shared_profile_password_goes_only_with_the_files_prometheus(tmp_path):
    (tmp_path / "credentials.env").write_text("# x\nLAB_AUTH_USER=lab\nLAB_AUTH_PASSWORD=pw\n")
    shared = {**STACK, "LAB_AUTH_DIR": str(tmp_path)}
    added = stack_env_defaults({}, shared)
    assert added["LAB_AUTH_DIR"] == str(tmp_path) and stack_basic_auth(added) == ("lab", "pw")
    assert "LAB_AUTH_DIR" not in stack_env_defaults({"LAB_PROMETHEUS_URL": "http://elsewhere:9090"}, shared)
    assert stack_basic_auth({}) is None and stack_basic_auth({"LAB_AUTH_DIR": str(tmp_path / "none")}) is None


def test_the_shared_profile_records_itself_and_its_token_readable_by_its_owner_only(tmp_path):
    subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/native/shared_profile.py"), str(tmp_path),
                    "--mode", "native"], check=True)
    env = {"LAB_PROFILE": "shared", "LAB_PORT_OFFSET": "0"}
    subprocess.run(["bash", "-c", f'source "{LIB}"; lab_native_env; lab_write_stack_env native'],
                   env=clean_env(LAB_STATE_DIR=str(tmp_path), **PORTS, **env), check=True, capture_output=True, text=True)
    written = read_stack_env(tmp_path / "stack.env")
    token = read_stack_env(tmp_path / "auth/credentials.env")["LAB_OTLP_TOKEN"]
    assert written["LAB_PROFILE"] == "shared" and written["OTEL_EXPORTER_OTLP_HEADERS"] == f"authorization=Bearer%20{token}"
    assert (tmp_path / "stack.env").stat().st_mode & 0o077 == 0
    assert written["LAB_PROMETHEUS_PORT"] == PORTS["LAB_PROMETHEUS_PORT"]


def test_the_shared_profile_moves_every_port_by_the_users_offset(tmp_path):
    out = subprocess.run(["bash", "-c", f'source "{LIB}"; source "{LIB}"; echo $LAB_PROMETHEUS_PORT $LAB_OTLP_GRPC_PORT'],
                         env=clean_env(LAB_STATE_DIR=str(tmp_path), LAB_PROFILE="shared", LAB_PORT_OFFSET="120"),
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == ["9210", "4437"]  # .env's ports + 120, once however often lib.sh is sourced
    bad = subprocess.run(["bash", "-c", f'source "{LIB}"'], env=clean_env(LAB_STATE_DIR=str(tmp_path), LAB_PROFILE="open"),
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "expected default or shared" in bad.stderr


def test_an_explicit_url_or_port_wins_over_the_file():
    assert "LAB_PROMETHEUS_URL" not in stack_env_defaults({"LAB_PROMETHEUS_URL": "http://elsewhere:9090"}, STACK)
    assert "LAB_PROMETHEUS_URL" not in stack_env_defaults({"LAB_PROMETHEUS_PORT": "29090"}, STACK)
    assert "LAB_JAEGER_URL" not in stack_env_defaults({"LAB_JAEGER_UI_PORT": "26687"}, STACK)


def test_a_file_without_the_pair_is_read_as_its_http_endpoint():
    # What up.sh wrote before: the gRPC port as OTEL_EXPORTER_OTLP_ENDPOINT and no protocol.
    old = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "LAB_OTLP_HTTP_ENDPOINT": "http://127.0.0.1:4318"}
    assert {k: v for k, v in stack_env_defaults({}, old).items() if k in OTLP_PAIR} == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


# --- the commands: `lab run` exports there, `lab triage` asks that Prometheus ---------------------


class _OtlpReceiver(http.server.BaseHTTPRequestHandler):
    """Accepts every OTLP/HTTP export (an empty 200 is a success for the SDK) and notes its path."""

    paths: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_lab_run_delivers_to_the_endpoint_in_stack_env(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_stack_env(tmp_path, "native", {**PORTS, "LAB_OTLP_HTTP_PORT": str(server.server_port)})
        r = subprocess.run([sys.executable, "-m", "lab", "run", "overfit", "--fast", "--telemetry", "on", "--plain",
                            "--set", "train.epochs=10"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env=clean_env(LAB_STATE_DIR=str(tmp_path), OTEL_METRIC_EXPORT_INTERVAL="200"))
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr  # --telemetry on: 3 if nothing had been delivered
    assert f"over OTLP to http://127.0.0.1:{server.server_port}" in r.stderr
    assert {"/v1/metrics", "/v1/traces", "/v1/logs"} <= set(_OtlpReceiver.paths)


def test_lab_triage_asks_the_prometheus_in_stack_env_and_leaves_the_environment_alone(tmp_path, monkeypatch, capsys):
    for key in [k for k in os.environ if k.startswith(("LAB_", "OTEL_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    (tmp_path / "stack.env").write_text("LAB_STACK_MODE=native\nLAB_PROMETHEUS_URL=http://127.0.0.1:9\n"
                                        "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9\nOTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n")
    triage.save(triage.Case(case_id="abc123", seed=1, scenario="overfit", diagnosis=load_scenario("overfit").story.diagnosis,
                            run_seed=0, started_at=1000.0))
    assert main(["triage", "reveal"]) == 0
    assert "Prometheus at http://127.0.0.1:9 did not answer" in capsys.readouterr().out
    assert "LAB_PROMETHEUS_URL" not in os.environ and "OTEL_EXPORTER_OTLP_ENDPOINT" not in os.environ
