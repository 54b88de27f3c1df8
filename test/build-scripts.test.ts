// scripts/build-cache.mjs: the skip-if-unchanged fingerprint and the compiler-step runner of the build scripts.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildFailed, fingerprint, runStep, upToDate, writeStamp } from "../scripts/build-cache.mjs";

const dir = mkdtempSync(join(tmpdir(), "lfm2-build-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("build fingerprint", () => {
  it("is up to date only while inputs, tool versions and outputs are unchanged", () => {
    const src = join(dir, "a.ts"), out = join(dir, "a.wasm"), stamp = join(dir, ".stamp.json");
    writeFileSync(src, "export const a = 1;");
    writeFileSync(out, "wasm");
    const print = fingerprint([src], ["asc 1.0"]);
    expect(upToDate(stamp, print, [out], false)).toBe(false); // no stamp yet
    writeStamp(stamp, { fingerprint: print });
    expect(upToDate(stamp, print, [out], false)).toBe(true);
    expect(upToDate(stamp, print, [out], true)).toBe(false); // --force
    expect(upToDate(stamp, fingerprint([src], ["asc 1.1"]), [out], false)).toBe(false); // compiler upgrade
    expect(upToDate(stamp, print, [out, join(dir, "missing.wasm")], false)).toBe(false);
    writeFileSync(src, "export const a = 2;");
    expect(upToDate(stamp, fingerprint([src], ["asc 1.0"]), [out], false)).toBe(false);
  });
});

describe("compiler step runner", () => {
  const logged: string[] = [];
  const log = (s: string) => logged.push(s);

  it("retries once a failure that printed no diagnostics, and shows what happened", () => {
    const counter = join(dir, "attempts");
    // fails silently on the first run, succeeds on the second
    const flaky = `const fs=require("fs");const n=fs.existsSync(${JSON.stringify(counter)})?1:0;` +
      `fs.writeFileSync(${JSON.stringify(counter)},"x");process.exit(n?0:1)`;
    logged.length = 0;
    expect(runStep("flaky", process.execPath, ["-e", flaky], { cwd: dir, log })).toBe(2);
    expect(logged.join("\n")).toMatch(/flaky failed \(exit status 1, attempt 1\)\n\(the tool printed nothing\)/);
    expect(logged.join("\n")).toMatch(/retrying once/);
  });

  it("does not retry a real compile error, and prints the compiler's output", () => {
    const failing = `console.log("ERROR TS2304: Cannot find name 'x'.");process.exit(1)`;
    logged.length = 0;
    expect(() => runStep("asc", process.execPath, ["-e", failing], { cwd: dir, log })).toThrow(BuildFailed);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain("ERROR TS2304: Cannot find name 'x'.");
  });

  it("gives up after the second silent failure", () => {
    logged.length = 0;
    expect(() => runStep("dead", process.execPath, ["-e", "process.exit(3)"], { cwd: dir, log })).toThrow(/exit status 3/);
    expect(logged.filter((l) => l.includes("failed"))).toHaveLength(2);
  });
});
