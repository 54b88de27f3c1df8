// Quantization codecs: round-trip bounds, exact byte layouts, activation quantizers, reference dots, and
// agreement with llama.cpp (node-llama-cpp) on synthetic tiny LFM2 models.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Llama, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dotReference, quantizeQ8_0, quantizeQ8_1, quantizeQ8_K } from "../src/formats/activation-quant.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../src/formats/fp16.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { parseGguf } from "../src/formats/gguf.js";
import { GGML, type GgmlType } from "../src/core/quant-types.js";
import { newUnpacked, scaleMinK4, unpackBlock } from "../src/formats/quantize-more.js";
import { codecFor, dequantizeTensor, quantizeTensor } from "../src/formats/quantize.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";

const NEW_TYPES = ["Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"] as const;
const ALL_Q = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"] as const;

/** Seeded test data of several shapes: uniform, heavy-tailed with outliers, all-positive, constant and zero blocks. */
function testData(seed: number, n: number): Float32Array {
  const r = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const region = Math.floor(i / 1024) % 5;
    const u = r() - 0.5;
    if (region === 0) x[i] = 2 * u;
    else if (region === 1) x[i] = 0.05 * Math.tan(Math.PI * u * 0.98) + (r() < 0.01 ? 8 : 0);
    else if (region === 2) x[i] = 3 + u;                    // all positive (K-quant min clamps to 0)
    else if (region === 3) x[i] = Math.floor(i / 256) % 2 ? -1.375 : 0; // constant / zero blocks
    else x[i] = 1e-3 * u;                                   // tiny magnitudes
  }
  return x;
}

const bytesOf = (t: GgmlType, n: number) => (n / t.blockSize) * t.blockBytes;

describe("round trip", () => {
  const n = 5 * 1024 * 2;
  const x = testData(11, n);
  for (const name of NEW_TYPES) {
    it(`${name}: |error| ≤ step everywhere (≤ step/2 for Q4_K/Q5_K)`, () => {
      const t = GGML[name];
      const q = quantizeTensor(t, x, 1024);
      expect(q.length).toBe(bytesOf(t, n));
      const y = dequantizeTensor(t, q, n);
      const u = newUnpacked(t);
      let worst = 0, sumErr = 0, sumStep = 0;
      for (let b = 0; b < n / t.blockSize; b++) {
        unpackBlock(t, q, b * t.blockBytes, u);
        for (let j = 0; j < t.blockSize; j++) {
          const k = b * t.blockSize + j;
          const step = Math.abs(u.scale[Math.floor(j / u.groupSize)]);
          const err = Math.abs(y[k] - x[k]);
          const rel = err / Math.max(step, 1e-30);
          // an fp16 rounding of d/m adds at most a few ulps of the block's magnitude
          const slack = 1e-3 * Math.abs(x[k]) + 1e-7;
          if (err > slack) worst = Math.max(worst, rel);
          sumErr += err; sumStep += step;
        }
      }
      // Q5_0 / Q6_K: the value −max clamps to the top code (one step). Q4_1 / Q5_1: step/2 plus the fp16
      // rounding of d and m (ggml quantizes with the unrounded values).
      const bound = name === "Q5_0" || name === "Q6_K" ? 1 : name.endsWith("_K") ? 0.5 : 0.6;
      expect(worst).toBeLessThanOrEqual(bound + 1e-6);
      expect(sumErr / sumStep).toBeLessThan(0.3); // mean error ≈ step/4 for uniform data
    });
  }

  it("constant and zero blocks decode (near-)exactly", () => {
    for (const name of NEW_TYPES) {
      const t = GGML[name];
      const z = new Float32Array(512);
      expect(Array.from(dequantizeTensor(t, quantizeTensor(t, z, 512), 512)).every((v) => v === 0)).toBe(true);
      const c = new Float32Array(512).fill(-1.375);
      for (const v of dequantizeTensor(t, quantizeTensor(t, c, 512), 512)) expect(Math.abs(v + 1.375)).toBeLessThan(2e-3);
    }
  });

  it("unpackBlock agrees with the existing Q4_0 and Q8_0 codecs", () => {
    for (const name of ["Q4_0", "Q8_0"] as const) {
      const t = GGML[name];
      const q = quantizeTensor(t, x.subarray(0, 2048), 2048);
      const y = dequantizeTensor(t, q, 2048);
      const u = newUnpacked(t);
      for (let b = 0; b < 64; b++) {
        unpackBlock(t, q, b * t.blockBytes, u);
        for (let j = 0; j < 32; j++) expect(u.scale[0] * u.q[j]).toBe(y[32 * b + j]);
      }
    }
  });

  it("codecs are reachable through quantize.ts", () => {
    for (const name of NEW_TYPES) expect(codecFor(GGML[name])).toBeDefined();
  });
});

