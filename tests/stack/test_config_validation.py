"""Validate the stack's config files with the pinned binaries, in both layerings.

    .venv/bin/python -m pytest tests/stack/test_config_validation.py

The binaries come from scripts/native/build.sh (the `native_bins` fixture in
tests/conftest.py): a fresh machine builds them first. The compose layering is
reconstructed from docker-compose.yml itself (its volumes and environment), so a mount
that does not line up with a relative path in a config fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.repo import ROOT

COLLECTOR_BASE = ROOT / "otel-collector" / "config.yaml"
RULE_FILES = sorted((ROOT / "prometheus").rglob("*.rules.yml"))
RULE_TESTS = sorted((ROOT / "prometheus").rglob("*.test.yml"))


def run(*cmd: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{out}"
    return out


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any LAB_* variable of the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(extra)
    return env


def compose_service(name: str) -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]


def native_env(tmp_path: Path) -> dict[str, str]:
    """The environment up.sh gives the collector (scripts/native/lib.sh lab_native_env)."""
    script = 'source scripts/native/lib.sh && lab_native_env && env -0'
    out = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        env=clean_env(LAB_STATE_DIR=str(tmp_path)),
    ).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def mirror_mounts(service: str, root: Path) -> None:
    """Recreate a compose service's read-only bind mounts under `root` (container paths)."""
    for volume in compose_service(service)["volumes"]:
        src, dst, *_ = volume.split(":")
        if not src.startswith("./"):
            continue  # named volume or state dir
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ROOT / src
        assert source.exists(), f"{service}: mounted path {src} does not exist"
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)


# --- OpenTelemetry Collector -----------------------------------------------------------


def test_collector_native_layering_is_valid(native_bins, tmp_path):
    ok(run(native_bins["otelcol"], "validate", "--config", COLLECTOR_BASE, env=native_env(tmp_path)))


def test_collector_base_is_valid_with_no_environment(native_bins):
    # Every ${env:...} has a default: the base file also works on its own.
    ok(run(native_bins["otelcol"], "validate", "--config", COLLECTOR_BASE, env=clean_env()))


def test_collector_compose_layering_is_valid(native_bins, tmp_path):
    service = compose_service("otel-collector")
    env = clean_env(**{k: str(v) for k, v in service["environment"].items()})
    configs = []
    for volume in service["volumes"]:
        src, dst, *_ = volume.split(":")
        if src.startswith("./otel-collector/"):
            configs.append((dst, ROOT / src))
    mounted = dict(configs)
    # The compose command's --config files, mapped back to the repository files.
    args = []
    for arg in service["command"]:
        path = arg.removeprefix("--config=")
        assert path in mounted, f"--config {path} is not mounted into the collector container"
        args += ["--config", mounted[path]]
    assert len(args) == 2, "compose loads the one config.yaml that native mode loads"
    ok(run(native_bins["otelcol"], "validate", *args, env=env))


def test_collector_validate_rejects_a_broken_config(native_bins, tmp_path):
    # Control: validation really checks component names and pipelines.
    broken = tmp_path / "broken.yaml"
    text = COLLECTOR_BASE.read_text()
    assert "exporters: [otlp_grpc/jaeger, file/traces, debug" in text  # the traces pipelines' exporters
    broken.write_text(text.replace("exporters: [otlp_grpc/jaeger, file/traces, debug", "exporters: [otlp_grpc/jaeger, file/tracez, debug"))
    proc = run(native_bins["otelcol"], "validate", "--config", broken, env=clean_env())
    assert proc.returncode != 0
    assert "file/tracez" in proc.stdout + proc.stderr


# --- Jaeger (an OpenTelemetry Collector distribution: the same `validate`) -------------------


def test_jaeger_config_is_valid_in_both_modes(native_bins, tmp_path):
    config = ROOT / "jaeger" / "config.yaml"
    ok(run(native_bins["jaeger"], "validate", "--config", config, env=clean_env()))
    service = compose_service("jaeger")
    env = clean_env(JAEGER_LISTEN_HOST="0.0.0.0", **{k: str(v) for k, v in service["environment"].items()})
    (arg,) = service["command"]
    mounted = {dst: src for src, dst, *_ in (v.split(":") for v in service["volumes"])}
    assert mounted[arg.removeprefix("--config=")] == "./jaeger/config.yaml"
    ok(run(native_bins["jaeger"], "validate", "--config", config, env=env))


def test_jaeger_validate_rejects_a_broken_config(native_bins, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "jaeger" / "config.yaml").read_text().replace("exporters: [jaeger_storage_exporter]", "exporters: [jaeger_storage_exporterz]"))
    proc = run(native_bins["jaeger"], "validate", "--config", broken, env=clean_env())
    assert proc.returncode != 0
    assert "jaeger_storage_exporterz" in proc.stdout + proc.stderr


# --- Prometheus --------------------------------------------------------------------------


def check_prometheus_config(promtool: Path, config: Path) -> str:
    out = ok(run(promtool, "check", "config", "--lint=all", "--lint-fatal", config))
    # A missing file_sd file is only a WARNING for promtool: make it an error here.
    assert "WARNING" not in out, out
    return out


