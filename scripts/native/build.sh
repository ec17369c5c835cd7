#!/usr/bin/env bash
# Build the native stack's binaries from Go modules, once, into the cache.
#
#   scripts/native/build.sh [--print-paths] [component ...]
#
# Components: otelcol prometheus alertmanager pint compose-check dashboard-linter   (default: all)
#   otelcol       OpenTelemetry Collector from otel-collector/builder-config.yaml (ocb)
#   prometheus    prometheus + promtool, from scripts/native/prometheus-wrapper/
#   alertmanager  alertmanager + amtool
#   pint          Prometheus rule linter, from scripts/native/pint-wrapper/
#   compose-check validates docker-compose.yml without Docker (scripts/compose-check/)
#   dashboard-linter  grafana/dashboard-linter, from scripts/native/dashboard-linter-wrapper/
# Versions come from .env. Binaries go to ${LAB_CACHE_DIR:-~/.cache/ml-obs-lab}/bin/
# with the version in the name (otelcol-0.159.0, prometheus-3.14.0, ...); the Go
# module and build caches live under LAB_CACHE_DIR too, so later builds and CI runs
# on the same machine reuse them. A binary that exists for the pinned version and
# the same inputs (manifest / wrapper go.mod) is not rebuilt.
# The full go output goes to $LAB_CACHE_DIR/logs/build-<component>-<version>.log;
# on failure a one-line message names the component and the log, exit status 1.
# Durations are appended to $LAB_CACHE_DIR/logs/build-times.tsv.
# --print-paths prints NAME=PATH for each binary of the given components on stdout
# (progress goes to stderr).
set -euo pipefail
# The whole script is one { ...; exit; } block: bash parses it before running it, so
# editing this file (git pull) while it runs cannot derail the running copy.
{
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap 'echo "build.sh: internal error at line $LINENO (exit $?)" >&2' ERR

ALL_COMPONENTS=(otelcol prometheus alertmanager pint compose-check dashboard-linter)
MIN_GO=1.26.0

print_paths=0
components=()
for arg in "$@"; do
  case "$arg" in
    --print-paths) print_paths=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    otelcol | prometheus | alertmanager | pint | compose-check | dashboard-linter) components+=("$arg") ;;
    *) echo "build.sh: unknown component '$arg' (known: ${ALL_COMPONENTS[*]})" >&2; exit 2 ;;
  esac
done
((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")

export GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$LAB_CACHE_DIR/gomod" GOCACHE="$LAB_CACHE_DIR/gocache"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
LOG_DIR="$LAB_CACHE_DIR/logs"
mkdir -p "$LAB_BIN_DIR" "$LOG_DIR" "$LAB_CACHE_DIR/build" "$LAB_CACHE_DIR/tools"

binaries_of() {
  case "$1" in
    otelcol) echo otelcol ;;
    prometheus) echo prometheus promtool ;;
    alertmanager) echo alertmanager amtool ;;
    pint) echo pint ;;
    compose-check) echo compose-check ;;
    dashboard-linter) echo dashboard-linter ;;
  esac
}

version_of() {
  case "$1" in
    otelcol) echo "$LAB_OTELCOL_VERSION" ;;
    prometheus) echo "$LAB_PROMETHEUS_VERSION" ;;
    alertmanager) echo "$LAB_ALERTMANAGER_VERSION" ;;
    pint) echo "$LAB_PINT_VERSION" ;;
    compose-check) lab_compose_go_version ;;
    dashboard-linter) echo "$LAB_DASHBOARD_LINTER_VERSION" ;;
  esac
}

