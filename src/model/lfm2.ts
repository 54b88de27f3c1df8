// The LFM2 forward pass (spec §1), one chunk of tokens at a time. Reads like the equations:
//   h = E[tokens]
//   for each layer: h += ShortConv(RMSNorm(h)) or GQA(RMSNorm(h)); h += SwiGLU(RMSNorm(h))
//   logits = RMSNorm(h) · Eᵀ (or output.weight)
import type { Ops } from "../../bindings/ops.js";
import type { Lfm2Config } from "./config.js";
import type { Lfm2Weights } from "./weights.js";

/** Per-sequence state: fp16 KV cache per attention layer, last L−1 gated inputs per conv layer. */
export interface Lfm2State { capacity: number; k: number[]; v: number[]; conv: number[] }

export class Lfm2Forward {
  // scratch, sized for `maxTok` tokens
  private h: number; private u: number; private big: number; private y: number; private o: number;
  private q: number; private kk: number; private vv: number; private att: number; private up: number;
  private cs: number; private attScratch = 0; private attScratchLen = 0; private logits: number;
  /** States of disposed sessions, reused by later ones (the arena never frees). */
  private spare: Lfm2State[] = [];

  constructor(readonly cfg: Lfm2Config, readonly w: Lfm2Weights, readonly ops: Ops, readonly maxTok: number) {
    const a = ops.arena, D = cfg.hiddenSize, T = maxTok, f = 4;
    const kvMax = Math.max(...cfg.kvHeads) * cfg.headDim;
    const qw = kvMax > 0 ? cfg.nHeads * cfg.headDim : 0; // no attention layer: no attention buffers
    this.h = a.alloc(T * D * f); this.u = a.alloc(T * D * f); this.y = a.alloc(T * D * f); this.o = a.alloc(T * D * f);
    this.big = a.alloc(T * Math.max(3 * D, cfg.ffDim) * f);    // in_proj output (B, C, x) or FFN gate
    this.up = a.alloc(T * cfg.ffDim * f);
    this.q = a.alloc(T * qw * f); this.att = a.alloc(T * qw * f);
    this.kk = a.alloc(T * kvMax * f); this.vv = a.alloc(T * kvMax * f);
    this.cs = a.alloc(T * (kvMax > 0 ? cfg.headDim : 0) * f);
    this.logits = a.alloc(cfg.vocabSize * f);
  }

  /** State for `capacity` positions (KV cache in fp16): a disposed session's if one is big enough. */
  allocState(capacity: number): Lfm2State {
    const i = this.spare.findIndex((s) => s.capacity >= capacity);
    if (i >= 0) return this.spare.splice(i, 1)[0];
    const c = this.cfg, a = this.ops.arena;
    const s: Lfm2State = { capacity, k: [], v: [], conv: [] };
    for (let l = 0; l < c.nLayers; l++) {
      const kvw = c.kvHeads[l] * c.headDim;
      s.k.push(kvw ? a.alloc(capacity * kvw * 2) : 0);
      s.v.push(kvw ? a.alloc(capacity * kvw * 2) : 0);
      s.conv.push(kvw ? 0 : a.alloc((c.convL - 1) * c.hiddenSize * 4));
    }
    if (this.attScratchLen < capacity && c.kvHeads.some((h) => h > 0)) {
      this.attScratch = a.alloc((capacity + c.headDim) * 4); // one score row + the rounded query
      this.attScratchLen = capacity;
    }
    return s;
  }

  releaseState(s: Lfm2State): void { this.spare.push(s); }

  clearState(s: Lfm2State): void {
    const c = this.cfg;
    for (let l = 0; l < c.nLayers; l++) if (s.conv[l]) this.ops.arena.f32(s.conv[l], (c.convL - 1) * c.hiddenSize).fill(0);
  }

  /**
   * Run tokens (≤ maxTok) at positions pos0… through the model, updating the state.
   * Returns the logits of the last token (a view into WASM memory: copy before the next call).
   */
  step(tokens: ArrayLike<number>, pos0: number, s: Lfm2State, wantLogits = true): Float32Array | null {
    const { cfg: c, w, ops } = this, k = ops.k, T = tokens.length, D = c.hiddenSize, dh = c.headDim, eps = c.normEps;
    for (let t = 0; t < T; t++) ops.rowToF32(w.embed, tokens[t], this.h + t * D * 4);
    if (this.w.layers.some((L) => L.attn)) this.ropeTable(pos0, T);
    for (let l = 0; l < c.nLayers; l++) {
      const L = w.layers[l];
      k.rmsNorm(this.h, L.attnNorm, this.u, D, T, eps);
      const u = ops.act(this.u, D, T);
      if (L.conv) {
        ops.matmul(L.conv.inProj, u, this.big);                           // (B, C, x) = W_in·u
        k.shortConv(this.big, L.conv.kernelT, s.conv[l], this.y, D, c.convL, T);   // y = C ⊙ conv(B ⊙ x)
        ops.matmul(L.conv.outProj, ops.act(this.y, D, T), this.o);
      } else {
        const A = L.attn!, H = c.nHeads, Hkv = c.kvHeads[l];
        ops.matmul(A.q, u, this.q); ops.matmul(A.k, u, this.kk); ops.matmul(A.v, u, this.vv);
        k.rmsNorm(this.q, A.qNorm, this.q, dh, T * H, eps);              // per-head QK norm
        k.rmsNorm(this.kk, A.kNorm, this.kk, dh, T * Hkv, eps);
        k.ropeNeox(this.q, this.cs, H, dh, T); k.ropeNeox(this.kk, this.cs, Hkv, dh, T);
        k.kvStore(this.kk, s.k[l], Hkv * dh, pos0, T); k.kvStore(this.vv, s.v[l], Hkv * dh, pos0, T);
        k.attention(this.q, s.k[l], s.v[l], this.att, H, Hkv, dh, T, pos0, pos0 + T, 1, 1 / Math.sqrt(dh), this.attScratch);
        ops.matmul(A.o, ops.act(this.att, H * dh, T), this.o);
      }
      k.addInPlace(this.h, this.o, T * D);
      k.rmsNorm(this.h, L.ffnNorm, this.u, D, T, eps);
      const v = ops.act(this.u, D, T);
      ops.matmul(L.ffn.gate, v, this.big); ops.matmul(L.ffn.up, v, this.up);
      k.swiglu(this.big, this.up, this.big, T * c.ffDim);
      ops.matmul(L.ffn.down, ops.act(this.big, c.ffDim, T), this.o);
      k.addInPlace(this.h, this.o, T * D);
    }
    if (!wantLogits) return null;
    const last = this.h + (T - 1) * D * 4;
    k.rmsNorm(last, w.finalNorm, this.u, D, 1, eps);
    ops.matmul(w.output, ops.act(this.u, D, 1), this.logits);
    return ops.arena.f32(this.logits, c.vocabSize);
  }

  /** cos/sin of NeoX RoPE for positions pos0…pos0+T−1, with ggml's f32 angle recurrence. */
  private ropeTable(pos0: number, T: number) {
    const dh = this.cfg.headDim, half = dh / 2;
    const cs = this.ops.arena.f32(this.cs, T * dh);
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
