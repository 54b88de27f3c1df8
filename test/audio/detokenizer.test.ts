// LFM2.5-Audio detokenizer (speech out): the LFM2 backbone with its 1282-wide head against llama.cpp's own
// llama-embedding (v0.5.0) on the same weights, the sliding window's ring cache against one-chunk evaluation,
// and the codes → samples path (frame counts, streaming = whole-signal ISTFT, typed errors).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { istft } from "../../src/audio/istft.js";
import { StreamingIstft } from "../../src/audio/istft-stream.js";
import { AudioDetokenizer, readCodeEmbeddings, SAMPLES_PER_FRAME } from "../../src/models/lfm2audio/detokenizer.js";
import { syntheticDetokenizerGguf, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";
import { mulberry32 } from "../../src/models/synthetic.js";
import { llamaEmbeddingRows, llamaEmbeddingTool } from "../helpers/llama-embedding.js";

const dir = mkdtempSync(join(tmpdir(), "detok-"));
const write = (name: string, chunks: Uint8Array[]) => { const p = join(dir, name); writeFileSync(p, Buffer.concat(chunks)); return p; };
const windowed = write("detok-w30.gguf", syntheticDetokenizerGguf({ slidingWindow: 30 }));
const full = write("detok-full.gguf", syntheticDetokenizerGguf({ slidingWindow: 0 }));
const vocoder = Buffer.concat(syntheticVocoderGguf(64));

async function backboneRows(path: string, ids: number[], chunk: number) {
  const m = await loadModel(path, { threads: 1 });
  const f = m.forwardPass, s = f.allocState(64), rows: Float32Array[] = [];
  for (let p = 0; p < ids.length; p += chunk) rows.push(f.step(ids.slice(p, p + chunk), p, s, "embedding")!.slice());
  f.releaseState(s);
  const all = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
  let o = 0;
  for (const r of rows) { all.set(r, o); o += r.length; }
  return { m, all, width: all.length / ids.length };
}

describe("detokenizer backbone vs llama.cpp llama-embedding (v0.5.0)", () => {
  const tool = llamaEmbeddingTool();
  it.skipIf("reason" in tool)("every row's 1282-wide head output within 1e-4 of llama.cpp (≤ 30 tokens: the window is not reached)", async () => {
    const text = "Audio codes become a spectrogram";
    const ref = llamaEmbeddingRows((tool as { path: string }).path, full, text);
    const m0 = await loadModel(windowed, { threads: 1 });
    const ids = m0.tokenizer!.encode(text);
    expect(ids.length).toBe(ref.length);
    expect(ids.length).toBeLessThanOrEqual(30);
    const { all, width } = await backboneRows(windowed, ids, 64);
    expect(width).toBe(1282);
    let worst = 0, scale = 0;
    ref.forEach((row, t) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - all[t * width + j])); scale = Math.max(scale, Math.abs(v)); }));
    console.log(`detokenizer backbone: ${ids.length} tokens, max |diff| ${worst.toExponential(2)} (max |value| ${scale.toFixed(3)})`);
    expect(worst).toBeLessThan(1e-4 * Math.max(1, scale));
  });
});

describe("sliding-window attention (ring cache)", () => {
  const ids = Array.from({ length: 60 }, (_, i) => 10 + ((i * 37) % 1500));
  it("chunks of 6 (the per-frame step) give the one-chunk result; rows past the window differ from full attention", async () => {
    const one = await backboneRows(windowed, ids, 64);
    const six = await backboneRows(windowed, ids, 6);
    let worst = 0;
    for (let i = 0; i < one.all.length; i++) worst = Math.max(worst, Math.abs(one.all[i] - six.all[i]));
    expect(worst).toBeLessThan(1e-4);
    const ref = await backboneRows(full, ids, 64), W = one.width;
    const diff = (t: number) => { let d = 0; for (let j = 0; j < W; j++) d = Math.max(d, Math.abs(ref.all[t * W + j] - one.all[t * W + j])); return d; };
    for (let t = 0; t < 30; t++) expect(diff(t)).toBeLessThan(1e-5);
    for (const t of [30, 45, 59]) expect(diff(t)).toBeGreaterThan(1e-3);
  });
});

