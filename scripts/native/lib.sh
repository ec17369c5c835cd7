# shellcheck shell=bash
# Shared helpers for the native-mode scripts (sourced, not run).
#
# Loads .env (versions, ports, interval) without overriding variables that are
# already set in the environment -- the same precedence docker compose uses -- and
# defines where binaries, build caches and run state live:
#   LAB_CACHE_DIR  (default ~/.cache/ml-obs-lab)  binaries, Go module and build caches
#   LAB_STATE_DIR  (default <repo>/.lab)          pid files, logs, data of a running stack

LAB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export LAB_ROOT

# shellcheck disable=SC2120 # the file argument is optional
lab_load_env() {
  local file="${1:-$LAB_ROOT/.env}" line key val
  [[ -f "$file" ]] || { echo "lab: $file not found" >&2; return 1; }
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    val="${line#*=}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ -z "${!key+x}" ]]; then
      export "$key=$val"
    fi
  done <"$file"
}

lab_load_env

export LAB_CACHE_DIR="${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-obs-lab}"
export LAB_STATE_DIR="${LAB_STATE_DIR:-$LAB_ROOT/.lab}"
LAB_BIN_DIR="$LAB_CACHE_DIR/bin"

# The profile: `default` (one person's machine: no credentials, Prometheus's lifecycle API on)
# or `shared` (a machine several people log in to: every write and admin path behind a
# credential, docs/stack.md "Shared hosts"). LAB_PROFILE from the environment, else the one
# `make up` recorded in $LAB_STATE_DIR/profile (so `make down`/`status` follow it), else default.
if [[ -z "${LAB_PROFILE:-}" && -f "$LAB_STATE_DIR/profile" ]]; then
  LAB_PROFILE="$(head -n1 "$LAB_STATE_DIR/profile")"
fi
export LAB_PROFILE="${LAB_PROFILE:-default}"
if [[ "$LAB_PROFILE" != default && "$LAB_PROFILE" != shared ]]; then
  echo "lab: LAB_PROFILE=$LAB_PROFILE: expected default or shared" >&2
  return 1 2>/dev/null || exit 1
fi
export LAB_AUTH_DIR="$LAB_STATE_DIR/auth"
# The health probes' credentials in the shared profile (a curl config file: never on a command line).
[[ "$LAB_PROFILE" == shared ]] && export LAB_CURL_CONFIG="${LAB_CURL_CONFIG:-$LAB_AUTH_DIR/curl.conf}"
# Per-user ports in the shared profile: every port moves by LAB_PORT_OFFSET, by default 10 x
# (uid mod 1000), so two people's stacks do not ask for the same ports (up.sh still refuses a
# port in use and names the variable to set). Applied once per process tree (the marker).
if [[ "$LAB_PROFILE" == shared && -z "${LAB_PORTS_OFFSET_APPLIED:-}" ]]; then
  LAB_PORT_OFFSET="${LAB_PORT_OFFSET:-$((10 * ($(id -u) % 1000)))}"
  [[ "$LAB_PORT_OFFSET" =~ ^[0-9]+$ ]] || { echo "lab: LAB_PORT_OFFSET=$LAB_PORT_OFFSET: expected a number" >&2; return 1 2>/dev/null || exit 1; }
  for _var in $(grep -Eo '^LAB_[A-Z_]+_PORT' "$LAB_ROOT/.env"); do
    export "$_var=$((${!_var} + LAB_PORT_OFFSET))"
  done
  unset _var
  export LAB_PORT_OFFSET LAB_PORTS_OFFSET_APPLIED=1
fi

# Prometheus 3.X.Y is published as Go module version v0.3XX.Y (X zero-padded).
lab_prometheus_module_version() {
  local v="${1:-$LAB_PROMETHEUS_VERSION}" major minor patch
  IFS=. read -r major minor patch <<<"$v"
  printf 'v0.%d%02d.%d\n' "$major" "$minor" "$patch"
}

