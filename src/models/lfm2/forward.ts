// The LFM2 forward pass (spec §1), one chunk of tokens at a time, for the whole family's text trunk
// (dense LFM2, LFM2-MoE, the backbone of ColBERT / VL / Audio). Reads like the equations:
//   h = E[tokens]  (or embeddings given by an encoder)
//   for each layer: h += ShortConv(RMSNorm(h)) or GQA(RMSNorm(h)); h += FFN(RMSNorm(h))  (SwiGLU or MoE)
//   out = RMSNorm(h) → logits of the last token (· Eᵀ or output.weight), or every token's hidden state
// Layers may live on different shards (WebAssembly memories); h is copied when the shard changes.
import { fmt, MAX_BYTES, type Arena } from "../../../bindings/arena.js";
import { copyF32, type Shard } from "../../../bindings/shard.js";
import { Lfm2Error } from "../../errors.js";
import { attention, BlockContext, slidingAttention, moeFfn, rmsNorm, shortConv, swigluFfn, type AttnWeights, type ConvWeights, type FfnWeights } from "../../graph/blocks.js";
import type { Matrix } from "../../core/quant-types.js";
import type { Lfm2Config } from "./config.js";

export interface LayerWeights {
  attnNorm: number; ffnNorm: number;
  conv?: ConvWeights;
  attn?: AttnWeights;
  ffn: FfnWeights;
}

export interface Lfm2Weights {
  embed: Matrix; output: Matrix; finalNorm: number; layers: LayerWeights[];
  /** Retrieval encoders: `dense_2` projection {D → embeddingOut} applied after the final norm and pooling. */
  denseOut?: Matrix; denseOutBias?: number;
}

/** Where each part of the model lives: the head (embedding, final norm, LM head) and every layer. */
export interface Placement { shards: Shard[]; headShard: number; layerShard: number[] }

/** Per-sequence state: fp16 KV cache per attention layer, last L−1 gated inputs per conv layer. */
export interface Lfm2State { capacity: number; k: number[]; v: number[]; conv: number[] }

/** The input of a step: token ids, or precomputed input embeddings (T rows of hiddenSize floats). */
export type StepInput = ArrayLike<number> | { embeddings: Float32Array };
/**
 * What a step returns: the last token's logits, every token's final hidden state, the embedding
 * (final norm → pooling per `cfg.pooling` → dense_2; one row per token when not pooled), or nothing.
 */
export type StepOutput = "logits" | "hidden" | "embedding" | "none";

export class Lfm2Forward {
  private cx = new Map<Shard, BlockContext>();
  private logits: number;
  private embedOut = 0;
  private stepCount = 0;
  private rope: Float32Array;

  constructor(readonly cfg: Lfm2Config, readonly w: Lfm2Weights, readonly place: Placement, readonly maxTok: number) {
    const kvWidth = Math.max(...cfg.kvHeads) * cfg.headDim;
    const ffDim = Math.max(cfg.ffDim, ...w.layers.map((L) => (L.ffn.kind === "dense" ? L.ffn.gate.nOut : 0)));
    const dims = { hiddenSize: cfg.hiddenSize, ffDim, nHeads: cfg.nHeads, headDim: cfg.headDim, kvWidth };
    for (const s of new Set([place.headShard, ...place.layerShard])) {
      const shard = place.shards[s];
      this.cx.set(shard, new BlockContext(shard, dims, maxTok));
    }
    this.logits = this.head.shard.arena.alloc(cfg.vocabSize * 4);
    this.rope = new Float32Array(maxTok * cfg.headDim);
  }

  private get head(): BlockContext { return this.cx.get(this.place.shards[this.place.headShard])!; }
  private layerCx(l: number): BlockContext { return this.cx.get(this.place.shards[this.place.layerShard[l]])!; }
  /** The first shard's typed ops (single-shard models: the only one). */
  get ops() { return this.head.ops; }

