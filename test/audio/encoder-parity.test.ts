// LFM2-Audio encoder + adapter parity with llama.cpp's libmtmd (projector lfm2a), the exact source of
// node-llama-cpp's prebuilt binary compiled offline by scripts/build-llama-tools.mjs, on synthetic mmproj
// files (seeded random weights, real layout) and generated audio: tones, noise, espeak-ng speech.
// Checked: libmtmd's mel vs ours, the token count, and the embeddings (from llama.cpp's own mel, which
// isolates the encoder, and end to end from the samples).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { llamaTool } from "../../scripts/build-llama-tools.mjs";
import { AudioEncoder } from "../../src/models/lfm2audio/encoder.js";
import { syntheticAudioMmproj } from "../../src/models/lfm2audio/synthetic.js";
import { logMelSpectrogram } from "../../src/audio/mel.js";
import { noise, speech, tones } from "./signals.js";

let tool: string | undefined, whyNot = "";
const dir = mkdtempSync(join(tmpdir(), "lfm2-audio-parity-"));
beforeAll(() => {
  const t = llamaTool("mtmd-audio-dump");
  tool = t.path;
  whyNot = t.reason ?? "";
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readBlock(path: string) {
  const b = readFileSync(path), dv = new DataView(b.buffer, b.byteOffset, b.length);
  return { a: dv.getInt32(0, true), b: dv.getInt32(4, true), data: new Float32Array(b.buffer.slice(b.byteOffset + 8, b.byteOffset + b.length)) };
}

function llamaCpp(mmproj: string, x: Float32Array) {
  writeFileSync(join(dir, "in.f32"), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  execFileSync(tool!, [mmproj, join(dir, "in.f32"), join(dir, "out")], { stdio: "ignore" });
  const mel = readBlock(join(dir, "out.mel")), emb = readBlock(join(dir, "out.emb"));
  return { mel: { data: mel.data, nFrames: mel.a, nMel: mel.b }, tokens: emb.a, width: emb.b, emb: emb.data };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const spoken = speech("Please send the report to the team before Friday.");
const signals: [string, Float32Array | string][] = [
  ["tones 1.5 s + 37 samples", tones(1.5 + 37 / 16000)], ["noise 0.73 s", noise(0.73)], ["tones 0.05 s", tones(0.05)],
  ["espeak-ng speech", spoken],
];

// Tolerances on max |ours − llama.cpp| relative to the largest |embedding|, per linear-weight type
// (measured: F32 ≤ 7e-7 from llama.cpp's mel and ≤ 1e-4 end to end, where our f64 FFT's mel differs
// by ~1e-4 and then meets the fp16 rounding of the first conv; F16 ≤ 9e-4; Q8_0 ≤ 2.4e-2). F16 and
// Q8_0 round or quantize every matmul input, as ggml does, so tiny upstream differences flip roundings.
const cases = [{ type: "F32", tolEnc: 1e-5, tolFull: 5e-4 }, { type: "F16", tolEnc: 2e-3, tolFull: 2e-3 },
  { type: "Q8_0", tolEnc: 4e-2, tolFull: 4e-2 }] as const;

describe.each(cases)("encoder parity vs llama.cpp mtmd, $type linear weights", ({ type, tolEnc, tolFull }) => {
  const bytes = syntheticAudioMmproj({ nLayers: 2, ffDim: 512, subChannels: 32, adapterHidden: 256, outDim: 256,
    posRows: 600, weightType: type, seed: 11 });
  const path = join(dir, `mm-${type}.gguf`);
  let enc: AudioEncoder;
  beforeAll(async () => { writeFileSync(path, bytes); enc = await AudioEncoder.load(bytes); });
  afterAll(() => enc?.dispose());

  it.for(signals)("%s", ([name, x], ctx) => {
    if (!tool) return ctx.skip(whyNot);
    if (typeof x === "string") return ctx.skip(x);
    const ref = llamaCpp(path, x);
    const ours = logMelSpectrogram(x);
    expect(ours.nFrames).toBe(ref.mel.nFrames);
    expect(maxAbsDiff(ours.data, ref.mel.data)).toBeLessThan(2e-3);
    expect(enc.tokensForSamples(x.length)).toBe(ref.tokens);
    const fromRefMel = enc.encodeMel(ref.mel);
    expect(fromRefMel.tokens).toBe(ref.tokens);
    expect(fromRefMel.embeddings.length).toBe(ref.tokens * ref.width);
    const scale = maxAbs(ref.emb);
    const dEnc = maxAbsDiff(fromRefMel.embeddings, ref.emb) / scale;
    const full = enc.encode({ samples: x, sampleRate: 16000 });
    const dFull = maxAbsDiff(full.embeddings, ref.emb) / scale;
    console.log(`${type} ${name}: ${ref.tokens} tokens; max rel diff encoder ${dEnc.toExponential(2)}, end to end ${dFull.toExponential(2)}`);
    expect(dEnc).toBeLessThan(tolEnc);
    expect(dFull).toBeLessThan(tolFull);
  });
});

describe("encoder threads", () => {
  it("2 threads (matmuls and attention heads split) give bit-identical embeddings to 1 thread", async () => {
    const bytes = syntheticAudioMmproj({ nLayers: 2, ffDim: 512, subChannels: 32, adapterHidden: 256, outDim: 256, posRows: 600, seed: 3 });
    const one = await AudioEncoder.load(bytes, { threads: 1 }), two = await AudioEncoder.load(bytes, { threads: 2 });
    try {
      expect(two.threads).toBe(2);
      const x = { samples: noise(2.1, 9), sampleRate: 16000 };
      const a = one.encode(x), b = two.encode(x);
      expect(b.tokens).toBe(27);
      expect(b.embeddings).toEqual(a.embeddings);
    } finally { one.dispose(); two.dispose(); }
  });
});
