// Times Ajv (JSON Schema 2020-12, ajv-formats) on the payloads of JSON lines that
// `evkit generate-examples` wrote: JSON.parse of the payload, then the compiled validator.
// Prints one JSON object: microseconds per message (median of the passes) and the verdict of
// every message, in order. Run by compare.py:  node ajv_bench.js SCHEMA FILE PASSES
"use strict";
const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const [schemaPath, file, passesArg] = process.argv.slice(2);
const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
const ajv = new Ajv2020({ strict: false });
addFormats(ajv);
const validate = ajv.compile(schema);
const payloads = fs
  .readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => Buffer.from(JSON.parse(l).payload, "utf8"));

const check = (p) => {
  let v;
  try {
    v = JSON.parse(p.toString("utf8"));
  } catch (e) {
    return false;
  }
  return validate(v);
};
const verdicts = payloads.map(check);
const per = [];
for (let i = 0; i < Number(passesArg); i++) {
  const t0 = process.hrtime.bigint();
  for (const p of payloads) check(p);
  per.push(Number(process.hrtime.bigint() - t0) / 1e3 / payloads.length);
}
per.sort((a, b) => a - b);
console.log(JSON.stringify({ us: per[Math.floor(per.length / 2)], verdicts }));
