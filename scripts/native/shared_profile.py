#!/usr/bin/env python3
"""Credentials and configs of the shared-host profile (`make up LAB_PROFILE=shared`).

    shared_profile.py <state dir> --mode native|compose

Run by scripts/native/up.sh and scripts/stack.sh (compose) before the stack starts. On a
machine that several people use, any local user can reach every 127.0.0.1 port: this profile
puts each write and admin path behind a credential only the owner of the state directory can
read. It writes <state dir>/auth/ (mode 0700; every file 0600):

  credentials.env     LAB_AUTH_USER, LAB_AUTH_PASSWORD, LAB_OTLP_TOKEN, LAB_SINK_TOKEN: made
                      once with `secrets`, kept across restarts (delete the folder to rotate)
  password, otlp-token, sink-token, otlp-headers, basic
                      the same secrets one per file, for the *_file settings that read them
                      (basic: `user:password` in base64, for the compose health checks)
  web.yml             Prometheus's and Alertmanager's --web.config.file: basic auth, bcrypt hash
  curl.conf           `curl -K` config for the health probes (scripts/native/lib.sh)
  prometheus.yml      prometheus/prometheus.yml plus basic auth on the scrapes of Prometheus and
                      Alertmanager and on alert delivery
  alertmanager.yml    alertmanager/alertmanager.yml plus the sink's bearer token on the webhook
  otelcol-shared.yaml a second --config for the collector, merged over otel-collector/config.yaml:
                      the OTLP receivers require the bearer token (bearertokenauth extension),
                      the export to Prometheus sends basic auth
  grafana-datasources.yaml
                      grafana/provisioning/datasources/datasources.yaml with basic auth on the
                      Prometheus and Alertmanager datasources (compose: Grafana runs only there)

--mode says which paths the configs name: the state directory's own (native) or the
containers' mounts (compose: docker-compose.shared.yml mounts auth/ at /etc/lab-auth).
Standard library, PyYAML and bcrypt (the project's dependencies).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

try:
    import bcrypt
    import yaml
except ImportError as missing:  # run by the system's python3: the project's environment is not there yet
    sys.exit(f"shared_profile.py: {missing.name} is missing: the shared profile needs the project's environment "
             "(`make venv`, then `make up LAB_PROFILE=shared` again)")

ROOT = Path(__file__).resolve().parents[2]
USER = "lab"
SECRETS = ("LAB_AUTH_PASSWORD", "LAB_OTLP_TOKEN", "LAB_SINK_TOKEN")
COMPOSE_AUTH_DIR = "/etc/lab-auth"  # docker-compose.shared.yml mounts <state>/auth here
HEADER = "# Written by scripts/native/shared_profile.py for the shared-host profile; do not edit.\n"


def write(path: Path, text: str) -> None:
    """A secret-bearing file, readable by its owner only, replaced in one rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def load_secrets(auth: Path) -> dict[str, str]:
    """The profile's secrets: those already in credentials.env, new random ones for the rest."""
    known: dict[str, str] = {}
    env = auth / "credentials.env"
    if env.exists():
        for line in env.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key in SECRETS and value:
                known[key] = value
    return {k: known.get(k) or secrets.token_urlsafe(24) for k in SECRETS}


def prometheus_config(password_file: str) -> str:
    cfg = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    def auth() -> dict:  # a fresh dict each time: shared ones would be dumped as YAML anchors
        return {"basic_auth": {"username": USER, "password_file": password_file}}

    for job in cfg["scrape_configs"]:
        if job["job_name"] in ("prometheus", "alertmanager"):  # both behind the same web.yml
            job.update(auth())
    for am in cfg["alerting"]["alertmanagers"]:
        am.update(auth())
    return HEADER + "# Source: prometheus/prometheus.yml (its comments say how it is loaded).\n" + yaml.safe_dump(cfg, sort_keys=False)


def alertmanager_config(token_file: str) -> str:
    cfg = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in cfg["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": token_file}}
    return HEADER + "# Source: alertmanager/alertmanager.yml (its comments say how it is loaded).\n" + \
        yaml.safe_dump(cfg, sort_keys=False)


