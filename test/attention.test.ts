// The tiled attention kernel (attentionTiles) and Ops.attention (split across worker threads) against the
// per-head kernel (`attention`, bit for bit: same arithmetic in the same order) and a plain f64 reference
// (llama.cpp's rounding points: q, K, V and the probabilities in fp16), for several head sizes, GQA
// groups, token counts, start positions, causal and bidirectional.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Arena, createMemory } from "../bindings/arena.js";
import { Ops } from "../bindings/ops.js";
import { WorkerPool } from "../bindings/threads.js";
import { compileVariant, instantiateKernels, type KernelExports } from "../bindings/wasm.js";
import { roundToF16 } from "../src/formats/fp16.js";
import { loadModel } from "../src/index.js";
import { tinyModelPath } from "./helpers/models.js";

interface Case { dh: number; nHeads: number; nKv: number; nTok: number; pos0: number; causal: boolean; extra: number }

const CASES: Case[] = [];
for (const dh of [4, 12, 64, 80])
  for (const [nHeads, nKv] of [[2, 2], [4, 1], [6, 2], [16, 8]])
    for (const [nTok, pos0] of [[1, 0], [1, 70], [5, 3], [21, 0], [40, 67]])
      for (const causal of [true, false]) CASES.push({ dh, nHeads, nKv, nTok, pos0, causal, extra: causal ? 0 : 9 });

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
}

/** Plain attention in f64 from the fp16 cache contents, rounding where llama.cpp rounds. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, c: Case, kvLen: number, scale: number): Float64Array {
  const { dh, nHeads, nKv, nTok, pos0 } = c, group = nHeads / nKv, kvw = nKv * dh, out = new Float64Array(nTok * nHeads * dh);
  for (let t = 0; t < nTok; t++) for (let h = 0; h < nHeads; h++) {
    const len = c.causal ? pos0 + t + 1 : kvLen, off = Math.floor(h / group) * dh, qo = (t * nHeads + h) * dh;
    const s = new Float64Array(len);
    for (let j = 0; j < len; j++) { let d = 0; for (let i = 0; i < dh; i++) d += roundToF16(q[qo + i]) * k[j * kvw + off + i]; s[j] = d * scale; }
    const mx = Math.max(...s); let sum = 0;
    for (let j = 0; j < len; j++) { s[j] = Math.exp(s[j] - mx); sum += s[j]; }
    for (let j = 0; j < len; j++) { const p = roundToF16(s[j] / sum); for (let i = 0; i < dh; i++) out[qo + i] += p * v[j * kvw + off + i]; }
  }
  return out;
}

let k: KernelExports, arena: Arena;
beforeAll(async () => {
  arena = new Arena(createMemory(64 << 20, false));
  k = await instantiateKernels(await compileVariant("lfm2-simd"), arena.memory);
});

/** Random q and cache (cache filled through kvStore, so it holds fp16); returns pointers and f32 copies. */
function setup(a: Arena, kern: KernelExports, c: Case, seed: number) {
  const rand = rng(seed), kvLen = c.pos0 + c.nTok + c.extra, kvw = c.nKv * c.dh, qn = c.nTok * c.nHeads * c.dh;
  const fill = (n: number, amp: number) => { const p = a.alloc(n * 4); const f = a.f32(p, n); for (let i = 0; i < n; i++) f[i] = (rand() - 0.5) * amp; return p; };
  const q = fill(qn, 6), kSrc = fill(kvLen * kvw, 3), vSrc = fill(kvLen * kvw, 2);
  const kc = a.alloc(kvLen * kvw * 2), vc = a.alloc(kvLen * kvw * 2);
  kern.kvStore(kSrc, kc, kvw, 0, kvLen); kern.kvStore(vSrc, vc, kvw, 0, kvLen);
  const kF = Float32Array.from(a.f32(kSrc, kvLen * kvw), roundToF16), vF = Float32Array.from(a.f32(vSrc, kvLen * kvw), roundToF16);
  return { q, kc, vc, kvLen, qn, kF, vF, qF: a.f32(q, qn).slice() };
}

const name = (c: Case) => `dh ${c.dh}, ${c.nHeads}/${c.nKv} heads, ${c.nTok} tok at ${c.pos0}, ${c.causal ? "causal" : "bidirectional"}`;