# What a build depends on besides the version; a change forces a rebuild.
inputs_hash() {
  local files=()
  case "$1" in
    otelcol) files=("$LAB_ROOT/otel-collector/builder-config.yaml") ;;
    prometheus | pint) files=("$LAB_ROOT/scripts/native/$1-wrapper/go.mod" "$LAB_ROOT/scripts/native/$1-wrapper/go.sum") ;;
    compose-check) files=("$LAB_ROOT/scripts/compose-check/go.mod" "$LAB_ROOT/scripts/compose-check/go.sum" "$LAB_ROOT/scripts/compose-check/main.go") ;;
    dashboard-linter) mapfile -t files < <(find "$LAB_ROOT/scripts/native/dashboard-linter-wrapper" -type f | LC_ALL=C sort) ;;
  esac
  {
    echo "$1 $(version_of "$1")"
    if ((${#files[@]})); then cat "${files[@]}"; fi
  } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  local c="$1" b stamp
  for b in $(binaries_of "$c"); do
    [[ -x "$(lab_bin "$b")" ]] || return 1
  done
  stamp="$(lab_bin "$(binaries_of "$c" | cut -d' ' -f1)").inputs"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(inputs_hash "$c")" ]]
}

fail() { echo "build.sh: $*" >&2; exit 1; }

check_go() {
  command -v go >/dev/null 2>&1 ||
    fail "Go toolchain not found: native mode builds its binaries from Go modules (needs Go >= $MIN_GO on PATH: export PATH=\"\$(scripts/ensure-go.sh):\$PATH\" fetches one; or use Docker: scripts/stack.sh up)"
  local have
  have="$(go env GOVERSION 2>/dev/null || true)"
  have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$MIN_GO" "${have%%[-+ ]*}" | sort -V | head -n1)" != "$MIN_GO" ]]; then
    fail "Go ${have:-?} is too old: the pinned components need Go >= $MIN_GO (GOTOOLCHAIN=local: no toolchain download)"
  fi
}

# ldflags that make `--version` and /api/v1/status/buildinfo tell the truth.
prom_ldflags() {
  local v="$1" p=github.com/prometheus/common/version
  echo "-s -w -X $p.Version=$v -X $p.Revision=go-module -X $p.Branch=v$v -X $p.BuildUser=ml-obs-lab -X $p.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
}

build_otelcol() {
  local v="$LAB_OTELCOL_VERSION" dir="$LAB_CACHE_DIR/build/otelcol-$LAB_OTELCOL_VERSION"
  local manifest="$LAB_ROOT/otel-collector/builder-config.yaml" tools="$LAB_CACHE_DIR/tools/builder-$v"
  grep -Eq "^[[:space:]]+version:[[:space:]]+${v}[[:space:]]*\$" "$manifest" ||
    { echo "dist.version in $manifest is not $v (LAB_OTELCOL_VERSION in .env)"; return 1; }
  if [[ ! -x "$tools/builder" ]]; then
    GOBIN="$tools" go install "go.opentelemetry.io/collector/cmd/builder@v$v"
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$manifest" "$dir/builder-config.yaml"
  (cd "$dir" && "$tools/builder" --config=builder-config.yaml)
  install -m 0755 "$dir/_build/otelcol" "$(lab_bin otelcol)"
}

