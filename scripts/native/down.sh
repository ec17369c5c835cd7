#!/usr/bin/env bash
# Stop the native stack started by scripts/native/up.sh: exactly the processes
# recorded in ${LAB_STATE_DIR:-<repo>/.lab}/run/*.pid, nothing else. Idempotent.
#
#   scripts/native/down.sh
#
# A pid file whose process is gone, or whose pid now belongs to another process
# (its start, lib.sh lab_proc_start, differs from the one recorded), is just removed. Each process gets
# SIGTERM, then SIGKILL after LAB_DOWN_TIMEOUT seconds (default 15). stack.env (the
# stack's address, written by up.sh) is removed. Data, logs and
# file-exporter output stay in the state directory (`make clean` removes .lab/).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"

RUN="$LAB_STATE_DIR/run"
TIMEOUT="${LAB_DOWN_TIMEOUT:-15}"
# Reverse start order (scripts/native/components.tsv): the collector first, so that it
# can flush to the backends before they stop.
mapfile -t ORDER < <(lab_components | awk '{print $1}' | tac)

stop() {
  local name="$1" f="$RUN/$1.pid" pid deadline
  [[ -f "$f" ]] || return 0
  pid="$(head -n1 "$f")"
  if lab_pidfile_alive "$f"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    while lab_pidfile_alive "$f" && ((SECONDS < deadline)); do sleep 0.1; done
    if lab_pidfile_alive "$f"; then
      echo "down.sh: $name (pid $pid) ignored SIGTERM for ${TIMEOUT}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "down.sh: stopped $name (pid $pid)" >&2
  fi
  rm -f "$f"
}

if [[ ! -d "$RUN" ]]; then
  echo "down.sh: nothing to stop (no $RUN)" >&2
  exit 0
fi
for name in "${ORDER[@]}"; do stop "$name"; done
# Pid files of components this version does not know (renamed, removed).
for f in "$RUN"/*.pid; do
  [[ -e "$f" ]] || continue
  stop "$(basename "$f" .pid)"
done
lab_remove_stack_env native
rm -f "$LAB_STATE_DIR/profile"  # the next `make up` starts the profile it is given (default: default)
