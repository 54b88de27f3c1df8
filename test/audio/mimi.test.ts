// Mimi decoder (LFM2-Audio-1.5B speech out) against an independent PyTorch reference (scripts/reference/mimi_ref.py,
// F.conv1d / conv_transpose1d / layer_norm / softmax attention following moshi's source) on synthetic weights of the
// real shapes; chunked (streaming) decoding against a whole decode; the transformers layout against moshi's; errors.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MimiDecoder, MIMI_SAMPLES_PER_FRAME } from "../../src/models/lfm2audio/mimi.js";
import { syntheticMimiSafetensors, TINY_MIMI_SHAPE } from "../../src/models/lfm2audio/synthetic-mimi.js";
import { mulberry32 } from "../../src/models/synthetic.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../src/formats/safetensors-writer.js";
import { f32ToF16 } from "../../src/formats/fp16.js";
import { encodeGguf } from "../../src/formats/gguf-writer.js";
import { loadModel, syntheticGguf } from "../../src/index.js";
import { syntheticAudioHead } from "../../src/models/lfm2audio/synthetic-out.js";

const python = ["/usr/bin/python3", "python3"].find((py) => {
  try { execFileSync(py, ["-c", "import torch, numpy"], { stdio: "ignore" }); return true; } catch { return false; }
});
const dir = mkdtempSync(join(tmpdir(), "mimi-"));
const cat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const randomCodes = (frames: number, seed: number) => {
  const r = mulberry32(seed);
  return Int32Array.from({ length: frames * 8 }, () => Math.floor(r() * 2048));
};
/** Re-encode a safetensors file after `edit` changes its tensor list (names, shapes, dtypes, bytes). */
const rewrite = (bytes: Uint8Array, edit: (t: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[]) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const list: SafetensorsWriteTensor[] = Object.entries<any>(header).filter(([k]) => k !== "__metadata__").map(([name, t]) =>
    ({ name, dtype: t.dtype, shape: t.shape, data: bytes.slice(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) }));
  return cat(encodeSafetensors(edit(list)));
};
const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const peak = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const why = python ?? "no python with torch: apt-get install python3-torch";
describe.skipIf(!python)(`Mimi decoder vs PyTorch (${why})`, () => {
  it("3 s of random codes, real shapes (moshi layout): PCM within 1e-4 of the reference", async () => {
    const weights = cat(syntheticMimiSafetensors({ seed: 11 }));
    const wPath = join(dir, "mimi.safetensors"), cPath = join(dir, "codes.i32"), oPath = join(dir, "ref.f32");
    writeFileSync(wPath, weights);
    const frames = 38, codes = randomCodes(frames, 5);
    writeFileSync(cPath, Buffer.from(codes.buffer));
    // context 40 (not 250) so the attention window is crossed within the clip (76 transformer steps)
    execFileSync(python!, [join(__dirname, "../../scripts/reference/mimi_ref.py"), wPath, cPath, String(frames), "8", "8", "40",
      oPath]);
    const ref = new Float32Array(readFileSync(oPath).buffer.slice(0));
    const mimi = await MimiDecoder.load(weights, { context: 40 });
    const pcm = mimi.decode(codes);
    expect(pcm.length).toBe(frames * MIMI_SAMPLES_PER_FRAME);
    expect(ref.length).toBe(pcm.length);
    const err = maxAbs(pcm, ref);
    console.log(`mimi vs torch: max abs error ${err.toExponential(2)}, peak ${peak(ref).toFixed(3)}`);
    expect(peak(ref)).toBeGreaterThan(0.05);
    expect(err).toBeLessThan(1e-4 * Math.max(1, peak(ref)));
    // the full window (250) differs from the 40-step one after step 40: the context is in effect
    const full = await MimiDecoder.load(weights);
    const late = 21 * MIMI_SAMPLES_PER_FRAME;
    expect(maxAbs(full.decode(codes).subarray(late), ref.subarray(late))).toBeGreaterThan(1e-3);
  }, 120_000);

  it("two residual blocks per stage (dilations 1 and 2), small widths: within 1e-4 of the reference", async () => {
    const shape = { ...TINY_MIMI_SHAPE, residualLayers: 2 };
    const weights = cat(syntheticMimiSafetensors({ shape, seed: 8 }));
    const wPath = join(dir, "mimi-dil.safetensors"), cPath = join(dir, "codes-dil.i32"), oPath = join(dir, "ref-dil.f32");
    writeFileSync(wPath, weights);
    const frames = 12, codes = randomCodes(frames, 6);
    writeFileSync(cPath, Buffer.from(codes.buffer));
    execFileSync(python!, [join(__dirname, "../../scripts/reference/mimi_ref.py"), wPath, cPath, String(frames), "8",
      String(shape.heads), "250", oPath]);
    const ref = new Float32Array(readFileSync(oPath).buffer.slice(0));
    const mimi = await MimiDecoder.load(weights, { heads: shape.heads, maxChunkFrames: 5 });
    expect(mimi.config.residualLayers).toBe(2);
    const pcm = mimi.decode(codes);
    expect(peak(ref)).toBeGreaterThan(0.05);
    expect(maxAbs(pcm, ref)).toBeLessThan(1e-4 * Math.max(1, peak(ref)));
  }, 60_000);
});