describe("attentionTiles", () => {
  it.each(CASES.map((c) => [name(c), c] as const))("%s: = attention bit for bit, any tiling and unit split; ≈ f64 reference", (_, c) => {
    const m = arena.mark();
    try {
      const { q, kc, vc, kvLen, qn, kF, vF, qF } = setup(arena, k, c, c.dh * 1000 + c.nTok * 10 + c.pos0);
      const scale = 1 / Math.sqrt(c.dh), causal = c.causal ? 1 : 0, group = c.nHeads / c.nKv;
      const ref = arena.alloc(qn * 4), out = arena.alloc(qn * 4);
      k.attention(q, kc, vc, ref, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, causal, scale, arena.alloc((kvLen + c.dh) * 4));
      const want = arena.f32(ref, qn).slice();
      for (const tile of [16, 3, 1]) {
        const units = Math.ceil(c.nTok / tile) * c.nKv, scratch = arena.alloc(k.attentionTileScratch(group, c.dh, tile, kvLen));
        arena.f32(out, qn).fill(NaN);
        // in uneven pieces, as threads would run them
        for (let u = 0; u < units; ) { const u1 = Math.min(units, u + 1 + (u % 3)); k.attentionTiles(q, kc, vc, out, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, causal, scale, tile, u, u1, scratch); u = u1; }
        expect(arena.f32(out, qn)).toEqual(want);
      }
      const exact = reference(qF, kF, vF, c, kvLen, scale);
      // a probability near an fp16 rounding boundary may round the other way (≤ 2^-11 · |v| ≈ 5e-4); rare
      let worst = 0, total = 0;
      for (let i = 0; i < qn; i++) { const e = Math.abs(want[i] - exact[i]); worst = Math.max(worst, e); total += e; }
      expect(worst).toBeLessThan(6e-4);
      expect(total / qn).toBeLessThan(1e-5);
    } finally { arena.release(m); }
  });

  it("a causal prompt in chunks gives the rows of the whole prompt bit for bit (positions, not chunks, decide)", () => {
    const c: Case = { dh: 64, nHeads: 16, nKv: 8, nTok: 150, pos0: 0, causal: true, extra: 0 };
    const m = arena.mark();
    try {
      const { q, kc, vc, kvLen, qn } = setup(arena, k, c, 7);
      const group = 2, tile = 16, scale = 0.125, out = arena.alloc(qn * 4), part = arena.alloc(qn * 4);
      const scratch = arena.alloc(k.attentionTileScratch(group, c.dh, tile, kvLen));
      k.attentionTiles(q, kc, vc, out, 16, 8, 64, 150, 0, kvLen, 1, scale, tile, 0, Math.ceil(150 / tile) * 8, scratch);
      const row = 16 * 64;
      for (const [a, b] of [[0, 37], [37, 38], [38, 150]]) {
        const n = b - a;
        k.attentionTiles(q + a * row * 4, kc, vc, part + a * row * 4, 16, 8, 64, n, a, b, 1, scale, tile, 0, Math.ceil(n / tile) * 8, scratch);
      }
      expect(arena.f32(part, qn)).toEqual(arena.f32(out, qn));
    } finally { arena.release(m); }
  });
});

describe("attentionDecode", () => {
  // the decode kernel widens fp16 K/V in registers and pre-scales q and p by 2^112: same products, same sums
  it.each(CASES.map((c) => [name(c), c] as const))("%s: = attention bit for bit, any unit split", (_, c) => {
    const m = arena.mark();
    try {
      const { q, kc, vc, kvLen, qn } = setup(arena, k, c, c.dh * 1000 + c.nTok * 10 + c.pos0 + 1);
      const scale = 1 / Math.sqrt(c.dh), causal = c.causal ? 1 : 0, group = c.nHeads / c.nKv;
      const ref = arena.alloc(qn * 4), out = arena.alloc(qn * 4);
      k.attention(q, kc, vc, ref, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, causal, scale, arena.alloc((kvLen + c.dh) * 4));
      const dk = k as unknown as { attentionDecode: (...a: number[]) => void; attentionDecodeScratch: (...a: number[]) => number };
      const scratch = arena.alloc(dk.attentionDecodeScratch(group, c.dh, kvLen)), units = c.nTok * c.nKv;
      for (const piece of [units, 1, 3]) {
        arena.f32(out, qn).fill(NaN);
        for (let u = 0; u < units; u += piece) {
          dk.attentionDecode(q, kc, vc, out, c.nHeads, c.nKv, c.dh, c.pos0, kvLen, causal, scale, u, Math.min(units, u + piece), scratch);
        }
        expect(arena.f32(out, qn)).toEqual(arena.f32(ref, qn));
      }
    } finally { arena.release(m); }
  });

  it("odd groups, long rows, subnormal and large fp16 values: = attention bit for bit", () => {
    for (const [nHeads, nKv, pos0] of [[3, 1, 1000], [10, 2, 333], [8, 8, 65]]) {
      const c: Case = { dh: 64, nHeads, nKv, nTok: 1, pos0, causal: true, extra: 0 };
      const m = arena.mark();
      try {
        const { q, kc, vc, kvLen, qn } = setup(arena, k, c, pos0);
        // a few halves at the ends of the fp16 range (subnormal, near 65504) in K, V and q
        const kh = new Uint16Array(arena.memory.buffer, kc, kvLen * nKv * 64), vh = new Uint16Array(arena.memory.buffer, vc, kvLen * nKv * 64);
        for (let i = 0; i < kh.length; i += 97) { kh[i] = i % 2 ? 0x0003 : 0x8001; vh[i] = i % 3 ? 0x7bff : 0x83ff; }
        const qf = arena.f32(q, qn); qf[5] = 60000; qf[77] = -3e-7;
        const ref = arena.alloc(qn * 4), out = arena.alloc(qn * 4), scale = 0.125;
        k.attention(q, kc, vc, ref, nHeads, nKv, 64, 1, pos0, kvLen, 1, scale, arena.alloc((kvLen + 64) * 4));
        const dk = k as unknown as { attentionDecode: (...a: number[]) => void; attentionDecodeScratch: (...a: number[]) => number };
        dk.attentionDecode(q, kc, vc, out, nHeads, nKv, 64, pos0, kvLen, 1, scale, 0, nKv, arena.alloc(dk.attentionDecodeScratch(nHeads / nKv, 64, kvLen)));
        expect(arena.f32(out, qn)).toEqual(arena.f32(ref, qn));
      } finally { arena.release(m); }
    }
  });
});

