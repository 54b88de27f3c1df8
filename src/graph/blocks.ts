// The blocks every LFM2-family architecture is built from (llama.cpp's build_norm / build_attn /
// build_ffn / build_moe_ffn habit). Each block reads its input from, and writes its output to, f32
// buffers of one shard's memory; a BlockContext holds that shard's scratch for chunks of ≤ maxTok tokens.
import type { Shard } from "../../bindings/shard.js";
import type { Matrix } from "../core/quant-types.js";

/** Widths the scratch buffers are sized for. */
export interface BlockDims {
  hiddenSize: number; ffDim: number; nHeads: number; headDim: number;
  /** Widest K/V row of any attention layer (0: no attention anywhere). */
  kvWidth: number;
}

export interface ConvWeights { inProj: Matrix; kernelT: number; outProj: Matrix }
export interface AttnWeights { q: Matrix; k: Matrix; v: Matrix; o: Matrix; qNorm: number; kNorm: number }
export interface DenseFfnWeights { kind: "dense"; gate: Matrix; up: Matrix; down: Matrix }
/** Experts stacked along the row axis: expert e owns rows [e·rowsPerExpert, (e+1)·rowsPerExpert). */
export interface MoeFfnWeights {
  kind: "moe"; router: Matrix; expertBias: number; nExperts: number; nUsed: number; expertFfDim: number;
  gate: Matrix; up: Matrix; down: Matrix;
}
export type FfnWeights = DenseFfnWeights | MoeFfnWeights;

/** Scratch of one shard: activations of a chunk, attention buffers, the RoPE table. */
export class BlockContext {
  readonly h: number; readonly u: number; readonly o: number; readonly y: number; readonly big: number; readonly up: number;
  readonly q: number; readonly kk: number; readonly vv: number; readonly att: number; readonly cs: number;
  private moe: { router: number; x: number; g: number; u: number; y: number; slots: number } | null = null;
  /**
   * Smallest margin seen by MoE routing since last reset: the k-th chosen expert's biased score minus the
   * best unchosen one. Near 0, a tiny upstream difference could change the choice (parity tests read it).
   */
  minRouteGap = Infinity;
  /** Which step's RoPE table `cs` holds (filled once per step per shard). */
  ropeStep = -1;

  constructor(readonly shard: Shard, readonly dims: BlockDims, readonly maxTok: number) {
    const a = shard.arena, D = dims.hiddenSize, T = maxTok, f = 4;
    const qw = dims.kvWidth > 0 ? dims.nHeads * dims.headDim : 0; // no attention: no attention buffers
    this.h = a.alloc(T * D * f); this.u = a.alloc(T * D * f); this.o = a.alloc(T * D * f); this.y = a.alloc(T * D * f);
    this.big = a.alloc(T * Math.max(3 * D, dims.ffDim) * f); // in_proj output (B, C, x) or FFN gate
    this.up = a.alloc(T * dims.ffDim * f);
    this.q = a.alloc(T * qw * f); this.att = a.alloc(T * qw * f);
    this.kk = a.alloc(T * dims.kvWidth * f); this.vv = a.alloc(T * dims.kvWidth * f);
    this.cs = a.alloc(T * (dims.kvWidth > 0 ? dims.headDim : 0) * f);
  }

  get ops() { return this.shard.ops; }

  moeScratch(w: MoeFfnWeights) {
    if (!this.moe) {
      const a = this.shard.arena, T = this.maxTok, D = this.dims.hiddenSize, f = 4;
      this.moe = { router: a.alloc(T * w.nExperts * f), x: a.alloc(T * D * f), g: a.alloc(T * w.expertFfDim * f),
        u: a.alloc(T * w.expertFfDim * f), y: a.alloc(T * D * f), slots: a.alloc(w.nUsed * T * D * f) };
    }
    return this.moe;
  }
}

/** y = x / rms(x) ⊙ w over `rows` rows of `width`. */
export function rmsNorm(cx: BlockContext, x: number, w: number, y: number, width: number, rows: number, eps: number): void {
  cx.ops.k.rmsNorm(x, w, y, width, rows, eps);
}

/**
 * LFM2's double-gated short convolution (spec §1.3): (B, C, x) = W_in·u; y = C ⊙ conv(B ⊙ x); out = W_out·y.
 * Causal: `state` holds the last L−1 gated inputs and is advanced by T tokens. Not causal (bidirectional
 * encoders): the window is centred on each token over the T tokens, zero beyond them; no state.
 */
