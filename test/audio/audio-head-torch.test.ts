// The audio head (depthformer) against an independent PyTorch implementation of liquid-audio's code
// (scripts/reference/audio_head_ref.py, its own GGUF reader, float64): the same vocoder file and backbone states
// give the same per-codebook logits with forced codes, the same greedy codes, and the same frame embeddings.
// Head dim 32 as in the published model (Dd 1024 / 32 heads), so RoPE's pair layout, the q/k norms before it, the
// GQA mapping, depth_linear's (C D) split, the fed-back depth_embeddings[c−1] row and embedding_norm all count.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEAD_VOCAB, loadAudioHead, type AudioHead } from "../../src/models/lfm2audio/audio-head.js";
import { syntheticAudioHead, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";
import { mulberry32, randomTensor } from "../../src/models/synthetic.js";
import { loadModel } from "../../src/index.js";

const python = ["/usr/bin/python3", "python3"].find((py) => {
  try { execFileSync(py, ["-c", "import torch, numpy"], { stdio: "ignore" }); return true; } catch { return false; }
});
const script = join(__dirname, "../../scripts/reference/audio_head_ref.py");
const D = 96, N = 3, CB = 8;
const spec = syntheticAudioHead({ backboneDim: D, dim: 1024, nLayers: 2, ffDim: 256, seed: 31 });
const file = Buffer.concat(syntheticVocoderGguf(32, 5, spec.tensors, spec.meta));
const hidden = Array.from({ length: N }, (_, i) => randomTensor(mulberry32(100 + i), D, 1));
const r = mulberry32(7);
// forced codes: random, with 2048 (end of audio) fed back once to cover the last row of each table
const forced = Array.from({ length: N }, (_, i) =>
  Int32Array.from({ length: CB }, (_, c) => (i === 1 && c === 3 ? 2048 : Math.floor(r() * 2048))));

const bytesOf = (p: string) => { const b = readFileSync(p); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };
const readF32 = (p: string) => new Float32Array(bytesOf(p));
const maxAbs = (a: Float32Array, b: Float32Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const maxMag = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const why = python ?? "no python with torch + numpy: apt-get install python3-torch";
describe.skipIf(!python)(`audio head vs PyTorch (${why})`, () => {
  const dir = mkdtempSync(join(tmpdir(), "lfm2-audio-head-"));
  let ref: { forced: Float32Array; greedy: Int32Array; greedyLogits: Float32Array; frame: Float32Array };
  beforeAll(() => {
    writeFileSync(join(dir, "vocoder.gguf"), file);
    const h = new Float32Array(N * D);
    hidden.forEach((x, i) => h.set(x, i * D));
    writeFileSync(join(dir, "hidden.f32"), new Uint8Array(h.buffer));
    const f = new Int32Array(N * CB);
    forced.forEach((x, i) => f.set(x, i * CB));
    writeFileSync(join(dir, "forced.i32"), new Uint8Array(f.buffer));
    const at = (name: string) => join(dir, name);
    execFileSync(python!, [script, at("vocoder.gguf"), at("hidden.f32"), String(N), at("forced.i32"), at("out")]);
    ref = { forced: readF32(at("out.forced.f32")), greedy: new Int32Array(bytesOf(at("out.greedy.i32"))),
      greedyLogits: readF32(at("out.greedy.f32")), frame: readF32(at("out.frame.f32")) };
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const F = CB * HEAD_VOCAB;
  const compare = (head: AudioHead, forcedTol: number, label: string) => {
    let worst = 0, scale = 0;
    for (let i = 0; i < N; i++) {
      const want = ref.forced.subarray(i * F, (i + 1) * F), got = head.frameLogits(hidden[i], forced[i]);
      worst = Math.max(worst, maxAbs(got, want)); scale = Math.max(scale, maxMag(want));
    }
    console.log(`${label}: forced-code logits max abs error ${worst.toExponential(2)} (logits up to ${scale.toFixed(2)})`);
    expect(worst).toBeLessThan(forcedTol * scale);
    return worst;
  };

  it("plain-JS reference: forced-code logits, greedy codes and their logits", () => {
    const head = loadAudioHead(file);
    compare(head, 1e-5, "JS reference");
    for (let i = 0; i < N; i++) {
      const lg = new Float32Array(F), codes = head.sampleFrame(hidden[i], {}, lg);
      expect(Array.from(codes)).toEqual(Array.from(ref.greedy.subarray(i * CB, (i + 1) * CB)));
      expect(maxAbs(lg, ref.greedyLogits.subarray(i * F, (i + 1) * F))).toBeLessThan(1e-5 * maxMag(lg));
    }
  });

  it("the frame fed back to the backbone is Σ_c audio_embedding[c·2049 + code_c]", () => {
    const head = loadAudioHead(file);
    for (let i = 0; i < N; i++) {
      expect(maxAbs(head.frameEmbedding(forced[i]), ref.frame.subarray(i * D, (i + 1) * D))).toBeLessThan(1e-5);
    }
  });

  it.each([["F32", 1e-3, 1], ["Q8_0", 3e-2, 2]] as const)(
    "engine (%s weights and tables, tolerance %s of the largest logit, %i threads): forced-code logits; greedy codes (F32)",
    async (type, tol, threads) => {
    const head = loadAudioHead(file);
    head.useEngine((await loadModel(Buffer.concat(head.engineGguf(type)), { threads, chunkSize: 1 })).forwardPass);
    compare(head, tol, `engine ${type}`); // fp16 K/V cache (F32); int8 weights and activations (Q8_0)
    // Q8_0 may flip a near-tie and then feeds a different code on: codes are compared for F32 only
    if (type !== "F32") return;
    for (let i = 0; i < N; i++) expect(Array.from(head.sampleFrame(hidden[i]))).toEqual(Array.from(ref.greedy.subarray(i * CB, (i + 1) * CB)));
  }, 60_000);
});
