// After `npm test`: one plain closing line with the counts from vitest's JSON report.
import { readFileSync } from "node:fs";
const r = JSON.parse(readFileSync(new URL("../.cache/vitest-results.json", import.meta.url), "utf8"));
console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
