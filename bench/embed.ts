// Retrieval benchmark (issue 10): documents/s encoded on a 350M-shape file (ours at 1 and all threads, beside
// llama.cpp's own llama-embedding on the same file), MaxSim query latency on a 10k-document int8 index, and
// index bytes per document. Usage: tsx bench/embed.ts [model.gguf] [--docs N]
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createIndex, loadModel } from "../src/index.js";
import { mulberry32 } from "../src/models/synthetic.js";
// @ts-ignore: plain .mjs build script
import { buildLlamaEmbedding } from "../scripts/build-llama-tools.mjs";

const file = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : ".cache/bench/lfm2-350M-Q4_0-s42-v1.gguf";
const nDocs = Number(process.argv[process.argv.indexOf("--docs") + 1]) || 8;
if (!existsSync(file)) throw new Error(`${file} missing (tsx bench/run.ts writes it)`);
const words = "the of retrieval model token late interaction query document vector score search index edge device private".split(" ");
const rand = mulberry32(7);
const docs = Array.from({ length: nDocs }, () => Array.from({ length: 90 }, () => words[Math.floor(rand() * words.length)]).join(" "));

for (const threads of [1, availableParallelism()]) {
  const m = await loadModel(file, { threads });
  await m.embedDocuments([docs[0]]); // warm-up
  const t0 = performance.now();
  const embs = await m.embedDocuments(docs);
  const s = (performance.now() - t0) / 1000;
  console.log(`ours  threads=${threads}: ${(nDocs / s).toFixed(2)} docs/s (${embs.reduce((a, e) => a + e.tokens.length, 0) / nDocs} tokens/doc)`);
  m.dispose();
}
const bin = buildLlamaEmbedding({ quiet: true });
for (const threads of [1, availableParallelism()]) {
  const t0 = performance.now();
  execFileSync(bin, ["-m", file, "-p", docs.map((d) => "[D] " + d).join("\n"), "--pooling", "none", "--embd-normalize", "-1",
    "--embd-output-format", "json", "-t", String(threads), "-c", "4096", "-b", "4096", "-ub", "4096"], { stdio: ["ignore", "ignore", "ignore"] });
  const s = (performance.now() - t0) / 1000; // includes model load (mmap) and process start
  console.log(`llama-embedding threads=${threads}: ${(nDocs / s).toFixed(2)} docs/s (process incl. load)`);
}

// index: 10k documents of 64 random unit 128-d rows (the ColBERT width), int8, a 32-row query
const D = 128, rows = 64, n = 10_000;
const unit = (k: number) => { const v = new Float32Array(k * D); for (let r = 0; r < k; r++) { let s = 0; for (let j = 0; j < D; j++) { v[r * D + j] = rand() - 0.5; s += v[r * D + j] ** 2; } for (let j = 0; j < D; j++) v[r * D + j] /= Math.sqrt(s); } return v; };
for (const quantize of ["int8", "none"] as const) {
  const index = await createIndex(null, { quantize });
  for (let i = 0; i < n; i++) index.addEmbeddings([{ tokens: [], dim: D, vectors: unit(rows), rows, pooled: false }]);
  const q = { tokens: [], dim: D, vectors: unit(32), rows: 32, pooled: false };
  await index.search(q, 10);
  const t0 = performance.now();
  await index.search(q, 10);
  console.log(`index ${quantize}: ${n} docs × ${rows} rows: query (32 rows) ${(performance.now() - t0).toFixed(0)} ms, ${(index.bytes / n).toFixed(0)} bytes/doc`);
}
process.exit(0);
