// The audio head (depthformer) on a synthetic vocoder file. Numerics are NOT checked against liquid-audio or
// llama.cpp (neither runs here); these tests check structure: shapes, ranges, determinism, end-of-audio, and
// that sampled codes follow the softmax of the logits.
import { describe, expect, it } from "vitest";
import { AudioHead, END_OF_AUDIO, HEAD_VOCAB, loadAudioHead, readF32Tensors, sample } from "../../src/models/lfm2audio/audio-head.js";
import { syntheticAudioHead, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";
import { mulberry32, randomTensor } from "../../src/models/synthetic.js";
import { loadModel } from "../../src/index.js";

const D = 64, spec = syntheticAudioHead({ backboneDim: D, dim: 64, nLayers: 2, ffDim: 96 });
const file = Buffer.concat(syntheticVocoderGguf(32, 5, spec.tensors, spec.meta));
const head = loadAudioHead(file);
const hidden = (seed: number) => randomTensor(mulberry32(seed), D, 1);

describe("audio head (depthformer)", () => {
  it("reads the vocoder layout: dims from the tensors and keys", () => {
    expect([head.backboneDim, head.dim, head.headDim, head.nLayers, head.ffDim]).toEqual([64, 64, 2, 2, 96]);
  });

  it("greedy frames are deterministic, 8 codes in 0..2048, and the codes are each codebook's argmax", () => {
    const logits = new Float32Array(8 * HEAD_VOCAB);
    const a = head.sampleFrame(hidden(1), {}, logits), b = head.sampleFrame(hidden(1));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(a.length).toBe(8);
    for (let c = 0; c < 8; c++) {
      const row = logits.subarray(c * HEAD_VOCAB, (c + 1) * HEAD_VOCAB);
      expect(a[0] === END_OF_AUDIO || row[a[c]] === Math.max(...row)).toBe(true);
    }
    const other = head.sampleFrame(hidden(2));
    expect(Array.from(other)).not.toEqual(Array.from(a)); // the input matters
  });

  it("codebook c's logits depend on code c−1 (the fed-back embedding) and later codebooks on earlier ones", () => {
    const l1 = new Float32Array(8 * HEAD_VOCAB), l2 = new Float32Array(8 * HEAD_VOCAB);
    head.sampleFrame(hidden(3), {}, l1);
    head.sampleFrame(hidden(3), { temperature: 1, random: mulberry32(9) }, l2);
    expect(Array.from(l1.subarray(0, HEAD_VOCAB))).toEqual(Array.from(l2.subarray(0, HEAD_VOCAB))); // codebook 0: same input
  });

  it("seeded sampling is reproducible and top-k keeps codes among the k best", () => {
    const run = (seed: number) => Array.from(head.sampleFrame(hidden(4), { temperature: 0.8, topK: 4, random: mulberry32(seed) }));
    expect(run(11)).toEqual(run(11));
    const logits = new Float32Array(8 * HEAD_VOCAB);
    const codes = head.sampleFrame(hidden(4), { temperature: 0.8, topK: 4, random: mulberry32(12) }, logits);
    if (codes[0] !== END_OF_AUDIO) for (let c = 0; c < 8; c++) {
      const row = Array.from(logits.subarray(c * HEAD_VOCAB, (c + 1) * HEAD_VOCAB)).sort((x, y) => y - x);
      expect(logits[c * HEAD_VOCAB + codes[c]]).toBeGreaterThanOrEqual(row[3]);
    }
  });

  it("sample() follows softmax(logits / T) (4000 draws, each frequency within 4σ)", () => {
    const logits = new Float32Array([0, 1, 2, 0.5, -1]), T = 0.7, N = 4000, r = mulberry32(5), n = new Array(5).fill(0);
    for (let i = 0; i < N; i++) n[sample(logits, T, undefined, r)]++;
    const e = Array.from(logits, (v) => Math.exp(v / T)), z = e.reduce((a, b) => a + b, 0);
    e.forEach((v, i) => { const p = v / z; expect(Math.abs(n[i] / N - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / N)); });
    const k = new Array(5).fill(0);
    for (let i = 0; i < N; i++) k[sample(logits, T, 2, r)]++;
    expect(k[0] + k[3] + k[4]).toBe(0);
  });

  it("end-of-audio on codebook 0 makes the whole frame 2048", () => {
    const { tensors } = readF32Tensors(file);
    // row 2048 of codebook 0's output table := 2 × the greedy winner's row: its logit doubles, so 2048 wins
    const out = tensors.get("depth_embeddings.0.to_logits.weight")!.data, logits = new Float32Array(8 * HEAD_VOCAB);
    const a = head.sampleFrame(hidden(6), {}, logits)[0];
    expect(logits[a]).toBeGreaterThan(0);
    for (let j = 0; j < 64; j++) out[END_OF_AUDIO * 64 + j] = 2 * out[a * 64 + j];
    const eoa = new AudioHead(tensors, 2).sampleFrame(hidden(6));
    expect(Array.from(eoa)).toEqual(new Array(8).fill(END_OF_AUDIO));
  });

  it("frame embedding is the sum of the 8 codebooks' rows; typed errors", () => {
    const { tensors } = readF32Tensors(file), E = tensors.get("audio_embedding.embedding.weight")!.data;
    const codes = [1, 2, 3, 4, 5, 6, 7, 2048], e = head.frameEmbedding(codes);
    for (const j of [0, 17, 63]) {
      const want = codes.reduce((s, v, c) => s + E[(c * HEAD_VOCAB + v) * D + j], 0);
      expect(e[j]).toBeCloseTo(want, 5);
    }
    expect(() => head.frameEmbedding([2049, 0, 0, 0, 0, 0, 0, 0])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => head.sampleFrame(new Float32Array(3))).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => head.sampleFrame(hidden(1), { temperature: 1 })).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => loadAudioHead(Buffer.concat(syntheticVocoderGguf(32)))).toThrow(expect.objectContaining({ code: "BAD_METADATA" }));
  });

  it("on the engine (lfm2 GGUF, NeoX-permuted heads, F32) the logits of all 8 codebooks match the JS reference", async () => {
    // dh = 256 / 32 = 8: the engine's kernels need head dims in multiples of 8
    const spec8 = syntheticAudioHead({ backboneDim: D, dim: 256, nLayers: 2, ffDim: 128, seed: 8 });
    const file8 = Buffer.concat(syntheticVocoderGguf(32, 5, spec8.tensors, spec8.meta));
    const ref = loadAudioHead(file8), eng = loadAudioHead(file8);
    const m = await loadModel(Buffer.concat(eng.engineGguf("F32")), { threads: 1 });
    eng.useEngine(m.forwardPass);
    for (const seed of [1, 2, 3]) {
      const a = new Float32Array(8 * HEAD_VOCAB), b = new Float32Array(8 * HEAD_VOCAB);
      const ca = ref.sampleFrame(hidden(seed), {}, a), cb = eng.sampleFrame(hidden(seed), {}, b);
      let worst = 0, scale = 0;
      for (let i = 0; i < a.length; i++) { worst = Math.max(worst, Math.abs(a[i] - b[i])); scale = Math.max(scale, Math.abs(a[i])); }
      expect(worst).toBeLessThan(1e-3 * scale); // the engine keeps K/V in fp16 (≈1e-4 relative seen); a wrong RoPE pairing gives O(1)
      expect(Array.from(cb)).toEqual(Array.from(ca));
    }
  });
});
