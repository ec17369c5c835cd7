// Validate dashboards against JSON schemas generated from @grafana/schema's types (see check.sh).
// Prints {"schemaVersion": <the kind's default>, "panelTypes": [...], "results": {file: [errors]}}.
import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createGenerator } from "ts-json-schema-generator";
import Ajv from "ajv";

const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve("@grafana/schema/package.json"));
const raw = join(pkg, "dist/types/raw");

// The kind's CUE defaults become required properties in the TypeScript types; Grafana fills
// a missing defaulted field itself, so `required` is dropped (types, enums, and unknown
// properties are what is checked).
function dropRequired(node) {
  if (Array.isArray(node)) node.forEach(dropRequired);
  else if (node && typeof node === "object") {
    delete node.required;
    Object.values(node).forEach(dropRequired);
  }
  return node;
}

function schemaOf(path, type) {
  const gen = createGenerator({ path, type, skipTypeCheck: true, expose: "all", topRef: false, additionalProperties: false });
  return dropRequired(gen.createSchema(type));
}

// The dashboard kind. Grafana keeps unknown keys it does not model (and we write none):
// additionalProperties stays false so a typo or a removed field is an error.
const dashboardSchema = schemaOf(join(raw, "dashboard/x/types.gen.d.ts"), "Dashboard");
const defaults = readFileSync(join(pkg, "dist/esm/raw/dashboard/x/types.gen.mjs"), "utf8");
const schemaVersion = Number((defaults.match(/schemaVersion:\s*(\d+)/) || [])[1]);

const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
const validateDashboard = ajv.compile(dashboardSchema);
const panelValidators = {};
function panelValidator(type) {
  if (type in panelValidators) return panelValidators[type];
  const file = join(raw, "composable", type.toLowerCase(), "panelcfg/x/types.gen.d.ts");
  if (!existsSync(file)) return (panelValidators[type] = null);
  panelValidators[type] = {
    options: ajv.compile(schemaOf(file, "Options")),
    fieldConfig: ajv.compile(schemaOf(file, "FieldConfig")),
  };
  return panelValidators[type];
}

const fmt = (where, errs) => (errs || []).map((e) => `${where}${e.instancePath} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
const results = {};
for (const file of process.argv.slice(2)) {
  const dash = JSON.parse(readFileSync(file, "utf8"));
  const errors = [];
  if (!validateDashboard(dash)) errors.push(...fmt("dashboard", validateDashboard.errors));
  if (dash.schemaVersion !== schemaVersion) errors.push(`dashboard/schemaVersion ${dash.schemaVersion} != ${schemaVersion}`);
  const panels = (dash.panels || []).flatMap((p) => (p.type === "row" ? p.panels || [] : [p]));
  for (const p of panels) {
    const v = panelValidator(p.type);
    if (v === null) { errors.push(`panel '${p.title}': no panel plugin '${p.type}' in @grafana/schema`); continue; }
    if (p.options && !v.options(p.options)) errors.push(...fmt(`panel '${p.title}' options`, v.options.errors));
    const custom = p.fieldConfig?.defaults?.custom;
    if (custom && !v.fieldConfig(custom)) errors.push(...fmt(`panel '${p.title}' fieldConfig.defaults.custom`, v.fieldConfig.errors));
  }
  results[file] = errors;
}
const schemaPkg = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
console.log(JSON.stringify({ package: `${schemaPkg.name}@${schemaPkg.version}`, schemaVersion,
  panelTypes: Object.keys(panelValidators).filter((t) => panelValidators[t]), results }, null, 1));
