// Deno (from the `deno` npm devDependency) runs dist/index.js and must reproduce Node's greedy tokens
// for every way of loading the model, including with Web Worker threads over shared memory.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONTEXT, findDeno, MAX_TOKENS, nodeReference, PROMPT, REPO_ROOT, removeTemp, run, tinyModel } from "./helpers.js";

const deno = findDeno();
afterAll(removeTemp);

describe.skipIf(!deno.ok)(`Deno${deno.ok ? ` (${deno.bin.version})` : `: skipped, ${deno.reason}`}`, () => {
  it("greedy tokens match Node's: bytes, path, file: URL, http URL, threads, several shards", async () => {
    if (!deno.ok) return;
    const ref = await nodeReference();
    const { path, dir } = await tinyModel();
    const args = JSON.stringify({ modelPath: path, prompt: PROMPT, maxTokens: MAX_TOKENS, context: CONTEXT, threads: 2 });
    const r = await run(deno.bin.path, ["run", "--no-prompt", `--allow-read=${REPO_ROOT},${dir}`, "--allow-net=127.0.0.1",
      join(REPO_ROOT, "test/runtimes/deno-run.mjs"), args], {
      timeoutMs: 90_000,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", DENO_DIR: join(dir, "deno-dir") },
    });
    expect(r.code, `deno exited ${r.code ?? r.signal}\n${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.results.map((x: any) => x.name)).toEqual(["bytes", "path", "file-url", "http-url", "threads", "shards", "shards-threads"]);
    for (const res of out.results) {
      expect(res.error, `${res.name}: ${res.error}`).toBeUndefined();
      expect(res.tokens, res.name).toEqual(ref.tokens);
      expect(res.text, res.name).toBe(ref.text);
    }
    expect(out.jsrName).toEqual({ name: "@lfm2/wasm", sameModule: true }); // deno.json exports → dist/index.js
    const threaded = out.results.find((x: any) => x.name === "threads");
    expect(threaded.threads, threaded.threadsNote).toBe(2);
    expect(threaded.wasmVariant).toMatch(/-mt$/);
    for (const name of ["shards", "shards-threads"]) expect(out.results.find((x: any) => x.name === name).shards, name).toBeGreaterThanOrEqual(3);
    expect(out.results.find((x: any) => x.name === "shards-threads").threads).toBe(2);
    console.log(`deno ${out.deno} (V8 ${out.v8}): ${out.results.map((x: any) => `${x.name} ${x.wasmVariant} t=${x.threads} load ${x.loadMs.toFixed(0)} ms`).join("; ")}`);
  }, 120_000);
});
