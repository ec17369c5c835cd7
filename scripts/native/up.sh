#!/usr/bin/env bash
# Start the observability stack natively (no Docker): collector, Prometheus,
# Alertmanager, Jaeger, VictoriaLogs and the webhook sink as background processes on
# 127.0.0.1. The components, their ports and health endpoints: scripts/native/components.tsv.
#
#   scripts/native/up.sh          (or `make up` without a Docker engine, or LAB_NATIVE=1)
#
# Builds the binaries first if needed (scripts/native/build.sh). Uses the SAME config
# files as compose; the mode-specific parts (targets, webhook URL, listen addresses)
# come from the environment and from files written under the state directory.
# Ports and versions: .env, overridable from the environment (LAB_PROMETHEUS_PORT=...).
# State: ${LAB_STATE_DIR:-<repo>/.lab}/  run/*.pid  logs/*.log  prometheus/{etc,data}
#        alertmanager/{etc,data}  victorialogs/data  otelcol/*.jsonl (file exporter)
#        webhook-sink/alerts.jsonl  (Jaeger keeps traces in memory)
#        stack.env (the stack's address: OTLP endpoint + protocol, URLs, ports; read by
#        `lab run` / `lab triage`, by scripts and tests; lib.sh lab_write_stack_env)
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
mapfile -t COMPONENTS < <(lab_components | awk '{print $1}')
mapfile -t PORT_VARS < <(lab_port_vars)

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
for var in "${PORT_VARS[@]}"; do
  if port_in_use "${!var}"; then
    echo "up.sh: port ${!var} ($var) is already in use on 127.0.0.1 (another stack? \`scripts/stack.sh status\`); set $var to a free port" >&2
    exit 1
  fi
done

"$HERE/build.sh" otelcol prometheus alertmanager jaeger victorialogs

PYTHON="$(lab_python)"
mkdir -p "$RUN" "$LOGS" "$LAB_STATE_DIR/prometheus/data" "$LAB_STATE_DIR/alertmanager/data" \
  "$LAB_STATE_DIR/victorialogs/data" "$LAB_COLLECTOR_FILE_DIR" "$LAB_STATE_DIR/webhook-sink"
lab_render_native_etc "$LAB_STATE_DIR"
echo "$LAB_PROFILE" >"$LAB_STATE_DIR/profile"

# What the profile changes (docs/stack.md "Shared hosts"). default: Prometheus's lifecycle API
# on (/-/reload, /-/quit), nothing asks for a credential. shared: the state directory is its
# owner's only; Prometheus and Alertmanager take basic auth (web.yml), Prometheus without its
# lifecycle API; the collector's OTLP receivers take a bearer token (a second --config); the
# webhook sink takes writes with its own token; the health probes send the password (curl.conf).
PROMETHEUS_PROFILE=(--web.enable-lifecycle)
ALERTMANAGER_PROFILE=()
COLLECTOR_PROFILE=()
SINK_PROFILE=()
if [[ "$LAB_PROFILE" == shared ]]; then
  chmod 700 "$LAB_STATE_DIR"
  "$PYTHON" "$HERE/shared_profile.py" "$LAB_STATE_DIR" --mode native || { echo "up.sh: the shared profile's credentials could not be written" >&2; exit 1; }
  # The generated configs replace the symlinks to the repository's (rules and targets stay beside them).
  install -m 600 "$LAB_AUTH_DIR/prometheus.yml" "$LAB_STATE_DIR/prometheus/etc/prometheus.yml"
  install -m 600 "$LAB_AUTH_DIR/alertmanager.yml" "$LAB_STATE_DIR/alertmanager/etc/alertmanager.yml"
  PROMETHEUS_PROFILE=(--web.config.file="$LAB_AUTH_DIR/web.yml")
  ALERTMANAGER_PROFILE=(--web.config.file="$LAB_AUTH_DIR/web.yml")
  COLLECTOR_PROFILE=(--config "$LAB_AUTH_DIR/otelcol-shared.yaml")
  SINK_PROFILE=(--token-file "$LAB_AUTH_DIR/sink-token")
fi