# compose-check is a test tool, not a stack component: its version (the compose-go
# library's) lives only in scripts/compose-check/go.mod.
lab_compose_go_version() {
  sed -n 's|^require github.com/compose-spec/compose-go/v2 \(v[^ ]*\).*|\1|p' "$LAB_ROOT/scripts/compose-check/go.mod"
}

# Path of a natively built binary for the pinned version (it may not exist yet).
lab_bin() {
  case "$1" in
    otelcol) echo "$LAB_BIN_DIR/otelcol-$LAB_OTELCOL_VERSION" ;;
    prometheus | promtool) echo "$LAB_BIN_DIR/$1-$LAB_PROMETHEUS_VERSION" ;;
    alertmanager | amtool) echo "$LAB_BIN_DIR/$1-$LAB_ALERTMANAGER_VERSION" ;;
    pint) echo "$LAB_BIN_DIR/pint-$LAB_PINT_VERSION" ;;
    compose-check) echo "$LAB_BIN_DIR/compose-check-$(lab_compose_go_version)" ;;
    jaeger) echo "$LAB_BIN_DIR/jaeger-$LAB_JAEGER_VERSION" ;;
    victorialogs) echo "$LAB_BIN_DIR/victoria-logs-$LAB_VICTORIALOGS_VERSION" ;;
    docker-compose) echo "$LAB_BIN_DIR/docker-compose-$LAB_COMPOSE_VERSION" ;;
    *) echo "lab: unknown binary '$1'" >&2; return 1 ;;
  esac
}

# The component table (scripts/native/components.tsv) without comments:
#   name health_port_var health_path port_vars(comma-separated)
lab_components() {
  grep -Ev '^[[:space:]]*(#|$)' "$LAB_ROOT/scripts/native/components.tsv"
}

# Every LAB_*_PORT variable the native stack listens on, one per line, in table order.
lab_port_vars() {
  lab_components | awk '{ n = split($4, p, ","); for (i = 1; i <= n; i++) print p[i] }'
}

lab_python() {
  if [[ -x "$LAB_ROOT/.venv/bin/python" ]]; then
    echo "$LAB_ROOT/.venv/bin/python"
  elif command -v python3 >/dev/null; then
    command -v python3
  else
    echo "lab: no Python found (.venv/bin/python or python3)" >&2
    return 1
  fi
}

# Native-mode addresses: everything on loopback, ports from .env / the environment.
lab_native_env() {
  export LAB_COLLECTOR_LISTEN_HOST=127.0.0.1
  export LAB_PROMETHEUS_OTLP_ENDPOINT="http://127.0.0.1:$LAB_PROMETHEUS_PORT/api/v1/otlp"
  export LAB_JAEGER_OTLP_ENDPOINT="127.0.0.1:$LAB_JAEGER_OTLP_GRPC_PORT"
  export LAB_VICTORIALOGS_OTLP_ENDPOINT="http://127.0.0.1:$LAB_VICTORIALOGS_PORT/insert/opentelemetry/v1/logs"
  export JAEGER_LISTEN_HOST=127.0.0.1
  export LAB_COLLECTOR_FILE_DIR="${LAB_COLLECTOR_FILE_DIR:-$LAB_STATE_DIR/otelcol}"
}