export function shortConv(cx: BlockContext, w: ConvWeights, state: number, u: number, out: number, T: number, convL: number,
  causal = true): void {
  const ops = cx.ops, D = cx.dims.hiddenSize;
  ops.matmul(w.inProj, ops.act(u, D, T), cx.big);
  if (causal) ops.k.shortConv(cx.big, w.kernelT, state, cx.y, D, convL, T);
  else ops.k.shortConvCentred(cx.big, w.kernelT, cx.y, D, convL, T);
  ops.matmul(w.outProj, ops.act(cx.y, D, T), out);
}

export interface AttnShape { nHeads: number; nKv: number; headDim: number; eps: number; causal: boolean }

/**
 * GQA attention (spec §1.4): q, k, v = W·u; per-head RMSNorm of q and k; NeoX RoPE (table in cx.cs);
 * K/V appended to the fp16 cache at pos0…; softmax(q·kᵀ/√dh)·v; out = W_o·att.
 */
export function attention(cx: BlockContext, w: AttnWeights, kCache: number, vCache: number, u: number, out: number,
  pos0: number, T: number, s: AttnShape): void {
  const ops = cx.ops, k = ops.k, D = cx.dims.hiddenSize, H = s.nHeads, Hkv = s.nKv, dh = s.headDim;
  const x = ops.act(u, D, T);
  ops.matmulMany([{ m: w.q, a: x, y: cx.q }, { m: w.k, a: x, y: cx.kk }, { m: w.v, a: x, y: cx.vv }]); // one hand-off
  k.rmsNorm(cx.q, w.qNorm, cx.q, dh, T * H, s.eps);
  k.rmsNorm(cx.kk, w.kNorm, cx.kk, dh, T * Hkv, s.eps);
  k.ropeNeox(cx.q, cx.cs, H, dh, T); k.ropeNeox(cx.kk, cx.cs, Hkv, dh, T);
  k.kvStore(cx.kk, kCache, Hkv * dh, pos0, T); k.kvStore(cx.vv, vCache, Hkv * dh, pos0, T);
  const kvLen = pos0 + T;
  ops.attention(cx.q, kCache, vCache, cx.att, H, Hkv, dh, T, pos0, kvLen, s.causal, 1 / Math.sqrt(dh)); // threads; owns its scratch
  ops.matmul(w.o, ops.act(cx.att, H * dh, T), out);
}

/**
 * Causal sliding-window GQA (LFM2.5-Audio detokenizer): as `attention`, but token p sees positions
 * (p − window, p]. The cache is a ring of `ring` = window + maxTok slots written twice (slot i and i + ring), so
 * every window is one contiguous run of rows for the attention kernel, and a chunk's own writes never
 * overwrite rows an earlier token of the chunk still needs. The cache holds 2·ring rows.
 */
export function slidingAttention(cx: BlockContext, w: AttnWeights, kCache: number, vCache: number, u: number, out: number,
  pos0: number, T: number, s: AttnShape, window: number, ring: number): void {
  const ops = cx.ops, k = ops.k, D = cx.dims.hiddenSize, H = s.nHeads, Hkv = s.nKv, dh = s.headDim, kvw = Hkv * dh;
  const x = ops.act(u, D, T);
  ops.matmulMany([{ m: w.q, a: x, y: cx.q }, { m: w.k, a: x, y: cx.kk }, { m: w.v, a: x, y: cx.vv }]); // one hand-off
  k.rmsNorm(cx.q, w.qNorm, cx.q, dh, T * H, s.eps);
  k.rmsNorm(cx.kk, w.kNorm, cx.kk, dh, T * Hkv, s.eps);
  k.ropeNeox(cx.q, cx.cs, H, dh, T); k.ropeNeox(cx.kk, cx.cs, Hkv, dh, T);
  for (let t = 0; t < T; t++) {
    const slot = (pos0 + t) % ring;
    for (const at of [slot, slot + ring]) {
      k.kvStore(cx.kk + t * kvw * 4, kCache, kvw, at, 1); k.kvStore(cx.vv + t * kvw * 4, vCache, kvw, at, 1);
    }
  }
  const rowBytes = kvw * 2, qw = H * dh * 4;
  for (let t = 0; t < T; t++) {
    const p = pos0 + t, n = Math.min(p + 1, window), first = ((p % ring) + ring) - n + 1;
    ops.attention(cx.q + t * qw, kCache + first * rowBytes, vCache + first * rowBytes, cx.att + t * qw, H, Hkv, dh, 1,
      n - 1, n, true, 1 / Math.sqrt(dh));
  }
  ops.matmul(w.o, ops.act(cx.att, H * dh, T), out);
}

