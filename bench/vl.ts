// LFM2-VL benchmark: image encode time (one 512 tile; a 3x2-tiled image + thumbnail) and time to first token
// (encode + prefill of an image prompt), ours beside llama.cpp v0.5.0's libmtmd native (mtmd-dump, built by
// scripts/build-llama-tools.mjs), at 1 and all threads. Synthetic files in real shapes: SigLIP2-base mmproj (86M,
// F16 as published) + an LFM2-350M text tower (LFM2-VL-450M's), cached in .cache/bench-vl/.
//   npx tsx bench/vl.ts [--threads 1,2] [--text-type Q4_0] [--runs 1] [--images 512,1152x768]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { syntheticGguf } from "../src/models/synthetic.js";
import { syntheticMmproj } from "../src/models/lfm2vl/mmproj.js";
import { loadModel } from "../src/runtime/load.js";
import type { GgmlTypeName } from "../src/core/quant-types.js";

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const threadsList = arg("threads", `1,${availableParallelism()}`).split(",").map(Number);
const textType = arg("text-type", "Q4_0") as GgmlTypeName;
const runs = Number(arg("runs", "1"));
const dir = join(process.cwd(), ".cache/bench-vl");
mkdirSync(dir, { recursive: true });
const textPath = join(dir, `lfm2-350m-${textType}.gguf`), mmPath = join(dir, "mmproj-siglip2-base-F16.gguf");
if (!existsSync(textPath)) writeFileSync(textPath, concatChunks(syntheticGguf({ shape: "350M", weightType: textType, seed: 1 })));
if (!existsSync(mmPath)) writeFileSync(mmPath, concatChunks(syntheticMmproj({ shape: "siglip2-base", weightType: "F16", seed: 2 })));
const dump = join(process.cwd(), ".cache/llama-tools/bin/mtmd-dump");

function pixels(w: number, h: number, seed: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = ((Math.imul(i + seed, 2654435761) >>> 24) ^ ((i / 3 / w) & 0xff)) & 0xff;
  return rgb;
}
const ALL_IMAGES = [{ name: "512x512 (1 tile, 256 tokens)", w: 512, h: 512 }, { name: "1152x768 (3x2 + thumbnail, 1783 tokens)", w: 1152, h: 768 }];
const IMAGES = ALL_IMAGES.filter((im) => arg("images", "512,1152x768").split(",").some((s) => s === `${im.w}` || s === `${im.w}x${im.h}`));
const before = "<|startoftext|><|im_start|>user\n", after = "Describe this image.<|im_end|>\n<|im_start|>assistant\n";

interface Row { image: string; threads: number; oursEncodeMs: number; oursTtftMs: number; nativeEncodeMs?: number; nativeTtftMs?: number }
const rows: Row[] = [];
for (const threads of threadsList) {
  const model = await loadModel(textPath, { mmproj: mmPath, threads, chunkSize: 256 });
  const tok = model.tokenizer!;
  // warm-up: compile paths, allocate the encoder's buffers for the largest tile
  await model.encodeImage({ data: pixels(512, 512, 99), width: 512, height: 512 });
  for (const im of IMAGES) {
    let enc = Infinity, ttft = Infinity;
    for (let r = 0; r < runs; r++) {
      // a fresh image each run (the model caches encodings by content), then the prompt with it (now cached):
      // TTFT = encode + prefill of the whole prompt, as a first request pays both
      const img = { data: pixels(im.w, im.h, 1000 * threads + 10 * r + im.w), width: im.w, height: im.h };
      let t0 = performance.now();
      const image = await model.vision!.sessionTokens(img);
      const encMs = performance.now() - t0;
      const s = model.createSession({ contextLength: 4096 });
      t0 = performance.now();
      await s.forward([...tok.encode(before, { addBos: false }), ...image, ...tok.encode(after, { addBos: false })]);
      const prefillMs = performance.now() - t0;
      s.dispose();
      enc = Math.min(enc, encMs);
      ttft = Math.min(ttft, encMs + prefillMs);
    }
    const row: Row = { image: im.name, threads, oursEncodeMs: enc, oursTtftMs: ttft };
    if (existsSync(dump)) {
      const rgb = join(dir, `img-${im.w}x${im.h}.rgb`);
      writeFileSync(rgb, pixels(im.w, im.h, 5));
      let nEnc = Infinity, nTtft = Infinity;
      for (let r = 0; r < runs; r++) {
        const out = join(dir, `native-${im.w}-${threads}`);
        execFileSync(dump, [textPath, mmPath, rgb, String(im.w), String(im.h), out, String(threads), `${before}<__media__>${after}`], { stdio: "ignore" });
        const js = JSON.parse(readFileSync(`${out}.json`, "utf8"));
        nEnc = Math.min(nEnc, js.encode_ms);
        nTtft = Math.min(nTtft, js.prefill_ms); // mtmd_helper_eval_chunks encodes the image again, then decodes
      }
      row.nativeEncodeMs = nEnc; row.nativeTtftMs = nTtft;
    }
    rows.push(row);
    const f = (v?: number) => (v === undefined ? "n/a" : `${v.toFixed(0)} ms`);
    console.log(`${row.image} · ${threads} thread(s): encode ours ${f(row.oursEncodeMs)} native ${f(row.nativeEncodeMs)}` +
      ` (${row.nativeEncodeMs ? (row.oursEncodeMs / row.nativeEncodeMs).toFixed(2) : "?"}x); TTFT ours ${f(row.oursTtftMs)} native ${f(row.nativeTtftMs)}`);
  }
  model.dispose();
}
writeFileSync(join(process.cwd(), "bench/results-vl.json"), JSON.stringify({ textType, mmproj: "siglip2-base F16", runs, rows, date: new Date().toISOString() }, null, 2));