# The address of the stack `make up` started: $LAB_STATE_DIR/stack.env, written by both
# modes once every component is healthy (native: up.sh; compose: scripts/stack.sh) and
# removed by `make down`. KEY=VALUE lines that a shell can source (`set -a; .
# .lab/stack.env; set +a`) and that `lab run` / `lab triage` read when the environment does
# not set the variable (lab/repo.py stack_env_defaults; docs/stack.md "Which stack `lab`
# talks to"). The OTLP endpoint and its protocol are written as one pair: the collector's
# HTTP port with http/protobuf (the lab's default protocol), never a port of the other one.
#   lab_write_stack_env native|compose
lab_write_stack_env() {
  local mode="$1" file="$LAB_STATE_DIR/stack.env" files var
  case "$mode" in
    native) files="$LAB_COLLECTOR_FILE_DIR" ;;
    compose) files="$LAB_STATE_DIR/otelcol" ;;
    *) echo "lab: lab_write_stack_env: unknown mode '$mode'" >&2; return 1 ;;
  esac
  mkdir -p "$LAB_STATE_DIR"
  {
    echo "# The $mode stack started by \`make up\`; removed by \`make down\`. Do not edit."
    echo "# lab run / lab triage read it when the environment does not set a variable (docs/stack.md)."
    _lab_kv LAB_STACK_MODE "$mode"
    _lab_kv OTEL_EXPORTER_OTLP_ENDPOINT "http://127.0.0.1:$LAB_OTLP_HTTP_PORT"
    _lab_kv OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf
    _lab_kv LAB_OTLP_GRPC_ENDPOINT "http://127.0.0.1:$LAB_OTLP_GRPC_PORT"
    _lab_kv LAB_OTLP_HTTP_ENDPOINT "http://127.0.0.1:$LAB_OTLP_HTTP_PORT"
    _lab_kv LAB_COLLECTOR_HEALTH_URL "http://127.0.0.1:$LAB_COLLECTOR_HEALTH_PORT/"
    _lab_kv LAB_COLLECTOR_METRICS_URL "http://127.0.0.1:$LAB_COLLECTOR_METRICS_PORT/metrics"
    _lab_kv LAB_COLLECTOR_FILE_DIR "$files"
    _lab_kv LAB_PROMETHEUS_URL "http://127.0.0.1:$LAB_PROMETHEUS_PORT"
    _lab_kv LAB_ALERTMANAGER_URL "http://127.0.0.1:$LAB_ALERTMANAGER_PORT"
    _lab_kv LAB_WEBHOOK_SINK_URL "http://127.0.0.1:$LAB_WEBHOOK_SINK_PORT"
    _lab_kv LAB_JAEGER_URL "http://127.0.0.1:$LAB_JAEGER_UI_PORT"
    _lab_kv LAB_VICTORIALOGS_URL "http://127.0.0.1:$LAB_VICTORIALOGS_PORT"
    if [[ "$mode" == compose ]]; then
      _lab_kv LAB_GRAFANA_URL "http://127.0.0.1:$LAB_GRAFANA_PORT"
      _lab_kv LAB_GRAFANA_PORT "$LAB_GRAFANA_PORT"
    fi
    for var in $(lab_port_vars); do _lab_kv "$var" "${!var}"; done
    _lab_kv LAB_PROFILE "$LAB_PROFILE"
    if [[ "$LAB_PROFILE" == shared ]]; then
      # What a client of this stack needs: the OTLP token as the SDK's header variable, the
      # folder with the password (Prometheus, Alertmanager) and the sink's token.
      _lab_kv OTEL_EXPORTER_OTLP_HEADERS "$(cat "$LAB_AUTH_DIR/otlp-headers")"
      _lab_kv LAB_AUTH_DIR "$LAB_AUTH_DIR"
    fi
  } >"$file.tmp"
  chmod 600 "$file.tmp"
  mv -f "$file.tmp" "$file"
}

# Remove stack.env if <mode> wrote it (`make down` of the other mode leaves it alone).
#   lab_remove_stack_env native|compose
lab_remove_stack_env() {
  local file="$LAB_STATE_DIR/stack.env"
  [[ -f "$file" ]] || return 0
  if grep -qx "LAB_STACK_MODE=$1" "$file"; then rm -f "$file"; fi
}

# KEY=VALUE, the value quoted for a shell only where it needs it (a path with spaces).
_lab_kv() { printf '%s=%q\n' "$1" "$2"; }

