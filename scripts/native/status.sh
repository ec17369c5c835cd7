#!/usr/bin/env bash
# Show which native-stack processes run, whether they answer, and their URLs.
#
#   scripts/native/status.sh
#
# Reads the pid files of ${LAB_STATE_DIR:-<repo>/.lab}/run/ written by up.sh.
# Exit status: 0 when every component runs and is healthy, 1 otherwise.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
lab_native_env
RUN="$LAB_STATE_DIR/run"

# stack.env holds the ports up.sh actually used (they may differ from .env).
if [[ -f "$LAB_STATE_DIR/stack.env" ]]; then
  # shellcheck disable=SC1091
  set -a && source "$LAB_STATE_DIR/stack.env" && set +a
fi

# What `status` shows after each component's health: its URL(s) for people.
info() {
  case "$1" in
    otel-collector) echo "OTLP http://127.0.0.1:$LAB_OTLP_GRPC_PORT (gRPC), http://127.0.0.1:$LAB_OTLP_HTTP_PORT (HTTP); files: $LAB_COLLECTOR_FILE_DIR" ;;
    prometheus) echo "http://127.0.0.1:$LAB_PROMETHEUS_PORT  (API only: the web UI is not in the Go module)" ;;
    alertmanager) echo "http://127.0.0.1:$LAB_ALERTMANAGER_PORT" ;;
    webhook-sink) echo "http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT/alerts" ;;
    jaeger) echo "http://127.0.0.1:$LAB_JAEGER_UI_PORT  (traces: UI + /api/traces/<trace id>)" ;;
    victorialogs) echo "http://127.0.0.1:$LAB_VICTORIALOGS_PORT  (logs: UI at /select/vmui, LogsQL at /select/logsql/query)" ;;
    *) echo "-" ;;
  esac
}

rc=0
row() { # <name> <health url> <what to show>
  local name="$1" url="$2" info="$3" f="$RUN/$1.pid" pid="-" state="stopped" health="-"
  if [[ -f "$f" ]]; then
    pid="$(head -n1 "$f")"
    if lab_pidfile_alive "$f"; then
      state="running"
    else
      state="dead"
    fi
  fi
  if lab_http_ok "$url"; then health="healthy"; else health="down"; fi
  [[ "$state" == running && "$health" == healthy ]] || rc=1
  printf '  %-15s %-8s %-8s %-8s %s\n' "$name" "$pid" "$state" "$health" "$info"
}

echo "native stack (state: $LAB_STATE_DIR, profile: $LAB_PROFILE)"
[[ "$LAB_PROFILE" == shared ]] && echo "  Prometheus, Alertmanager: user lab, password LAB_AUTH_PASSWORD in $LAB_AUTH_DIR/credentials.env"
printf '  %-15s %-8s %-8s %-8s %s\n' COMPONENT PID STATE HEALTH URL
while read -r name hport hpath _; do
  row "$name" "http://127.0.0.1:${!hport}$hpath" "$(info "$name")"
done < <(lab_components)
echo "  Grafana runs in compose mode only (no Grafana server can be built from Go modules)."
if [[ -f "$LAB_STATE_DIR/stack.env" ]]; then
  echo "  Address: $LAB_STATE_DIR/stack.env (what \`lab run\` and \`lab triage\` use by default)"
fi
exit "$rc"
