// workerd (Cloudflare's runtime, from the `workerd` npm devDependency) serves
// examples/cloudflare-worker/worker.js with examples/cloudflare-worker/config.capnp: the kernels are
// wasm module bindings handed over through `wasmModules`. Two runs: the config as shipped (the tiny
// demo model built inside the isolate from its seed) and the same config with the model file that
// Node used as a data binding. Both must reproduce Node's greedy tokens.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { findWorkerd, MAX_TOKENS, MODEL_OPTS, nodeReference, PROMPT, REPO_ROOT, removeTemp, tempFile, tinyModel } from "./helpers.js";

const workerd = findWorkerd();
const CONFIG = join(REPO_ROOT, "examples/cloudflare-worker/config.capnp");

interface Running { port: number; child: ChildProcess; log: () => string }
const running: ChildProcess[] = [];
afterEach(() => { for (const c of running.splice(0)) c.kill("SIGKILL"); });
afterAll(removeTemp);

/** Start workerd on a free port (reported through --control-fd). */
function serve(bin: string, config: string): Promise<Running> {
  const child = spawn(bin, ["serve", config, "-s", "http=127.0.0.1:0", "--control-fd", "3"], {
    cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  running.push(child);
  let log = "";
  child.stdout!.on("data", (d) => { log += d; });
  child.stderr!.on("data", (d) => { log += d; });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`workerd did not start within 30 s:\n${log}`)), 30_000);
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`workerd exited (${code}):\n${log}`)); });
    let ctl = "";
    (child.stdio[3] as Readable).on("data", (d) => {
      ctl += d;
      for (const line of ctl.split("\n")) {
        try {
          const m = JSON.parse(line);
          if (m.event === "listen" && m.socket === "http") { clearTimeout(timer); ok({ port: m.port, child, log: () => log }); }
        } catch { /* partial line */ }
      }
    });
  });
}

async function generate(w: Running): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${w.port}/?prompt=${encodeURIComponent(PROMPT)}&maxTokens=${MAX_TOKENS}`, { signal: AbortSignal.timeout(60_000) });
  const body = await res.text();
  expect(res.status, `${body}\n${w.log()}`).toBe(200);
  return JSON.parse(body);
}

describe.skipIf(!workerd.ok)(`workerd${workerd.ok ? ` (${workerd.bin.version})` : `: skipped, ${workerd.reason}`}`, () => {
  it("config.capnp as shipped: demo model built in the isolate, same tokens as Node", async () => {
    if (!workerd.ok) return;
    // the shipped config must describe the model the reference uses
    expect(readFileSync(CONFIG, "utf8")).toMatch(new RegExp(`name = "SEED", text = "${MODEL_OPTS.seed}"`));
    const ref = await nodeReference();
    const out = await generate(await serve(workerd.bin.path, CONFIG));
    expect(out.tokens).toEqual(ref.tokens);
    expect(out.text).toBe(ref.text);
    expect(out.finishReason).toBe("length");
    expect(out.info.threads).toBe(1);
    expect(out.info.source).toBe(`synthetic tiny Q4_0, seed ${MODEL_OPTS.seed}`);
    // the WebAssembly memory must leave room for the JS heap inside a Worker's 128 MB isolate
    expect(out.info.memoryBytes).toBeLessThan(96 << 20);
    console.log(`workerd ${workerd.bin.version}: ${out.info.wasmVariant}, wasm memory ${(out.info.memoryBytes / 1e6).toFixed(1)} MB, ${out.tokens.length} tokens, text ${JSON.stringify(out.text)}`);
  }, 60_000);

  it("the model file Node loaded, as a data binding: same tokens", async () => {
    if (!workerd.ok) return;
    const ref = await nodeReference();
    const { path, dir } = await tinyModel();
    // same config, written next to the model: embeds re-pointed at the repo, the MODEL binding enabled
    const exampleDir = dirname(CONFIG);
    let text = readFileSync(CONFIG, "utf8").replace(/embed "([^"]+)"/g, (_, p) => `embed "${relative(dir, resolve(exampleDir, p))}"`);
    const marker = /# \(name = "MODEL", data = embed "[^"]+"\),/;
    expect(text, "config.capnp lost its commented MODEL binding").toMatch(marker);
    text = text.replace(marker, `(name = "MODEL", data = embed "${relative(dir, path)}"),`);
    const out = await generate(await serve(workerd.bin.path, await tempFile("workerd-data-binding.capnp", text)));
    expect(out.info.source).toBe("data binding MODEL");
    expect(out.tokens).toEqual(ref.tokens);
    expect(out.text).toBe(ref.text);
  }, 60_000);
});
