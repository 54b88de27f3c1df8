// After `npm test`: the skipped tests with the reasons their titles carry, then one plain closing line
// with the counts from vitest's JSON report.
import { readFileSync } from "node:fs";
import { relative } from "node:path";
const r = JSON.parse(readFileSync(new URL("../.cache/vitest-results.json", import.meta.url), "utf8"));
const root = new URL("..", import.meta.url).pathname;
const skipped = r.testResults.flatMap((f) => f.assertionResults
  .filter((a) => a.status === "pending" || a.status === "skipped" || a.status === "todo")
  .map((a) => `  ${relative(root, f.name)}: ${a.fullName}`));
if (skipped.length) console.log(`\nskipped (the reason is in the title or printed above):\n${skipped.join("\n")}`);
console.log(`\ntests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
