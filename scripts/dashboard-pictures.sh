#!/usr/bin/env bash
# Regenerate docs/img/dashboards/*.png from real runs (make dashboard-pictures).
#
# Starts a private native stack (temporary state dir, free ports: never clashes with a
# stack you run), runs the scenarios paced at --speed 4 against it, draws each panel with
# lab/dev/pictures.py, and always stops the stack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
state="$(mktemp -d)"
source "$ROOT/scripts/native/lib.sh"
# Every port of the component table (scripts/native/components.tsv) on a free port.
mapfile -t vars < <(lab_port_vars)
ports=($("$PY" -c 'import socket, sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])' "${#vars[@]}"))
for i in "${!vars[@]}"; do export "${vars[$i]}=${ports[$i]}"; done
export LAB_STATE_DIR="$state" LAB_COLLECTOR_FILE_DIR="$state/otelcol"
trap '"$ROOT/scripts/native/down.sh" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
"$ROOT/scripts/native/up.sh" >/dev/null
export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$LAB_OTLP_GRPC_PORT" OTEL_EXPORTER_OTLP_PROTOCOL=grpc
export OTEL_EXPORTER_OTLP_INSECURE=true OTEL_METRIC_EXPORT_INTERVAL=5000
"$PY" -m lab.dev.pictures --prometheus "http://127.0.0.1:$LAB_PROMETHEUS_PORT" "$@"
