#!/usr/bin/env bash
# Start, stop or inspect the observability stack, in compose or native mode.
#
#   scripts/stack.sh up|down|status [--native|--compose]
#
# Mode: --native or LAB_NATIVE=1 -> native (scripts/native/*.sh, processes on this
# machine built from Go modules); --compose -> docker compose; otherwise compose when a
# Docker engine answers (`docker info` succeeds), else native.
# Without a mode flag, `down` and `status` act on whatever runs: the native stack of
# LAB_STATE_DIR and, when a Docker engine answers, the compose project.
# Compose: `docker compose` when the client has the plugin, else the Compose v5 binary
# built from its Go module (scripts/docker/engine.sh compose). LAB_COMPOSE_OVERRIDE=<file>
# adds a second compose file (the tests' tests/stack/compose.test.yml); nothing else of
# docker-compose.yml can differ. DOCKER_HOST selects the engine as usual
# (scripts/docker/engine.sh start prints the private engine's).
# Both modes record the stack they started in ${LAB_STATE_DIR:-.lab}/stack.env (OTLP endpoint
# and protocol, URLs, ports: what `lab run` uses by default) and `down` removes it
# (scripts/native/lib.sh lab_write_stack_env).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NATIVE="$ROOT/scripts/native"

usage() { echo "usage: scripts/stack.sh up|down|status [--native|--compose]" >&2; exit 2; }

cmd="${1:-}"
[[ "$cmd" =~ ^(up|down|status)$ ]] || usage
shift
mode=""
for arg in "$@"; do
  case "$arg" in
    --native) mode=native ;;
    --compose) mode=compose ;;
    *) usage ;;
  esac
done
[[ -z "$mode" && "${LAB_NATIVE:-0}" == 1 ]] && mode=native

docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

compose() {
  # Compose resolves bind-mount paths against the project dir; ${LAB_STATE_DIR} must
  # exist and belong to the user, who also runs the collector and the webhook sink.
  source "$NATIVE/lib.sh"
  mkdir -p "$LAB_STATE_DIR/otelcol" "$LAB_STATE_DIR/webhook-sink"
  local cmd files=(-f "$ROOT/docker-compose.yml")
  read -r -a cmd <<<"$("$ROOT/scripts/docker/engine.sh" compose)"
  if [[ "$LAB_PROFILE" == shared ]]; then
    # docker-compose.shared.yml: the profile's credentials and configs, data in the state directory
    mkdir -p "$LAB_STATE_DIR/prometheus-data" "$LAB_STATE_DIR/alertmanager-data" "$LAB_STATE_DIR/grafana-data"
    files+=(-f "$ROOT/docker-compose.shared.yml")
    # LAB_AUTH_PASSWORD for Grafana's admin (the .env default is in every clone), from the owner's file
    if [[ -f "$LAB_AUTH_DIR/credentials.env" ]]; then set -a; source "$LAB_AUTH_DIR/credentials.env"; set +a; fi
  fi
  [[ -n "${LAB_COMPOSE_OVERRIDE:-}" ]] && files+=(-f "$LAB_COMPOSE_OVERRIDE")
  LAB_UID="$(id -u)" LAB_GID="$(id -g)" "${cmd[@]}" --project-directory "$ROOT" "${files[@]}" "$@"
}

compose_up() {
  source "$NATIVE/lib.sh"
  if [[ "$LAB_PROFILE" == shared ]]; then
    mkdir -p "$LAB_STATE_DIR" && chmod 700 "$LAB_STATE_DIR"
    "$(lab_python)" "$NATIVE/shared_profile.py" "$LAB_STATE_DIR" --mode compose ||
      { echo "stack.sh: the shared profile's credentials could not be written" >&2; exit 1; }
  fi
  echo "$LAB_PROFILE" >"$LAB_STATE_DIR/profile"
  compose up -d --wait
  # The collector and VictoriaLogs images have no tool for a Docker healthcheck: probe
  # them from here.
  lab_wait_http victorialogs "http://127.0.0.1:$LAB_VICTORIALOGS_PORT/health" "${LAB_UP_TIMEOUT:-60}" \
    "docker compose logs victorialogs"
  lab_wait_http otel-collector "http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/" "${LAB_UP_TIMEOUT:-60}" \
    "docker compose logs otel-collector"
  lab_write_stack_env compose
  compose_urls
}

compose_down() {
  compose down
  source "$NATIVE/lib.sh"
  lab_remove_stack_env compose
  rm -f "$LAB_STATE_DIR/profile"
}

compose_urls() {
  source "$NATIVE/lib.sh"
  cat <<EOF
compose stack:
  OTLP          gRPC 127.0.0.1:$LAB_OTLP_GRPC_PORT, HTTP http://127.0.0.1:$LAB_OTLP_HTTP_PORT
  Grafana       http://127.0.0.1:$LAB_GRAFANA_PORT  $(if [[ "$LAB_PROFILE" == shared ]]; then echo "(no anonymous access; admin, password LAB_AUTH_PASSWORD in $LAB_AUTH_DIR/credentials.env)"; else echo "(anonymous Viewer; admin password: GF_SECURITY_ADMIN_PASSWORD in .env)"; fi)
  Prometheus    http://127.0.0.1:$LAB_PROMETHEUS_PORT
  Alertmanager  http://127.0.0.1:$LAB_ALERTMANAGER_PORT
  Alerts seen   http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT/alerts
  Jaeger        http://127.0.0.1:$LAB_JAEGER_UI_PORT  (traces: UI + /api/traces/<trace id>)
  VictoriaLogs  http://127.0.0.1:$LAB_VICTORIALOGS_PORT  (logs: UI at /select/vmui, LogsQL at /select/logsql/query)
  Files         $LAB_STATE_DIR/otelcol/*.jsonl
  Address       $LAB_STATE_DIR/stack.env  (what \`lab run\` and \`lab triage\` use by default)
EOF
}

if [[ -z "$mode" ]]; then
  if [[ "$cmd" == up ]]; then
    if docker_ok; then mode=compose; else
      echo "stack.sh: no Docker engine answers (docker info); using native mode" >&2
      mode=native
    fi
  else
    rc=0
    # The native stack of LAB_STATE_DIR, when it has pid files (or always, for down: idempotent).
    if [[ "$cmd" == down ]] || compgen -G "${LAB_STATE_DIR:-$ROOT/.lab}/run/*.pid" >/dev/null; then
      "$NATIVE/$cmd.sh" || rc=$?
    elif ! docker_ok; then
      echo "stack.sh: no native stack in ${LAB_STATE_DIR:-$ROOT/.lab} and no Docker engine answers" >&2
      rc=1
    fi
    if docker_ok; then
      if [[ "$cmd" == down ]]; then compose_down || rc=$?; else { compose ps && compose_urls; } || rc=$?; fi
    fi
    exit "$rc"
  fi
fi

case "$mode:$cmd" in
  native:*) exec "$NATIVE/$cmd.sh" ;;
  compose:up) docker_ok || { echo "stack.sh: --compose needs a Docker engine, and \`docker info\` fails" >&2; exit 1; }; compose_up ;;
  compose:down) compose_down ;;
  compose:status) compose ps && compose_urls ;;
esac
