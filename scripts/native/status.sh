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
PROM="${LAB_PROMETHEUS_URL:-http://127.0.0.1:$LAB_PROMETHEUS_PORT}"
AM="${LAB_ALERTMANAGER_URL:-http://127.0.0.1:$LAB_ALERTMANAGER_PORT}"
SINK="${LAB_WEBHOOK_SINK_URL:-http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT}"
HEALTH="${LAB_COLLECTOR_HEALTH_URL:-http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/}"

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
  if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then health="healthy"; else health="down"; fi
  [[ "$state" == running && "$health" == healthy ]] || rc=1
  printf '  %-15s %-8s %-8s %-8s %s\n' "$name" "$pid" "$state" "$health" "$info"
}

echo "native stack (state: $LAB_STATE_DIR)"
printf '  %-15s %-8s %-8s %-8s %s\n' COMPONENT PID STATE HEALTH URL
row otel-collector "$HEALTH" "OTLP ${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$LAB_OTLP_GRPC_PORT} (gRPC), ${LAB_OTLP_HTTP_ENDPOINT:-http://127.0.0.1:$LAB_OTLP_HTTP_PORT} (HTTP); files: $LAB_COLLECTOR_FILE_DIR"
row prometheus "$PROM/-/ready" "$PROM  (API only: the web UI is not in the Go module)"
row alertmanager "$AM/-/ready" "$AM"
row webhook-sink "$SINK/healthz" "$SINK/alerts"
echo "  Grafana, Tempo and Loki run in compose mode only."
exit "$rc"