def grafana_datasources(password: str) -> str:
    cfg = yaml.safe_load((ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    for ds in cfg["datasources"]:
        if ds["type"] in ("prometheus", "alertmanager"):
            ds.update({"basicAuth": True, "basicAuthUser": USER, "secureJsonData": {"basicAuthPassword": password}})
    return HEADER + "# Source: grafana/provisioning/datasources/datasources.yaml (docker-compose.shared.yml mounts it).\n" + \
        yaml.safe_dump(cfg, sort_keys=False)


def collector_overlay(token_file: str, password: str) -> str:
    """Merged over otel-collector/config.yaml (maps merge, lists are replaced: the extension list
    is the base's plus the authenticator)."""
    base = yaml.safe_load((ROOT / "otel-collector" / "config.yaml").read_text())
    basic = base64.b64encode(f"{USER}:{password}".encode()).decode()
    def auth() -> dict:
        return {"auth": {"authenticator": "bearertokenauth/otlp"}}

    overlay = {
        "extensions": {"bearertokenauth/otlp": {"filename": token_file}},
        "receivers": {name: {"protocols": {"grpc": auth(), "http": auth()}} for name in ("otlp", "otlp/redacted")},
        "exporters": {"otlp_http/prometheus": {"headers": {"Authorization": f"Basic {basic}"}}},
        "service": {"extensions": [*base["service"]["extensions"], "bearertokenauth/otlp"]},
    }
    return HEADER + "# Loaded as a second --config after otel-collector/config.yaml (scripts/native/up.sh).\n" + \
        yaml.safe_dump(overlay, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("state_dir", type=Path)
    p.add_argument("--mode", choices=("native", "compose"), required=True)
    args = p.parse_args(argv)
    auth = args.state_dir / "auth"
    auth.mkdir(parents=True, exist_ok=True)
    auth.chmod(0o700)
    s = load_secrets(auth)
    at = str(auth.resolve()) if args.mode == "native" else COMPOSE_AUTH_DIR
    write(auth / "credentials.env", HEADER + f"LAB_AUTH_USER={USER}\n" + "".join(f"{k}={v}\n" for k, v in s.items()))
    write(auth / "password", s["LAB_AUTH_PASSWORD"] + "\n")
    write(auth / "otlp-token", s["LAB_OTLP_TOKEN"] + "\n")
    write(auth / "sink-token", s["LAB_SINK_TOKEN"] + "\n")
    # OTEL_EXPORTER_OTLP_HEADERS: key=value, the value percent-encoded (a space is %20); the key in
    # lower case, as gRPC metadata requires (HTTP headers ignore case).
    write(auth / "otlp-headers", f"authorization=Bearer%20{s['LAB_OTLP_TOKEN']}\n")
    hashed = bcrypt.hashpw(s["LAB_AUTH_PASSWORD"].encode(), bcrypt.gensalt(rounds=10)).decode()
    write(auth / "web.yml", HEADER + "# Prometheus and Alertmanager: --web.config.file (exporter-toolkit format).\n"
          + yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    write(auth / "basic", base64.b64encode(f"{USER}:{s['LAB_AUTH_PASSWORD']}".encode()).decode() + "\n")
    write(auth / "grafana-datasources.yaml", grafana_datasources(s["LAB_AUTH_PASSWORD"]))
    write(auth / "curl.conf", HEADER + f'user = "{USER}:{s["LAB_AUTH_PASSWORD"]}"\n')
    write(auth / "prometheus.yml", prometheus_config(f"{at}/password"))
    write(auth / "alertmanager.yml", alertmanager_config(f"{at}/sink-token"))
    write(auth / "otelcol-shared.yaml", collector_overlay(f"{at}/otlp-token", s["LAB_AUTH_PASSWORD"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, yaml.YAMLError) as e:
        print(f"shared_profile.py: {e}", file=sys.stderr)
        sys.exit(1)
