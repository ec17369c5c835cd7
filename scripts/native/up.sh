#!/usr/bin/env bash
# Start the observability stack natively (no Docker): collector, Prometheus,
# Alertmanager and the webhook sink as background processes on 127.0.0.1.
#
#   scripts/native/up.sh          (or `make up` without a Docker engine, or LAB_NATIVE=1)
#
# Builds the binaries first if needed (scripts/native/build.sh). Uses the SAME config
# files as compose; the mode-specific parts (targets, webhook URL, listen addresses)
# come from the environment and from files written under the state directory.
# Ports and versions: .env, overridable from the environment (LAB_PROMETHEUS_PORT=...).
# State: ${LAB_STATE_DIR:-<repo>/.lab}/  run/*.pid  logs/*.log  prometheus/{etc,data}
#        alertmanager/{etc,data}  otelcol/*.jsonl (file exporter)  webhook-sink/alerts.jsonl
#        stack.env (the endpoints, for scripts and tests)
# Waits up to LAB_UP_TIMEOUT seconds (default 60) for each component to be healthy;
# on failure it names the log to read, stops what it started and exits 1.
# Already running (pid files alive): prints the status and exits 0.
set -euo pipefail
# The whole script is one { ...; exit; } block: bash parses it before running it, so
# editing this file (git pull) while it runs cannot derail the running copy.
{
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"
lab_native_env

RUN="$LAB_STATE_DIR/run"
LOGS="$LAB_STATE_DIR/logs"
TIMEOUT="${LAB_UP_TIMEOUT:-60}"
COMPONENTS=(webhook-sink alertmanager prometheus otel-collector)

alive() { lab_pidfile_alive "$RUN/$1.pid"; }

running=0
for c in "${COMPONENTS[@]}"; do alive "$c" && running=$((running + 1)); done
if ((running == ${#COMPONENTS[@]})); then
  echo "up.sh: the native stack is already running (state: $LAB_STATE_DIR)" >&2
  exec "$HERE/status.sh"
elif ((running > 0)); then
  echo "up.sh: part of a native stack is running in $LAB_STATE_DIR; restarting it" >&2
  "$HERE/down.sh"
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for var in LAB_OTLP_GRPC_PORT LAB_OTLP_HTTP_PORT LAB_COLLECTOR_HEALTH_PORT LAB_COLLECTOR_METRICS_PORT \
  LAB_PROMETHEUS_PORT LAB_ALERTMANAGER_PORT LAB_WEBHOOK_SINK_PORT; do
  if port_in_use "${!var}"; then
    echo "up.sh: port ${!var} ($var) is already in use on 127.0.0.1 (another stack? \`scripts/stack.sh status\`); set $var to a free port" >&2
    exit 1
  fi
done

"$HERE/build.sh" otelcol prometheus alertmanager

PYTHON="$(lab_python)"
mkdir -p "$RUN" "$LOGS" "$LAB_STATE_DIR/prometheus/data" "$LAB_STATE_DIR/alertmanager/data" \
  "$LAB_COLLECTOR_FILE_DIR" "$LAB_STATE_DIR/webhook-sink"
lab_render_native_etc "$LAB_STATE_DIR"

# start <name> <workdir> <command...>: detached (own session, so a Ctrl-C in this
# terminal later does not reach it), output to logs/<name>.log, pid + start time
# (to recognise the same process later) to run/<name>.pid.
DETACH=()
command -v setsid >/dev/null 2>&1 && DETACH=(setsid)
start() {
  local name="$1" dir="$2" pid
  shift 2
  echo "# $(date -u +%FT%TZ) up.sh: $*" >>"$LOGS/$name.log"
  (cd "$dir" && exec "${DETACH[@]}" "$@" </dev/null >>"$LOGS/$name.log" 2>&1) &
  pid=$!
  printf '%s\n%s\n' "$pid" "$(ps -o lstart= -p "$pid" 2>/dev/null)" >"$RUN/$name.pid"
}

fail() {
  echo "up.sh: $1 did not become healthy; stopping what was started (logs stay in $LOGS)" >&2
  "$HERE/down.sh" >/dev/null 2>&1 || true
  exit 1
}

wait_healthy() { # <name> <url>
  lab_wait_http "$1" "$2" "$TIMEOUT" "$LOGS/$1.log" "$(head -n1 "$RUN/$1.pid")" || fail "$1"
}

start webhook-sink "$LAB_STATE_DIR" "$PYTHON" "$LAB_ROOT/alertmanager/webhook_sink.py" \
  --host 127.0.0.1 --port "$LAB_WEBHOOK_SINK_PORT" --out "$LAB_STATE_DIR/webhook-sink/alerts.jsonl"

# Working directory = the etc dir, where url_file (webhook-url) is resolved.
start alertmanager "$LAB_STATE_DIR/alertmanager/etc" "$(lab_bin alertmanager)" \
  --config.file="$LAB_STATE_DIR/alertmanager/etc/alertmanager.yml" \
  --storage.path="$LAB_STATE_DIR/alertmanager/data" \
  --web.listen-address="127.0.0.1:$LAB_ALERTMANAGER_PORT" \
  --cluster.listen-address=

# Same flags as the prometheus service in docker-compose.yml (paths aside).
start prometheus "$LAB_STATE_DIR/prometheus" "$(lab_bin prometheus)" \
  --config.file="$LAB_STATE_DIR/prometheus/etc/prometheus.yml" \
  --storage.tsdb.path="$LAB_STATE_DIR/prometheus/data" \
  --web.listen-address="127.0.0.1:$LAB_PROMETHEUS_PORT" \
  --web.enable-otlp-receiver \
  --enable-feature=exemplar-storage \
  --web.enable-lifecycle

start otel-collector "$LAB_STATE_DIR" "$(lab_bin otelcol)" --config "$LAB_ROOT/otel-collector/config.yaml"

wait_healthy webhook-sink "http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT/healthz"
wait_healthy alertmanager "http://127.0.0.1:$LAB_ALERTMANAGER_PORT/-/ready"
wait_healthy prometheus "http://127.0.0.1:$LAB_PROMETHEUS_PORT/-/ready"
wait_healthy otel-collector "http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/"

cat >"$LAB_STATE_DIR/stack.env" <<EOF
# Endpoints of the native stack started by scripts/native/up.sh (do not edit).
LAB_STACK_MODE=native
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$LAB_OTLP_GRPC_PORT
LAB_OTLP_GRPC_ENDPOINT=http://127.0.0.1:$LAB_OTLP_GRPC_PORT
LAB_OTLP_HTTP_ENDPOINT=http://127.0.0.1:$LAB_OTLP_HTTP_PORT
LAB_COLLECTOR_HEALTH_URL=http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/
LAB_COLLECTOR_METRICS_URL=http://127.0.0.1:$LAB_COLLECTOR_METRICS_PORT/metrics
LAB_COLLECTOR_FILE_DIR=$LAB_COLLECTOR_FILE_DIR
LAB_PROMETHEUS_URL=http://127.0.0.1:$LAB_PROMETHEUS_PORT
LAB_ALERTMANAGER_URL=http://127.0.0.1:$LAB_ALERTMANAGER_PORT
LAB_WEBHOOK_SINK_URL=http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT
EOF

echo "up.sh: native stack is up (state: $LAB_STATE_DIR)" >&2
"$HERE/status.sh"
exit
}
