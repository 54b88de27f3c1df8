// The vision kernels (assembly/vision.ts) against f64 references written from ggml's definitions.
import { beforeAll, describe, expect, it } from "vitest";
import { Arena, createMemory } from "../../bindings/arena.js";
import { compileVariant, instantiateKernels, type KernelExports } from "../../bindings/wasm.js";
import { mulberry32 } from "../../src/models/synthetic.js";
import { f16ToF32, f32ToF16 } from "../../src/formats/fp16.js";

let k: KernelExports, a: Arena;
beforeAll(async () => {
  a = new Arena(createMemory(1 << 22, false));
  k = await instantiateKernels(await compileVariant("lfm2-simd"), a.memory);
});

const rnd = (n: number, seed: number, scale = 3) => { const r = mulberry32(seed); return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale); };
const put = (x: Float32Array) => { const p = a.alloc(x.length * 4); a.f32(p, x.length).set(x); return p; };
const half = (x: number) => f16ToF32(f32ToF16(x));

describe("vision kernels", () => {
  it("layerNorm with weight and bias, weight only, neither (rows of 3, 64, 771)", () => {
    for (const n of [3, 64, 771]) {
      const rows = 4, x = rnd(rows * n, n, 5).map((v, i) => v + (i % n === 0 ? 100 : 0)), w = rnd(n, 2), b = rnd(n, 3);
      for (const [useW, useB] of [[true, true], [true, false], [false, false]]) {
        const px = put(x), py = a.alloc(rows * n * 4);
        k.layerNorm(px, useW ? put(w) : 0, useB ? put(b) : 0, py, n, rows, 1e-6);
        const y = a.f32(py, rows * n);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * n, r * n + n));
          const mean = row.reduce((s, v) => s + v, 0) / n;
          const sd = Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / n + 1e-6);
          for (let i = 0; i < n; i++) {
            const ref = ((row[i] - mean) / sd) * (useW ? w[i] : 1) + (useB ? b[i] : 0);
            expect(Math.abs(y[r * n + i] - ref), `n=${n} w=${useW} b=${useB}`).toBeLessThan(1e-5 * (1 + Math.abs(ref)));
          }
        }
      }
    }
  });

  it("layerNorm in place (the encoder normalises the residual stream in place)", () => {
    const x = rnd(64, 9), p = put(x), q = put(x);
    const out = a.alloc(64 * 4);
    k.layerNorm(p, 0, 0, out, 64, 1, 1e-6);
    k.layerNorm(q, 0, 0, q, 64, 1, 1e-6);
    expect(Array.from(a.f32(q, 64))).toEqual(Array.from(a.f32(out, 64)));
  });

  it("addBias over rows (widths not a multiple of 4 too)", () => {
    for (const n of [8, 7]) {
      const x = rnd(3 * n, 4), b = rnd(n, 5), px = put(x);
      k.addBias(px, put(b), n, 3);
      const y = a.f32(px, 3 * n);
      for (let i = 0; i < 3 * n; i++) expect(y[i]).toBe(Math.fround(x[i] + b[i % n]));
    }
  });

  it("gelu = fp16(gelu_tanh(fp16(x))) as ggml's table, 0 below −10, identity above 10", () => {
    const x = Float32Array.from([...rnd(4000, 6, 12), -10, -10.5, 10, 11, 0, -0]);
    const px = put(x);
    k.gelu(px, x.length);
    const y = a.f32(px, x.length);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v <= -10) { expect(y[i]).toBe(0); continue; }
      if (v >= 10) { expect(y[i]).toBe(v); continue; }
      const h = half(v);
      // ggml_gelu_f32 in f32, operation by operation (its far negative tail cancels in f32: 1 + tanh ≈ 0)
      const f = Math.fround, A = f(0.044715), S = f(0.79788456080286535587989211986876);
      const z = f(f(S * h) * f(1 + f(f(A * h) * h)));
      const ref = f(f(0.5 * h) * f(1 + f(Math.tanh(z))));
      // one fp16 rounding of the result; tanhf vs tanh can move it by at most one fp16 step
      const ulp = Math.max(2 ** -24, 2 ** (Math.floor(Math.log2(Math.abs(ref) || 1e-30)) - 10));
      worst = Math.max(worst, Math.abs(y[i] - half(ref)) / ulp);
      expect(y[i]).toBe(half(y[i]));
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it("geluQuick = fp16(x·σ(1.702x)) on fp16 inputs", () => {
    const x = rnd(2000, 7, 9), px = put(x);
    k.geluQuick(px, x.length);
    const y = a.f32(px, x.length);
    for (let i = 0; i < x.length; i++) {
      const h = half(x[i]), ref = half(h / (1 + Math.exp(-1.702 * h)));
      expect(Math.abs(y[i] - ref)).toBeLessThanOrEqual(Math.abs(ref) * 1e-3 + 1e-7);
    }
  });
});

describe("matmulF16Tiled", () => {
  it("equals matmulF16 (2-row × 4-token blocks, odd row and token tails, a row sub-range)", () => {
    const n = 72, rows = 7, nTok = 11; // matmulF16 (the reference) steps by 8
    const wf = rnd(rows * n, 21, 1), x = rnd(nTok * n, 22, 2).map((v) => half(v));
    const w = a.alloc(rows * n * 2);
    const wh = new Uint16Array(a.memory.buffer, w, rows * n);
    for (let i = 0; i < wf.length; i++) wh[i] = f32ToF16(wf[i]);
    const px = put(x), y1 = a.alloc(nTok * rows * 4), y2 = a.alloc(nTok * rows * 4);
    a.f32(y2, nTok * rows).fill(123);
    k.matmulF16(w, px, y1, n, nTok, rows, 0, rows);
    k.matmulF16Tiled(w, px, y2, n, nTok, rows, 1, rows); // rows 1..6: row 0 must stay untouched
    const r1 = a.f32(y1, nTok * rows), r2 = a.f32(y2, nTok * rows);
    for (let t = 0; t < nTok; t++) {
      expect(r2[t * rows]).toBe(123);
      for (let r = 1; r < rows; r++) expect(Math.abs(r2[t * rows + r] - r1[t * rows + r])).toBeLessThan(1e-5 * (1 + Math.abs(r1[t * rows + r])));
    }
  });
});
