#!/usr/bin/env bash
# Build the stand-in images of every compose service whose program can be built here,
# tagged exactly as docker-compose.yml names them, into the engine at DOCKER_HOST.
#
#   scripts/docker/standins.sh            (DOCKER_HOST from scripts/docker/engine.sh start)
#
# Nothing is pulled: the images are FROM scratch + the static binaries that
# scripts/native/build.sh builds from Go modules (plus Debian's static busybox where
# the upstream image has a busybox/alpine base), and, for the Python webhook sink, FROM a
# Debian bookworm base made here with debootstrap and `docker import`. Each Dockerfile
# in scripts/docker/standins/ notes the upstream image's contract it reproduces
# (entrypoint, default command, user, working directory, config/data paths);
# tests/stack/test_compose_stack.py asserts it against the compose file.
# Grafana has no stand-in (no Grafana server can be built here).
# An image whose inputs (Dockerfile, binaries, files) are unchanged is not rebuilt
# (label ml-obs-lab.inputs); durations go to $LAB_CACHE_DIR/logs/build-times.tsv.
set -euo pipefail
{
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../native/lib.sh"
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin needed, FROM local images only

SERVICES=(otel-collector prometheus alertmanager jaeger victorialogs webhook-sink)
BASE=ml-obs-lab/debian-bookworm-python3:base
CTX="$LAB_CACHE_DIR/docker/contexts"
LOGS="$LAB_CACHE_DIR/logs"
mkdir -p "$CTX" "$LOGS"

read -r -a COMPOSE <<<"$("$HERE/engine.sh" compose)"
docker version >/dev/null 2>&1 || { echo "standins.sh: no Docker engine at ${DOCKER_HOST:-default}" >&2; exit 1; }

# service -> image, as compose resolves docker-compose.yml with .env.
images_json="$("${COMPOSE[@]}" --project-directory "$LAB_ROOT" -f "$LAB_ROOT/docker-compose.yml" config --format json)"
image_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][sys.argv[1]]["image"])' "$1" <<<"$images_json"; }

declare -A BIN
while IFS='=' read -r name path; do BIN[$name]="$path"; done < <(
  "$LAB_ROOT/scripts/native/build.sh" --print-paths otelcol prometheus alertmanager jaeger victorialogs)

rootfs() { # <dir>: /etc/passwd, /etc/group, CA certificates, /tmp
  mkdir -p "$1/etc/ssl/certs" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$1/etc/group"
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"; fi
}

context() { # <service> <dir>: everything its Dockerfile copies
  local s="$1" d="$2"
  rm -rf "$d" && mkdir -p "$d"
  cp "$HERE/standins/$s.Dockerfile" "$d/Dockerfile"
  case "$s" in
    otel-collector)
      rootfs "$d/rootfs"; cp "${BIN[otelcol]}" "$d/otelcol"
      printf 'receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n' >"$d/config.yaml" ;;
    prometheus)
      rootfs "$d/rootfs"; cp /bin/busybox "$d/busybox"; cp "${BIN[prometheus]}" "$d/prometheus"; cp "${BIN[promtool]}" "$d/promtool"
      printf 'global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["localhost:9090"]\n' >"$d/prometheus.yml" ;;
    alertmanager)
      rootfs "$d/rootfs"; cp /bin/busybox "$d/busybox"; cp "${BIN[alertmanager]}" "$d/alertmanager"; cp "${BIN[amtool]}" "$d/amtool"
      printf 'route:\n  receiver: default\nreceivers:\n  - name: default\n' >"$d/alertmanager.yml" ;;
    jaeger)
      rootfs "$d/rootfs"; cp /bin/busybox "$d/busybox"; cp "${BIN[jaeger]}" "$d/jaeger"
      printf '{"default_strategy": {"type": "probabilistic", "param": 1}}\n' >"$d/sampling-strategies.json" ;;
    victorialogs)
      rootfs "$d/rootfs"; cp "${BIN[victorialogs]}" "$d/victorialogs" ;;
    webhook-sink) ;;
  esac
}

inputs_hash() { # <dir>
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; find . -printf '%m %P\n' | LC_ALL=C sort) | sha256sum | cut -d' ' -f1
}

ensure_base() {
  docker image inspect "$BASE" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || { echo "standins.sh: debootstrap missing (apt-get install -y debootstrap)" >&2; exit 1; }
  local dir="$LAB_CACHE_DIR/docker/debootstrap" start=$SECONDS
  echo "standins.sh: making $BASE with debootstrap (first time only; ~2 min)" >&2
  rm -rf "$dir"
  debootstrap --variant=minbase --include=python3 bookworm "$dir" http://deb.debian.org/debian >"$LOGS/debootstrap.log" 2>&1 ||
    { echo "standins.sh: debootstrap failed; see $LOGS/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$dir"
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "standin-base" "debian-bookworm" "$((SECONDS - start))" >>"$LOGS/build-times.tsv"
}

build() { # <service>
  local s="$1" image d="$CTX/$1" hash have start
  image="$(image_of "$s")"
  context "$s" "$d"
  [[ "$s" == webhook-sink ]] && ensure_base
  hash="$(inputs_hash "$d")"
  have="$(docker image inspect -f '{{index .Config.Labels "ml-obs-lab.inputs"}}' "$image" 2>/dev/null || true)"
  if [[ "$have" == "$hash" ]]; then
    echo "standins.sh: $image up to date" >&2
    return 0
  fi
  start=$SECONDS
  docker build -q --network none --label "ml-obs-lab.inputs=$hash" --label "ml-obs-lab.standin=$s" -t "$image" "$d" \
    >"$LOGS/standin-$s.log" 2>&1 || { echo "standins.sh: building $image failed; see $LOGS/standin-$s.log" >&2; exit 1; }
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "standin-$s" "$image" "$((SECONDS - start))" >>"$LOGS/build-times.tsv"
  echo "standins.sh: built $image in $((SECONDS - start))s" >&2
}

for s in "${SERVICES[@]}"; do build "$s"; done
exit
}
