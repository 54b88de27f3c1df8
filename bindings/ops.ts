// Typed calls into the kernels. Activations consumed by matmuls are prepared once per format
// (quantized to int8 blocks, or rounded to fp16/bf16) and shared by every matmul reading them.
import type { Arena } from "./arena.js";
import { actBytes, kernelsFor, type ActKind, type Matrix } from "../src/core/quant-types.js";
import type { KernelExports } from "./wasm.js";

/** Below this many multiply-adds a matmul runs on the calling thread: the hand-off would cost more. */
const PARALLEL_MIN_MACS = 1 << 19;

/** Query tokens per attention work unit (with all heads of one KV head): each K/V row is decoded once per unit. */
const ATTENTION_TILE_TOKENS = 16;

/** Up to this many query tokens attentionDecode (K/V widened in registers, no f32 block copy) runs instead. */
const ATTENTION_DECODE_MAX_TOKENS = 2;

/** The decode attention exports (assembly/attention.ts), typed here until bindings/wasm.ts lists them. */
interface DecodeAttentionExports {
  attentionDecode(q: number, k: number, v: number, out: number, nHeads: number, nKv: number, dh: number, pos0: number,
    kvLen: number, causal: number, scale: number, u0: number, u1: number, scratch: number): void;
  attentionDecodeScratch(group: number, dh: number, kvLen: number): number;
}

/** One call of a batch: thread t runs fn(...shared, ...parts[t]); a null part skips that thread. */
export interface ParallelCall { fn: string; shared: number[]; parts: (number[] | null)[] }

/** Splits kernels across threads (the worker pool); absent → everything runs on this thread. */
export interface ParallelExecutor {
  readonly size: number;
  matmul(fn: string, w: number, x: number, y: number, n: number, nTok: number, yStride: number, rows: number): void;
  /** fn(...shared, ...parts[t]) on thread t (thread 0 = the caller). */
  run(fn: string, shared: number[], parts: number[][]): void;
  /** Several calls for one hand-off, each thread running its parts in order (at most 4 calls). */
  runBatch(calls: readonly ParallelCall[]): void;
}

/** A batch holds at most this many calls (bindings/threads.ts MAX_CALLS). */
const BATCH_CALLS = 4;

/** Rows [0, rows) cut into `threads` ranges of whole multiples of `multiple` rows; null for an empty range. */
export function rowRanges(rows: number, threads: number, multiple = 4): (number[] | null)[] {
  const groups = Math.ceil(rows / multiple), parts: (number[] | null)[] = [];
  for (let t = 0; t < threads; t++) {
    const r0 = Math.min(rows, Math.floor((groups * t) / threads) * multiple);
    const r1 = Math.min(rows, Math.floor((groups * (t + 1)) / threads) * multiple);
    parts.push(r1 > r0 ? [r0, r1] : null);
  }
  return parts;
}

/** A matmul of a batch: y = W·x. */
export interface MatmulJob { m: Matrix; a: Activation; y: number }
/** @deprecated the old name of ParallelExecutor. */
export type MatmulExecutor = ParallelExecutor;

export class Activation {
  constructor(readonly ptr: number, readonly n: number, readonly nTok: number) {}
}

export class Ops {
  private actBufs = new Map<ActKind, number>();
  /** Which activation currently owns each format's buffer. */
  private owner = new Map<ActKind, Activation>();
  executor: ParallelExecutor | null = null;
  /** Per-thread attention scratch: base, bytes per thread, threads it was sized for. */
  private attScratch = { ptr: 0, each: 0, threads: 0 };

  constructor(readonly k: KernelExports, readonly arena: Arena, private maxN: number, private maxTok: number) {
    for (const kind of ["f16", "bf16", "q8_0", "q8_K"] as ActKind[]) this.actBufs.set(kind, arena.alloc(actBytes(kind, maxN, maxTok)));
  }

  /** Declare x (nTok rows of n floats) as a fresh matmul input. */
  act(ptr: number, n: number, nTok: number): Activation { return new Activation(ptr, n, nTok); }

