// The package as a user gets it: `npm pack` → installed into a fresh app → bundled with esbuild and with
// Vite (exports condition "browser" → dist/browser.js, no node:* imports) → served statically → headless
// Chromium generates with the tiny model, in-process and in worker mode, and must give Node's greedy tokens.
// Also: the wasm-not-found error, the examples/browser page in both modes, and that worker mode keeps the
// page's thread free (a MessageChannel ping-pong keeps running while tokens are generated; in-process it
// starves, since decoding never yields to the event loop).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build as esbuild } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_PATH, launchChromium, withTimeout, type ChromiumHandle } from "../../bench/chromium.js";
import type { StaticServer } from "../../bench/serve.js";
import { assertBuilt, CONTEXT, MAX_TOKENS, nodeReference, PROMPT, REPO_ROOT, removeTemp, tinyModel } from "./helpers.js";
import { EXAMPLE_PATH, MODEL_URL_PATH, startExampleServer } from "./serve.js";

// CI installs chromium, so there a missing binary is a failure, not a skip.
const missing = !existsSync(CHROMIUM_PATH) && !process.env.CI;

// the app's own code, shared by both bundles: greedy generation, counting page tasks that ran while decoding
const RUN_JS = `import { loadModel, Lfm2Error } from "lfm2-wasm";
export async function runApp({ modelUrl, prompt, maxTokens, context, worker, threads }, loadOpts) {
  const model = await loadModel(new URL(modelUrl, location.href).href, { ...loadOpts, worker, threads });
  try {
    const session = await model.createSession({ contextLength: context });
    let pings = 0, pinging = true;
    const ch = new MessageChannel();
    ch.port1.onmessage = () => { pings++; if (pinging) ch.port2.postMessage(0); };
    ch.port2.postMessage(0);
    const it = session.generate(prompt, { maxTokens, temperature: 0 });
    let r, deltas = 0, pingsAtFirstDelta = 0;
    while (!(r = await it.next()).done) if (deltas++ === 0) pingsAtFirstDelta = pings;
    pinging = false;
    const { wasmVariant, threads: t, threadsNote } = model.info;
    return { tokens: r.value.tokens, text: r.value.text, deltas, pingsWhileDecoding: pings - pingsAtFirstDelta,
      info: { wasmVariant, threads: t, threadsNote }, isWorkerModel: typeof model.memoryBytes === "function" };
  } finally { await model.dispose(); }
}
export async function errorOf(f) {
  try { await f(); return null; } catch (e) { return { isLfm2: e instanceof Lfm2Error, code: e.code, message: e.message }; }
}
`;

// esbuild: the .wasm files through the "file" loader (hashed copies + their URLs), the worker script as a second entry
const ESBUILD_MAIN = `import { runApp, errorOf } from "./run.js";
import simd from "lfm2-wasm/build/lfm2-simd.wasm";
import relaxed from "lfm2-wasm/build/lfm2-relaxed.wasm";
import simdMt from "lfm2-wasm/build/lfm2-simd-mt.wasm";
import relaxedMt from "lfm2-wasm/build/lfm2-relaxed-mt.wasm";
const wasmUrls = { "lfm2-simd": simd, "lfm2-relaxed": relaxed, "lfm2-simd-mt": simdMt, "lfm2-relaxed-mt": relaxedMt };
const workerUrl = new URL("./lfm2-worker.js", import.meta.url);
window.lfm2App = {
  run: (o) => runApp(o, { wasmUrls, workerUrl }),
  // what a user sees who skipped the loader setup
  runUnconfigured: (o) => errorOf(() => runApp(o, {})),
};
`;

// Vite: nothing to configure; it copies the wasm (new URL(…, import.meta.url)) and bundles the worker itself
const VITE_MAIN = `import { runApp } from "./run.js";
window.lfm2App = { run: (o) => runApp(o, {}) };
`;
const page = (script: string) => `<!doctype html><html><head><meta charset="utf-8"><title>app</title></head>
<body><script type="module" src="${script}"></script></body></html>`;

