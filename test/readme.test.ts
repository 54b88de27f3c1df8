// The README's library example runs as written (against the built package, by its own name), with the
// model file name pointed at a synthetic model.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { tinyModelPath } from "./helpers/models.js";

const root = join(import.meta.dirname, "..");

describe("README", () => {
  it("the library example runs as written", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toContain('from "lfm2-wasm"');
    const model = tinyModelPath({ weightType: "Q4_0", seed: 5 });
    const code = transformSync(block!.replaceAll("LFM2-350M-Q4_0.gguf", model), { loader: "ts", format: "esm" }).code +
      `\nconsole.log("\\nREADME-OK", reply.finishReason, logits.length);\nmodel.dispose();\n`;
    const dir = join(root, ".cache", "readme");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "example.mjs");
    writeFileSync(file, code);
    const out = execFileSync(process.execPath, [file], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(out).toMatch(/README-OK (stop|length) 2048/);
  }, 90_000);
});