/** SwiGLU FFN (spec §1.5): out = W_down·(silu(W_gate·u) ⊙ W_up·u). */
export function swigluFfn(cx: BlockContext, w: DenseFfnWeights, u: number, out: number, T: number): void {
  const ops = cx.ops, D = cx.dims.hiddenSize, F = w.gate.nOut;
  const x = ops.act(u, D, T);
  ops.gatedUp(w.gate, w.up, x, cx.big, cx.up, cx.big); // silu(gate) ⊙ up into cx.big
  ops.matmul(w.down, ops.act(cx.big, F, T), out);
}

/** Rows [r0, r0 + n) of a matrix as a matrix of its own (an expert of a stacked expert tensor). */
export function rowSlice(m: Matrix, r0: number, n: number): Matrix {
  // the x4 layout interleaves rows by four: a 4-row group is nIn/32 blocks of groupBlockBytes
  const bytesPerRow = m.x4 ? ((m.nIn / 32) * m.type.kernels.x4!.groupBlockBytes) / 4 : m.rowBytes;
  return { ...m, ptr: m.ptr + r0 * bytesPerRow, nOut: n };
}

/**
 * Mixture-of-experts SwiGLU FFN (spec §1.6): p = sigmoid(W_router·u); the top-k experts of p + bias
 * (bias for selection only); weights = the chosen unbiased p renormalised to sum 1;
 * out = Σ_k w_k · E_k(u), summed in slot order as llama.cpp does. Only chosen experts' rows are read.
 */
export function moeFfn(cx: BlockContext, w: MoeFfnWeights, u: number, out: number, T: number): void {
  const ops = cx.ops, a = ops.arena, D = cx.dims.hiddenSize, E = w.nExperts, K = w.nUsed, F = w.expertFfDim;
  const s = cx.moeScratch(w);
  const x = ops.act(u, D, T);
  ops.matmul(w.router, x, s.router);
  const logits = a.f32(s.router, T * E), bias = a.f32(w.expertBias, E);
  const chosen = new Int32Array(T * K), weight = new Float32Array(T * K);
  const p = new Float32Array(E), score = new Float32Array(E);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      p[e] = 1 / (1 + Math.exp(-logits[t * E + e]));
      score[e] = p[e] + bias[e];
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      let best = -1;
      for (let e = 0; e < E; e++) {
        if (score[e] === -Infinity) continue;
        if (best < 0 || score[e] > score[best]) best = e;
      }
      chosen[t * K + k] = best;
      weight[t * K + k] = p[best];
      sum = Math.fround(sum + p[best]);
      score[best] = -Infinity;
    }
    if (K < E) {
      let next = -Infinity;
      for (let e = 0; e < E; e++) next = Math.max(next, score[e]);
      cx.minRouteGap = Math.min(cx.minRouteGap, p[chosen[t * K + K - 1]] + bias[chosen[t * K + K - 1]] - next);
    }
    const norm = Math.max(sum, 6.103515625e-5); // llama.cpp clamps the sum before dividing
    for (let k = 0; k < K; k++) weight[t * K + k] = Math.fround(weight[t * K + k] / norm);
  }
  // group the (token, slot) pairs by expert so each expert's rows are read once per chunk
  const pairs: number[][] = Array.from({ length: E }, () => []);
  for (let i = 0; i < T * K; i++) pairs[chosen[i]].push(i);
  const slots = a.f32(s.slots, K * T * D);
  for (let e = 0; e < E; e++) {
    const list = pairs[e];
    const n = list.length;
    if (n === 0) continue;
    let xe = x;
    if (n !== T) { // gather this expert's tokens (with T = n every token is routed here, in order)
      const src = a.f32(u, T * D), dst = a.f32(s.x, n * D);
      list.forEach((i, r) => dst.set(src.subarray(Math.floor(i / K) * D, Math.floor(i / K) * D + D), r * D));
      xe = ops.act(s.x, D, n);
    }
    ops.gatedUp(rowSlice(w.gate, e * F, F), rowSlice(w.up, e * F, F), xe, s.g, s.u, s.g);
    ops.matmul(rowSlice(w.down, e * D, D), ops.act(s.g, F, n), s.y);
    const y = a.f32(s.y, n * D);
    list.forEach((i, r) => {
      const t = Math.floor(i / K), k = i % K, wt = weight[i], dst = (k * T + t) * D;
      for (let j = 0; j < D; j++) slots[dst + j] = y[r * D + j] * wt;
    });
  }
  a.f32(out, T * D).set(slots.subarray(0, T * D));
  for (let k = 1; k < K; k++) ops.k.addInPlace(out, s.slots + k * T * D * 4, T * D);
}
