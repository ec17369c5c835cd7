// Validate Grafana provisioning files (as JSON, after Grafana's ${VAR} expansion) against
// provisioning.schema.json (see check.sh --provisioning). Arguments: <kind>=<file.json> with kind
// datasourcesFile or dashboardsFile. Prints {"results": {file: [errors]}}.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const schema = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "provisioning.schema.json"), "utf8"));
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(schema, "provisioning");
const results = {};
for (const arg of process.argv.slice(2)) {
  const [kind, file] = arg.split(/=(.*)/s);
  const validate = ajv.getSchema(`provisioning#/definitions/${kind}`);
  if (!validate) { console.error(`provisioning.mjs: unknown kind ${kind}`); process.exit(2); }
  const ok = validate(JSON.parse(readFileSync(file, "utf8")));
  results[file] = ok ? [] : validate.errors.map((e) =>
    `${e.instancePath || "/"} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
}
console.log(JSON.stringify({ results }));