def test_prometheus_config_compose_mounts(native_bins, tmp_path):
    mirror_mounts("prometheus", tmp_path)
    config = tmp_path / "etc/prometheus/prometheus.yml"
    out = check_prometheus_config(native_bins["promtool"], config)
    assert f"{len(list((ROOT / 'prometheus').glob('*/*.rules.yml')))} rule files found" in out


def test_prometheus_config_native_layout(native_bins, tmp_path):
    env = clean_env(LAB_PROMETHEUS_PORT="19090", LAB_ALERTMANAGER_PORT="19093", LAB_COLLECTOR_METRICS_PORT="18888", LAB_WEBHOOK_SINK_PORT="19097")
    subprocess.run(["bash", "-c", f'source scripts/native/lib.sh && lab_render_native_etc "{tmp_path}"'], cwd=ROOT, env=env, check=True)
    etc = tmp_path / "prometheus/etc"
    check_prometheus_config(native_bins["promtool"], etc / "prometheus.yml")
    targets = {p.name: yaml.safe_load(p.read_text()) for p in (etc / "targets").glob("*.yml")}
    assert targets == {
        "otel-collector.yml": [{"targets": ["127.0.0.1:18888"]}],
        "prometheus.yml": [{"targets": ["127.0.0.1:19090"]}],
        "alertmanager.yml": [{"targets": ["127.0.0.1:19093"]}],
    }
    assert (tmp_path / "alertmanager/etc/webhook-url").read_text().strip() == "http://127.0.0.1:19097/alertmanager"


def test_prometheus_check_fails_without_target_files(native_bins, tmp_path):
    # Control: the target files are really needed (and found through the config's directory).
    mirror_mounts("prometheus", tmp_path)
    shutil.rmtree(tmp_path / "etc/prometheus/targets")
    with pytest.raises(AssertionError, match="does not exist"):
        check_prometheus_config(native_bins["promtool"], tmp_path / "etc/prometheus/prometheus.yml")


def test_there_are_rule_files():
    assert RULE_FILES, "expected at least prometheus/alerts/stack.rules.yml"


@pytest.mark.parametrize("rules", RULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_rules_are_valid(native_bins, rules):
    ok(run(native_bins["promtool"], "check", "rules", "--lint=all", "--lint-fatal", rules))


@pytest.mark.parametrize("rules", RULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_rules_file_has_a_unit_test(rules):
    test_file = rules.with_name(rules.name.replace(".rules.yml", ".test.yml"))
    assert test_file.exists(), f"{rules.relative_to(ROOT)} has no {test_file.name} beside it"


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_rule_unit_tests_pass(native_bins, tests):
    ok(run(native_bins["promtool"], "test", "rules", tests.name, cwd=tests.parent))


# --- Alertmanager ------------------------------------------------------------------------


def test_alertmanager_config_is_valid(native_bins):
    out = ok(run(native_bins["amtool"], "check-config", ROOT / "alertmanager/alertmanager.yml"))
    assert re.search(r"1 receivers", out), out


def test_amtool_rejects_a_broken_config(native_bins, tmp_path):
    broken = tmp_path / "alertmanager.yml"
    broken.write_text((ROOT / "alertmanager/alertmanager.yml").read_text().replace("receiver: webhook-sink", "receiver: nowhere"))
    assert run(native_bins["amtool"], "check-config", broken).returncode != 0


# --- the shared-host profile's generated configs (scripts/native/shared_profile.py) ---------------


@pytest.fixture
def shared_profile(tmp_path) -> Path:
    """A native state directory with the profile's files, laid out as up.sh lays them out."""
    env = clean_env(LAB_STATE_DIR=str(tmp_path))
    subprocess.run(["bash", "-c", f'source scripts/native/lib.sh && lab_render_native_etc "{tmp_path}"'], cwd=ROOT,
                   env=env, check=True)
    ok(run(ROOT / ".venv/bin/python", ROOT / "scripts/native/shared_profile.py", tmp_path, "--mode", "native"))
    shutil.copy(tmp_path / "auth/prometheus.yml", tmp_path / "prometheus/etc/prometheus.yml.tmp")
    (tmp_path / "prometheus/etc/prometheus.yml").unlink()
    (tmp_path / "prometheus/etc/prometheus.yml.tmp").rename(tmp_path / "prometheus/etc/prometheus.yml")
    return tmp_path


def test_shared_profile_collector_overlay_is_valid(native_bins, shared_profile):
    ok(run(native_bins["otelcol"], "validate", "--config", COLLECTOR_BASE,
           "--config", shared_profile / "auth/otelcol-shared.yaml", env=native_env(shared_profile)))


def test_shared_profile_prometheus_and_alertmanager_configs_are_valid(native_bins, shared_profile):
    check_prometheus_config(native_bins["promtool"], shared_profile / "prometheus/etc/prometheus.yml")
    ok(run(native_bins["promtool"], "check", "web-config", shared_profile / "auth/web.yml"))
    ok(run(native_bins["amtool"], "check-config", shared_profile / "auth/alertmanager.yml"))
    web = yaml.safe_load((shared_profile / "auth/web.yml").read_text())
    assert list(web["basic_auth_users"].values())[0].startswith("$2b$")  # bcrypt, never the password