  private prepare(a: Activation, kind: ActKind): number {
    if (kind === "f32") return a.ptr;
    const buf = this.actBufs.get(kind)!;
    if (this.owner.get(kind) === a) return buf;
    this.owner.set(kind, a);
    const k = this.k;
    switch (kind) {
      case "q8_0": k.quantizeQ8_0(a.ptr, a.n, a.nTok, buf); break;
      case "q8_K": k.quantizeQ8_K(a.ptr, a.n, a.nTok, buf); break;
      case "f16": case "bf16":
        this.arena.f32(buf, a.n * a.nTok).set(this.arena.f32(a.ptr, a.n * a.nTok));
        (kind === "f16" ? k.roundF16 : k.roundBf16)(buf, a.n * a.nTok);
        break;
    }
    return buf;
  }

  /** y[t][r] = Σ_i W[r][i]·x[t][i] for all rows of W. */
  matmul(m: Matrix, a: Activation, y: number): void {
    const kern = kernelsFor(m.type, "matrix");
    const x = this.prepare(a, kern.act);
    const fn = m.x4 ? kern.x4!.matmul : kern.matmul;
    if (this.executor && m.nOut * a.n * a.nTok >= PARALLEL_MIN_MACS) this.executor.matmul(fn, m.ptr, x, y, a.n, a.nTok, m.nOut, m.nOut);
    else this.k[fn as `matmul${string}`](m.ptr, x, y, a.n, a.nTok, m.nOut, 0, m.nOut);
  }

  /**
   * Several matmuls (e.g. q, k, v of one activation) with one thread hand-off: each thread computes its
   * share of every matrix's rows. The same numbers as one matmul() after another.
   */
  matmulMany(jobs: readonly MatmulJob[]): void {
    const calls = this.matmulCalls(jobs);
    if (!calls) { for (const j of jobs) this.matmul(j.m, j.a, j.y); return; }
    for (let i = 0; i < calls.length; i += BATCH_CALLS) this.executor!.runBatch(calls.slice(i, i + BATCH_CALLS));
  }

  /**
   * SwiGLU's gated half: g = W_gate·x, u = W_up·x, out = silu(g) ⊙ u (out may be g). For one token the
   * element-wise product runs on each thread's own rows inside the same hand-off as the two matmuls.
   */
  gatedUp(gate: Matrix, up: Matrix, a: Activation, g: number, u: number, out: number): void {
    const F = gate.nOut, jobs = [{ m: gate, a, y: g }, { m: up, a, y: u }];
    const calls = a.nTok === 1 && up.nOut === F ? this.matmulCalls(jobs) : null;
    if (!calls) {
      this.matmulMany(jobs);
      this.k.swiglu(g, u, out, a.nTok * F);
      return;
    }
    // gate and up are cut at the same rows (same row count), so thread t's swiglu reads only its own results
    const parts = calls[0].parts.map((p) => (p ? [g + 4 * p[0], u + 4 * p[0], out + 4 * p[0], p[1] - p[0]] : null));
    this.executor!.runBatch([...calls, { fn: "swiglu", shared: [], parts }]);
  }

  /**
   * The batch calls of a set of matmuls split across threads, or null when they should run one by one on
   * this thread: no threads, too little work, or two jobs needing one activation buffer for different inputs.
   */
  private matmulCalls(jobs: readonly MatmulJob[]): ParallelCall[] | null {
    const ex = this.executor;
    if (!ex) return null;
    let macs = 0;
    const users = new Map<ActKind, Activation>();
    for (const { m, a } of jobs) {
      macs += m.nOut * a.n * a.nTok;
      const kind = kernelsFor(m.type, "matrix").act, prev = users.get(kind);
      if (prev && prev !== a) return null;
      users.set(kind, a);
    }
    if (macs < PARALLEL_MIN_MACS) return null;
    return jobs.map(({ m, a, y }) => {
      const kern = kernelsFor(m.type, "matrix");
      return { fn: m.x4 ? kern.x4!.matmul : kern.matmul, shared: [m.ptr, this.prepare(a, kern.act), y, a.n, a.nTok, m.nOut],
        parts: rowRanges(m.nOut, ex.size) };
    });
  }

