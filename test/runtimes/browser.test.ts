// Headless Chromium (Debian's /usr/bin/chromium via playwright-core, bench/chromium.ts) opens
// examples/browser/index.html, which imports dist/index.js and loads the model by URL. Once
// cross-origin isolated (threads > 1) and once not (1 thread + threadsNote): the same greedy tokens
// as Node. Then the Cache API loader (src/io/browser-cache.ts): a reload reads the model from Cache
// Storage without a single request for it.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_PATH, launchChromium, withTimeout, type ChromiumHandle } from "../../bench/chromium.js";
import type { StaticServer } from "../../bench/serve.js";
import { CONTEXT, MAX_TOKENS, nodeReference, PROMPT, REPO_ROOT, removeTemp, tinyModel } from "./helpers.js";
import { EXAMPLE_PATH, MODEL_URL_PATH, startExampleServer } from "./serve.js";

// CI installs chromium, so there a missing binary is a failure, not a skip.
const missing = !existsSync(CHROMIUM_PATH) && !process.env.CI;

describe.skipIf(missing)(`Chromium${missing ? `: skipped, ${CHROMIUM_PATH} not found (apt-get install -y chromium, or set CHROMIUM_PATH)` : ""}`, () => {
  let browser: ChromiumHandle;
  let server: StaticServer;
  const requests: string[] = [];
  const consoleLines: string[] = [];

  beforeAll(async () => {
    const { path, dir } = await tinyModel();
    // the cache loader is not in dist/ until loadModel uses it: bundle it for the page
    const cacheDir = join(dir, "cache-test");
    await build({ entryPoints: [join(REPO_ROOT, "src/io/browser-cache.ts")], outfile: join(cacheDir, "browser-cache.js"),
      bundle: true, format: "esm", platform: "neutral", target: "es2022", external: ["node:*"], logLevel: "warning" });
    server = await startExampleServer({ modelPath: path, extraRoots: { "/cache-test/": cacheDir }, log: (l) => requests.push(l) });
    browser = await launchChromium({ onConsole: (l) => consoleLines.push(l), timeoutMs: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    removeTemp();
  });

  async function runExample(threads: number): Promise<any> {
    const page = await browser.newPage();
    try {
      const q = new URLSearchParams({ model: MODEL_URL_PATH, threads: String(threads), prompt: PROMPT, maxTokens: String(MAX_TOKENS), cache: "0", autorun: "1" });
      await page.goto(`${server.url(EXAMPLE_PATH)}?${q}`, { waitUntil: "load" });
      await page.waitForFunction(() => ["done", "error"].includes((window as any).lfm2Demo?.state), null, { timeout: 60_000 });
      const demo = await page.evaluate(() => (window as any).lfm2Demo);
      expect(demo.error, `${demo.error}\n${consoleLines.join("\n")}`).toBeNull();
      const shown = await page.textContent("#output");
      expect(shown).toBe(demo.result.text); // the page shows what was generated
      expect(await page.textContent("#stats")).toMatch(/tokens\/s/);
      return demo;
    } finally { await page.close(); }
  }

  it("cross-origin isolated: worker threads, same greedy tokens as Node", async () => {
    const ref = await nodeReference();
    server.setIsolation(true);
    const demo = await runExample(2);
    expect(demo.crossOriginIsolated).toBe(true);
    expect(demo.load.info.threads, demo.load.info.threadsNote).toBe(2);
    expect(demo.load.info.wasmVariant).toMatch(/-mt$/);
    expect(demo.load.lastProgress.loaded).toBe(demo.load.lastProgress.total); // the progress bar reached the end
    expect(demo.result.tokens).toEqual(ref.tokens);
    expect(demo.result.text).toBe(ref.text);
    console.log(`chromium isolated: ${demo.load.info.wasmVariant} x${demo.load.info.threads}, load ${demo.load.loadMs.toFixed(0)} ms, ${demo.result.tokensPerSecond.toFixed(1)} tok/s`);
  }, 90_000);

  it("not isolated: falls back to 1 thread with a note, same greedy tokens as Node", async () => {
    const ref = await nodeReference();
    server.setIsolation(false);
    const demo = await runExample(2);
    expect(demo.crossOriginIsolated).toBe(false);
    expect(demo.load.info.threads).toBe(1);
    expect(demo.load.info.threadsNote).toMatch(/shared/i);
    expect(demo.load.info.wasmVariant).not.toMatch(/-mt$/);
    expect(demo.result.tokens).toEqual(ref.tokens);
    expect(demo.result.text).toBe(ref.text);
    console.log(`chromium not isolated: ${demo.load.info.wasmVariant} x1, load ${demo.load.loadMs.toFixed(0)} ms, ${demo.result.tokensPerSecond.toFixed(1)} tok/s`);
  }, 90_000);

  it("weights over several WebAssembly memories (shards), 1 and 2 threads: same greedy tokens as Node", async () => {
    const ref = await nodeReference();
    server.setIsolation(true);
    const page = await browser.newPage();
    const args = JSON.stringify({ modelUrl: MODEL_URL_PATH, prompt: PROMPT, maxTokens: MAX_TOKENS, context: CONTEXT });
    try {
      await page.goto(server.url(EXAMPLE_PATH), { waitUntil: "load" });
      const out: any = await withTimeout(page.evaluate(`(async ({ modelUrl, prompt, maxTokens, context }) => {
        const { loadModel } = await import("/dist/index.js");
        const runs = [];
        for (const threads of [1, 2]) {
          const model = await loadModel(new URL(modelUrl, location.href).href, { threads, maxShardBytes: 900000 });
          const it = model.createSession({ contextLength: context }).generate(prompt, { maxTokens, temperature: 0 });
          let r = await it.next();
          while (!r.done) r = await it.next();
          runs.push({ threads: model.info.threads, shards: model.info.shards.length, tokens: r.value.tokens });
          model.dispose();
        }
        return runs;
      })(${args})`), 60_000, "sharded load");
      expect(out.map((r: any) => r.threads)).toEqual([1, 2]);
      for (const r of out) {
        expect(r.shards).toBeGreaterThanOrEqual(3);
        expect(r.tokens).toEqual(ref.tokens);
      }
    } finally { await page.close(); }
  }, 90_000);

  it("Cache API: the second page load reads the model from Cache Storage, not the network", async () => {
    const ref = await nodeReference();
    server.setIsolation(false);
    const modelRequests = () => requests.filter((l) => l.split(" ")[1] === MODEL_URL_PATH).length;
    const page = await browser.newPage();
    // page-side code as text: vitest would rewrite a dynamic import() inside a function passed to evaluate
    const args = JSON.stringify({ modelUrl: MODEL_URL_PATH, prompt: PROMPT, maxTokens: MAX_TOKENS, context: CONTEXT });
    const loadOnce = (p: Page): Promise<any> => withTimeout(p.evaluate(`(async ({ modelUrl, prompt, maxTokens, context }) => {
      const { loadModel } = await import("/dist/index.js");
      const { cachedUrlSource } = await import("/cache-test/browser-cache.js");
      const errors = [];
      const src = await cachedUrlSource(new URL(modelUrl, location.href), { cache: true, onCacheError: (e) => errors.push(String(e)) });
      const model = await loadModel(src, { threads: 1 });
      const it = model.createSession({ contextLength: context }).generate(prompt, { maxTokens, temperature: 0 });
      let r = await it.next();
      while (!r.done) r = await it.next();
      model.dispose();
      const keys = (await (await caches.open("lfm2-wasm-models")).keys()).map((k) => new URL(k.url).pathname);
      return { cached: src.cached, size: src.size, tokens: r.value.tokens, errors, keys };
    })(${args})`), 60_000, "cached load");
    try {
      await page.goto(server.url(EXAMPLE_PATH), { waitUntil: "load" });
      await page.evaluate(() => caches.delete("lfm2-wasm-models"));
      const before = modelRequests();
      const first = await loadOnce(page);
      expect(first.errors).toEqual([]);
      expect(first.cached).toBe(false);
      expect(first.size).toBe((await tinyModel()).bytes.length);
      expect(first.tokens).toEqual(ref.tokens);
      expect(first.keys).toEqual([MODEL_URL_PATH]);
      expect(modelRequests() - before).toBeGreaterThan(0);

      await page.reload({ waitUntil: "load" });
      const afterFirst = modelRequests();
      const second = await loadOnce(page);
      expect(second.errors).toEqual([]);
      expect(second.cached).toBe(true);
      expect(second.tokens).toEqual(ref.tokens);
      expect(modelRequests() - afterFirst, "requests for the model on the second load").toBe(0);

      // a damaged entry (cut short) is reported, dropped, and the read resumes from the network
      await page.evaluate(`(async () => {
        const c = await caches.open("lfm2-wasm-models");
        const url = new URL(${JSON.stringify(MODEL_URL_PATH)}, location.href).href;
        const full = new Uint8Array(await (await c.match(url)).arrayBuffer());
        await c.put(url, new Response(full.slice(0, 300000), { headers: { "x-lfm2-size": String(full.length) } }));
      })()`);
      const logAt = requests.length;
      const third = await loadOnce(page);
      expect(third.cached).toBe(true);
      expect(third.errors).toHaveLength(1);
      expect(third.errors[0]).toMatch(/ends after 300000/);
      expect(third.tokens).toEqual(ref.tokens);
      expect(third.keys).toEqual([]);
      expect(requests.slice(logAt)).toContain(`GET ${MODEL_URL_PATH} 206`); // a Range request for the rest
    } finally { await page.close(); }
  }, 90_000);
});
