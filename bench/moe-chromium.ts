// LFM2-8B-A1B-shaped Q4_0 (4.70 GB, bench/moe-file.ts) in headless Chromium: loaded by URL through the public
// loadModel (two WebAssembly memories), greedy tokens compared with Node's on the same file. ≈11 GB RAM.
//   node --experimental-wasm-relaxed-simd --import tsx bench/moe-chromium.ts
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeMoeGguf } from "./moe-file.js";
import { launchChromium } from "./chromium.js";
import { startExampleServer, EXAMPLE_PATH, MODEL_URL_PATH } from "../test/runtimes/serve.js";
import { loadModel } from "../src/index.js";

const path = join(process.cwd(), ".cache/bench/moe/chromium-8B.gguf");
if (!existsSync(path)) writeMoeGguf(path, "8B-A1B");
// Node first, then the browser (one engine in memory at a time besides the file cache)
const prompt = [1, 400, 900, 1500, 33, 1200, 77];
const t0 = Date.now();
const node = await loadModel(path, { threads: 1 });
const s = node.createSession({ contextLength: 64 });
const nodeTokens: number[] = [];
for await (const d of s.generate(prompt, { maxTokens: 6, temperature: 0 })) nodeTokens.push(d.token);
console.log(`node: ${node.info.shards.length} shards, tokens ${nodeTokens}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
node.dispose();
const server = await startExampleServer({ modelPath: path, isolate: false });
const browser = await launchChromium({ timeoutMs: 30_000, onConsole: (l) => console.log("page:", l) });
try {
  const page = await browser.newPage();
  await page.goto(server.url(EXAMPLE_PATH), { waitUntil: "load" });
  const t1 = Date.now();
  const out = await page.evaluate(`(async () => {
    try {
      const { loadModel } = await import("/dist/index.js");
      const model = await loadModel(new URL(${JSON.stringify(MODEL_URL_PATH)}, location.href).href, { threads: 1 });
      const it = model.createSession({ contextLength: 64 }).generate(${JSON.stringify(prompt)}, { maxTokens: 6, temperature: 0 });
      let r = await it.next();
      while (!r.done) r = await it.next();
      return { shards: model.info.shards.map((x) => x.weightBytes), tokens: r.value.tokens, decodeMs: r.value.timings.decodeMs };
    } catch (e) { return { error: String(e && e.stack || e) }; }
  })()`);
  console.log(`chromium (${((Date.now() - t1) / 1000).toFixed(0)} s):`, JSON.stringify(out));
  console.log(JSON.stringify((out as any).tokens) === JSON.stringify(nodeTokens) ? "SAME TOKENS" : "DIFFERENT");
} finally {
  await browser.close();
  await server.close();
  rmSync(path, { force: true });
}