build_prometheus() {
  local v="$LAB_PROMETHEUS_VERSION" mv dir="$LAB_CACHE_DIR/build/prometheus-$LAB_PROMETHEUS_VERSION"
  local wrapper="$LAB_ROOT/scripts/native/prometheus-wrapper"
  mv="$(lab_prometheus_module_version "$v")"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/prometheus/prometheus $mv( |$)" "$wrapper/go.mod" ||
    { echo "$wrapper/go.mod does not require github.com/prometheus/prometheus $mv (= $v from .env)"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp "$wrapper/go.mod" "$wrapper/go.sum" "$dir/"
  # remove_all_sd: only file and http service discovery (all the lab uses); no
  # builtinassets: the web UI is not in the Go module (the API works without it).
  (cd "$dir" && go build -mod=readonly -trimpath -tags remove_all_sd -ldflags "$(prom_ldflags "$v")" -o out/ \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  install -m 0755 "$dir/out/prometheus" "$(lab_bin prometheus)"
  install -m 0755 "$dir/out/promtool" "$(lab_bin promtool)"
}

build_alertmanager() {
  local v="$LAB_ALERTMANAGER_VERSION" dir="$LAB_CACHE_DIR/build/alertmanager-$LAB_ALERTMANAGER_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  GOBIN="$dir" go install -trimpath -ldflags "$(prom_ldflags "$v")" \
    "github.com/prometheus/alertmanager/cmd/alertmanager@v$v" "github.com/prometheus/alertmanager/cmd/amtool@v$v"
  install -m 0755 "$dir/alertmanager" "$(lab_bin alertmanager)"
  install -m 0755 "$dir/amtool" "$(lab_bin amtool)"
}

build_pint() {
  local v="$LAB_PINT_VERSION" dir="$LAB_CACHE_DIR/build/pint-$LAB_PINT_VERSION"
  local wrapper="$LAB_ROOT/scripts/native/pint-wrapper"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/cloudflare/pint v$v( |$)" "$wrapper/go.mod" ||
    { echo "$wrapper/go.mod does not require github.com/cloudflare/pint v$v (LAB_PINT_VERSION in .env)"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp "$wrapper/go.mod" "$wrapper/go.sum" "$dir/"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w -X main.version=$v -X main.commit=go-module" -o out/ \
    github.com/cloudflare/pint/cmd/pint)
  install -m 0755 "$dir/out/pint" "$(lab_bin pint)"
}

build_compose-check() {
  local dir="$LAB_CACHE_DIR/build/compose-check"
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp "$LAB_ROOT/scripts/compose-check/"{go.mod,go.sum,main.go} "$dir/"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o out/compose-check .)
  install -m 0755 "$dir/out/compose-check" "$(lab_bin compose-check)"
}

build_dashboard-linter() {
  local v="$LAB_DASHBOARD_LINTER_VERSION" dir="$LAB_CACHE_DIR/build/dashboard-linter-$LAB_DASHBOARD_LINTER_VERSION"
  local wrapper="$LAB_ROOT/scripts/native/dashboard-linter-wrapper"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/grafana/dashboard-linter v$v( |$)" "$wrapper/go.mod" ||
    { echo "$wrapper/go.mod does not require github.com/grafana/dashboard-linter v$v (LAB_DASHBOARD_LINTER_VERSION in .env)"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp -r "$wrapper/." "$dir/"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o out/dashboard-linter github.com/grafana/dashboard-linter)
  install -m 0755 "$dir/out/dashboard-linter" "$(lab_bin dashboard-linter)"
}

build_one() {
  local c="$1" v log start secs
  v="$(version_of "$c")"
  if up_to_date "$c"; then
    echo "build.sh: $c $v already built" >&2
    return 0
  fi
  check_go
  log="$LOG_DIR/build-$c-$v.log"
  echo "build.sh: building $c $v (a cold build takes minutes; log: $log)" >&2
  start=$SECONDS
  # A subshell outside any `if`, so that `set -e` stops at the first failing step.
  set +e
  (
    set -e
    echo "# $(date -u +%FT%TZ) building $c $v with $(go version)"
    "build_$c"
  ) >"$log" 2>&1
  local rc=$?
  set -e
  ((rc == 0)) || fail "building $c $v failed; full log: $log"
  secs=$((SECONDS - start))
  inputs_hash "$c" >"$(lab_bin "$(binaries_of "$c" | cut -d' ' -f1)").inputs"
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$c" "$v" "$secs" >>"$LOG_DIR/build-times.tsv"
  echo "build.sh: built $c $v in ${secs}s" >&2
}

# One build at a time per cache (parallel test runs, two terminals...).
exec 9>"$LAB_CACHE_DIR/.build.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

for c in "${components[@]}"; do
  build_one "$c"
done

if ((print_paths)); then
  for c in "${components[@]}"; do
    for b in $(binaries_of "$c"); do
      echo "$b=$(lab_bin "$b")"
    done
  done
fi
exit
}
