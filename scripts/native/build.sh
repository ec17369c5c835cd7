#!/usr/bin/env bash
# Build the native stack's binaries from Go modules, once, into the cache.
#
#   scripts/native/build.sh [--print-paths] [--sequential] [component ...]
#   scripts/native/build.sh --missing [component ...]
#
# Components: otelcol prometheus alertmanager jaeger victorialogs pint compose-check
#             docker-compose   (default: all)
#   otelcol       OpenTelemetry Collector from otel-collector/builder-config.yaml (ocb)
#   prometheus    prometheus + promtool, from scripts/native/prometheus-wrapper/
#   alertmanager  alertmanager + amtool
#   jaeger        Jaeger v2 (cmd/jaeger), from scripts/native/jaeger-wrapper/
#   victorialogs  VictoriaLogs (app/victoria-logs), from scripts/native/victorialogs-wrapper/
#   pint          Prometheus rule linter, from scripts/native/pint-wrapper/
#   compose-check validates docker-compose.yml without Docker (scripts/compose-check/)
#   docker-compose  Docker Compose v5 as a CLI plugin of the docker client, from
#                 scripts/native/compose-wrapper/ (used by scripts/docker/engine.sh)
# Every binary is static (CGO_ENABLED=0): the stand-in images (scripts/docker/) copy them.
# The requested components are built in parallel (Go's caches are safe to share), or
# with --sequential one after another in the order given (the test suite's background
# build: the first component a session needs is ready soonest); once the first is built, the
# modules of all the others download at once beside the builds (a cold download is 0.5-1 min
# a component, most of it waiting on the network). Each component has its
# own lock, so a build.sh that needs one component waits only for that component's build
# by another build.sh (a background build, a second terminal), then reuses its binary.
# Versions come from .env. Binaries go to ${LAB_CACHE_DIR:-~/.cache/ml-obs-lab}/bin/
# with the version in the name (otelcol-0.161.0, prometheus-3.14.0, ...); the Go
# module and build caches live under LAB_CACHE_DIR too, so later builds and CI runs
# on the same machine reuse them. A binary that exists for the pinned version and
# the same inputs (manifest / wrapper go.mod) is not rebuilt.
# The full go output goes to $LAB_CACHE_DIR/logs/build-<component>-<version>.log;
# on failure a one-line message names the component and the log, exit status 1.
# Durations are appended to $LAB_CACHE_DIR/logs/build-times.tsv.
# --print-paths prints NAME=PATH for each binary of the given components on stdout
# (progress goes to stderr). --missing builds nothing: it prints the given components
# that are not built for the pinned version and inputs, one per line.
set -euo pipefail
# The whole script is one { ...; exit; } block: bash parses it before running it, so
# editing this file (git pull) while it runs cannot derail the running copy.
{
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap 'echo "build.sh: internal error at line $LINENO (exit $?)" >&2' ERR

ALL_COMPONENTS=(otelcol prometheus alertmanager jaeger victorialogs pint compose-check docker-compose)
MIN_GO=1.26.0

print_paths=0
sequential=0
missing=0
components=()
for arg in "$@"; do
  case "$arg" in
    --print-paths) print_paths=1 ;;
    --sequential) sequential=1 ;;
    --missing) missing=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    otelcol | prometheus | alertmanager | jaeger | victorialogs | pint | compose-check | docker-compose) components+=("$arg") ;;
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
    jaeger) echo jaeger ;;
    victorialogs) echo victorialogs ;;
    docker-compose) echo docker-compose ;;
  esac
}

version_of() {
  case "$1" in
    otelcol) echo "$LAB_OTELCOL_VERSION" ;;
    prometheus) echo "$LAB_PROMETHEUS_VERSION" ;;
    alertmanager) echo "$LAB_ALERTMANAGER_VERSION" ;;
    pint) echo "$LAB_PINT_VERSION" ;;
    compose-check) lab_compose_go_version ;;
    jaeger) echo "$LAB_JAEGER_VERSION" ;;
    victorialogs) echo "$LAB_VICTORIALOGS_VERSION" ;;
    docker-compose) echo "$LAB_COMPOSE_VERSION" ;;
  esac
}

