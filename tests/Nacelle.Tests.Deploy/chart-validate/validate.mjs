// Validates Kubernetes objects (a JSON array, as helm-render -json prints them) against the Kubernetes OpenAPI schema
// with kubernetes-models: required fields, types, formats and enums. Prints one line per object; exits 1 if any is
// invalid or of a kind the schema does not know.
import { readFileSync } from "node:fs";

const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const object of objects) {
  const name = `${object.apiVersion} ${object.kind} ${object.metadata?.name}`;
  // "v1" is kubernetes-models/v1, "apps/v1" kubernetes-models/apps/v1.
  const module = `kubernetes-models/${object.apiVersion}`;
  let Model;
  try {
    Model = (await import(module))[object.kind];
  } catch {
    Model = undefined;
  }
  if (!Model) {
    console.log(`FAIL ${name}: kubernetes-models has no such kind`);
    failed++;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`ok ${name}`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error.message}`);
    failed++;
  }
}
process.exit(failed === 0 ? 0 : 1);