describe("exact byte layouts", () => {
  const h = (v: number) => [f32ToF16(v) & 0xff, f32ToF16(v) >> 8];
  const seq = (n: number, f: (j: number) => number) => Float32Array.from({ length: n }, (_, j) => f(j));

  it("Q4_1 encodes {d, m, qs} with low nibbles = first half", () => {
    const x = seq(32, (j) => 2 + (j % 16) * 0.25); // min 2, max 5.75 → d = 0.25, q = j % 16
    const b = quantizeTensor(GGML.Q4_1, x, 32);
    expect(Array.from(b)).toEqual([...h(0.25), ...h(2), ...Array.from({ length: 16 }, (_, j) => j | (j << 4))]);
    expect(Array.from(dequantizeTensor(GGML.Q4_1, b, 32))).toEqual(Array.from(x));
  });

  it("Q5_0 encodes {d, qh (u32, bit j = element j, bit j+16 = element j+16), qs}", () => {
    const x = seq(32, (j) => (j - 16) * 0.25); // max = −4 → d = 0.25, q = j
    const b = quantizeTensor(GGML.Q5_0, x, 32);
    expect(Array.from(b)).toEqual([...h(0.25), 0, 0, 0xff, 0xff, ...Array.from({ length: 16 }, (_, j) => j | (j << 4))]);
    expect(Array.from(dequantizeTensor(GGML.Q5_0, b, 32))).toEqual(Array.from(x));
    // the 5th bit of element 3 alone
    const b2 = new Uint8Array(22); b2.set(h(1)); b2[2] = 0x08;
    const y = dequantizeTensor(GGML.Q5_0, b2, 32);
    expect(y[3]).toBe(0); expect(y[2]).toBe(-16); expect(y[19]).toBe(-16);
  });

  it("Q5_1 encodes {d, m, qh, qs}", () => {
    const x = seq(32, (j) => -3 + j * 0.125); // min −3 → d = 0.125, q = j
    const b = quantizeTensor(GGML.Q5_1, x, 32);
    expect(Array.from(b)).toEqual([...h(0.125), ...h(-3), 0, 0, 0xff, 0xff, ...Array.from({ length: 16 }, (_, j) => j | (j << 4))]);
    expect(Array.from(dequantizeTensor(GGML.Q5_1, b, 32))).toEqual(Array.from(x));
  });

  // Ls = [1,2,3,4,40,50,60,63], Lm = [5,6,7,8,33,17,48,1], packed by hand per get_scale_min_k4
  const kScales = [129, 194, 195, 196, 133, 70, 199, 8, 24, 18, 12, 31];
  const Ls = [1, 2, 3, 4, 40, 50, 60, 63], Lm = [5, 6, 7, 8, 33, 17, 48, 1];

  it("get_scale_min_k4 unpacking", () => {
    const s = Uint8Array.from(kScales);
    for (let j = 0; j < 8; j++) expect(scaleMinK4(s, 0, j)).toEqual([Ls[j], Lm[j]]);
  });

  it("Q4_K hand-built block: {d, dmin, scales[12], qs[128]}", () => {
    const b = new Uint8Array(144);
    b.set(h(0.25), 0); b.set(h(0.5), 2); b.set(kScales, 4);
    b[16 + 67] = 0xa7; // chunk 2 (sub-blocks 4, 5), l = 3
    b[16 + 127] = 0xf1; // chunk 3 (sub-blocks 6, 7), l = 31
    const y = dequantizeTensor(GGML.Q4_K, b, 256);
    expect(y[0]).toBe(-0.5 * 5);
    expect(y[131]).toBe(0.25 * 40 * 7 - 0.5 * 33);   // 53.5
    expect(y[163]).toBe(0.25 * 50 * 10 - 0.5 * 17);  // 116.5
    expect(y[223]).toBe(0.25 * 60 * 1 - 0.5 * 48);   // −9
    expect(y[255]).toBe(0.25 * 63 * 15 - 0.5 * 1);   // 235.75
    // encoder writes the same scale packing
    const x = new Float32Array(dequantizeTensor(GGML.Q4_K, b, 256));
    const back = dequantizeTensor(GGML.Q4_K, quantizeTensor(GGML.Q4_K, x, 256), 256);
    for (let i = 0; i < 256; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(0.25 * 63 / 2 + 1e-3);
  });

  it("Q5_K hand-built block: {d, dmin, scales[12], qh[32], qs[128]}", () => {
    const b = new Uint8Array(176);
    b.set(h(0.25), 0); b.set(h(0.5), 2); b.set(kScales, 4);
    b[16 + 3] = 0x10 | 0x80; // 5th bit: sub-block 4 (chunk 2 low nibbles) and sub-block 7 (chunk 3 high nibbles), l = 3
    b[48 + 67] = 0xa7;
    b[48 + 99] = 0x21;
    const y = dequantizeTensor(GGML.Q5_K, b, 256);
    expect(y[131]).toBe(0.25 * 40 * (7 + 16) - 0.5 * 33);  // 213.5
    expect(y[163]).toBe(0.25 * 50 * 10 - 0.5 * 17);        // 116.5 (bit 0x20 clear)
    expect(y[195]).toBe(0.25 * 60 * 1 - 0.5 * 48);         // sub-block 6, low nibble of 0x21, bit 0x40 clear
    expect(y[227]).toBe(0.25 * 63 * (2 + 16) - 0.5 * 1);   // 283
    expect(y[4]).toBe(-0.5 * 5);
  });

  it("Q6_K hand-built block: {ql[128], qh[64], scales[16], d last}", () => {
    const b = new Uint8Array(210);
    b[0] = 0x5a; b[32] = 0x3c; b[128] = 0b11_10_01_00;       // first half, l = 0
    b[64 + 17] = 0x9e; b[128 + 32 + 17] = 0b00_01_10_11;     // second half, l = 17
    b[127] = 0x70; b[191] = 0b10_00_00_00;                   // second half, l = 31 (ql[64+63], qh[32+31])
    const sc = [-8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 127];
    sc.forEach((v, i) => { b[192 + i] = v & 0xff; });
    b.set(h(0.5), 208);
    const y = dequantizeTensor(GGML.Q6_K, b, 256);
    expect(y[0]).toBe(0.5 * -8 * ((0xa | (0 << 4)) - 32));    // q1, sc[0]
    expect(y[32]).toBe(0.5 * -6 * ((0xc | (1 << 4)) - 32));   // q2, sc[2]
    expect(y[64]).toBe(0.5 * -4 * ((0x5 | (2 << 4)) - 32));   // q3, sc[4]
    expect(y[96]).toBe(0.5 * -2 * ((0x3 | (3 << 4)) - 32));   // q4, sc[6]
    expect(y[1]).toBe(0.5 * -8 * -32);
    expect(y[128 + 17]).toBe(0.5 * 2 * ((0xe | (3 << 4)) - 32));      // sc[8+1]
    expect(y[128 + 17 + 64]).toBe(0.5 * 6 * ((0x9 | (1 << 4)) - 32)); // sc[8+1+4]
    expect(y[128 + 17 + 32]).toBe(0.5 * 4 * ((0 | (2 << 4)) - 32));   // ql[64+49] = 0, qh bits 2..3 = 2
    expect(y[255]).toBe(0.5 * 127 * ((0x7 | (2 << 4)) - 32));         // sc[15]
  });

  it("Q6_K encoder round-trips a hand-built block's values", () => {
    const b = new Uint8Array(210);
    const r = mulberry32(3);
    for (let i = 0; i < 192; i++) b[i] = Math.floor(r() * 256);
    for (let g = 0; g < 16; g++) b[192 + g] = (g % 2 ? 100 : -100) & 0xff;
    b.set(h(0.01), 208);
    const x = dequantizeTensor(GGML.Q6_K, b, 256);
    const back = dequantizeTensor(GGML.Q6_K, quantizeTensor(GGML.Q6_K, x, 256), 256);
    for (let i = 0; i < 256; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(0.01 * 101);
  });
});

describe("activation quantizers", () => {
  it("Q8_0: d = amax/127 stored fp16, roundf (half away from zero)", () => {
    const x = new Float32Array(64);
    x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = -126.4; x[4] = 0.49;
    x[32] = 0.1;
    const a = quantizeQ8_0(x);
    expect(Array.from(a.qs.subarray(0, 5))).toEqual([127, 3, -3, -126, 0]);
    expect(a.d[0]).toBe(1);
    expect(a.d[1]).toBe(f16ToF32(f32ToF16(Math.fround(Math.fround(0.1) / 127))));
    expect(a.qs[32]).toBe(127);
  });

  it("Q8_1: s = fp16(d·Σq) with the unrounded d", () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? -0.3 : 0.3 * Math.sin(j)));
    const a = quantizeQ8_1(x);
    const d = Math.fround(Math.fround(0.3) / 127);
    let sum = 0; for (const q of a.qs) sum += q;
    expect(a.s[0]).toBe(f16ToF32(f32ToF16(Math.fround(sum * d))));
    expect(a.d[0]).toBe(f16ToF32(f32ToF16(d)));
    expect(a.qs[0]).toBe(-127);
  });

  it("Q8_K: iscale = −127/max, nearest-even, clamp 127, f32 d, bsums per 16", () => {
    const x = new Float32Array(512);
    x[5] = -127; // max (signed) → iscale = 1, d = 1... but sign flips: q = −x
    x[0] = 2.5; x[1] = 3.5; x[2] = -0.5; x[3] = 127; x[17] = 1.5;
    const a = quantizeQ8_K(x);
    expect(a.d[0]).toBe(-1);
    expect(Array.from(a.qs.subarray(0, 6))).toEqual([-2, -4, 0, -127, 0, 127]);
    expect(a.bsums[0]).toBe(-2 - 4 - 127 + 127);
    expect(a.bsums[1]).toBe(-2);
    expect(a.d[1]).toBe(0); // all-zero block
    expect(Array.from(a.bsums.subarray(16))).toEqual(new Array(16).fill(0));
    const y = new Float32Array(256); y[9] = 0.3;
    const b = quantizeQ8_K(y);
    expect(b.qs[9]).toBe(-127);
    expect(b.d[0]).toBe(Math.fround(1 / Math.fround(-127 / Math.fround(0.3))));
  });
});

