"""The compose stack, for real: docker-compose.yml on a Docker engine, with local stand-in images.

    .venv/bin/python -m pytest tests/stack/test_compose_stack.py

What runs (docs/stack.md, "Compose under test"):
- a private Docker engine (scripts/docker/engine.sh: Debian's dockerd, installed with apt
  where missing, its own data root/socket, --bridge=none --iptables=false), stopped by PID
  at the end even when a test fails;
- stand-in images built from the natively built binaries, tagged as docker-compose.yml
  names them (scripts/docker/standins.sh) - nothing is pulled from any registry;
- `make up` / `make down` with the REAL docker-compose.yml plus tests/stack/compose.test.yml,
  whose only settings are pull_policy: never, no Grafana, host network + extra_hosts;
- the end-to-end checks native mode runs (tests/stack/conftest.py): a scenario's metrics in Prometheus,
  its alert at the webhook sink, its trace in Jaeger, its logs in VictoriaLogs.
Where no engine can be had, the module is skipped with the one-line reason; with CI=true
that is a failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from lab.dev.stack import COMPONENTS, NativeStack
from lab.repo import ROOT, read_stack_env

pytestmark = pytest.mark.stack

OVERRIDE = ROOT / "tests/stack/compose.test.yml"
ENGINE = ROOT / "scripts/docker/engine.sh"
HOST = socket.gethostname()
TIMES: dict[str, float] = {}

# The upstream images' contract (their Dockerfiles; each stand-in's Dockerfile in
# scripts/docker/standins/ cites its source): what `docker image inspect` must show.
CONTRACT = {
    "otel-collector": {"Entrypoint": ["/otelcol-contrib"], "Cmd": ["--config", "/etc/otelcol-contrib/config.yaml"],
                       "User": "10001", "WorkingDir": "", "Volumes": None, "shell": False},
    "prometheus": {"Entrypoint": ["/bin/prometheus"],
                   "Cmd": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
                   "User": "nobody", "WorkingDir": "/prometheus", "Volumes": ["/prometheus"], "shell": True},
    "alertmanager": {"Entrypoint": ["/bin/alertmanager"],
                     "Cmd": ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"],
                     "User": "nobody", "WorkingDir": "/alertmanager", "Volumes": ["/alertmanager"], "shell": True},
    "jaeger": {"Entrypoint": ["/cmd/jaeger/jaeger-linux"], "Cmd": None, "User": "10001", "WorkingDir": "",
               "Volumes": ["/tmp"], "Env": "JAEGER_LISTEN_HOST=0.0.0.0", "shell": True},
    "victorialogs": {"Entrypoint": ["/victoria-logs-prod"], "Cmd": None, "User": "", "WorkingDir": "",
                     "Volumes": None, "shell": False},
    "webhook-sink": {"Entrypoint": None, "Cmd": ["python3"], "User": "", "WorkingDir": "/", "Volumes": None,
                     "Env": "LANG=C.UTF-8", "shell": True},
}
# Data that must live in a named volume, and where the image keeps it.
DATA = {"prometheus": "/prometheus", "alertmanager": "/alertmanager", "victorialogs": "/victoria-logs-data"}


def skip_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"compose stack tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine: {reason}")


def net_state() -> dict[str, list[str]]:
    """Network interfaces, addresses and firewall rules of this machine (to compare before/after)."""
    def lines(*cmd):
        if not shutil.which(cmd[0]):
            return []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return sorted(ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith(("#", ":")))

    strip = lambda rows: sorted({" ".join(r.split()[:4]) for r in rows})  # noqa: E731 - drop counters/lifetimes
    return {"links": strip([r.split(":", 2)[1] for r in lines("ip", "-o", "link")]),
            "addrs": strip(lines("ip", "-o", "addr")),
            "iptables": lines("iptables-save"), "ip6tables": lines("ip6tables-save")}


def run(*cmd, env=None, timeout=900, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: rc {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


class Engine:
    """The private engine: env for docker/compose commands, and teardown that is safe to repeat."""

    def __init__(self):
        self.before = net_state()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_") or k in ("LAB_CACHE_DIR",)}
        self.started = False
        self.compose: list[str] = []
        self.state_dir: Path | None = None

    def docker(self, *args, check=True) -> subprocess.CompletedProcess:
        return run("docker", *args, env=self.env, check=check, timeout=300)

    def compose_cmd(self, *args, check=True) -> subprocess.CompletedProcess:
        return run(*self.compose, "--project-directory", ROOT, "-f", ROOT / "docker-compose.yml", "-f", OVERRIDE, *args,
                   env=self.stack_env(), check=check)

    def stack_env(self) -> dict[str, str]:
        return {**self.env, "LAB_COMPOSE_OVERRIDE": str(OVERRIDE), "LAB_STATE_DIR": str(self.state_dir)}

    def teardown(self):
        if self.compose and self.state_dir is not None:
            self.compose_cmd("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        if self.started:
            run(ENGINE, "stop", env=self.env, check=False)
            self.started = False


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine()
    eng.state_dir = tmp_path_factory.mktemp("compose-state")
    probe = subprocess.run([str(ENGINE), "env"], capture_output=True, text=True, env=eng.env)
    eng.env["DOCKER_HOST"] = probe.stdout.strip().split("=", 1)[1]
    already = subprocess.run(["docker", "version"], env=eng.env, capture_output=True).returncode == 0
    proc = subprocess.run([str(ENGINE), "start"], capture_output=True, text=True, env=eng.env, timeout=900)
    if proc.returncode == 3:
        lines = proc.stderr.strip().splitlines() or ["scripts/docker/engine.sh start exited with 3"]
        skip_or_fail(lines[-1].removeprefix("engine.sh: no Docker engine here: "))
    assert proc.returncode == 0, proc.stderr
    eng.started = not already
    try:
        eng.compose = run(ENGINE, "compose", env=eng.env).stdout.split()
        yield eng
    finally:
        eng.teardown()


@pytest.fixture(scope="module")
def standins(engine):
    t0 = time.monotonic()
    run(ROOT / "scripts/docker/standins.sh", env=engine.env, timeout=1200)
    TIMES["standins"] = time.monotonic() - t0
    return {s: json.loads(engine.docker("image", "inspect", image).stdout)[0] for s, image in service_images(engine).items()}


def service_images(engine) -> dict[str, str]:
    project = json.loads(run(*engine.compose, "--project-directory", ROOT, "-f", ROOT / "docker-compose.yml",
                             "config", "--format", "json", env=engine.env).stdout)
    return {name: s["image"] for name, s in project["services"].items() if name != "grafana"}


def ports_in_use(components, env) -> list[str]:
    busy = []
    for _, _, _, ports in components:
        for var in ports:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(env[var]))) == 0:
                    busy.append(f"{var}={env[var]}")
    return busy


@pytest.fixture(scope="module")
def compose_stack(engine, standins, lab_env):
    busy = ports_in_use(COMPONENTS, lab_env)
    assert not busy, f"host-network compose needs .env's ports free; in use: {busy} (another stack? `make down`)"
    t0 = time.monotonic()
    run("make", "-s", "up", env=engine.stack_env())
    TIMES["make up (compose, first)"] = time.monotonic() - t0
    ports = {var: int(lab_env[var]) for *_, vs in COMPONENTS for var in vs}
    return NativeStack(state_dir=engine.state_dir, ports=ports,
                       env={**lab_env, **engine.stack_env(), "LAB_COLLECTOR_FILE_DIR": str(engine.state_dir / "otelcol")})


def containers(engine) -> dict[str, dict]:
    ids = engine.docker("ps", "-aq", "--filter", "label=com.docker.compose.project=ml-obs-lab").stdout.split()
    if not ids:
        return {}
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in json.loads(engine.docker("inspect", *ids).stdout)}


# --- the override and the images, before anything runs ---------------------------------------


def test_override_only_pins_images_drops_grafana_and_uses_the_host_network():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    override = yaml.safe_load(OVERRIDE.read_text())
    assert set(override) <= {"services", "x-test"}
    services = set(compose["services"]) - {"grafana"}
    assert set(override["services"]) == services | {"grafana"}
    assert override["services"]["grafana"] == {"profiles": ["grafana-needs-a-registry"]}
    for name in services:
        s = override["services"][name]
        assert set(s) == {"pull_policy", "network_mode", "extra_hosts"}, name
        assert s["pull_policy"] == "never" and s["network_mode"] == "host"
        assert sorted(s["extra_hosts"]) == sorted(f"{n}:127.0.0.1" for n in services)


def test_standin_images_reproduce_the_upstream_contract(standins):
    for service, expected in CONTRACT.items():
        config = standins[service]["Config"]
        assert config["Labels"]["ml-obs-lab.standin"] == service
        for key in ("Entrypoint", "Cmd", "User", "WorkingDir"):
            assert config[key] == expected[key], f"{service}: {key} {config[key]!r} != upstream {expected[key]!r}"
        assert sorted(config["Volumes"] or {}) == (expected["Volumes"] or []), service
        if "Env" in expected:
            assert expected["Env"] in config["Env"], service


def test_services_without_healthcheck_are_the_images_without_a_shell(engine, standins):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service, expected in CONTRACT.items():
        has_shell = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", standins[service]["Id"],
                                  "-c", "true", check=False).returncode == 0
        assert has_shell == expected["shell"], service
        assert ("healthcheck" in compose[service]) == has_shell, f"{service}: healthcheck vs. image tools"


def test_compose_commands_and_mounts_fit_the_images(engine, standins):
    project = json.loads(engine.compose_cmd("config", "--format", "json").stdout)
    for service, s in project["services"].items():
        image = standins[service]["Config"]
        mounts = {m["target"]: m for m in s.get("volumes", [])}
        # every absolute path the command names is mounted (config) or is the data volume
        args = [a.split("=", 1)[-1] for a in s.get("command") or []]
        for path in (a for a in args if a.startswith("/")):
            assert any(path == t or path.startswith(t.rstrip("/") + "/") for t in mounts), f"{service}: {path} not mounted"
        # data lives in a named volume, at the path the image keeps it
        if service in DATA:
            assert mounts[DATA[service]]["type"] == "volume", service
            if image["Volumes"]:
                assert DATA[service] in image["Volumes"], service
        # a working_dir the compose file sets must be a mounted directory (alertmanager's url_file)
        if s.get("working_dir"):
            assert any(t.startswith(s["working_dir"] + "/") for t in mounts), service
        # the user the container runs as: compose's, else the image's
        assert s.get("user", image["User"]) == (s.get("user") or CONTRACT[service]["User"]), service


# --- the running stack ---------------------------------------------------------------------------


def test_every_service_runs_on_the_host_network_and_healthchecks_turn_healthy(engine, compose_stack):
    found = containers(engine)
    assert set(found) == set(CONTRACT), sorted(found)
    for service, c in found.items():
        assert c["State"]["Running"], service
        assert c["HostConfig"]["NetworkMode"] == "host", service
        if "Health" in c["State"]:
            assert c["State"]["Health"]["Status"] == "healthy", f"{service}: {c['State']['Health']['Log'][-1:]}"
    assert {c for c in found if "Health" in found[c]["State"]} == {s for s, v in CONTRACT.items() if v["shell"]}
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert set(networks) <= {"host", "none"}, networks


def test_recorded_to_queryable_delay(compose_stack, e2e):
    delays = e2e.probe_delays(compose_stack, "compose")
    assert all(secs < 30 for secs in delays.values()), delays


@pytest.fixture(scope="module")
def diverged(compose_stack, tmp_path_factory, e2e):
    return e2e.run_scenario(compose_stack, tmp_path_factory.mktemp("compose-runs"), "diverged", "--seed", "1")


def test_scenario_metrics_reach_prometheus(compose_stack, diverged):
    sel = f'job="ml-lab/ml-lab-trainer",instance="{HOST}:diverged:fault",lab_scenario="diverged"'
    compose_stack.wait_for_series(f"ml_training_steps_total{{{sel}}} == {diverged['steps']}", timeout=90)
    assert compose_stack.query(f"ml_training_nonfinite_steps_total{{{sel}}} > 0")


def test_scenario_alert_reaches_the_webhook_sink(compose_stack, diverged):
    def mine():
        return [n for n in compose_stack.sink_alerts("MLLabTrainingDiverged")
                if any(a["labels"].get("instance") == f"{HOST}:diverged:fault" for a in n["payload"]["alerts"])]
    (notification, *_) = compose_stack.poll("MLLabTrainingDiverged at the sink", mine, timeout=90)
    assert notification["payload"]["receiver"] == "webhook-sink"
    # the sink's file is in the bind-mounted state directory, written as LAB_UID
    assert (compose_stack.state_dir / "webhook-sink" / "alerts.jsonl").exists()


def test_scenario_trace_in_jaeger_and_logs_in_victorialogs(compose_stack, diverged, e2e):
    e2e.check_diverged_run(compose_stack, diverged)


def test_grafana_links_from_exemplar_to_trace_to_logs_and_back(compose_stack, diverged, e2e):
    e2e.check_grafana_links(compose_stack, diverged, "train diverged", "ml_training_step_duration_seconds")


def test_make_down_removes_the_containers_and_the_volume_keeps_prometheus_data(engine, compose_stack, diverged):
    sel = f'ml_training_steps_total{{instance="{HOST}:diverged:fault"}}'
    at = time.time()
    assert compose_stack.query(sel)
    # `make up` recorded the stack's address for `lab run` (one pair: the HTTP port, OTLP/HTTP) ...
    stack_env = read_stack_env(engine.state_dir / "stack.env")
    assert stack_env["LAB_STACK_MODE"] == "compose" and stack_env["LAB_PROMETHEUS_URL"] == compose_stack.prometheus_url
    assert (stack_env["OTEL_EXPORTER_OTLP_ENDPOINT"], stack_env["OTEL_EXPORTER_OTLP_PROTOCOL"]) == \
        (compose_stack.otlp_http_endpoint, "http/protobuf")
    run("make", "-s", "down", env=engine.stack_env())
    assert not (engine.state_dir / "stack.env").exists()  # ... and `make down` removes it
    assert containers(engine) == {}
    volumes = engine.docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    # the named volumes stay, and nothing else (an image's anonymous VOLUME would pile up)
    assert set(volumes) == {f"ml-obs-lab_{v}-data" for v in ("prometheus", "alertmanager", "victorialogs")}, volumes
    t0 = time.monotonic()
    run("make", "-s", "up", env=engine.stack_env())
    TIMES["make up (compose, again)"] = time.monotonic() - t0
    r = requests.get(f"{compose_stack.prometheus_url}/api/v1/query", params={"query": sel, "time": at}, timeout=10)
    assert r.json()["data"]["result"], "Prometheus lost its data across make down / make up"
    status = run("make", "-s", "status", env=engine.stack_env()).stdout
    assert "Jaeger" in status and "VictoriaLogs" in status


def test_the_shared_profile_in_compose_refuses_what_has_no_credential(engine, compose_stack):
    """`make up LAB_PROFILE=shared` on compose (docker-compose.shared.yml): healthy with credentials
    in the health checks, 401 without them, alerts delivered on the profile's credentials."""
    run("make", "-s", "down", env=engine.stack_env())
    # The test override's host network keeps the containers' own ports: no per-user offset here.
    env = {**engine.stack_env(), "LAB_PROFILE": "shared", "LAB_PORT_OFFSET": "0"}
    t0 = time.monotonic()
    run("make", "-s", "up", env=env)  # --wait: every health check, basic auth included, turned healthy
    TIMES["make up (compose, shared profile)"] = time.monotonic() - t0
    try:
        s = compose_stack
        creds = read_stack_env(engine.state_dir / "auth/credentials.env")
        auth = (creds["LAB_AUTH_USER"], creds["LAB_AUTH_PASSWORD"])
        protobuf = {"Content-Type": "application/x-protobuf"}
        refused = {
            "query": requests.get(f"{s.prometheus_url}/api/v1/query", params={"query": "up"}, timeout=10),
            "quit": requests.post(f"{s.prometheus_url}/-/quit", timeout=10),
            "silence": requests.post(f"{s.alertmanager_url}/api/v2/silences", json={}, timeout=10),
            "OTLP write": requests.post(f"{s.otlp_http_endpoint}/v1/metrics", data=b"", headers=protobuf, timeout=10),
            "sink wipe": requests.delete(f"{s.webhook_sink_url}/alerts", timeout=10),
        }
        assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 401)
        assert requests.post(f"{s.prometheus_url}/-/quit", auth=auth, timeout=10).status_code == 403  # lifecycle off

        def up():
            r = requests.get(f"{s.prometheus_url}/api/v1/query", params={"query": "up == 1"}, auth=auth, timeout=10)
            return {x["metric"]["job"] for x in r.json()["data"]["result"]} >= {"prometheus", "alertmanager", "otel-collector"}
        s.poll("every target scraped with the profile's credentials", up, timeout=60)
        s.poll("the Watchdog at the sink, through Alertmanager's token", lambda: requests.get(
            f"{s.webhook_sink_url}/alerts", params={"alertname": "MLLabWatchdog"}, timeout=10).json(), timeout=90)
        assert read_stack_env(engine.state_dir / "stack.env")["LAB_PROFILE"] == "shared"
        users = {name: c["Config"]["User"] for name, c in containers(engine).items()}
        assert users["prometheus"] == users["alertmanager"] == f"{os.getuid()}:{os.getgid()}"  # can read the 0600 files
    finally:
        run("make", "-s", "down", env=env)


def test_teardown_leaves_no_container_interface_or_firewall_rule(engine, compose_stack):
    # Last in the module: stop everything now (the fixture would, too) and compare.
    engine.teardown()
    after = net_state()
    assert after == engine.before
    print(f"\ncompose timings: {json.dumps({k: round(v, 1) for k, v in TIMES.items()})}")
