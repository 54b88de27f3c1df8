// Retrieval benchmark (issue 10): documents/s encoded on a 350M-shape ColBERT file (bidirectional trunk,
// dense_2 1024 → 128; ours at 1 and all threads) beside llama.cpp's own llama-embedding on the same file,
// MaxSim query latency on a 10k-document index (WebAssembly kernels beside the plain-JS reference), and
// index bytes per document.
// llama-embedding is timed in one process with 1 and one with N documents: (t_N − t_1) / (N − 1) is its
// per-document time without process start and model load. Documents are cut to whole words within the
// document length so both sides encode the same tokens.
// Usage: tsx bench/embed.ts [model.gguf] [--docs N] [--only encode|index] [--repeat R]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createIndex, loadModel } from "../src/index.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
// @ts-ignore: plain .mjs build script
import { buildLlamaEmbedding } from "../scripts/build-llama-tools.mjs";

const arg = (name: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const CAUSAL_LM = ".cache/bench/lfm2-350M-Q4_0-s42-v1.gguf"; // tsx bench/run.ts writes it
const DEFAULT_FILE = ".cache/bench/lfm2-colbert-350M-Q4_0-bidir-s42.gguf";
const file = process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2] : DEFAULT_FILE;
const nDocs = Number(arg("--docs")) || 8;
const repeat = Number(arg("--repeat")) || 1;
const only = arg("--only");
const run = (part: string) => !only || only === part;
if (file === DEFAULT_FILE && !existsSync(file)) {
  mkdirSync(".cache/bench", { recursive: true });
  const chunks = syntheticGguf({ shape: "350M", weightType: "Q4_0", seed: 42, embedding: { outDim: 128, pooling: 0, causal: false, bias: true } });
  writeFileSync(file, Buffer.concat(chunks));
}
if (!existsSync(file)) throw new Error(`${file} missing`);
const words = "the of retrieval model token late interaction query document vector score search index edge device private".split(" ");
const rand = mulberry32(7);
const docs = Array.from({ length: nDocs }, () => Array.from({ length: 90 }, () => words[Math.floor(rand() * words.length)]).join(" "));
const best = (xs: number[]) => Math.min(...xs);

// ours and llama-embedding alternate run by run, so both see the same load on a shared machine
if (run("encode")) {
  const bin = buildLlamaEmbedding({ quiet: true });
  const llamaSeconds = (texts: string[], threads: number) => {
    const t0 = performance.now();
    execFileSync(bin, ["-m", file, "-p", texts.map((d) => "[D] " + d).join("\n"), "--pooling", "none", "--embd-normalize", "-1",
      "--embd-output-format", "json", "-t", String(threads), "-c", "4096", "-b", "4096", "-ub", "4096"],
    { stdio: ["ignore", "ignore", "ignore"], maxBuffer: 1 << 30 });
    return (performance.now() - t0) / 1000;
  };
  for (const threads of [1, availableParallelism()]) {
    const m = await loadModel(file, { threads });
    // whole documents on both sides: cut words until "[D] " + text fits documentLength tokens
    const tok = m.tokenizer!, fit = docs.map((d) => {
      const w = d.split(" ");
      while (tok.encode("[D] " + w.join(" ")).length > m.retrieval.documentLength) w.pop();
      return w.join(" ");
    });
    const tokens = fit.reduce((a, d) => a + tok.encode("[D] " + d).length, 0) / nDocs;
    await m.embedDocuments([fit[0]]); // warm-up
    const ours: number[] = [], one: number[] = [], all: number[] = [];
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      await m.embedDocuments(fit);
      ours.push((performance.now() - t0) / 1000);
      one.push(llamaSeconds(fit.slice(0, 1), threads));
      all.push(llamaSeconds(fit, threads));
    }
    const s = best(ours), perDoc = (best(all) - best(one)) / (nDocs - 1);
    console.log(`threads=${threads}, ${nDocs} docs of ${tokens.toFixed(0)} tokens, best of ${repeat}:`);
    console.log(`  ours             ${(nDocs / s).toFixed(2)} docs/s, ${(nDocs * tokens / s).toFixed(0)} tok/s (runs ${ours.map((t) => t.toFixed(1)).join(", ")} s)`);
    console.log(`  llama-embedding  ${(1 / perDoc).toFixed(2)} docs/s, ${(tokens / perDoc).toFixed(0)} tok/s without load = (t_${nDocs} − t_1) / ${nDocs - 1} ` +
      `(1 doc ${one.map((t) => t.toFixed(1)).join(", ")} s; ${nDocs} docs ${all.map((t) => t.toFixed(1)).join(", ")} s per process)`);
    m.dispose();
    if (existsSync(CAUSAL_LM)) {
      // the same token count through a causal prefill of the same-shape LM: the encoder should match it
      const lm = await loadModel(CAUSAL_LM, { threads });
      const session = lm.createSession({ contextLength: 512 });
      const ids = tok.encode("[D] " + fit[0]), pre: number[] = [];
      for (let r = 0; r <= repeat; r++) {
        session.reset();
        const t0 = performance.now();
        await session.forward(ids);
        pre.push((performance.now() - t0) / 1000);
      }
      const p = best(pre.slice(1));
      console.log(`  causal prefill   ${(1 / p).toFixed(2)} docs/s, ${(ids.length / p).toFixed(0)} tok/s (${CAUSAL_LM}, same ${ids.length} tokens)`);
      session.dispose(); lm.dispose();
    }
  }
}

if (run("index")) {
  // 10k documents of 64 random unit 128-d rows (the ColBERT width), a 32-row query
  const D = 128, rows = 64, n = 10_000;
  const unit = (k: number) => {
    const v = new Float32Array(k * D);
    for (let r = 0; r < k; r++) {
      let s = 0;
      for (let j = 0; j < D; j++) { v[r * D + j] = rand() - 0.5; s += v[r * D + j] ** 2; }
      for (let j = 0; j < D; j++) v[r * D + j] /= Math.sqrt(s);
    }
    return v;
  };
  for (const quantize of ["int8", "none"] as const) {
    const index = await createIndex(null, { quantize });
    for (let i = 0; i < n; i++) index.addEmbeddings([{ tokens: [], dim: D, vectors: unit(rows), rows, pooled: false }]);
    const q = { tokens: [], dim: D, vectors: unit(32), rows: 32, pooled: false };
    await index.search(q, 10);
    const wasm: number[] = [];
    for (let r = 0; r < Math.max(3, repeat); r++) { const t0 = performance.now(); await index.search(q, 10); wasm.push(performance.now() - t0); }
    const t0 = performance.now();
    for (let d = 0; d < n; d++) index.score(q, d); // the plain-JS reference (the search before the kernels)
    const js = performance.now() - t0;
    console.log(`index ${quantize.padEnd(4)}: ${n} docs × ${rows} rows, 32-row query: wasm ${best(wasm).toFixed(0)} ms ` +
      `(runs ${wasm.map((t) => t.toFixed(0)).join(", ")}), plain JS ${js.toFixed(0)} ms; ${(index.bytes / n).toFixed(0)} bytes/doc`);
  }
}
process.exit(0);
