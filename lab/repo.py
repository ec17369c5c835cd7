"""The one reader of the repository's own files: .env, the running stack's address (stack.env), the alert rule files, the Alertmanager config.

Runtime code (`lab run` finding the stack, practice mode's reveal) and dev tooling
(benchmarks, the alert matrix, replays) and the tests all read these through here, so a
file's format is parsed once. Scenario files are read by lab/specs/loader.py, which owns
their schema.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERT_RULES_DIR = ROOT / "prometheus" / "alerts"
RECORDING_RULES_DIR = ROOT / "prometheus" / "rules"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse .env the way scripts/native/lib.sh does: KEY=VALUE lines, # comments, no quoting."""
    env: dict[str, str] = {}
    for line in (path or ROOT / ".env").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


# --- the running stack's address: $LAB_STATE_DIR/stack.env ------------------------------------
#
# `make up` (both modes: scripts/native/lib.sh lab_write_stack_env) records the stack it
# started there and `make down` removes it. `lab` reads it when the environment does not say
# where the stack is: explicit variables always win. The OTLP endpoint and protocol count as
# one setting: if the environment sets any OTLP endpoint or protocol variable, the file's pair
# is left out entirely (its endpoint with another protocol would send to the wrong port).

STACK_ENV = "stack.env"
OTLP_VARS = tuple(f"OTEL_EXPORTER_OTLP_{signal}{what}" for signal in ("", "METRICS_", "TRACES_", "LOGS_")
                  for what in ("ENDPOINT", "PROTOCOL"))
OTLP_PAIR = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL")
OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"  # the shared profile's bearer token (docs/stack.md "Shared hosts")
AUTH_DIR = "LAB_AUTH_DIR"  # the shared profile's credentials folder (credentials.env)
HEADER_VARS = tuple(f"OTEL_EXPORTER_OTLP_{signal}HEADERS" for signal in ("", "METRICS_", "TRACES_", "LOGS_"))
# URL variables of stack.env that lab may use, each with the .env port variable that, set in
# the environment, says where that component is instead.
STACK_URL_VARS = {
    "LAB_PROMETHEUS_URL": "LAB_PROMETHEUS_PORT",
    "LAB_ALERTMANAGER_URL": "LAB_ALERTMANAGER_PORT",
    "LAB_WEBHOOK_SINK_URL": "LAB_WEBHOOK_SINK_PORT",
    "LAB_JAEGER_URL": "LAB_JAEGER_UI_PORT",
    "LAB_VICTORIALOGS_URL": "LAB_VICTORIALOGS_PORT",
    "LAB_GRAFANA_URL": "LAB_GRAFANA_PORT",
}


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where built binaries, benchmark venvs and trained models are kept between runs (outside the repo)."""
    env = os.environ if environ is None else environ
    return Path(env.get("LAB_CACHE_DIR") or Path.home() / ".cache" / "ml-obs-lab")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where `make up` keeps the stack's state: $LAB_STATE_DIR, else <repo>/.lab (as scripts/native/lib.sh)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("LAB_STATE_DIR") or ROOT / ".lab")


def stack_env_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / STACK_ENV


def read_stack_env(path: Path | None = None) -> dict[str, str]:
    """stack.env as a dict ({} when no stack was started): KEY=VALUE lines, values shell-quoted where needed."""
    try:
        text = (path or stack_env_path()).read_text()
    except (OSError, UnicodeDecodeError):  # no stack started (or an unreadable file): nothing to add
        return {}
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:  # unbalanced quote: not written by lab_write_stack_env
            continue
        env[key.strip()] = words[0] if words else ""
    return env


def stack_env_defaults(environ: Mapping[str, str] | None = None, stack: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the running stack's stack.env adds to `environ` (explicit variables win).

    The OTLP pair (endpoint + protocol) only when `environ` sets no OTLP endpoint or protocol
    variable at all, with the stack's OTLP headers unless `environ` sets some; each URL unless
    `environ` sets it or its component's port variable.
    """
    environ = os.environ if environ is None else environ
    stack = read_stack_env(stack_env_path(environ)) if stack is None else stack
    out: dict[str, str] = {}
    if not any(environ.get(v) for v in OTLP_VARS):
        if stack.get(OTLP_PAIR[0]) and stack.get(OTLP_PAIR[1]):
            out.update({v: stack[v] for v in OTLP_PAIR})
            # A shared-profile stack's OTLP token goes with its endpoint, never to another one.
            if stack.get(OTLP_HEADERS) and not any(environ.get(v) for v in HEADER_VARS):
                out[OTLP_HEADERS] = stack[OTLP_HEADERS]
        elif stack.get("LAB_OTLP_HTTP_ENDPOINT"):  # a file without the pair (written before it had one)
            out.update(zip(OTLP_PAIR, (stack["LAB_OTLP_HTTP_ENDPOINT"], "http/protobuf")))
    for url, port in STACK_URL_VARS.items():
        if stack.get(url) and not environ.get(url) and not environ.get(port):
            out[url] = stack[url]
    # A shared-profile stack's credentials go with its own Prometheus, never to another one.
    if stack.get(AUTH_DIR) and out.get("LAB_PROMETHEUS_URL") and not environ.get(AUTH_DIR):
        out[AUTH_DIR] = stack[AUTH_DIR]
    return out