describe("dotReference", () => {
  const n = 1024;
  const w = testData(21, n * 2).subarray(0, n);
  const x = Float32Array.from(testData(22, n), (v, i) => v + Math.sin(i));
  let trueDot = 0; for (let i = 0; i < n; i++) trueDot += w[i] * x[i];

  for (const name of ALL_Q) {
    it(`${name}: blockwise integer form equals the dequantized-weight · dequantized-activation sum`, () => {
      const t = GGML[name];
      const q = quantizeTensor(t, w, n);
      const wd = dequantizeTensor(t, q, n);
      let expected = 0;
      if (name.endsWith("_K")) {
        const a = quantizeQ8_K(x);
        for (let i = 0; i < n; i++) expected += wd[i] * a.d[i >> 8] * a.qs[i];
      } else if (name.endsWith("_1")) {
        // w = d·q + m; llama.cpp replaces m·d_x·Σq_x by m·s (s rounded to fp16)
        const a = quantizeQ8_1(x);
        const u = newUnpacked(t);
        for (let b = 0; b < n / 32; b++) {
          unpackBlock(t, q, b * t.blockBytes, u);
          for (let j = 0; j < 32; j++) expected += u.scale[0] * u.q[j] * a.d[b] * a.qs[32 * b + j];
          expected += u.offset[0] * a.s[b];
        }
      } else {
        const a = quantizeQ8_0(x);
        for (let i = 0; i < n; i++) expected += wd[i] * a.d[i >> 5] * a.qs[i];
      }
      const got = dotReference(t, q, x);
      expect(Math.abs(got - expected)).toBeLessThan(1e-9 * (1 + Math.abs(expected)));
      let wdDot = 0; for (let i = 0; i < n; i++) wdDot += wd[i] * x[i];
      expect(Math.abs(got - wdDot)).toBeLessThan(0.02 * (1 + Math.abs(wdDot))); // activation quantization only
      expect(Math.abs(got - trueDot)).toBeLessThan(0.1 * (1 + Math.abs(trueDot)));
    });
  }

  it("F32 / F16 / BF16 round the activation like the weight type", () => {
    const f32 = quantizeTensor(GGML.F32, w, n), f16 = quantizeTensor(GGML.F16, w, n), bf = quantizeTensor(GGML.BF16, w, n);
    let e32 = 0, e16 = 0, eb = 0;
    for (let i = 0; i < n; i++) {
      e32 += w[i] * x[i];
      e16 += f16ToF32(f32ToF16(w[i])) * f16ToF32(f32ToF16(x[i]));
      eb += bf16ToF32(f32ToBf16(w[i])) * bf16ToF32(f32ToBf16(x[i]));
    }
    expect(dotReference(GGML.F32, f32, x)).toBeCloseTo(e32, 9);
    expect(dotReference(GGML.F16, f16, x)).toBeCloseTo(e16, 9);
    expect(dotReference(GGML.BF16, bf, x)).toBeCloseTo(eb, 9);
  });

  it("rejects lengths that are not whole blocks", () => {
    expect(() => dotReference(GGML.Q4_K, new Uint8Array(144), new Float32Array(128))).toThrow();
  });
});