describe("Ops.attention on a worker pool", () => {
  let pool: WorkerPool, ops: Ops, solo: Ops, shared: Arena;
  beforeAll(async () => {
    shared = new Arena(createMemory(64 << 20, true));
    const module = await compileVariant("lfm2-simd-mt"), kern = await instantiateKernels(module, shared.memory);
    ops = new Ops(kern, shared, 64, 1);
    solo = new Ops(kern, shared, 64, 1);
    pool = await WorkerPool.create(2, module, kern, shared);
    ops.executor = pool;
  });
  afterAll(() => pool?.terminate());

  it.each([
    { dh: 64, nHeads: 16, nKv: 8, nTok: 1, pos0: 3000, causal: true, extra: 0 },
    { dh: 64, nHeads: 32, nKv: 8, nTok: 2, pos0: 5000, causal: true, extra: 0 },
    { dh: 80, nHeads: 6, nKv: 2, nTok: 1, pos0: 0, causal: false, extra: 7000 },
    { dh: 64, nHeads: 16, nKv: 8, nTok: 200, pos0: 1000, causal: true, extra: 0 },
    { dh: 64, nHeads: 32, nKv: 8, nTok: 300, pos0: 0, causal: false, extra: 40 },
    { dh: 128, nHeads: 8, nKv: 2, nTok: 60, pos0: 4000, causal: true, extra: 0 },
  ])("2 threads = 1 thread bit for bit, scratch grows with kvLen (%o)", (c: Case) => {
    const { q, kc, vc, kvLen, qn } = setup(shared, ops.k, c, c.pos0 + c.nTok);
    const a = shared.alloc(qn * 4), b = shared.alloc(qn * 4), scale = 1 / Math.sqrt(c.dh);
    shared.f32(a, qn).fill(NaN); shared.f32(b, qn).fill(NaN);
    ops.attention(q, kc, vc, a, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, c.causal, scale);
    solo.attention(q, kc, vc, b, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, c.causal, scale);
    expect(shared.f32(a, qn).some(Number.isNaN)).toBe(false);
    expect(shared.f32(a, qn)).toEqual(shared.f32(b, qn));
    // and both equal the per-head kernel, whichever kernel (decode or tiles) Ops picked
    const c2 = shared.alloc(qn * 4);
    ops.k.attention(q, kc, vc, c2, c.nHeads, c.nKv, c.dh, c.nTok, c.pos0, kvLen, c.causal ? 1 : 0, scale, shared.alloc((kvLen + c.dh) * 4));
    expect(shared.f32(a, qn)).toEqual(shared.f32(c2, qn));
  });
});

describe("a model on 2 threads", () => {
  it("gives the logits of 1 thread bit for bit over a 300-token prompt and decode steps", async () => {
    const path = tinyModelPath({ weightType: "Q8_0", seed: 5 });
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 2000);
    const run = async (threads: number) => {
      const model = await loadModel(path, { threads });
      try {
        expect(model.info.threads).toBe(threads);
        const s = model.createSession({ contextLength: 400 });
        const out = [(await s.forward(prompt)).slice()];
        for (const t of [5, 900, 1234]) out.push((await s.forward([t])).slice());
        return out;
      } finally { model.dispose(); }
    };
    const one = await run(1), two = await run(2);
    for (let i = 0; i < one.length; i++) expect(two[i]).toEqual(one[i]);
  });
});

describe("the relaxed build (one-instruction clamp and conversion in exp)", () => {
  it("gives the plain SIMD build's attention and SwiGLU bit for bit, and a NaN stays NaN", () => {
    // a child node process: Node 20 runs the relaxed build only with --experimental-wasm-relaxed-simd
    const script = fileURLToPath(new URL("./helpers/relaxed-exp-check.ts", import.meta.url));
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", "--import", "tsx", script],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), encoding: "utf8", timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { relaxed: boolean; attentionCases: number; attentionDiffers: string[]; swigluDiffers: number[]; nanStaysNan: boolean };
    expect(res.relaxed).toBe(true);
    expect(res.attentionCases).toBeGreaterThan(50);
    expect(res.attentionDiffers).toEqual([]);
    expect(res.swigluDiffers).toEqual([]);
    expect(res.nanStaysNan).toBe(true);
  });
});