# What a build depends on besides the version; a change forces a rebuild.
inputs_hash() {
  local files=()
  case "$1" in
    otelcol) files=("$LAB_ROOT/otel-collector/builder-config.yaml") ;;
    prometheus | pint | jaeger | victorialogs) files=("$LAB_ROOT/scripts/native/$1-wrapper/go.mod" "$LAB_ROOT/scripts/native/$1-wrapper/go.sum") ;;
    docker-compose) files=("$LAB_ROOT/scripts/native/compose-wrapper/go.mod" "$LAB_ROOT/scripts/native/compose-wrapper/go.sum") ;;
    compose-check) files=("$LAB_ROOT/scripts/compose-check/go.mod" "$LAB_ROOT/scripts/compose-check/go.sum" "$LAB_ROOT/scripts/compose-check/main.go") ;;
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

# Into place in one rename: a build killed mid-copy never leaves a truncated binary.
put_bin() {
  local dest
  dest="$(lab_bin "$2")"
  install -m 0755 "$1" "$dest.partial"
  mv -f "$dest.partial" "$dest"
}

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
  put_bin "$dir/_build/otelcol" otelcol
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
  put_bin "$dir/out/prometheus" prometheus
  put_bin "$dir/out/promtool" promtool
}

build_alertmanager() {
  local v="$LAB_ALERTMANAGER_VERSION" dir="$LAB_CACHE_DIR/build/alertmanager-$LAB_ALERTMANAGER_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  GOBIN="$dir" go install -trimpath -ldflags "$(prom_ldflags "$v")" \
    "github.com/prometheus/alertmanager/cmd/alertmanager@v$v" "github.com/prometheus/alertmanager/cmd/amtool@v$v"
  put_bin "$dir/alertmanager" alertmanager
  put_bin "$dir/amtool" amtool
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
  put_bin "$dir/out/pint" pint
}

build_compose-check() {
  local dir="$LAB_CACHE_DIR/build/compose-check"
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp "$LAB_ROOT/scripts/compose-check/"{go.mod,go.sum,main.go} "$dir/"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o out/compose-check .)
  put_bin "$dir/out/compose-check" compose-check
}