// ---- llama.cpp agreement ---------------------------------------------------------------------

describe("llama.cpp (node-llama-cpp) reads our blocks as intended", () => {
  const prompts = [[1, 300, 301, 512, 1000], [1, 5, 77, 1999], [1, 1234, 42, 42, 9, 640, 17], [1, 2000], [1, 88, 99, 111, 222, 333, 444, 555, 666]];
  const VOCAB = 2048;
  const SEED = 7;
  let dir = "";
  let llama: Llama;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lfm2-quant-"));
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
  }, 60_000);
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  /** Greedy token and full logits after each prompt. */
  async function evaluate(path: string) {
    const model = await llama.loadModel({ modelPath: path });
    const ctx = await model.createContext({ contextSize: 256, threads: 1 });
    const seq = ctx.getSequence();
    const out: { token: number; logits: Float64Array }[] = [];
    try {
      for (const ids of prompts) {
        await seq.clearHistory();
        const toks = ids as Token[];
        const r = await seq.controlledEvaluate([...toks.slice(0, -1), [toks.at(-1)!, { generateNext: { token: true, logits: true } }]]);
        const next = r.at(-1)!.next;
        const logits = new Float64Array(VOCAB);
        for (const [k, v] of next.logits as Map<number, number>) logits[k] = v;
        out.push({ token: next.token as number, logits });
      }
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
    return out;
  }

  const top2 = (a: Float64Array) => {
    let i1 = 0;
    for (let i = 1; i < a.length; i++) if (a[i] > a[i1]) i1 = i;
    let i2 = i1 ? 0 : 1;
    for (let i = 0; i < a.length; i++) if (i !== i1 && a[i] > a[i2]) i2 = i;
    return { top: i1, margin: a[i1] - a[i2] };
  };
  const meanAbs = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]); return s / a.length; };

  it("every new type loads, produces a token, and matches an F32 model holding our dequantized weights", async () => {
    const f32Bytes = concatChunks(syntheticGguf({ shape: "tiny", weightType: "F32", seed: SEED }));
    const f32File = parseGguf(f32Bytes);
    writeFileSync(join(dir, "orig.gguf"), f32Bytes);
    const orig = await evaluate(join(dir, "orig.gguf"));
    const report: string[] = [];
    for (const name of NEW_TYPES) {
      const qBytes = concatChunks(syntheticGguf({ shape: "tiny", weightType: name, seed: SEED }));
      const qFile = parseGguf(qBytes);
      // same model, every quantized tensor replaced by its dequantization (our codec) in F32
      const deq = f32Bytes.slice();
      let converted = 0;
      for (let i = 0; i < qFile.tensors.length; i++) {
        const qt = qFile.tensors[i], ft = f32File.tensors[i];
        expect(qt.name).toBe(ft.name);
        if (qt.type.id === GGML.F32.id) continue;
        expect(qt.type.id).toBe(GGML[name].id);
        const count = qt.shape.reduce((a, b) => a * b, 1);
        const y = dequantizeTensor(qt.type, qBytes.subarray(qt.offset, qt.offset + qt.byteLength), count);
        deq.set(new Uint8Array(y.buffer, y.byteOffset, y.byteLength), ft.offset);
        converted++;
      }
      expect(converted).toBeGreaterThan(10);
      writeFileSync(join(dir, `${name}.gguf`), qBytes);
      writeFileSync(join(dir, `${name}-deq.gguf`), deq);
      const lq = await evaluate(join(dir, `${name}.gguf`));
      const ld = await evaluate(join(dir, `${name}-deq.gguf`));
      let noiseSum = 0;
      for (let p = 0; p < prompts.length; p++) {
        const q = top2(lq[p].logits), d = top2(ld[p].logits);
        expect(Number.isInteger(lq[p].token) && lq[p].token >= 0 && lq[p].token < VOCAB).toBe(true);
        expect(lq[p].token).toBe(q.top);
        const noise = meanAbs(lq[p].logits, ld[p].logits);      // llama.cpp's activation quantization only
        const quantErr = meanAbs(lq[p].logits, orig[p].logits); // weight quantization + activation quantization
        report.push(`${name} prompt ${p}: top1 ${q.top}/${d.top} margin ${q.margin.toFixed(3)} mean|Δlogit| vs deq ${noise.toFixed(3)} vs unquantized ${quantErr.toFixed(3)}`);
        if (q.top !== d.top) expect(q.margin).toBeLessThan(0.3);
        // a wrong layout moves logits by O(1) (cf. quantErr); observed activation-quantization noise ≤ 0.16
        expect(noise).toBeLessThan(0.25);
        noiseSum += noise;
      }
      expect(noiseSum / prompts.length).toBeLessThan(0.2);
    }
    console.log(report.join("\n"));
  }, 60_000);
});