  /**
   * Grouped-query attention over the fp16 KV cache (arguments as the `attention` export, minus its
   * scratch): token t of q [nTok][nHeads][dh] at position pos0 + t attends to positions [0, pos0 + t]
   * (causal) or [0, kvLen). Work is cut into (16-token tile, KV head) units — (token, KV head) for
   * decode — and split across threads by estimated cost; the result does not depend on the kernel or
   * the split (see assembly/attention.ts).
   */
  attention(q: number, kCache: number, vCache: number, out: number, nHeads: number, nKv: number, dh: number,
    nTok: number, pos0: number, kvLen: number, causal: boolean, scale: number): void {
    const decode = nTok <= ATTENTION_DECODE_MAX_TOKENS, dk = this.k as unknown as DecodeAttentionExports;
    // decode unit = (token, KV head); tile unit = (16-token tile, KV head)
    const tile = ATTENTION_TILE_TOKENS, units = (decode ? nTok : Math.ceil(nTok / tile)) * nKv;
    const T = this.executor ? Math.min(this.executor.size, units) : 1;
    const each = decode ? dk.attentionDecodeScratch(nHeads / nKv, dh, kvLen) : this.k.attentionTileScratch(nHeads / nKv, dh, tile, kvLen);
    const s = this.attScratch;
    if (s.each < each || s.threads < T) {
      // grow with headroom: a context growing chunk by chunk reallocates O(log n) times
      if (s.ptr) this.arena.free(s.ptr);
      s.each = Math.max(each, 2 * s.each); s.threads = Math.max(T, s.threads);
      s.ptr = this.arena.alloc(s.each * s.threads);
    }
    const c = causal ? 1 : 0;
    const shared = decode ? [q, kCache, vCache, out, nHeads, nKv, dh, pos0, kvLen, c, scale]
      : [q, kCache, vCache, out, nHeads, nKv, dh, nTok, pos0, kvLen, c, scale, tile];
    const fn = decode ? "attentionDecode" : "attentionTiles";
    // few multiply-adds (a short decode context): the hand-off would cost more than it saves
    if (T === 1 || nHeads * dh * (causal ? pos0 + nTok : kvLen) * nTok < PARALLEL_MIN_MACS >> 2) {
      (this.k as any)[fn](...shared, 0, units, s.ptr);
      return;
    }
    // unit u costs ~ its longest key range; cut the running cost into T parts
    const tileOf = (u: number) => Math.floor(u / nKv);
    const cost = (u: number) => (causal ? pos0 + (decode ? tileOf(u) + 1 : Math.min(nTok, (tileOf(u) + 1) * tile)) : kvLen);
    let total = 0;
    for (let u = 0; u < units; u++) total += cost(u);
    const parts: number[][] = [];
    let u = 0, acc = 0;
    for (let t = 0; t < T; t++) {
      const u0 = u, goal = (total * (t + 1)) / T;
      while (u < units && (t === T - 1 || acc + cost(u) / 2 <= goal)) acc += cost(u++);
      parts.push([u0, u, s.ptr + t * s.each]);
    }
    this.executor!.run(fn, shared, parts);
  }

  /** Row `row` of a matrix, dequantized to f32 at dst (embedding lookup). */
  rowToF32(m: Matrix, row: number, dst: number): void {
    const kern = kernelsFor(m.type, "embedding");
    if (m.x4) { this.k[kern.x4!.dequantRow as `dequantRow${string}`](m.ptr, row, m.nIn, dst); return; }
    const src = m.ptr + row * m.rowBytes;
    if (kern.dequantRow === null) this.arena.u8(dst, m.rowBytes).set(this.arena.u8(src, m.rowBytes));
    else this.k[kern.dequantRow as `dequantRow${string}`](src, dst, m.nIn);
  }

  get maxTokens() { return this.maxTok; }
  get maxWidth() { return this.maxN; }
}