describe.skipIf(missing)(`bundled apps in Chromium${missing ? `: skipped, ${CHROMIUM_PATH} not found (apt-get install -y chromium, or set CHROMIUM_PATH)` : ""}`, () => {
  let browser: ChromiumHandle;
  let server: StaticServer;
  const consoleLines: string[] = [];
  let appDir = "";
  let tarball = "";

  beforeAll(async () => {
    assertBuilt();
    const { path, dir } = await tinyModel();
    // the tarball as published (dist/ and build/ are current: vitest runs after the build)
    const packDir = join(dir, "pack");
    mkdirSync(packDir);
    const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", packDir],
      { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
    tarball = join(packDir, packed[0].filename);
    appDir = join(dir, "app");
    mkdirSync(join(appDir, "src"), { recursive: true });
    writeFileSync(join(appDir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    execFileSync("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
      { cwd: appDir, stdio: ["ignore", "inherit", "inherit"], timeout: 240_000 });
    writeFileSync(join(appDir, "src/run.js"), RUN_JS);
    writeFileSync(join(appDir, "src/esbuild-main.js"), ESBUILD_MAIN);
    writeFileSync(join(appDir, "src/vite-main.js"), VITE_MAIN);

    const esOut = join(appDir, "esbuild-out");
    await esbuild({ absWorkingDir: appDir, entryPoints: { app: "src/esbuild-main.js", "lfm2-worker": "lfm2-wasm/worker.js" },
      outdir: esOut, bundle: true, format: "esm", platform: "browser", loader: { ".wasm": "file" }, logLevel: "error" });
    writeFileSync(join(esOut, "index.html"), page("./app.js"));

    writeFileSync(join(appDir, "index.html"), page("/src/vite-main.js"));
    const { build: viteBuild } = await import("vite");
    await viteBuild({ root: appDir, base: "/apps/vite/", configFile: false, logLevel: "error",
      build: { outDir: join(appDir, "vite-out"), emptyOutDir: true } });

    server = await startExampleServer({ modelPath: path, extraRoots: { "/apps/esbuild/": esOut, "/apps/vite/": join(appDir, "vite-out") } });
    browser = await launchChromium({ onConsole: (l) => consoleLines.push(l), timeoutMs: 30_000 });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    removeTemp();
  });

  const args = (o: { worker: boolean; threads: number }) => ({ modelUrl: MODEL_URL_PATH, prompt: PROMPT, maxTokens: MAX_TOKENS, context: CONTEXT, ...o });

  async function inApp(app: "esbuild" | "vite", isolate: boolean, call: string): Promise<any> {
    server.setIsolation(isolate);
    const p = await browser.newPage();
    try {
      // under /apps/: the server's /build/ (for examples/) must not answer an unconfigured bundle's ../build/ by luck
      await p.goto(server.url(`/apps/${app}/index.html`), { waitUntil: "load" });
      await p.waitForFunction(() => (window as any).lfm2App, null, { timeout: 30_000 });
      // page-side code as text: vitest would rewrite code inside a function passed to evaluate
      return await withTimeout(p.evaluate(call), 60_000, `${app}: ${call}`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${consoleLines.join("\n")}`);
    } finally { await p.close(); }
  }

  it("the tarball: built kernels, bundles and docs, no source maps; the browser builds bundle without node: imports", async () => {
    const files = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO_ROOT, encoding: "utf8" }))[0]
      .files.map((f: { path: string }) => f.path);
    for (const f of ["README.md", "LICENSE", "package.json", "dist/index.js", "dist/browser.js", "dist/worker.js", "dist/browser-worker.js",
      "dist/cli.js", "dist/types/src/index.d.ts", "build/lfm2-simd.wasm", "build/lfm2-relaxed.wasm", "build/lfm2-simd-mt.wasm",
      "build/lfm2-relaxed-mt.wasm"]) expect(files).toContain(f);
    expect(files.filter((f: string) => f.endsWith(".map"))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    expect(pkg.scripts.prepack).toMatch(/build/);
    const installed = join(appDir, "node_modules/lfm2-wasm/dist");
    // the property itself: esbuild for the browser takes the browser builds, and fails on the Node build's node:* imports
    const bundleAlone = (f: string) => esbuild({ entryPoints: [join(installed, f)], bundle: true, write: false, platform: "browser",
      format: "esm", logLevel: "silent" });
    for (const f of ["browser.js", "browser-worker.js"]) await expect(bundleAlone(f)).resolves.toBeTruthy();
    await expect(bundleAlone("index.js")).rejects.toThrow(/node:/);
    expect(readdirSync(join(appDir, "esbuild-out")).filter((f) => f.endsWith(".wasm"))).toHaveLength(4);
    expect(readdirSync(join(appDir, "vite-out/assets")).filter((f) => f.endsWith(".wasm")).length).toBeGreaterThan(0);
  });

  it("esbuild app: Node's greedy tokens in-process and in a Worker (nested thread pool, isolated)", async () => {
    const ref = await nodeReference();
    const local = await inApp("esbuild", false, `lfm2App.run(${JSON.stringify(args({ worker: false, threads: 1 }))})`);
    expect(local.tokens).toEqual(ref.tokens);
    expect(local.text).toBe(ref.text);
    expect(local.isWorkerModel).toBe(false);
    const remote = await inApp("esbuild", true, `lfm2App.run(${JSON.stringify(args({ worker: true, threads: 2 }))})`);
    expect(remote.isWorkerModel).toBe(true);
    expect(remote.info.threads, remote.info.threadsNote).toBe(2);
    expect(remote.info.wasmVariant).toMatch(/-mt$/);
    expect(remote.tokens).toEqual(ref.tokens);
  }, 120_000);

  it("esbuild app without the wasm locations: an IO Lfm2Error naming the URL and the options to set", async () => {
    const err = await inApp("esbuild", false, `lfm2App.runUnconfigured(${JSON.stringify(args({ worker: false, threads: 1 }))})`);
    expect(err).toMatchObject({ isLfm2: true, code: "IO" });
    expect(err.message).toMatch(/lfm2-(relaxed|simd)\.wasm from http:\/\/127\.0\.0\.1:\d+\/apps\/build\/lfm2-(relaxed|simd)\.wasm/);
    expect(err.message).toMatch(/wasmBaseUrl, wasmUrls or wasmModules/);
  }, 60_000);

  it("Vite app (no configuration): Node's greedy tokens in-process and in a Worker; the page keeps running while the worker decodes", async () => {
    const ref = await nodeReference();
    const local = await inApp("vite", false, `lfm2App.run(${JSON.stringify(args({ worker: false, threads: 1 }))})`);
    expect(local.tokens).toEqual(ref.tokens);
    const remote = await inApp("vite", true, `lfm2App.run(${JSON.stringify(args({ worker: true, threads: 2 }))})`);
    expect(remote.isWorkerModel).toBe(true);
    expect(remote.info.threads, remote.info.threadsNote).toBe(2);
    expect(remote.tokens).toEqual(ref.tokens);
    // in-process, decoding runs to the end without giving the page a task; in a worker the page's tasks go on
    expect(local.pingsWhileDecoding).toBeLessThanOrEqual(1);
    expect(remote.pingsWhileDecoding).toBeGreaterThanOrEqual(remote.deltas);
    console.log(`page tasks while decoding ${MAX_TOKENS} tokens: in-process ${local.pingsWhileDecoding}, worker ${remote.pingsWhileDecoding}`);
  }, 120_000);

  it("examples/browser: Node's greedy tokens in a Worker (default) and on the page's thread", async () => {
    const ref = await nodeReference();
    for (const worker of ["1", "0"]) {
      server.setIsolation(true);
      const p = await browser.newPage();
      try {
        const q = new URLSearchParams({ model: MODEL_URL_PATH, threads: "2", prompt: PROMPT, maxTokens: String(MAX_TOKENS), cache: "0",
          autorun: "1", ...(worker === "0" ? { worker } : {}) });
        await p.goto(`${server.url(EXAMPLE_PATH)}?${q}`, { waitUntil: "load" });
        await p.waitForFunction(() => ["done", "error"].includes((window as any).lfm2Demo?.state), null, { timeout: 60_000 });
        const demo = await p.evaluate(() => (window as any).lfm2Demo);
        expect(demo.error, `${demo.error}\n${consoleLines.join("\n")}`).toBeNull();
        expect(demo.load.worker).toBe(worker === "1");
        expect(demo.load.info.threads).toBe(2);
        expect(demo.result.tokens).toEqual(ref.tokens);
      } finally { await p.close(); }
    }
  }, 120_000);
});