describe("codes → 24 kHz samples", () => {
  const codes = (frames: number, seed: number) => { const r = mulberry32(seed); return Array.from({ length: frames * 8 }, () => Math.floor(r() * 2048)); };
  it("80 ms per frame; streamed chunks equal the whole-signal 'same' ISTFT of the same spectrogram", async () => {
    const m = await loadModel(windowed, { threads: 1 });
    const { table } = readCodeEmbeddings(vocoder);
    const d = new AudioDetokenizer(m.forwardPass, table);
    const frames = 7, c = codes(frames, 5), s = d.stream();
    const sizes: number[] = [], parts: Float32Array[] = [], mags: number[] = [], phs: number[] = [];
    for (let f = 0; f < frames; f++) {
      const out = s.push(c.slice(f * 8, f * 8 + 8));
      sizes.push(out.length); parts.push(out);
      const y = s.lastProjection!;
      for (let r = 0; r < 6; r++) for (let k = 0; k < 641; k++) { mags.push(Math.exp(y[r * 1282 + k])); phs.push(y[r * 1282 + 641 + k]); }
    }
    const tail = s.end(); s.dispose();
    expect(sizes).toEqual([SAMPLES_PER_FRAME - 480, ...Array(frames - 1).fill(SAMPLES_PER_FRAME)]);
    expect(tail.length).toBe(480);
    const streamed = new Float32Array([...parts.flatMap((p) => [...p]), ...tail]);
    expect(streamed.length).toBe(frames * SAMPLES_PER_FRAME);
    const re = new Float32Array(mags.map((a, i) => a * Math.cos(phs[i]))), im = new Float32Array(mags.map((a, i) => a * Math.sin(phs[i])));
    const whole = istft(re, im, frames * 6, { nFft: 1280, hop: 320, padding: "same" });
    let worst = 0, peak = 0;
    for (let i = 0; i < whole.length; i++) { worst = Math.max(worst, Math.abs(whole[i] - streamed[i])); peak = Math.max(peak, Math.abs(whole[i])); }
    expect(peak).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-5 * Math.max(1, peak));
    // the same codes through decode() again: deterministic, state reset between utterances
    const again = d.decode(c);
    expect(Array.from(again)).toEqual(Array.from(streamed));
  });

  it("typed errors for bad codes and files", async () => {
    const m = await loadModel(windowed, { threads: 1 });
    const d = new AudioDetokenizer(m.forwardPass, readCodeEmbeddings(vocoder).table);
    expect(() => d.decode([0, 1, 2])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => d.decode([2048, 0, 0, 0, 0, 0, 0, 0])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => d.decode([0.5, 0, 0, 0, 0, 0, 0, 0])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => new AudioDetokenizer(m.forwardPass, new Float32Array(10))).toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
    expect(() => readCodeEmbeddings(Buffer.concat(syntheticVocoderGguf(64, 1, [], {})).subarray(0, 100))).toThrow();
  });

  it("StreamingIstft's mixed-radix FFT (1280 = 5·256) matches the direct-sum ISTFT on random spectra", () => {
    const r = mulberry32(3), T = 9, bins = 641;
    const re = new Float32Array(T * bins).map(() => r() - 0.5), im = new Float32Array(T * bins).map(() => r() - 0.5);
    const s = new StreamingIstft(1280, 320), parts: number[] = [];
    for (let t = 0; t < T; t++) parts.push(...s.push(re.subarray(t * bins, (t + 1) * bins), im.subarray(t * bins, (t + 1) * bins)));
    parts.push(...s.flush());
    const whole = istft(re, im, T, { nFft: 1280, hop: 320, padding: "same" });
    expect(parts.length).toBe(whole.length);
    let worst = 0;
    for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(whole[i] - parts[i]));
    expect(worst).toBeLessThan(1e-6);
  });
});