# The Prometheus and Alertmanager config directories for native mode. They mirror the
# compose mounts (/etc/prometheus, /etc/alertmanager): the config files themselves are
# symlinks to the repository's files, and only the mode-specific parts are written
# here -- the file_sd target files and the webhook URL file (see the header comments
# of prometheus/prometheus.yml and alertmanager/alertmanager.yml).
#   lab_render_native_etc <state dir>
lab_render_native_etc() {
  local p="$1/prometheus/etc" a="$1/alertmanager/etc"
  mkdir -p "$p/targets" "$a"
  ln -sfn "$LAB_ROOT/prometheus/prometheus.yml" "$p/prometheus.yml"
  ln -sfn "$LAB_ROOT/prometheus/rules" "$p/rules"
  ln -sfn "$LAB_ROOT/prometheus/alerts" "$p/alerts"
  _lab_target "$p/targets/otel-collector.yml" "127.0.0.1:$LAB_COLLECTOR_METRICS_PORT"
  _lab_target "$p/targets/prometheus.yml" "127.0.0.1:$LAB_PROMETHEUS_PORT"
  _lab_target "$p/targets/alertmanager.yml" "127.0.0.1:$LAB_ALERTMANAGER_PORT"
  ln -sfn "$LAB_ROOT/alertmanager/alertmanager.yml" "$a/alertmanager.yml"
  printf 'http://127.0.0.1:%s/alertmanager\n' "$LAB_WEBHOOK_SINK_PORT" >"$a/webhook-url"
}

_lab_target() {
  printf '# Written by scripts/native/lib.sh for native mode; do not edit.\n- targets: ["%s"]\n' "$2" >"$1"
}

# Is <pid> a live process? A zombie (exited, not yet reaped by PID 1 -- which can take
# a second in containers and VMs) counts as gone.
lab_pid_alive() {
  local stat
  stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$stat" && "$stat" != Z* ]]
}

# A process's start, to tell it from a later process given the same pid: "boot+<ticks>", its
# start in clock ticks since boot (/proc/<pid>/stat, field 22), which no change of the wall
# clock moves; where there is no /proc, ps's start time. ps derives that from the wall clock
# at each call, so a clock step (NTP, a resumed laptop or VM) moves it: on a VM here one
# process's ps start time moved by 61 s within half an hour, and down.sh, taking the
# stack's processes for gone, left them running.
lab_proc_start() {
  local stat
  if stat="$(cat "/proc/$1/stat" 2>/dev/null)"; then
    stat="${stat##*) }" # the fields after "pid (comm) "; comm may hold spaces
    read -r -a stat <<<"$stat"
    echo "boot+${stat[19]}" # field 22; the array starts at field 3
  else
    ps -o lstart= -p "$1" 2>/dev/null
  fi
}

# Is the process recorded in pid file <file> (pid, then lab_proc_start) still running?
# Comparing the start protects against a recycled pid. A pid file from before boot+ticks
# holds ps's start time, compared as it was.
lab_pidfile_alive() {
  local f="$1" pid want
  [[ -f "$f" ]] || return 1
  pid="$(head -n1 "$f")"
  want="$(sed -n 2p "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] && lab_pid_alive "$pid" || return 1
  if [[ "$want" == boot+* ]]; then
    [[ "$(lab_proc_start "$pid")" == "$want" ]]
  else
    [[ "$(ps -o lstart= -p "$pid" 2>/dev/null)" == "$want" ]]
  fi
}

# Does <url> answer 2xx? With the shared profile's credentials where it has them
# (LAB_CURL_CONFIG: a curl config file, never the command line).
lab_http_ok() {
  curl -fsS -o /dev/null --max-time 2 ${LAB_CURL_CONFIG:+-K "$LAB_CURL_CONFIG"} "$1" 2>/dev/null
}

# Wait until a URL answers 2xx, or fail after a timeout.
#   lab_wait_http <name> <url> <timeout seconds> <log file> [pid]
lab_wait_http() {
  local name="$1" url="$2" timeout="$3" log="$4" pid="${5:-}" deadline
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if lab_http_ok "$url"; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! lab_pid_alive "$pid"; then
      echo "lab: $name exited during start-up; see $log" >&2
      return 1
    fi
    sleep 0.3
  done
  echo "lab: $name not healthy at $url after ${timeout}s; see $log" >&2
  return 1
}