describe("Mimi decoder streaming and layouts", () => {
  const tiny = cat(syntheticMimiSafetensors({ shape: TINY_MIMI_SHAPE, seed: 3 }));
  it("frame by frame and odd chunks = whole decode bit for bit; reset() starts a new utterance, end() does not", async () => {
    const whole = await MimiDecoder.load(tiny, { maxChunkFrames: 64, context: 10 });
    const codes = randomCodes(20, 9);
    const ref = whole.decode(codes);
    const byFrame = await MimiDecoder.load(tiny, { maxChunkFrames: 3, context: 10 });
    const s = byFrame.stream();
    const parts: number[] = [];
    for (let f = 0; f < 20; f++) parts.push(...s.push(codes.subarray(f * 8, f * 8 + 8)));
    // each output is one accumulation in a fixed order whatever the chunk: bit-identical
    expect(parts).toEqual(Array.from(ref));
    const chunked = byFrame.stream();
    const a = chunked.pushFrames(codes.subarray(0, 7 * 8)), b = chunked.pushFrames(codes.subarray(7 * 8));
    expect([...a, ...b]).toEqual(Array.from(ref));
    chunked.reset();
    expect(Array.from(chunked.pushFrames(codes))).toEqual(Array.from(ref));
    // end() (an end-of-audio frame) holds nothing back and keeps the state: the next segment continues the stream
    const seg = byFrame.stream();
    const first = seg.pushFrames(codes.subarray(0, 5 * 8));
    expect(seg.end().length).toBe(0);
    expect([...first, ...seg.pushFrames(codes.subarray(5 * 8))]).toEqual(Array.from(ref));
  });

  it("two threads (weight rows split across a worker) give the same samples", async () => {
    const codes = randomCodes(5, 4), one = await MimiDecoder.load(tiny), two = await MimiDecoder.load(tiny, { threads: 2 });
    try {
      expect(Array.from(two.decode(codes))).toEqual(Array.from(one.decode(codes)));
    } finally { two.dispose(); }
  });

  it("the transformers layout (renamed, q/k permuted, in_proj split) decodes as the moshi layout", async () => {
    const hf = cat(syntheticMimiSafetensors({ shape: TINY_MIMI_SHAPE, seed: 3, layout: "hf" }));
    const heads = TINY_MIMI_SHAPE.heads;
    const a = await MimiDecoder.load(tiny, { heads }), b = await MimiDecoder.load(hf, { heads });
    expect(a.layout).toBe("moshi"); expect(b.layout).toBe("hf");
    const codes = randomCodes(6, 2);
    expect(maxAbs(a.decode(codes), b.decode(codes))).toBeLessThan(1e-5);
  });

  it("an F16 file decodes as the F32 one up to the weights' rounding", async () => {
    const half = rewrite(tiny, (l) => l.map((t) => {
      const v = new Float32Array(t.data.slice().buffer), h = Uint16Array.from(v, (x) => f32ToF16(x));
      return { ...t, dtype: "F16", data: new Uint8Array(h.buffer) };
    }));
    const heads = TINY_MIMI_SHAPE.heads, codes = randomCodes(6, 7);
    const a = (await MimiDecoder.load(tiny, { heads })).decode(codes);
    const b = (await MimiDecoder.load(half, { heads })).decode(codes);
    const err = maxAbs(a, b);
    expect(err).toBeGreaterThan(0);
    expect(err).toBeLessThan(2e-2 * Math.max(1, peak(a)));
  });

  it("typed errors: not Mimi, missing or misshapen tensors, unsupported dtype, bad codes", async () => {
    const other = cat(encodeSafetensors([{ name: "x", dtype: "F32", shape: [1], data: new Uint8Array(4) }]));
    await expect(MimiDecoder.load(other)).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(MimiDecoder.load(new Uint8Array(3))).rejects.toMatchObject({ code: "BAD_MAGIC" });
    await expect(MimiDecoder.load(tiny, { codebooks: 9 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    await expect(MimiDecoder.load(tiny, { heads: 0 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(MimiDecoder.load(tiny, { heads: 5 })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    const drop = rewrite(tiny, (l) => l.filter((t) => !t.name.endsWith("layers.1.linear2.weight")));
    await expect(MimiDecoder.load(drop, { heads: 4 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    const reshaped = rewrite(tiny, (l) => l.map((t) => t.name.endsWith("layers.0.norm1.bias")
      ? { ...t, shape: [t.shape[0] / 2, 2] } : t));
    await expect(MimiDecoder.load(reshaped, { heads: 4 })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    const f64 = rewrite(tiny, (l) => l.map((t) => t.name === "decoder.model.0.conv.conv.bias"
      ? { ...t, dtype: "F64" as never, shape: [t.shape[0] / 2] } : t));
    await expect(MimiDecoder.load(f64, { heads: 4 })).rejects.toMatchObject({ code: "UNSUPPORTED_TYPE" });
    // more elements than bytes (the first tensor read, before any expected shape)
    const short = rewrite(tiny, (l) => l.map((t) => t.name === "quantizer.rvq_first.vq.layers.0._codebook.embedding_sum"
      ? { ...t, shape: [t.shape[0] * 2, t.shape[1]] } : t));
    await expect(MimiDecoder.load(short, { heads: 4 }))
      .rejects.toMatchObject({ code: "SHAPE_MISMATCH", message: expect.stringMatching(/bytes for shape/) });
    const m = await MimiDecoder.load(tiny);
    expect(() => m.decode([1, 2, 3])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => m.decode([0, 0, 0, 0, 0, 0, 0, 2048])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => m.stream().push([0, 0])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
  });
});

describe("LFM2-Audio-1.5B speech out through Mimi (loadModel speechOut.mimi)", () => {
  const shape = { hiddenSize: 64, nLayers: 4, nHeads: 4, nKv: 2, ffDim: 128, attn: [1, 3], vocabSize: 2048 };
  const textPath = join(dir, "text.gguf");
  writeFileSync(textPath, Buffer.concat(syntheticGguf({ shape, weightType: "F32", seed: 4 })));
  const head = syntheticAudioHead({ backboneDim: 64, dim: 256, nLayers: 2, ffDim: 128 });
  // the 1.5B vocoder file: the audio head only (no LFM2.5 code embeddings)
  const vocoder = cat(encodeGguf({ "general.alignment": { type: "u32", value: 32 }, ...head.meta }, head.tensors));
  const mimi = cat(syntheticMimiSafetensors({ shape: TINY_MIMI_SHAPE, seed: 3 }));

  it("speak() → 1920 samples per frame = Mimi decoding the returned codes; streamed chunks = the result", async () => {
    const m = await loadModel(textPath, { threads: 1, speechOut: { vocoder, mimi } });
    const events: { pcm: Float32Array }[] = [];
    const gen = m.speakStream("Hello there", { maxFrames: 6, seed: 3 });
    let r = await gen.next();
    while (!r.done) { if (r.value.type === "audio") events.push(r.value); r = await gen.next(); }
    const res = r.value;
    const frames = res.codes.filter((c) => c[0] !== 2048);
    expect(frames.length).toBe(6);
    expect(res.sampleRate).toBe(24000);
    expect(res.pcm.length).toBe(6 * MIMI_SAMPLES_PER_FRAME);
    expect(events[0].pcm.length).toBe(MIMI_SAMPLES_PER_FRAME); // causal: nothing held back
    expect(Array.from(events.flatMap((e) => Array.from(e.pcm)))).toEqual(Array.from(res.pcm));
    const direct = (await MimiDecoder.load(mimi)).decode(Int32Array.from(frames.flatMap((c) => Array.from(c))));
    expect(maxAbs(direct, res.pcm)).toBeLessThan(1e-6);
    expect(peak(res.pcm)).toBeGreaterThan(0);
  });

  it("Mimi decodes on the text model's threads (loaded with 2 threads: 2; the samples equal one thread's)", async () => {
    const one = await loadModel(textPath, { threads: 1, speechOut: { vocoder, mimi } });
    const two = await loadModel(textPath, { threads: 2, speechOut: { vocoder, mimi } });
    try {
      expect((two.speech!.detok as MimiDecoder).threads).toBe(Math.min(2, two.info.threads));
      const a = await one.speak("Hello", { maxFrames: 3, seed: 1 }), b = await two.speak("Hello", { maxFrames: 3, seed: 1 });
      expect(Array.from(b.codes.flat())).toEqual(Array.from(a.codes.flat()));
      expect(maxAbs(a.pcm, b.pcm)).toBeLessThan(1e-6);
    } finally { one.dispose(); two.dispose(); }
  });

  it("typed errors: both or neither code decoder, a file that is not Mimi", async () => {
    await expect(loadModel(textPath, { threads: 1, speechOut: { vocoder, mimi, detokenizer: textPath } }))
      .rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(loadModel(textPath, { threads: 1, speechOut: { vocoder } })).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(loadModel(textPath, { threads: 1, speechOut: { vocoder, mimi: vocoder } }))
      .rejects.toMatchObject({ code: "BAD_MAGIC" });
  });
});