# start <name> <workdir> <command...>: detached (own session, so a Ctrl-C in this
# terminal later does not reach it), output to logs/<name>.log, pid + start
# (lab_proc_start: to recognise the same process later) to run/<name>.pid.
DETACH=()
command -v setsid >/dev/null 2>&1 && DETACH=(setsid)
start() {
  local name="$1" dir="$2" pid
  shift 2
  echo "# $(date -u +%FT%TZ) up.sh: $*" >>"$LOGS/$name.log"
  (cd "$dir" && exec "${DETACH[@]}" "$@" </dev/null >>"$LOGS/$name.log" 2>&1) &
  pid=$!
  printf '%s\n%s\n' "$pid" "$(lab_proc_start "$pid")" >"$RUN/$name.pid"
}

fail() {
  echo "up.sh: $1 did not become healthy; stopping what was started (logs stay in $LOGS)" >&2
  "$HERE/down.sh" >/dev/null 2>&1 || true
  exit 1
}

wait_healthy() { # <name> <url>
  lab_wait_http "$1" "$2" "$TIMEOUT" "$LOGS/$1.log" "$(head -n1 "$RUN/$1.pid")" || fail "$1"
}

# How each component of the table is started (same flags as its compose service,
# paths and listen addresses aside).
start_component() {
  case "$1" in
    webhook-sink)
      start webhook-sink "$LAB_STATE_DIR" "$PYTHON" "$LAB_ROOT/alertmanager/webhook_sink.py" \
        --host 127.0.0.1 --port "$LAB_WEBHOOK_SINK_PORT" --out "$LAB_STATE_DIR/webhook-sink/alerts.jsonl" \
        "${SINK_PROFILE[@]}" ;;
    alertmanager)
      # Working directory = the etc dir, where url_file (webhook-url) is resolved.
      start alertmanager "$LAB_STATE_DIR/alertmanager/etc" "$(lab_bin alertmanager)" \
        --config.file="$LAB_STATE_DIR/alertmanager/etc/alertmanager.yml" \
        --storage.path="$LAB_STATE_DIR/alertmanager/data" \
        --web.listen-address="127.0.0.1:$LAB_ALERTMANAGER_PORT" \
        --cluster.listen-address= "${ALERTMANAGER_PROFILE[@]}" ;;
    prometheus)
      # Same flags as the prometheus service in docker-compose.yml (paths aside).
      start prometheus "$LAB_STATE_DIR/prometheus" "$(lab_bin prometheus)" \
        --config.file="$LAB_STATE_DIR/prometheus/etc/prometheus.yml" \
        --storage.tsdb.path="$LAB_STATE_DIR/prometheus/data" \
        --web.listen-address="127.0.0.1:$LAB_PROMETHEUS_PORT" \
        --web.enable-otlp-receiver \
        --enable-feature=exemplar-storage \
        "${PROMETHEUS_PROFILE[@]}" ;;
    jaeger)
      # Listen host and ports: environment (lab_native_env, .env), read by jaeger/config.yaml.
      start jaeger "$LAB_STATE_DIR" "$(lab_bin jaeger)" --config="$LAB_ROOT/jaeger/config.yaml" ;;
    victorialogs)
      # Same flags as the victorialogs service in docker-compose.yml (paths aside).
      start victorialogs "$LAB_STATE_DIR/victorialogs" "$(lab_bin victorialogs)" \
        -storageDataPath="$LAB_STATE_DIR/victorialogs/data" \
        -httpListenAddr="127.0.0.1:$LAB_VICTORIALOGS_PORT" \
        -retentionPeriod=7d ;;
    otel-collector)
      start otel-collector "$LAB_STATE_DIR" "$(lab_bin otelcol)" --config "$LAB_ROOT/otel-collector/config.yaml" \
        "${COLLECTOR_PROFILE[@]}" ;;
    *) echo "up.sh: no start command for component '$1' (scripts/native/components.tsv)" >&2; exit 1 ;;
  esac
}

for c in "${COMPONENTS[@]}"; do start_component "$c"; done
while read -r name hport hpath _; do
  wait_healthy "$name" "http://127.0.0.1:${!hport}$hpath"
done < <(lab_components)

lab_write_stack_env native

echo "up.sh: native stack is up (state: $LAB_STATE_DIR)" >&2
"$HERE/status.sh"
exit
}
