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
  LAB_UID="$(id -u)" LAB_GID="$(id -g)" docker compose --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"
}

compose_up() {
  compose up -d --wait
  source "$NATIVE/lib.sh"
  # The collector image has no tool for a Docker healthcheck: probe it from here.
  lab_wait_http otel-collector "http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/" "${LAB_UP_TIMEOUT:-60}" \
    "docker compose logs otel-collector"
  cat <<EOF
compose stack is up:
  OTLP          gRPC 127.0.0.1:$LAB_OTLP_GRPC_PORT, HTTP http://127.0.0.1:$LAB_OTLP_HTTP_PORT
  Grafana       http://127.0.0.1:$LAB_GRAFANA_PORT  (anonymous Viewer; admin password: GF_SECURITY_ADMIN_PASSWORD in .env)
  Prometheus    http://127.0.0.1:$LAB_PROMETHEUS_PORT
  Alertmanager  http://127.0.0.1:$LAB_ALERTMANAGER_PORT
  Alerts seen   http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT/alerts
  Tempo         http://127.0.0.1:$LAB_TEMPO_PORT   Loki http://127.0.0.1:$LAB_LOKI_PORT
  Files         $LAB_STATE_DIR/otelcol/*.jsonl
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
    "$NATIVE/$cmd.sh" || rc=$?
    if docker_ok; then
      if [[ "$cmd" == down ]]; then compose down || rc=$?; else compose ps || rc=$?; fi
    fi
    exit "$rc"
  fi
fi

case "$mode:$cmd" in
  native:*) exec "$NATIVE/$cmd.sh" ;;
  compose:up) docker_ok || { echo "stack.sh: --compose needs a Docker engine, and \`docker info\` fails" >&2; exit 1; }; compose_up ;;
  compose:down) compose down ;;
  compose:status) compose ps ;;
esac
