"""The stack's files agree with each other: names, ports, uids, versions, interval.

    .venv/bin/python -m pytest tests/stack/test_static_agreement.py

Parsing only, plus `compose-check` (compose-go, the library behind `docker compose`)
to load docker-compose.yml as compose would, since this machine has no Docker. Everything
is read from its one source (.env, the ocb manifest, the wrapper go.mod files,
docker-compose.yml, the configs) and compared; nothing here repeats a version or a port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from lab.repo import GRAFANA_RUNBOOK_PATH, ROOT
from lab.telemetry.catalogue import ALLOWED_ATTRIBUTES, CATALOGUE


def read_dotenv() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


ENV = read_dotenv()
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: object, extra: dict[str, str] | None = None) -> object:
    """Compose-style ${VAR} / ${VAR:-default} substitution from .env."""
    if isinstance(value, str):
        env = {**ENV, **(extra or {})}
        return _VAR.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, list):
        return [interpolate(v, extra) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, extra) for k, v in value.items()}
    return value


RAW_COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMPOSE = interpolate(RAW_COMPOSE)
SERVICES = COMPOSE["services"]
COLLECTOR = yaml.safe_load((ROOT / "otel-collector/config.yaml").read_text())
JAEGER = yaml.safe_load((ROOT / "jaeger/config.yaml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
ALERTMANAGER = yaml.safe_load((ROOT / "alertmanager/alertmanager.yml").read_text())
DATASOURCES = yaml.safe_load((ROOT / "grafana/provisioning/datasources/datasources.yaml").read_text())["datasources"]
UP_SH = (ROOT / "scripts/native/up.sh").read_text()
COMPONENTS = [line.split() for line in (ROOT / "scripts/native/components.tsv").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
# Ports compose does not publish: fixed container ports (set in the service's environment)
# that native mode puts on .env's numbers (scripts/native/components.tsv).
INTERNAL_PORTS = {"LAB_JAEGER_OTLP_GRPC_PORT", "LAB_JAEGER_QUERY_GRPC_PORT", "LAB_JAEGER_HEALTH_PORT"}


def container_ports(service: str) -> dict[str, int]:
    """{host port variable: container port} of a compose service, from the raw file."""
    out = {}
    for spec in RAW_COMPOSE["services"][service].get("ports", []):
        m = re.fullmatch(r"127\.0\.0\.1:\$\{(\w+)\}:(\d+)", spec)
        assert m, f"{service}: port {spec!r} is not 127.0.0.1:${{VAR}}:<container port>"
        out[m.group(1)] = int(m.group(2))
    return out


def collector_default(expr: str) -> str:
    """The default of an ${env:VAR:-default} expression in the collector config."""
    m = re.fullmatch(r"\$\{env:(\w+):-([^}]*)\}", expr)
    assert m, f"expected an ${{env:VAR:-default}} expression, got {expr!r}"
    return m.group(2)


def host_port(url_or_addr: str) -> tuple[str, int]:
    if "://" not in url_or_addr:
        url_or_addr = "tcp://" + url_or_addr
    u = urlsplit(url_or_addr)
    return u.hostname, u.port


def prometheus_module_version(version: str) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    return f"v0.{major}{minor:02d}.{patch}"


def go_mod_requires(path: Path, module: str) -> str:
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", path.read_text(), re.M)
    assert m, f"{path} does not require {module}"
    return m.group(1)


def load_with_compose(compose_check: Path, workdir: Path, *overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "GF_", "COMPOSE_"))}
    files = [str(workdir / "docker-compose.yml"), *(str(workdir / o) for o in overrides)]
    proc = subprocess.run([str(compose_check), *files], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


# --- the compose file as docker compose sees it ------------------------------------------


def test_compose_file_loads_like_docker_compose(compose_check):
    project = load_with_compose(compose_check, ROOT)
    assert project["name"] == "ml-obs-lab"
    services = project["services"]
    assert set(services) == set(RAW_COMPOSE["services"])
    assert services["prometheus"]["image"] == f"prom/prometheus:v{ENV['LAB_PROMETHEUS_VERSION']}"
    published = {(p["host_ip"], int(p["published"]), p["target"]) for s in services.values() for p in s.get("ports", [])}
    assert {ip for ip, _, _ in published} == {"127.0.0.1"}
    assert (("127.0.0.1", int(ENV["LAB_OTLP_GRPC_PORT"]), 4317)) in published
    assert services["grafana"]["environment"]["LAB_INTERVAL"] == ENV["LAB_INTERVAL"]


def test_compose_check_rejects_an_inconsistent_file(compose_check, tmp_path):
    # Control: compose-check really validates (here: depends_on an unknown service).
    shutil.copy(ROOT / ".env", tmp_path / ".env")
    text = (ROOT / "docker-compose.yml").read_text().replace("      webhook-sink:\n        condition: service_healthy", "      web-sink:\n        condition: service_healthy")
    assert "web-sink:" in text
    (tmp_path / "docker-compose.yml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    proc = subprocess.run([str(compose_check), str(tmp_path / "docker-compose.yml")], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "web-sink" in proc.stderr


# --- versions -------------------------------------------------------------------------


def test_compose_images_use_the_pinned_versions():
    expected = {
        "otel-collector": f"otel/opentelemetry-collector-contrib:{ENV['LAB_OTELCOL_VERSION']}",
        "prometheus": f"prom/prometheus:v{ENV['LAB_PROMETHEUS_VERSION']}",
        "alertmanager": f"prom/alertmanager:v{ENV['LAB_ALERTMANAGER_VERSION']}",
        "grafana": f"grafana/grafana:{ENV['LAB_GRAFANA_VERSION']}",
        "jaeger": f"jaegertracing/jaeger:{ENV['LAB_JAEGER_VERSION']}",
        "victorialogs": f"victoriametrics/victoria-logs:v{ENV['LAB_VICTORIALOGS_VERSION']}",
        "webhook-sink": ENV["LAB_PYTHON_IMAGE"],
    }
    assert {name: s["image"] for name, s in SERVICES.items()} == expected
    # Tags come from .env, not literals in the compose file.
    for name, service in RAW_COMPOSE["services"].items():
        assert "${LAB_" in service["image"], f"{name}: image tag not taken from .env"


def test_collector_manifest_matches_env():
    manifest = yaml.safe_load((ROOT / "otel-collector/builder-config.yaml").read_text())
    version = ENV["LAB_OTELCOL_VERSION"]
    assert manifest["dist"]["version"] == version
    stable = set()
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions", "providers"):
        for entry in manifest[kind]:
            module, mod_version = entry["gomod"].split()
            if mod_version.startswith("v0."):
                assert mod_version == f"v{version}", f"{module} {mod_version} != v{version}"
            else:
                stable.add(mod_version)
    assert len(stable) == 1, f"stable (v1.x) modules must share one version, got {stable}"


def test_prometheus_wrapper_matches_env():
    wrapper = ROOT / "scripts/native/prometheus-wrapper/go.mod"
    assert go_mod_requires(wrapper, "github.com/prometheus/prometheus") == prometheus_module_version(ENV["LAB_PROMETHEUS_VERSION"])
    # The directives Go ignores outside the main module are repeated.
    text = wrapper.read_text()
    assert "replace cloud.google.com/go =>" in text and "exclude" in text


@pytest.mark.parametrize("wrapper,module,var", [
    ("jaeger-wrapper", "github.com/jaegertracing/jaeger", "LAB_JAEGER_MODULE_VERSION"),
    ("victorialogs-wrapper", "github.com/VictoriaMetrics/VictoriaLogs", "LAB_VICTORIALOGS_VERSION"),
    ("compose-wrapper", "github.com/docker/compose/v5", "LAB_COMPOSE_VERSION"),
])
def test_program_wrappers_match_env(wrapper, module, var):
    path = ROOT / "scripts/native" / wrapper / "go.mod"
    assert go_mod_requires(path, module) == f"v{ENV[var]}"
    assert re.search(r"^tool ", path.read_text(), re.M), f"{path}: the program is a `tool` of the wrapper"


def test_jaeger_wrapper_repeats_the_modules_replace():
    # cmd/jaeger's go.mod pins Shopify/sarama with a replace, which Go ignores outside it.
    assert "replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0" in (
        ROOT / "scripts/native/jaeger-wrapper/go.mod").read_text()


def test_jaeger_module_and_release_versions_correspond():
    # Jaeger tags every v2.X.0 release also as v1.(63+X).0 (v2.0.0 = v1.63.0; CHANGELOG.md).
    major, minor, patch = (int(x) for x in ENV["LAB_JAEGER_VERSION"].split("."))
    assert major == 2 and ENV["LAB_JAEGER_MODULE_VERSION"] == f"1.{63 + minor}.{patch}"


def test_pint_wrapper_matches_env():
    assert go_mod_requires(ROOT / "scripts/native/pint-wrapper/go.mod", "github.com/cloudflare/pint") == f"v{ENV['LAB_PINT_VERSION']}"


def test_docs_versions_table_matches_env():
    # docs/stack.md repeats the versions for readers; keep it from rotting.
    rows = re.findall(r"^\| [^|]+ \| `(LAB_\w+_VERSION|LAB_PYTHON_IMAGE)` \| ([^|]+?) \|", (ROOT / "docs/stack.md").read_text(), re.M)
    assert rows, "versions table not found in docs/stack.md"
    assert {var: version for var, version in rows} == {k: v for k, v in ENV.items() if k.endswith("_VERSION") or k == "LAB_PYTHON_IMAGE"}


def test_native_binary_names_carry_the_env_versions(tmp_path):
    out = subprocess.run(
        ["bash", "-c", "source scripts/native/lib.sh && for b in otelcol prometheus promtool alertmanager amtool pint jaeger victorialogs docker-compose; do lab_bin $b; done"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    ).stdout.split()
    names = [Path(p).name for p in out]
    assert names == [
        f"otelcol-{ENV['LAB_OTELCOL_VERSION']}",
        f"prometheus-{ENV['LAB_PROMETHEUS_VERSION']}",
        f"promtool-{ENV['LAB_PROMETHEUS_VERSION']}",
        f"alertmanager-{ENV['LAB_ALERTMANAGER_VERSION']}",
        f"amtool-{ENV['LAB_ALERTMANAGER_VERSION']}",
        f"pint-{ENV['LAB_PINT_VERSION']}",
        f"jaeger-{ENV['LAB_JAEGER_VERSION']}",
        f"victoria-logs-{ENV['LAB_VICTORIALOGS_VERSION']}",
        f"docker-compose-{ENV['LAB_COMPOSE_VERSION']}",
    ]


# --- ports ------------------------------------------------------------------------------


def test_every_compose_port_is_bound_to_loopback():
    for name, service in RAW_COMPOSE["services"].items():
        for spec in service.get("ports", []):
            assert str(spec).startswith("127.0.0.1:"), f"{name}: {spec}"


def test_every_env_port_is_published_once():
    published = [var for name in RAW_COMPOSE["services"] for var in container_ports(name)]
    env_ports = sorted(k for k in ENV if k.endswith("_PORT") and k not in INTERNAL_PORTS)
    assert sorted(published) == env_ports


def test_component_table_covers_the_compose_services_and_ports():
    names = [row[0] for row in COMPONENTS]
    assert set(names) == set(RAW_COMPOSE["services"]) - {"grafana"}
    ports = [p for row in COMPONENTS for p in row[3].split(",")]
    assert len(ports) == len(set(ports))
    assert set(ports) == {k for k in ENV if k.endswith("_PORT")} - {"LAB_GRAFANA_PORT"}
    for name, health_port, _, listens in COMPONENTS:
        assert health_port in listens.split(","), name


def test_container_ports_are_distinct_across_services():
    # So that the unchanged file also runs with every service on the host network.
    taken: dict[int, str] = {}
    jaeger_env = SERVICES["jaeger"]["environment"]
    for name in RAW_COMPOSE["services"]:
        ports = set(container_ports(name).values())
        if name == "jaeger":
            ports |= {int(v) for k, v in jaeger_env.items() if k.endswith("_PORT")}
        if name == "otel-collector":
            ports |= {int(v) for k, v in SERVICES[name]["environment"].items() if k.endswith("_PORT")}
        for port in ports:
            assert port not in taken, f"{name} and {taken.get(port)} both listen on {port}"
            taken[port] = name


def test_jaeger_ports_agree_in_both_modes():
    env = SERVICES["jaeger"]["environment"]
    listeners = {
        "LAB_JAEGER_OTLP_GRPC_PORT": JAEGER["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        "LAB_JAEGER_UI_PORT": JAEGER["extensions"]["jaeger_query"]["http"]["endpoint"],
        "LAB_JAEGER_QUERY_GRPC_PORT": JAEGER["extensions"]["jaeger_query"]["grpc"]["endpoint"],
        "LAB_JAEGER_HEALTH_PORT": JAEGER["extensions"]["healthcheckv2"]["http"]["endpoint"],
    }
    for var, expr in listeners.items():
        assert expr.startswith("${env:JAEGER_LISTEN_HOST:-127.0.0.1}:"), expr
        port = int(collector_default(re.search(rf"\$\{{env:{var}:-[^}}]*\}}", expr).group(0)))
        assert port == int(env[var]) == int(ENV[var]), var
    assert container_ports("jaeger") == {"LAB_JAEGER_UI_PORT": int(env["LAB_JAEGER_UI_PORT"])}
    assert SERVICES["jaeger"]["healthcheck"]["test"][-1] == f"http://localhost:{env['LAB_JAEGER_HEALTH_PORT']}/status"


def test_collector_container_ports_match_its_config():
    service = SERVICES["otel-collector"]
    env = service["environment"]
    ports = container_ports("otel-collector")
    # Container side of each published port = what the collector listens on in compose
    # = the default the base config uses natively.
    listeners = {
        "LAB_OTLP_GRPC_PORT": COLLECTOR["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        "LAB_OTLP_HTTP_PORT": COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"],
        "LAB_OTLP_REDACTED_GRPC_PORT": COLLECTOR["receivers"]["otlp/redacted"]["protocols"]["grpc"]["endpoint"],
        "LAB_OTLP_REDACTED_HTTP_PORT": COLLECTOR["receivers"]["otlp/redacted"]["protocols"]["http"]["endpoint"],
        "LAB_COLLECTOR_HEALTH_PORT": COLLECTOR["extensions"]["health_check"]["endpoint"],
        "LAB_COLLECTOR_METRICS_PORT": str(
            COLLECTOR["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"]
        ),
    }
    for var, expr in listeners.items():
        assert f"${{env:{var}:-" in expr, f"{var} not used by the collector config ({expr})"
        port_expr = re.search(rf"\$\{{env:{var}:-[^}}]*\}}", expr).group(0)
        assert int(collector_default(port_expr)) == ports[var] == int(env[var]) == int(ENV[var]), var
    assert env["LAB_COLLECTOR_LISTEN_HOST"] == "0.0.0.0"


def test_collector_targets_are_compose_services():
    env = SERVICES["otel-collector"]["environment"]
    host, port = host_port(env["LAB_PROMETHEUS_OTLP_ENDPOINT"])
    assert (host, port) == ("prometheus", container_ports("prometheus")["LAB_PROMETHEUS_PORT"])
    assert urlsplit(env["LAB_PROMETHEUS_OTLP_ENDPOINT"]).path == "/api/v1/otlp"
    jaeger_env = SERVICES["jaeger"]["environment"]
    assert host_port(env["LAB_JAEGER_OTLP_ENDPOINT"]) == ("jaeger", int(jaeger_env["LAB_JAEGER_OTLP_GRPC_PORT"]))
    vl = SERVICES["victorialogs"]
    assert host_port(env["LAB_VICTORIALOGS_OTLP_ENDPOINT"]) == ("victorialogs", container_ports("victorialogs")["LAB_VICTORIALOGS_PORT"])
    assert f"-httpListenAddr=:{container_ports('victorialogs')['LAB_VICTORIALOGS_PORT']}" in vl["command"]
    assert urlsplit(env["LAB_VICTORIALOGS_OTLP_ENDPOINT"]).path == "/insert/opentelemetry/v1/logs"
    # The native defaults of the collector config are the same paths on 127.0.0.1 and .env's ports.
    exporters = COLLECTOR["exporters"]
    assert collector_default(exporters["otlp_grpc/jaeger"]["endpoint"]) == f"127.0.0.1:{ENV['LAB_JAEGER_OTLP_GRPC_PORT']}"
    assert collector_default(exporters["otlp_http/victorialogs"]["logs_endpoint"]) == \
        f"http://127.0.0.1:{ENV['LAB_VICTORIALOGS_PORT']}/insert/opentelemetry/v1/logs"


def test_traces_and_logs_reach_their_backends_and_the_files():
    pipelines = COLLECTOR["service"]["pipelines"]
    assert pipelines["traces"]["exporters"][:2] == ["otlp_grpc/jaeger", "file/traces"]
    assert pipelines["logs"]["exporters"][:2] == ["otlp_http/victorialogs", "file/logs"]
    # one collector config for both modes: compose loads exactly this file
    assert SERVICES["otel-collector"]["command"] == ["--config=/etc/otelcol/config.yaml"]


def test_victorialogs_flags_are_the_same_in_both_modes():
    for flag in SERVICES["victorialogs"]["command"]:
        name = flag.split("=", 1)[0]
        assert re.search(rf"^\s*{re.escape(name)}=", UP_SH, re.M), f"up.sh does not pass {name}"
    assert "-retentionPeriod=7d" in UP_SH


def test_prometheus_compose_targets_are_services_and_container_ports():
    targets_dir = ROOT / "prometheus/targets/compose"
    expected = {
        "otel-collector.yml": ("otel-collector", container_ports("otel-collector")["LAB_COLLECTOR_METRICS_PORT"]),
        "prometheus.yml": ("prometheus", container_ports("prometheus")["LAB_PROMETHEUS_PORT"]),
        "alertmanager.yml": ("alertmanager", container_ports("alertmanager")["LAB_ALERTMANAGER_PORT"]),
    }
    found = {}
    for path in targets_dir.glob("*.yml"):
        (group,) = yaml.safe_load(path.read_text())
        (target,) = group["targets"]
        found[path.name] = host_port(target)
    assert found == expected


def test_prometheus_file_sd_files_exist_in_both_modes(tmp_path):
    referenced = set()
    for job in PROMETHEUS["scrape_configs"]:
        for sd in job["file_sd_configs"]:
            referenced.update(sd["files"])
    for am in PROMETHEUS["alerting"]["alertmanagers"]:
        for sd in am["file_sd_configs"]:
            referenced.update(sd["files"])
    names = {Path(f).name for f in referenced}
    assert all(Path(f).parent == Path("targets") for f in referenced), referenced
    assert {p.name for p in (ROOT / "prometheus/targets/compose").glob("*.yml")} == names
    subprocess.run(["bash", "-c", f'source scripts/native/lib.sh && lab_render_native_etc "{tmp_path}"'], cwd=ROOT, check=True)
    assert {p.name for p in (tmp_path / "prometheus/etc/targets").glob("*.yml")} == names
    # Compose mounts targets/compose/ where prometheus.yml's relative "targets/" points.
    volumes = RAW_COMPOSE["services"]["prometheus"]["volumes"]
    assert "./prometheus/targets/compose:/etc/prometheus/targets:ro" in volumes
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes


def test_prometheus_flags_are_the_same_in_both_modes():
    compose_flags = {f for f in SERVICES["prometheus"]["command"] if not re.match(r"--(config\.file|storage\.tsdb\.path)=", f)}
    assert {"--web.enable-otlp-receiver", "--enable-feature=exemplar-storage", "--web.enable-lifecycle"} <= compose_flags
    # The lifecycle API is the default profile's (up.sh: PROMETHEUS_PROFILE); the others always.
    assert re.search(r"^PROMETHEUS_PROFILE=\(--web\.enable-lifecycle\)$", UP_SH, re.M)
    for flag in compose_flags - {"--web.enable-lifecycle"}:
        assert re.search(rf"^\s*{re.escape(flag)}( \\| ;;)?$", UP_SH, re.M), f"up.sh does not pass {flag}"


def test_the_shared_profile_override_changes_only_what_it_says(compose_check):
    """docker-compose.shared.yml over docker-compose.yml, as compose merges them."""
    base = load_with_compose(compose_check, ROOT)["services"]
    shared = load_with_compose(compose_check, ROOT, "docker-compose.shared.yml")["services"]
    web = "--web.config.file=/etc/lab-auth/web.yml"
    assert shared["prometheus"]["command"] == [f for f in base["prometheus"]["command"] if f != "--web.enable-lifecycle"] + [web]
    assert shared["alertmanager"]["command"] == base["alertmanager"]["command"] + [web]
    assert shared["otel-collector"]["command"] == base["otel-collector"]["command"] + ["--config=/etc/lab-auth/otelcol-shared.yaml"]
    assert shared["webhook-sink"]["command"] == base["webhook-sink"]["command"] + ["--token-file", "/etc/lab-auth/sink-token"]
    assert shared["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for name in ("prometheus", "alertmanager", "otel-collector", "webhook-sink"):
        assert any(v["target"] == "/etc/lab-auth" and v.get("read_only") for v in shared[name]["volumes"]), name
    # The generated configs replace the repository's at the same paths; data moves to the state directory.
    targets = {s: {v["target"]: v for v in shared[s]["volumes"]} for s in ("prometheus", "alertmanager", "grafana")}
    assert targets["prometheus"]["/etc/prometheus/prometheus.yml"]["source"].endswith("auth/prometheus.yml")
    assert targets["alertmanager"]["/etc/alertmanager/alertmanager.yml"]["source"].endswith("auth/alertmanager.yml")
    assert targets["prometheus"]["/prometheus"]["type"] == "bind"
    assert set(shared) == set(base)  # no service added or removed


def test_prometheus_otlp_settings():
    assert PROMETHEUS["otlp"]["promote_resource_attributes"] == ["lab.scenario", "lab.variant"]
    assert "translation_strategy" not in PROMETHEUS["otlp"], "the default strategy is the documented decision"
    assert PROMETHEUS["storage"]["tsdb"]["out_of_order_time_window"] == "30m"


def test_alertmanager_webhook_reaches_the_sink_in_compose():
    url_file = ALERTMANAGER["receivers"][0]["webhook_configs"][0]["url_file"]
    assert not Path(url_file).is_absolute()
    am = RAW_COMPOSE["services"]["alertmanager"]
    mounted = {dst: src for src, dst, *_ in (v.split(":") for v in am["volumes"])}
    target = f"{am['working_dir']}/{url_file}"
    assert target in mounted, f"{target} is not mounted into the alertmanager container"
    url = (ROOT / mounted[target]).read_text().strip()
    sink = RAW_COMPOSE["services"]["webhook-sink"]
    sink_port = int(sink["command"][sink["command"].index("--port") + 1])
    assert host_port(url) == ("webhook-sink", sink_port)
    assert container_ports("webhook-sink")["LAB_WEBHOOK_SINK_PORT"] == sink_port


def test_alertmanager_cluster_is_off_in_both_modes():
    assert "--cluster.listen-address=" in SERVICES["alertmanager"]["command"]
    assert "--cluster.listen-address=" in UP_SH


# --- Grafana ----------------------------------------------------------------------------


def test_grafana_datasource_uids_and_urls():
    by_uid = {d["uid"]: d for d in DATASOURCES}
    assert set(by_uid) == {"prometheus", "jaeger", "victorialogs", "alertmanager"}
    service_port = {
        "prometheus": ("prometheus", container_ports("prometheus")["LAB_PROMETHEUS_PORT"]),
        "jaeger": ("jaeger", container_ports("jaeger")["LAB_JAEGER_UI_PORT"]),
        "victorialogs": ("victorialogs", container_ports("victorialogs")["LAB_VICTORIALOGS_PORT"]),
        "alertmanager": ("alertmanager", container_ports("alertmanager")["LAB_ALERTMANAGER_PORT"]),
    }
    types = {"prometheus": "prometheus", "jaeger": "jaeger", "victorialogs": "victoriametrics-logs-datasource",
             "alertmanager": "alertmanager"}
    for uid, ds in by_uid.items():
        assert ds["type"] == types[uid]
        assert host_port(ds["url"]) == service_port[uid], uid


def test_the_logs_datasource_plugin_is_installed_at_container_start():
    plugin = next(d["type"] for d in DATASOURCES if d["uid"] == "victorialogs")
    env = RAW_COMPOSE["services"]["grafana"]["environment"]
    # pinned: `<id>@<version>`, the version from .env (a bare id would install whatever is newest)
    assert f"{plugin}@${{LAB_GRAFANA_VICTORIALOGS_PLUGIN_VERSION}}" in env["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert re.fullmatch(r"\d+\.\d+\.\d+", ENV["LAB_GRAFANA_VICTORIALOGS_PLUGIN_VERSION"])


def test_grafana_datasource_links_point_at_existing_uids():
    by_uid = {d["uid"]: d for d in DATASOURCES}
    links = [
        by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"],
        by_uid["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"],
        by_uid["jaeger"]["jsonData"]["tracesToMetrics"]["datasourceUid"],
        by_uid["victorialogs"]["jsonData"]["derivedFields"][0]["datasourceUid"],
    ]
    assert links == ["jaeger", "victorialogs", "prometheus", "jaeger"]
    # the trace-to-logs query is LogsQL on the field VictoriaLogs stores the OTLP trace id in
    assert by_uid["jaeger"]["jsonData"]["tracesToLogsV2"]["query"] == 'trace_id:"$${__trace.traceId}"'
    assert by_uid["victorialogs"]["jsonData"]["derivedFields"][0]["matcherRegex"] == "trace_id"


def test_grafana_provisioning_mounts_and_dashboards_path():
    grafana = RAW_COMPOSE["services"]["grafana"]
    mounted = {dst: src for src, dst, *_ in (v.split(":") for v in grafana["volumes"])}
    assert mounted["/etc/grafana/provisioning"] == "./grafana/provisioning"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yaml").read_text())["providers"][0]
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert mounted[provider["options"]["path"]] == "./grafana/dashboards"
    assert "grafana-data" in COMPOSE["volumes"]


def test_grafana_admin_password_and_anonymous_viewer():
    env = RAW_COMPOSE["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GF_SECURITY_ADMIN_PASSWORD}"
    assert ENV["GF_SECURITY_ADMIN_PASSWORD"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# --- interval ---------------------------------------------------------------------------


def test_one_interval_everywhere():
    interval = ENV["LAB_INTERVAL"]
    m = re.fullmatch(r"(\d+)s", interval)
    assert m, interval
    assert int(ENV["LAB_INTERVAL_MS"]) == int(m.group(1)) * 1000
    assert PROMETHEUS["global"]["scrape_interval"] == interval
    assert PROMETHEUS["global"]["evaluation_interval"] == interval
    prom_ds = next(d for d in DATASOURCES if d["uid"] == "prometheus")
    assert prom_ds["jsonData"]["timeInterval"] == "${LAB_INTERVAL}"
    assert RAW_COMPOSE["services"]["grafana"]["environment"]["LAB_INTERVAL"] == "${LAB_INTERVAL}"
    # The collector batches well under the interval.
    timeout = COLLECTOR["processors"]["batch"]["timeout"]
    assert float(timeout.rstrip("s")) < int(m.group(1)) / 2


# --- compose hygiene --------------------------------------------------------------------


def test_named_volumes_for_backend_data():
    volumes = COMPOSE["volumes"]
    for name, mount in [
        ("prometheus", "prometheus-data:/prometheus"),
        ("alertmanager", "alertmanager-data:/alertmanager"),
        ("grafana", "grafana-data:/var/lib/grafana"),
        ("victorialogs", "victorialogs-data:/victoria-logs-data"),
    ]:
        assert mount in RAW_COMPOSE["services"][name]["volumes"], name
        assert mount.split(":")[0] in volumes


# The collector and VictoriaLogs images have no shell/curl/wget (scripts/stack.sh probes
# them from the host).
NO_HEALTHCHECK = {"otel-collector", "victorialogs"}


@pytest.mark.parametrize("name", sorted(set(RAW_COMPOSE["services"]) - NO_HEALTHCHECK))
def test_long_running_services_have_healthchecks(name):
    assert "healthcheck" in RAW_COMPOSE["services"][name]


CONFIG_FILES = [
    "docker-compose.yml",
    "docker-compose.shared.yml",
    ".env",
    "otel-collector/config.yaml",
    "jaeger/config.yaml",
    "scripts/native/components.tsv",
    "otel-collector/builder-config.yaml",
    "prometheus/prometheus.yml",
    "prometheus/alerts/stack.rules.yml",
    "alertmanager/alertmanager.yml",
    "grafana/provisioning/datasources/datasources.yaml",
    "grafana/provisioning/dashboards/dashboards.yaml",
]


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_config_files_open_with_a_header_saying_how_they_are_loaded(path):
    text = (ROOT / path).read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 3, f"{path} should open with a header comment"
    joined = " ".join(header).lower()
    if path not in {".env"}:
        assert "compose" in joined and "native" in joined, f"{path}: header should say how compose and native mode load it"


def test_grafana_serves_the_runbooks_where_the_dashboards_link_them():
    # With LAB_RUNBOOK_BASE=docs/runbooks (.env) the dashboards link /public/runbooks/<Alert>.md on
    # Grafana's own address (lab.repo.grafana_runbook_base). Grafana serves its static root,
    # <GF_PATHS_HOME>/public = /usr/share/grafana/public in the image, at /public/.
    grafana = RAW_COMPOSE["services"]["grafana"]
    assert f"./docs/runbooks:/usr/share/grafana{GRAFANA_RUNBOOK_PATH}:ro" in grafana["volumes"]
    assert not {"GF_PATHS_HOME", "GF_SERVER_STATIC_ROOT_PATH"} & set(grafana.get("environment", {}))
    assert (ROOT / "docs" / "runbooks" / "README.md").is_file()


def test_the_collector_guard_admits_the_catalogue_and_nothing_else():
    # The cardinality guard is written out in the collector config (both modes load it); its
    # lists must be the catalogue's: every lab metric passes, with every attribute key it uses.
    pipeline = COLLECTOR["service"]["pipelines"]["metrics"]["processors"]
    assert pipeline == ["memory_limiter", "filter/guard", "transform/guard", "batch"]
    processors = COLLECTOR["processors"]
    [condition] = processors["filter/guard"]["metrics"]["metric"]
    namespace = re.fullmatch(r'not IsMatch\(name, "(.+)"\)', condition).group(1).replace("\\\\", "\\")
    assert all(re.match(namespace, i.name) for i in CATALOGUE)
    assert not re.match(namespace, "drill.flood") and not re.match(namespace, "http.server.request.duration")
    [statement] = processors["transform/guard"]["metric_statements"]
    keys = re.fullmatch(r"keep_keys\(datapoint\.attributes, \[(.*)\]\)", statement).group(1)
    kept = {k.strip().strip('"') for k in keys.split(",")}
    assert kept == set(ALLOWED_ATTRIBUTES) == {a for i in CATALOGUE for a in i.attributes}
    # persisted queue toward Prometheus
    assert COLLECTOR["exporters"]["otlp_http/prometheus"]["sending_queue"]["storage"] == "file_storage/queue"
    assert "file_storage/queue" in COLLECTOR["service"]["extensions"]


def test_the_redacting_entry_point_masks_before_every_backend_and_both_exits_are_counted():
    # Two OTLP entry points (docs/stack.md "Personal data in telemetry"): otlp/redacted's traces and
    # logs run the redaction step and reach the same backends as otlp's; its metrics take the guarded
    # metrics pipeline. The exit count (count/pii) sees both traces pipelines after their processors.
    pipelines = COLLECTOR["service"]["pipelines"]
    fed = {name for name, p in pipelines.items() if "otlp/redacted" in p["receivers"]}
    assert fed == {"metrics", "traces/redacted", "logs/redacted"}
    for signal in ("traces", "logs"):
        plain, redacted = pipelines[signal], pipelines[f"{signal}/redacted"]
        assert plain["receivers"] == ["otlp"] and "redaction" not in plain["processors"]
        assert redacted["processors"] == ["memory_limiter", "redaction", "batch"]
        assert redacted["exporters"] == plain["exporters"]
    assert {n for n, p in pipelines.items() if "count/pii" in p["exporters"]} == {"traces", "traces/redacted"}
    assert pipelines["traces"]["exporters"][-1] == "count/pii"
    counts = pipelines["metrics/pii"]
    assert counts["receivers"] == ["count/pii"]
    assert counts["processors"] == ["memory_limiter", "transform/pii", "filter/guard", "transform/guard",
                                    "delta_to_cumulative", "interval", "batch"]
    assert counts["exporters"] == pipelines["metrics"]["exporters"]
    redaction = COLLECTOR["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True and redaction["summary"] == "info"
    # the counts are catalogued lab metrics made by the collector, with bounded attributes
    made = {i.name: i for i in CATALOGUE if i.family == "collector"}
    assert set(made) == {"ml.collector.pii.spans", "ml.collector.pii.masked"}
    statements = " ".join(s for group in COLLECTOR["processors"]["transform/pii"]["metric_statements"]
                          for s in group["statements"])
    for kind in ALLOWED_ATTRIBUTES["pii_type"]:
        assert f'set(datapoint.attributes["pii_type"], "{kind}") where metric.name == "ml.collector.pii.spans.{kind}"' \
            in statements
    assert 'set(metric.name, "ml.collector.pii.spans")' in statements
    assert "ml.collector.pii.masked" in COLLECTOR["connectors"]["count/pii"]["spans"]
