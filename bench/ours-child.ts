// One measurement of lfm2-wasm in a fresh Node process (so cold start and peak RSS are its own):
//   node [--import tsx] bench/ours-child.ts run.json   (run.json: {"model": "...", "threads": 1, "ids": [...], "genTokens": 128})
// Prints one JSON line: a RivalResult plus memory figures.
import { readFileSync } from "node:fs";
import { loadModel } from "../dist/index.js";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const t0 = performance.now();
const model = await loadModel(cfg.model, { threads: cfg.threads });
const session = model.createSession({ contextLength: cfg.ids.length + cfg.genTokens + 16 });
const loadMs = performance.now() - t0;
// cold start: load + the first token of a one-token prompt (the "< 1 s" figure)
await session.forward(cfg.ids.slice(0, 1));
const coldStartMs = performance.now() - t0;
session.reset();
const argmax = (a: Float32Array) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
// cold time to first token: load + the full prompt + one greedy token (also warms the kernels up);
// long prompts (cfg.shortWarmup) warm up on 64 tokens + 2 decode steps instead
let ttftMs = NaN;
if (cfg.shortWarmup) {
  await session.forward(cfg.ids.slice(0, 64));
  for (let i = 0; i < 2; i++) await session.forward([cfg.ids[i]]);
} else {
  argmax(await session.forward(cfg.ids));
  ttftMs = performance.now() - t0;
}
session.reset();
let t = performance.now();
let logits = await session.forward(cfg.ids);
let next = argmax(logits);
const prefillMs = performance.now() - t;
t = performance.now();
for (let i = 0; i < cfg.genTokens; i++) { logits = await session.forward([next]); next = argmax(logits); }
const decodeMs = performance.now() - t;
const ru = process.resourceUsage();
const c = model.info.config;
const kvBytes = c.kvHeads.reduce((a: number, h: number) => a + 2 * h * c.headDim * 2, 0) * session.contextLength;
console.log(JSON.stringify({
  engine: "lfm2-wasm (Node)", prefillTps: cfg.ids.length / (prefillMs / 1000), decodeTps: cfg.genTokens / (decodeMs / 1000), loadMs, ttftMs,
  warmTtftMs: prefillMs, prefillMs, decodeMs, promptTokens: cfg.ids.length, genTokens: cfg.genTokens, threads: model.info.threads,
  details: { coldStartMs, wasmVariant: model.info.wasmVariant, threadsNote: model.info.threadsNote, maxRssBytes: ru.maxRSS * 1024, weightBytes: model.info.weightBytes,
    kvBytes, wasmMemoryBytes: model.memoryBytes, node: process.version },
}));
model.dispose();
process.exit(0);
