// Batched thread hand-offs (WorkerPool.runBatch, Ops.matmulMany, Ops.gatedUp): several matmuls reading one
// activation, and SwiGLU on each thread's own rows, in one hand-off; the numbers equal one matmul after
// another on a single thread, bit for bit.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Arena, createMemory } from "../bindings/arena.js";
import { Ops, type MatmulJob } from "../bindings/ops.js";
import { WorkerPool } from "../bindings/threads.js";
import { compileVariant, instantiateKernels, type KernelExports } from "../bindings/wasm.js";
import { GGML, type GgmlType, type Matrix } from "../src/core/quant-types.js";
import { Lfm2Error } from "../src/errors.js";
import { HANG_GUARD_MS } from "./helpers/hang-guard.js";
import { randomActivations, randomMatrix } from "./helpers/kernel-inputs.js";

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t ^= t + Math.imul(t ^ (t >>> 7), 61 | t); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
}

const N = 1024, MAX_TOK = 3;

describe("one hand-off for several matmuls", () => {
  let arena: Arena, kern: KernelExports, pool: WorkerPool, ops: Ops, solo: Ops;
  const rand = rng(7);
  let handOffs = 0;

  /** A random rows × N matrix of type t in memory; Q4_0 / Q8_0 in their x4 layout when x4. */
  function matrix(t: GgmlType, rows: number, x4: boolean): Matrix {
    const bytes = randomMatrix(t, rows, N, rand), rowBytes = bytes.length / rows;
    const src = arena.alloc(bytes.length);
    arena.u8(src, bytes.length).set(bytes);
    if (!x4) return { ptr: src, type: t, nIn: N, nOut: rows, rowBytes, x4 };
    const dst = arena.alloc((rows / 4) * (N / 32) * t.kernels.x4!.groupBlockBytes * 4), scratch = arena.alloc(4 * rowBytes);
    (kern as any)[`repack${t.name}`](dst, src, rows, N, scratch);
    return { ptr: dst, type: t, nIn: N, nOut: rows, rowBytes, x4 };
  }

  function input(nTok: number): number {
    const p = arena.alloc(nTok * N * 4);
    arena.f32(p, nTok * N).set(randomActivations(nTok, N, rand));
    return p;
  }

  const out = (rows: number, nTok: number) => { const p = arena.alloc(rows * nTok * 4); arena.f32(p, rows * nTok).fill(NaN); return p; };

  beforeAll(async () => {
    arena = new Arena(createMemory(64 << 20, true));
    const module = await compileVariant("lfm2-simd-mt");
    kern = await instantiateKernels(module, arena.memory);
    ops = new Ops(kern, arena, N, MAX_TOK);
    solo = new Ops(kern, arena, N, MAX_TOK);
    pool = await WorkerPool.create(2, module, kern, arena);
    const runBatch = pool.runBatch.bind(pool);
    pool.runBatch = (calls) => { handOffs++; runBatch(calls); };
    ops.executor = pool;
  });
  afterAll(() => pool?.terminate());

  it.each([1, 3])("q, k, v of mixed types (%i tokens): one hand-off, = one matmul after another", (nTok) => {
    // row counts not multiples of 8: the two threads get different numbers of 4-row groups
    const ms = [matrix(GGML.Q4_0, 1028, true), matrix(GGML.Q8_0, 516, true), matrix(GGML.F16, 260, false)];
    const x = input(nTok), ys = ms.map((m) => out(m.nOut, nTok)), refs = ms.map((m) => out(m.nOut, nTok));
    handOffs = 0;
    const a = ops.act(x, N, nTok);
    ops.matmulMany(ms.map((m, i) => ({ m, a, y: ys[i] })));
    expect(handOffs).toBe(1);
    const b = solo.act(x, N, nTok);
    ms.forEach((m, i) => solo.matmul(m, b, refs[i]));
    ms.forEach((m, i) => {
      expect(arena.f32(ys[i], m.nOut * nTok).some(Number.isNaN)).toBe(false);
      expect(arena.f32(ys[i], m.nOut * nTok)).toEqual(arena.f32(refs[i], m.nOut * nTok));
    });
  });

  it("more matrices than a batch holds: batches of four, same numbers", () => {
    const ms = Array.from({ length: 6 }, () => matrix(GGML.Q4_0, 516, true));
    const x = input(1), ys = ms.map((m) => out(m.nOut, 1)), refs = ms.map((m) => out(m.nOut, 1));
    handOffs = 0;
    const a = ops.act(x, N, 1);
    ops.matmulMany(ms.map((m, i) => ({ m, a, y: ys[i] })));
    expect(handOffs).toBe(2);
    const b = solo.act(x, N, 1);
    ms.forEach((m, i) => solo.matmul(m, b, refs[i]));
    ms.forEach((m, i) => expect(arena.f32(ys[i], m.nOut)).toEqual(arena.f32(refs[i], m.nOut)));
  });

  it("two different inputs needing one activation buffer run one after another, still correct", () => {
    const m0 = matrix(GGML.Q4_0, 1024, true), m1 = matrix(GGML.Q4_0, 1024, true);
    const x0 = input(1), x1 = input(1), y0 = out(1024, 1), y1 = out(1024, 1), r0 = out(1024, 1), r1 = out(1024, 1);
    const jobs: MatmulJob[] = [{ m: m0, a: ops.act(x0, N, 1), y: y0 }, { m: m1, a: ops.act(x1, N, 1), y: y1 }];
    handOffs = 0;
    ops.matmulMany(jobs);
    expect(handOffs).toBe(2);
    solo.matmul(m0, solo.act(x0, N, 1), r0); solo.matmul(m1, solo.act(x1, N, 1), r1);
    expect(arena.f32(y0, 1024)).toEqual(arena.f32(r0, 1024));
    expect(arena.f32(y1, 1024)).toEqual(arena.f32(r1, 1024));
  });

  it.each([1, 3])("gatedUp (%i tokens) = gate, up, swiglu one after another", (nTok) => {
    const F = 2052, gate = matrix(GGML.Q4_0, F, true), up = matrix(GGML.Q4_0, F, true);
    const x = input(nTok), g = out(F, nTok), u = out(F, nTok), rg = out(F, nTok), ru = out(F, nTok);
    handOffs = 0;
    ops.gatedUp(gate, up, ops.act(x, N, nTok), g, u, g);
    // one token: the swiglu rides in the matmuls' hand-off; more: one hand-off, then swiglu over strided rows
    expect(handOffs).toBe(1);
    const b = solo.act(x, N, nTok);
    solo.matmul(gate, b, rg); solo.matmul(up, b, ru);
    kern.swiglu(rg, ru, rg, F * nTok);
    expect(arena.f32(g, F * nTok).some(Number.isNaN)).toBe(false);
    expect(arena.f32(g, F * nTok)).toEqual(arena.f32(rg, F * nTok));
    expect(arena.f32(u, F * nTok)).toEqual(arena.f32(ru, F * nTok));
  });

  it("rejects a batch it cannot hold with a typed error", () => {
    const call = { fn: "swiglu", shared: [], parts: [null, null] };
    expect(() => pool.runBatch([call, call, call, call, call])).toThrow(Lfm2Error);
    expect(() => pool.runBatch([{ ...call, fn: "noSuchKernel" }])).toThrow(/no kernel export/);
    expect(() => pool.runBatch([{ ...call, parts: [[1, 2, 3, 4, 5], null] }])).toThrow(/per-thread/);
  });
});

describe("a worker that does not start", () => {
  it("its share runs on the calling thread instead of being waited for", async () => {
    const script = fileURLToPath(new URL("./helpers/stalled-worker.ts", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", script], { timeout: HANG_GUARD_MS });
    expect(JSON.parse(stdout.trim())).toEqual([31, 62, 93, 124, 155, 186, 217, 248]);
  }, 2 * HANG_GUARD_MS);
});