  /**
   * State for `capacity` positions (KV cache in fp16, conv states in f32). Its blocks come from the
   * arenas' free lists; if they do not all fit, nothing is taken (and no memory grows) before the
   * MODEL_TOO_LARGE error.
   */
  allocState(capacity: number): Lfm2State {
    const c = this.cfg;
    const sizes = Array.from({ length: c.nLayers }, (_, l) => {
      const kvw = c.kvHeads[l] * c.headDim;
      // a sliding window keeps a doubled ring of recent rows (blocks.ts slidingAttention), not the whole context
      const rows = c.slidingWindow ? 2 * (c.slidingWindow + this.maxTok) : capacity;
      return kvw ? [rows * kvw * 2, rows * kvw * 2] : [(c.convL - 1) * c.hiddenSize * 4];
    });
    const perArena = new Map<Arena, number[]>();
    sizes.forEach((b, l) => { const a = this.layerCx(l).shard.arena; perArena.set(a, [...(perArena.get(a) ?? []), ...b]); });
    for (const [a, b] of perArena) {
      if (!a.fits(b)) {
        const total = b.reduce((x, y) => x + y, 0);
        throw new Lfm2Error("MODEL_TOO_LARGE", `a session of ${capacity} positions needs ${fmt(total)} more WebAssembly memory ` +
          `beside ${fmt(a.liveBytes)} in use; one memory holds at most ${fmt(MAX_BYTES)}: use a smaller context length`);
      }
    }
    const s: Lfm2State = { capacity, k: [], v: [], conv: [] };
    try {
      for (let l = 0; l < c.nLayers; l++) {
        const a = this.layerCx(l).shard.arena, kvw = c.kvHeads[l] * c.headDim;
        s.k.push(kvw ? a.alloc(sizes[l][0]) : 0);
        s.v.push(kvw ? a.alloc(sizes[l][1]) : 0);
        s.conv.push(kvw ? 0 : a.alloc(sizes[l][0]));
      }
    } catch (e) {
      this.releaseState(s); // the host refused to grow the memory: give back what was taken
      throw e;
    }
    return s;
  }

  /** Free a state's blocks for later sessions (the state must not be used afterwards). */
  releaseState(s: Lfm2State): void {
    for (let l = 0; l < s.conv.length || l < s.k.length; l++) {
      const a = this.layerCx(l).shard.arena;
      for (const p of [s.k[l], s.v[l], s.conv[l]]) if (p) a.free(p);
    }
    s.k = []; s.v = []; s.conv = [];
  }

  private convView(s: Lfm2State, l: number): Float32Array {
    return this.layerCx(l).shard.arena.f32(s.conv[l], (this.cfg.convL - 1) * this.cfg.hiddenSize);
  }

  clearState(s: Lfm2State): void {
    for (let l = 0; l < this.cfg.nLayers; l++) if (s.conv[l]) this.convView(s, l).fill(0);
  }

  /** A copy of the conv states (the KV cache needs none: it is cut back by position). */
  snapshotConv(s: Lfm2State): Float32Array[] {
    return s.conv.map((p, l) => (p ? this.convView(s, l).slice() : new Float32Array(0)));
  }

  restoreConv(s: Lfm2State, snap: Float32Array[]): void {
    s.conv.forEach((p, l) => { if (p) this.convView(s, l).set(snap[l]); });
  }

