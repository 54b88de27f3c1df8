// Tokenizer throughput on ~1 MB of mixed text (English prose, code, CJK/Arabic/Hindi/Cyrillic, emoji,
// digits, whitespace runs, chat markup), with the synthetic LFM2 vocabulary of the "tiny" shape.
//   npx tsx bench/tokenizer-speed.ts [--mb 1] [--llama]     (--llama: also time node-llama-cpp's tokenizer)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseGguf } from "../src/formats/gguf.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
import { DEFAULT_CORPUS } from "../src/text/synthetic-vocab.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const arg = (name: string) => process.argv.indexOf(name);
const mb = arg("--mb") >= 0 ? Number(process.argv[arg("--mb") + 1]) : 1;

function mixedText(bytes: number, seed: number): string {
  const rand = mulberry32(seed);
  const paragraphs = DEFAULT_CORPUS.split("\n").filter((p) => p.trim());
  const extra = [
    "The 2nd edition (2024) sold 1,234,567 copies — that's 3.5× more than we'd expected!",
    "    if (x === undefined) {\n        throw new TypeError(`bad value: ${x}`);\n    }\n",
    "\t\t\t\n\n\n        \n",
    "👨‍👩‍👧‍👦 🇯🇵🇫🇷 😶‍🌫️ ✅✅ 🦙🦙🦙",
    "<|im_start|>user\nSummarise the report.<|im_end|>\n<|im_start|>assistant\n",
    "0123456789".repeat(5),
    "人工智能正在改变世界，我们需要负责任地使用它。",
  ];
  const enc = new TextEncoder();
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const p = rand() < 0.8 ? paragraphs[Math.floor(rand() * paragraphs.length)] : extra[Math.floor(rand() * extra.length)];
    // vary words a little so that not every word is a cache hit
    const q = rand() < 0.3 ? p.replace(/\b(\w{4,})\b/g, (w) => (rand() < 0.2 ? w + Math.floor(rand() * 100) : w)) : p;
    parts.push(q);
    n += enc.encode(q).length + 1;
  }
  return parts.join("\n");
}

const text = mixedText(mb * 1_000_000, 42);
const nBytes = new TextEncoder().encode(text).length;
const gguf = concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q8_0", seed: 1 }));
const meta = parseGguf(gguf).metadata;

let t0 = performance.now();
const tok = Tokenizer.fromGguf(meta);
const loadMs = performance.now() - t0;

const time = (f: () => void, reps: number) => {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) { const s = performance.now(); f(); ts.push(performance.now() - s); }
  return Math.min(...ts);
};

t0 = performance.now();
const ids = tok.encode(text, { addBos: false });
const coldMs = performance.now() - t0;
const warmMs = time(() => tok.encode(text, { addBos: false }), 5);
const decMs = time(() => tok.decode(ids), 5);
const dec = tok.createDecoder();
const streamMs = time(() => { for (const id of ids) dec.push(id); dec.flush(); }, 3);

const fmt = (ms: number) => `${ms.toFixed(1)} ms  ${(nBytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s  ${((ids.length / ms) * 1000 / 1e6).toFixed(2)} M tokens/s`;
console.log(`text: ${(nBytes / 1e6).toFixed(2)} MB UTF-8, ${text.length} UTF-16 units → ${ids.length} tokens (vocab ${tok.vocabSize}, ${tok.mergePairs().length} merges)`);
console.log(`load (fromGguf):        ${loadMs.toFixed(1)} ms`);
console.log(`encode, cold cache:     ${fmt(coldMs)}`);
console.log(`encode, warm cache:     ${fmt(warmMs)}`);
console.log(`decode (one call):      ${fmt(decMs)}`);
console.log(`decode (streaming):     ${fmt(streamMs)}`);
if (tok.decode(ids) !== text) throw new Error("round trip failed");

if (arg("--llama") >= 0) {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const dir = mkdtempSync(join(tmpdir(), "tok-bench-"));
  try {
    const path = join(dir, "tiny.gguf");
    writeFileSync(path, gguf);
    const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });
    const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
    let ref: number[] = [];
    const ms = time(() => { ref = Array.from(model.tokenize(text, true)); }, 3);
    console.log(`llama.cpp tokenize:     ${fmt(ms)}  (${ref.length === ids.length && ref.every((v, i) => v === ids[i]) ? "identical ids" : "IDS DIFFER"})`);
    await model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