def stack_basic_auth(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) of a shared-profile stack's Prometheus and Alertmanager, from
    $LAB_AUTH_DIR/credentials.env (None in the default profile, or when it cannot be read)."""
    environ = os.environ if environ is None else environ
    folder = environ.get(AUTH_DIR)
    if not folder:
        return None
    values = read_stack_env(Path(folder) / "credentials.env")  # the same KEY=VALUE format
    user, password = values.get("LAB_AUTH_USER"), values.get("LAB_AUTH_PASSWORD")
    return (user, password) if user and password else None


# --- runbook links: LAB_RUNBOOK_BASE in .env ---------------------------------------------------
#
# One setting says where every runbook link points: the alert rules' runbook_url annotations,
# the promtool tests that expect them, .pint.hcl's house style and the Grafana dashboards'
# links are generated from it (python -m lab.dev.runbook_links, `make runbook-links`; the tests
# fail while any of them disagrees). Two forms:
#   docs/runbooks          the default: this checkout's own pages, offline and in any fork. The
#                          rules carry the repository path (docs/runbooks/<Alert>.md), `lab triage
#                          reveal` prints it as an absolute path, and Grafana, which
#                          docker-compose.yml gives the folder as static files, links
#                          GRAFANA_RUNBOOK_PATH/<Alert>.md on its own address;
#   https://…/docs/runbooks  a published copy (a fork's GitHub blob URL, a docs site): used as is.

RUNBOOKS_DIR = ROOT / "docs" / "runbooks"
LOCAL_RUNBOOK_BASE = "docs/runbooks"
# Where Grafana serves docs/runbooks/ (compose mounts it under Grafana's static root, served at
# /public/ on Grafana's own address, whatever its host port).
GRAFANA_RUNBOOK_PATH = "/public/runbooks"
_URL_BASE = re.compile(r"https?://[^\s\"'<>\\^`{|}\[\]]+")


def check_runbook_base(raw: str) -> str:
    """A LAB_RUNBOOK_BASE value, normalised (no trailing slash); ValueError naming the two allowed forms."""
    base = raw.strip().removeprefix("./").rstrip("/")
    if base == LOCAL_RUNBOOK_BASE or _URL_BASE.fullmatch(base):
        return base
    raise ValueError(f"LAB_RUNBOOK_BASE={raw!r} in .env: expected {LOCAL_RUNBOOK_BASE} (this checkout's pages) "
                     "or the http(s) URL of a published docs/runbooks/ folder")


def runbook_base(env: Mapping[str, str] | None = None) -> str:
    """LAB_RUNBOOK_BASE of .env (this file only: the checked-in rules and dashboards are generated from it)."""
    return check_runbook_base((read_dotenv() if env is None else env).get("LAB_RUNBOOK_BASE", LOCAL_RUNBOOK_BASE))


def rule_runbook_url(alert: str, base: str | None = None) -> str:
    """The runbook_url annotation of `alert`'s rule: <base>/<alert>.md."""
    return f"{check_runbook_base(base) if base else runbook_base()}/{alert}.md"


def grafana_runbook_base(base: str | None = None) -> str:
    """The dashboards' `runbooks` variable: Grafana's own copy for the local base, else the URL."""
    base = check_runbook_base(base) if base else runbook_base()
    return GRAFANA_RUNBOOK_PATH if base == LOCAL_RUNBOOK_BASE else base


def runbook_location(url: str) -> str:
    """A rule's runbook_url as a reader of this checkout opens it: a local page as its absolute path, a URL as is."""
    if url.startswith(LOCAL_RUNBOOK_BASE + "/"):
        return str(ROOT / url)
    return url


def rule_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or ALERT_RULES_DIR).glob("*.rules.yml"))


def all_rule_files() -> list[Path]:
    """What Prometheus loads (prometheus.yml rule_files): the recording rules, then the alerts that read them."""
    return rule_files(RECORDING_RULES_DIR) + rule_files()


def rule_groups(files: list[Path] | None = None) -> list[dict]:
    """Every rule group of the given rule files (default: all of prometheus/alerts)."""
    groups: list[dict] = []
    for path in rule_files() if files is None else files:
        groups += (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    return groups


def alert_rules(files: list[Path] | None = None) -> dict[str, dict]:
    """{alert name: rule} of the alerting rules (recording rules left out)."""
    return {r["alert"]: r for g in rule_groups(files) for r in g.get("rules", []) if "alert" in r}


def duration_s(text: str | None) -> float:
    """A Prometheus duration (`5m`, `1h30m`, `30s`) in seconds; None or empty is 0."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text or "")))


def alertmanager_route() -> dict:
    """The top-level route of alertmanager/alertmanager.yml (group_wait, group_interval, ...)."""
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]