# A wrapper module (go.mod with a `tool` line + go.sum, written once with
# `go get -tool <program>@<version>` and `go mod tidy`) repeats the replace/exclude
# lines of the program's own go.mod, which Go ignores outside the main module.
#   build_wrapped <wrapper dir> <module> <module version> <package> <binary name> <ldflags>
build_wrapped() {
  local wrapper="$1" module="$2" mv="$3" pkg="$4" name="$5" ldflags="$6"
  local dir="$LAB_CACHE_DIR/build/$name"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$module $mv( |$)" "$wrapper/go.mod" ||
    { echo "$wrapper/go.mod does not require $module $mv (.env)"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/out"
  cp "$wrapper/go.mod" "$wrapper/go.sum" "$dir/"
  (cd "$dir" && go build -mod=readonly -trimpath -ldflags "-s -w $ldflags" -o "out/$name" "$pkg")
  put_bin "$dir/out/$name" "$name"
}

build_jaeger() {
  # The binary reports the v2 release (as upstream's image does), the module is v1.x.
  build_wrapped "$LAB_ROOT/scripts/native/jaeger-wrapper" github.com/jaegertracing/jaeger "v$LAB_JAEGER_MODULE_VERSION" \
    github.com/jaegertracing/jaeger/cmd/jaeger jaeger \
    "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$LAB_JAEGER_VERSION -X github.com/jaegertracing/jaeger/internal/version.commitSHA=go-module"
}

build_victorialogs() {
  build_wrapped "$LAB_ROOT/scripts/native/victorialogs-wrapper" github.com/VictoriaMetrics/VictoriaLogs "v$LAB_VICTORIALOGS_VERSION" \
    github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs victorialogs \
    "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v$LAB_VICTORIALOGS_VERSION"
}

build_docker-compose() {
  build_wrapped "$LAB_ROOT/scripts/native/compose-wrapper" github.com/docker/compose/v5 "v$LAB_COMPOSE_VERSION" \
    github.com/docker/compose/v5/cmd docker-compose \
    "-X github.com/docker/compose/v5/internal.Version=v$LAB_COMPOSE_VERSION"
}

# Download the modules a component's build will need (go list -deps fetches exactly those),
# in a scratch copy of its module; the build then finds them in GOMODCACHE. Best effort: a
# failure here shows again, with its message, in the build itself.
prefetch_one() {
  local c="$1" dir="$LAB_CACHE_DIR/build/prefetch-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  case "$c" in
    otelcol)
      local tools="$LAB_CACHE_DIR/tools/builder-$LAB_OTELCOL_VERSION"
      [[ -x "$tools/builder" ]] || GOBIN="$tools" go install "go.opentelemetry.io/collector/cmd/builder@v$LAB_OTELCOL_VERSION"
      cp "$LAB_ROOT/otel-collector/builder-config.yaml" "$dir/"
      (cd "$dir" && "$tools/builder" --config=builder-config.yaml --skip-compilation) ;;
    alertmanager)
      (cd "$dir" && go mod init prefetch && go get "github.com/prometheus/alertmanager/cmd/alertmanager@v$LAB_ALERTMANAGER_VERSION") ;;
    compose-check)
      cp "$LAB_ROOT/scripts/compose-check/"{go.mod,go.sum,main.go} "$dir/"
      (cd "$dir" && go list -mod=readonly -deps . >/dev/null) ;;
    *)
      local wrapper pkgs tags=()
      case "$c" in
        prometheus) wrapper=prometheus-wrapper tags=(-tags remove_all_sd)
          pkgs=(github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool) ;;
        pint) wrapper=pint-wrapper pkgs=(github.com/cloudflare/pint/cmd/pint) ;;
        jaeger) wrapper=jaeger-wrapper pkgs=(github.com/jaegertracing/jaeger/cmd/jaeger) ;;
        victorialogs) wrapper=victorialogs-wrapper pkgs=(github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs) ;;
        docker-compose) wrapper=compose-wrapper pkgs=(github.com/docker/compose/v5/cmd) ;;
      esac
      cp "$LAB_ROOT/scripts/native/$wrapper/"{go.mod,go.sum} "$dir/"
      (cd "$dir" && go list -mod=readonly "${tags[@]}" -deps "${pkgs[@]}" >/dev/null) ;;
  esac
  rm -rf "$dir"
}

build_one() {
  local c="$1" v log start secs lock
  v="$(version_of "$c")"
  # Runs in its own subshell (see below): the lock is held until that subshell ends.
  if command -v flock >/dev/null 2>&1; then
    exec {lock}>"$LAB_CACHE_DIR/.build-$c.lock"
    flock "$lock"
  fi
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

if ((missing)); then
  for c in "${components[@]}"; do
    up_to_date "$c" || echo "$c"
  done
  exit 0
fi

# Each build in its own subshell; the first failure's message is printed by its
# build_one, and the script fails once all have finished.
pids=()
rc=0
prefetched=0
for c in "${components[@]}"; do
  if ((sequential)); then
    (build_one "$c") || rc=1
    # Once the first component is built (the one a test session needs first: the downloads'
    # CPU, go list over thousands of packages, would slow it), the others' modules download.
    if ((!prefetched)); then
      prefetched=1
      for p in "${components[@]:1}"; do
        up_to_date "$p" || (prefetch_one "$p" >"$LOG_DIR/prefetch-$p.log" 2>&1 || true) &
      done
    fi
  else
    build_one "$c" &
    pids+=($!)
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
((rc == 0)) || exit 1

if ((print_paths)); then
  for c in "${components[@]}"; do
    for b in $(binaries_of "$c"); do
      echo "$b=$(lab_bin "$b")"
    done
  done
fi
exit
}