  /**
   * Run T ≤ maxTok tokens (or embeddings) at positions pos0… through the model, updating the state.
   * Returns a view into WebAssembly memory (copy before the next call): the last token's logits, or
   * T × hiddenSize final hidden states; null for "none".
   */
  step(input: StepInput, pos0: number, s: Lfm2State, output: StepOutput | boolean = "logits"): Float32Array | null {
    const want: StepOutput = output === true ? "logits" : output === false ? "none" : output;
    const { cfg: c, w } = this, D = c.hiddenSize, eps = c.normEps;
    const emb = "embeddings" in input ? input.embeddings : null;
    const T = emb ? emb.length / D : (input as ArrayLike<number>).length;
    if (!Number.isInteger(T) || T < 1 || T > this.maxTok) throw new Lfm2Error("BAD_INPUT", `a step takes 1..${this.maxTok} tokens, got ${T}`);
    // every token of a bidirectional model sees every other: the sequence must be one step from position 0
    if (!c.causal && pos0 !== 0) throw new Lfm2Error("BAD_INPUT", "a bidirectional model encodes a whole sequence in one step from position 0");
    this.stepCount++;
    let cx = this.head;
    if (emb) cx.shard.arena.f32(cx.h, T * D).set(emb);
    else for (let t = 0; t < T; t++) cx.ops.rowToF32(w.embed, (input as ArrayLike<number>)[t], cx.h + t * D * 4);
    if (w.layers.some((L) => L.attn)) this.ropeTable(pos0, T);
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l];
      cx = this.moveTo(cx, this.layerCx(l), T);
      rmsNorm(cx, cx.h, L.attnNorm, cx.u, D, T, eps);
      if (L.conv) shortConv(cx, L.conv, s.conv[l], cx.u, cx.o, T, c.convL, c.causal);
      else {
        if (cx.ropeStep !== this.stepCount) { cx.shard.arena.f32(cx.cs, T * c.headDim).set(this.rope.subarray(0, T * c.headDim)); cx.ropeStep = this.stepCount; }
        const shape = { nHeads: c.nHeads, nKv: c.kvHeads[l], headDim: c.headDim, eps, causal: c.causal };
        if (c.slidingWindow) slidingAttention(cx, L.attn!, s.k[l], s.v[l], cx.u, cx.o, pos0, T, shape, c.slidingWindow, c.slidingWindow + this.maxTok);
        else attention(cx, L.attn!, s.k[l], s.v[l], cx.u, cx.o, pos0, T, shape);
      }
      cx.ops.k.addInPlace(cx.h, cx.o, T * D);
      rmsNorm(cx, cx.h, L.ffnNorm, cx.u, D, T, eps);
      if (L.ffn.kind === "moe") moeFfn(cx, L.ffn, cx.u, cx.o, T);
      else swigluFfn(cx, L.ffn, cx.u, cx.o, T);
      cx.ops.k.addInPlace(cx.h, cx.o, T * D);
    }
    if (want === "none") return null;
    cx = this.moveTo(cx, this.head, T);
    const a = cx.shard.arena;
    if (want === "hidden") {
      rmsNorm(cx, cx.h, w.finalNorm, cx.u, D, T, eps);
      return a.f32(cx.u, T * D);
    }
    if (want === "embedding") return this.embedding(cx, T);
    const last = cx.h + (T - 1) * D * 4;
    rmsNorm(cx, last, w.finalNorm, cx.u, D, 1, eps);
    cx.ops.matmul(w.output, cx.ops.act(cx.u, D, 1), this.logits);
    return a.f32(this.logits, c.vocabSize);
  }

  /** llama.cpp's order: final norm → pooling (mean / first / last token) → dense_2 (+ bias). */
  private embedding(cx: BlockContext, T: number): Float32Array {
    const { cfg: c, w } = this, D = c.hiddenSize, a = cx.shard.arena;
    rmsNorm(cx, cx.h, w.finalNorm, cx.u, D, T, c.normEps);
    const pooling = c.pooling ?? 0;
    let rows = T;
    if (pooling !== 0) {
      const h = a.f32(cx.u, T * D), pooled = new Float32Array(D);
      if (pooling === 1) { // mean: Σ_t h_t · (1/T), as ggml multiplies by a 1/T vector
        const inv = Math.fround(1 / T);
        for (let t = 0; t < T; t++) for (let j = 0; j < D; j++) pooled[j] += h[t * D + j] * inv;
      } else pooled.set(h.subarray(pooling === 2 ? 0 : (T - 1) * D, (pooling === 2 ? 0 : T - 1) * D + D));
      h.set(pooled);
      rows = 1;
    }
    if (!w.denseOut) return a.f32(cx.u, rows * D);
    const out = w.denseOut.nOut;
    if (!this.embedOut) this.embedOut = a.alloc(this.maxTok * out * 4);
    cx.ops.matmul(w.denseOut, cx.ops.act(cx.u, D, rows), this.embedOut);
    const y = a.f32(this.embedOut, rows * out);
    if (w.denseOutBias) {
      const b = a.f32(w.denseOutBias, out);
      for (let r = 0; r < rows; r++) for (let j = 0; j < out; j++) y[r * out + j] += b[j];
    }
    return y;
  }

  /** The hidden state crosses to another shard's memory (a few KB per token). */
  private moveTo(from: BlockContext, to: BlockContext, T: number): BlockContext {
    if (from !== to) copyF32(from.shard, from.h, to.shard, to.h, T * this.cfg.hiddenSize);
    return to;
  }

  /** cos/sin of NeoX RoPE for positions pos0…pos0+T−1, with ggml's f32 angle recurrence. */
  private ropeTable(pos0: number, T: number) {
    const dh = this.cfg.headDim, half = dh / 2, cs = this.rope;
    const step = Math.fround(Math.pow(this.cfg.ropeTheta, -2 / dh));
    for (let t = 0; t < T; t++) {
      let a = Math.fround(pos0 + t);
      for (let i = 0; i < half; i++) {
        cs[t * dh + i] = Math.cos(a); cs[t * dh + half + i] = Math.sin(a);
        a = Math.fround(a * step);
      }
    }
  }
}
