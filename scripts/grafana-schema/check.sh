#!/usr/bin/env bash
# Validate Grafana dashboards against the JSON schema of the pinned Grafana's dashboard kind.
#
#   scripts/grafana-schema/check.sh <dashboard.json> ...      prints one JSON report on stdout
#   scripts/grafana-schema/check.sh --provisioning <kind>=<file.json> ...
#       provisioning files (as JSON) against provisioning.schema.json (kind: datasourcesFile,
#       dashboardsFile): Grafana publishes no schema for them; that file says where each part
#       comes from
#
# @grafana/schema at LAB_GRAFANA_VERSION (Apache-2.0; the npm package of the dashboard kind
# Grafana itself is built from) ships TypeScript types, not JSON schemas: check.mjs
# generates JSON schemas from them with ts-json-schema-generator - the Dashboard type (the
# classic v1 JSON model whose default schemaVersion is LAB_GRAFANA_DASHBOARD_SCHEMA_VERSION)
# and each panel plugin's Options/FieldConfig - and validates with ajv.
# A test-only npm install, once, under $LAB_CACHE_DIR/npm/grafana-schema-<version>
# (package.json here pins every version; npm registry only).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../native/lib.sh"
DIR="$LAB_CACHE_DIR/npm/grafana-schema-$LAB_GRAFANA_VERSION"
command -v npm >/dev/null || { echo "check.sh: npm not found (apt-get install -y npm)" >&2; exit 1; }
grep -q "\"@grafana/schema\": \"$LAB_GRAFANA_VERSION\"" "$HERE/package.json" ||
  { echo "check.sh: package.json does not pin @grafana/schema $LAB_GRAFANA_VERSION (LAB_GRAFANA_VERSION)" >&2; exit 1; }
if ! cmp -s "$HERE/package.json" "$DIR/package.json" || [[ ! -d "$DIR/node_modules/@grafana/schema" ]]; then
  mkdir -p "$DIR"
  cp "$HERE/package.json" "$DIR/package.json"
  (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >"$DIR/npm.log" 2>&1) ||
    { echo "check.sh: npm install failed; see $DIR/npm.log" >&2; exit 1; }
fi
cp "$HERE/check.mjs" "$HERE/provisioning.mjs" "$HERE/provisioning.schema.json" "$DIR/"
if [[ "${1:-}" == --provisioning ]]; then shift; exec node "$DIR/provisioning.mjs" "$@"; fi
exec node "$DIR/check.mjs" "$@"
