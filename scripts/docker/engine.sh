#!/usr/bin/env bash
# A private Docker engine for the compose tests (and for `make up` on a machine whose
# Docker is not running), started and stopped by PID - no systemd needed.
#
#   scripts/docker/engine.sh start    install what is missing, start dockerd; prints DOCKER_HOST=...
#   scripts/docker/engine.sh stop     stop the dockerd this script started (its PID file)
#   scripts/docker/engine.sh env      print DOCKER_HOST=... of the private engine
#   scripts/docker/engine.sh compose  print the path of a Docker Compose v2+ command
#
# Missing pieces are installed as .ci/run installs system packages: Debian's docker.io
# (dockerd, containerd, runc) and busybox-static (the stand-in images' busybox) with
# apt-get, as root. Debian's docker-compose 1.29 cannot read docker-compose.yml (its
# top-level `name:` is Compose-spec only), so Compose comes from the Go module
# github.com/docker/compose/v5 (scripts/native/build.sh docker-compose), run standalone.
#
# The daemon: its own --data-root ($LAB_CACHE_DIR/docker/data: images survive, so the
# stand-in images are built once), --exec-root and unix socket, --iptables=false and
# --bridge=none: it creates no network interface and no iptables rule; containers can
# only use the host network (tests/stack/compose.test.yml) or none. Storage driver
# overlay2, vfs where overlay2 does not work (LAB_DOCKER_STORAGE_DRIVER overrides).
# Exit status of start: 0 when the engine answers; 3 when no engine can be had here
# (the one-line reason on stderr); 1 on other errors.
set -euo pipefail
{
source "$(dirname "${BASH_SOURCE[0]}")/../native/lib.sh"

D="$LAB_CACHE_DIR/docker"
SOCK="$D/docker.sock"
EXEC_ROOT="/run/ml-obs-lab-docker"
PIDFILE="$EXEC_ROOT/dockerd.pid"
LOG="$D/dockerd.log"
export DOCKER_HOST="unix://$SOCK"

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
cannot() { echo "engine.sh: no Docker engine here: $*" >&2; exit 3; }

install_missing() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  # a static busybox (ldd fails on a static binary): the stand-ins copy it into FROM scratch
  { [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  ((${#need[@]})) || return 0
  [[ "$(id -u)" == 0 ]] || cannot "${need[*]} missing and not root (apt-get install -y ${need[*]})"
  command -v apt-get >/dev/null || cannot "${need[*]} missing and no apt-get"
  echo "engine.sh: installing ${need[*]} (apt-get)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$D/apt.log" 2>&1 ||
    cannot "apt-get install ${need[*]} failed (see $D/apt.log)"
  # Debian's package would start its own engine where an init system runs; we use ours.
}

start() {
  mkdir -p "$D"
  if answers; then echo "DOCKER_HOST=$DOCKER_HOST"; return 0; fi
  [[ "$(id -u)" == 0 ]] || cannot "starting dockerd needs root (rootless Docker is not set up by this script)"
  install_missing
  command -v docker >/dev/null || cannot "no docker client on PATH"
  mkdir -p "$EXEC_ROOT" "$D/data"
  local driver="${LAB_DOCKER_STORAGE_DRIVER:-overlay2}" try
  for try in "$driver" vfs; do
    rm -f "$SOCK"
    echo "# $(date -u +%FT%TZ) engine.sh: dockerd --storage-driver=$try" >>"$LOG"
    setsid dockerd --data-root="$D/data" --exec-root="$EXEC_ROOT" --pidfile="$PIDFILE" \
      -H "unix://$SOCK" --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
      --storage-driver="$try" --userland-proxy=false </dev/null >>"$LOG" 2>&1 &
    local pid=$! deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
      answers && { echo "DOCKER_HOST=$DOCKER_HOST"; return 0; }
      lab_pid_alive "$pid" || break
      sleep 0.3
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ "$try" == vfs ]] && break
    echo "engine.sh: dockerd did not start with --storage-driver=$try; trying vfs (log: $LOG)" >&2
  done
  cannot "dockerd did not start (log: $LOG)"
}

stop() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid deadline
  pid="$(cat "$PIDFILE")"
  if lab_pid_alive "$pid"; then
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while lab_pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    lab_pid_alive "$pid" && kill -KILL "$pid"
  fi
  rm -f "$PIDFILE" "$SOCK"
  # Mounts the daemon may leave behind (netns files of host-network containers: none
  # expected; overlay mounts of a killed daemon).
  grep -E " ($EXEC_ROOT|$D/data)/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

compose_cmd() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose"; return 0; fi
  "$LAB_ROOT/scripts/native/build.sh" docker-compose >&2
  lab_bin docker-compose
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
  compose) compose_cmd ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
exit
}
