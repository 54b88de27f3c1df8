// The LFM2-Audio audio encoder: log-mel → ×8 conv subsampling → FastConformer layers (macaron ½-FFNs,
// relative-position self-attention with pos_bias_u/v, conv module: pointwise + GLU + depthwise + folded
// batch-norm + SiLU + pointwise) → adapter (LayerNorm → Linear → GELU(erf) → Linear) into the text model's
// embedding width. Follows llama.cpp's graph for projector `lfm2a` (tools/mtmd/models/conformer.cpp).
// Linear layers and pointwise convs run on the engine's matmul kernels (every weight type, worker
// pool); the small per-element stages run here in TypeScript.
import { Shard } from "../../../bindings/shard.js";
import { canShareMemory, chooseVariant, compileVariant, type WasmOptions } from "../../../bindings/wasm.js";
import { GGML, type Matrix } from "../../core/quant-types.js";
import { roundToF16 } from "../../formats/fp16.js";
import type { PlacedTensors } from "../../core/tensor-spec.js";
import { Lfm2Error, throwIfAborted } from "../../errors.js";
import { NeedMoreBytes, parseGguf, type TensorInfo, type GgufValue } from "../../formats/gguf.js";
import { openSource, streamSource, type ProgressCallback, type SourceInput } from "../../io/source.js";
import { planWeights } from "../../runtime/weights.js";
import { toMono16k, type AudioInput } from "../../audio/input.js";
import { logMelSpectrogram, type LogMel } from "../../audio/mel.js";
import { audioConfigFromGguf, audioTensorSpecs, audioTokensForFrames, type AudioEncoderConfig } from "./config.js";

/** Rows per matmul call (the activation buffers are sized for this many). */
const CHUNK = 256;
const LN_EPS = 1e-5; // llama.cpp hard-codes it for lfm2a

export interface AudioEncoderLoadOptions extends WasmOptions {
  threads?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

export interface AudioEmbeddings {
  /** Audio embedding rows (one per 80 ms): what the text model receives in place of token embeddings. */
  tokens: number;
  /** [tokens][rows... width], row-major, width = the text model's embedding width. */
  embeddings: Float32Array;
  /** The same rows as views into `embeddings`. */
  rows: Float32Array[];
  /** Mel frames the clip produced (10 ms each). */
  melFrames: number;
}

interface Layer {
  ffnNorm: [number, number]; ffnUp: Matrix; ffnUpB: number; ffnDown: Matrix; ffnDownB: number;
  ln1: [number, number]; q: Matrix; qB: number; k: Matrix; kB: number; v: Matrix; vB: number; o: Matrix; oB: number;
  linearPos: Matrix; posBiasU: number; posBiasV: number;
  normConv: [number, number]; pw1: Matrix; pw1B: number; dw: number; dwB: number; bnW: number; bnB: number; pw2: Matrix; pw2B: number;
  ffnNorm1: [number, number]; ffnUp1: Matrix; ffnUp1B: number; ffnDown1: Matrix; ffnDown1B: number;
  ln2: [number, number];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** erf to ~1e-7 absolute (Abramowitz & Stegun 7.1.26 is too coarse; this is Numerical Recipes' erfc). */
function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export class AudioEncoder {
  private layers: Layer[] = [];
  private constructor(readonly config: AudioEncoderConfig, private shard: Shard, private w: PlacedTensors,
    readonly threads: number) {
    for (let l = 0; l < config.nLayers; l++) {
      const p = `a.blk.${l}.`, m = (n: string) => w.matrix(p + n), v = (n: string) => w.vector(p + n);
      const norm = (n: string): [number, number] => [v(`${n}.weight`), v(`${n}.bias`)];
      this.layers.push({
        ffnNorm: norm("ffn_norm"), ffnUp: m("ffn_up.weight"), ffnUpB: v("ffn_up.bias"), ffnDown: m("ffn_down.weight"), ffnDownB: v("ffn_down.bias"),
        ln1: norm("ln1"), q: m("attn_q.weight"), qB: v("attn_q.bias"), k: m("attn_k.weight"), kB: v("attn_k.bias"),
        v: m("attn_v.weight"), vB: v("attn_v.bias"), o: m("attn_out.weight"), oB: v("attn_out.bias"),
        linearPos: m("linear_pos.weight"), posBiasU: v("pos_bias_u"), posBiasV: v("pos_bias_v"),
        normConv: norm("norm_conv"), pw1: m("conv_pw1.weight"), pw1B: v("conv_pw1.bias"), dw: v("conv_dw.weight"), dwB: v("conv_dw.bias"),
        bnW: v("conv_norm.weight"), bnB: v("conv_norm.bias"), pw2: m("conv_pw2.weight"), pw2B: v("conv_pw2.bias"),
        ffnNorm1: norm("ffn_norm_1"), ffnUp1: m("ffn_up_1.weight"), ffnUp1B: v("ffn_up_1.bias"),
        ffnDown1: m("ffn_down_1.weight"), ffnDown1B: v("ffn_down_1.bias"), ln2: norm("ln2"),
      });
    }
  }

  /** Load an LFM2-Audio mmproj GGUF (path, URL, bytes, Blob). */
  static async load(input: SourceInput, opts: AudioEncoderLoadOptions = {}): Promise<AudioEncoder> {
    throwIfAborted(opts.signal);
    const src = await openSource(input, opts.signal);
    let threads = Math.max(1, Math.floor(opts.threads ?? 1));
    if (threads > 1 && !canShareMemory()) threads = 1;
    const shared = threads > 1;
    const modulePromise = compileVariant(chooseVariant(shared, opts), opts);
    interface Header { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: AudioEncoderConfig }
    let plan: ReturnType<typeof planWeights> | undefined;
    let shard: Shard | undefined;
    const header = await streamSource<Header>(src, (prefix) => {
      try {
        const f = parseGguf(prefix, src.size);
        return { tensors: f.tensors, metadata: f.metadata, config: audioConfigFromGguf(f.metadata, f.tensors) };
      } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
    }, (h, offset, bytes) => {
      if (!plan) {
        const specs = audioTensorSpecs(h.config);
        const total = h.tensors.reduce((a, t) => a + t.byteLength, 0);
        shard = Shard.create(0, total * 1.1 + (64 << 20), shared);
        plan = planWeights(specs, h.tensors, () => shard!.arena);
      }
      plan.sink(offset, bytes);
    }, { signal: opts.signal, onProgress: opts.onProgress });
    const module = await modulePromise;
    await shard!.instantiate(module);
    const placed = plan!.finish(() => shard!.kernels);
    const c = header.config;
    shard!.initOps(Math.max(c.subChannels * (c.nMel / 8), 2 * c.dModel, c.ffDim, c.adapterHidden, c.outDim), CHUNK);
    if (threads > 1) {
      try { await shard!.startThreads(threads, module); } catch { threads = 1; }
    }
    return new AudioEncoder(c, shard!, placed, threads);
  }

  /** Audio (WAV bytes, samples + rate, AudioBuffer) → embeddings for the text model. */
  encode(input: AudioInput): AudioEmbeddings {
    return this.encodeMel(logMelSpectrogram(toMono16k(input), { nMel: this.config.nMel }));
  }

  /** Embedding rows a clip of `samples` 16 kHz samples yields (llama.cpp's count). */
  tokensForSamples(samples: number): number { return audioTokensForFrames(Math.floor(samples / 160) + 1); }

  /** Normalised log-mel ([nMel][nFrames]) → embeddings. */
  encodeMel(mel: LogMel): AudioEmbeddings {
    const c = this.config, A = this.shard.arena, ops = this.shard.ops;
    if (mel.nMel !== c.nMel) throw new Lfm2Error("SHAPE_MISMATCH", `mel has ${mel.nMel} bins, the encoder wants ${c.nMel}`);
    const T0 = mel.nFrames, F0 = c.nMel, C = c.subChannels, D = c.dModel;
    const T1 = Math.floor((T0 + 1) / 2), F1 = F0 / 2, T2 = Math.floor((T1 + 1) / 2), F2 = F1 / 2;
    const T = Math.floor((T2 + 1) / 2), F3 = F2 / 2;
    if (T < 1) throw new Lfm2Error("BAD_AUDIO", "audio too short");
    const mark = A.mark();
    try {
      const P = 2 * T - 1;
      const bufA = A.alloc(4 * T1 * F1 * C), bufB = A.alloc(4 * T1 * F1 * C);
      const x = A.alloc(4 * T * D), h = A.alloc(4 * T * Math.max(D * 2, c.ffDim, c.adapterHidden, C * F3));
      const h2 = A.alloc(4 * T * Math.max(D * 2, c.ffDim, c.adapterHidden, c.outDim));
      const q = A.alloc(4 * T * D), k = A.alloc(4 * T * D), v = A.alloc(4 * T * D), att = A.alloc(4 * T * D);
      const posIn = A.alloc(4 * P * D), pos = A.alloc(4 * P * D);
      const f32 = (p: number, n: number) => A.f32(p, n);
      const w = (name: string, n: number) => f32(this.w.vector(name), n);
      const linear = (m: Matrix, src: number, nTok: number, dst: number, bias?: number) => {
        for (let t0 = 0; t0 < nTok; t0 += CHUNK) {
          const n = Math.min(CHUNK, nTok - t0);
          ops.matmul(m, ops.act(src + 4 * t0 * m.nIn, m.nIn, n), dst + 4 * t0 * m.nOut);
        }
        if (bias !== undefined) {
          const y = f32(dst, nTok * m.nOut), b = f32(bias, m.nOut);
          for (let t = 0; t < nTok; t++) for (let i = 0; i < m.nOut; i++) y[t * m.nOut + i] += b[i];
        }
      };
      const pointwise = (name: string): Matrix => ({ ptr: this.w.vector(name), type: GGML.F32, nIn: C, nOut: C, rowBytes: 4 * C, x4: false });
      const relu = (p: number, n: number) => { const y = f32(p, n); for (let i = 0; i < n; i++) if (y[i] < 0) y[i] = 0; };

      // --- conv subsampling, activations [time][freq][channel] ---
      {
        // ggml_conv_2d runs as im2col in fp16 × the kernel converted to fp16 (f32 sums): both are rounded
        const out = f32(bufA, T1 * F1 * C), wt = w("a.conv1d.0.weight", 9 * C).map(roundToF16), b = w("a.conv1d.0.bias", C);
        for (let t = 0; t < T1; t++) for (let f = 0; f < F1; f++) {
          const o = (t * F1 + f) * C;
          for (let ch = 0; ch < C; ch++) out[o + ch] = b[ch];
          for (let kh = 0; kh < 3; kh++) {
            const ti = 2 * t + kh - 1;
            if (ti < 0 || ti >= T0) continue;
            for (let kw = 0; kw < 3; kw++) {
              const fi = 2 * f + kw - 1;
              if (fi < 0 || fi >= F0) continue;
              const xv = roundToF16(mel.data[fi * T0 + ti]);
              for (let ch = 0; ch < C; ch++) out[o + ch] += xv * wt[ch * 9 + kh * 3 + kw];
            }
          }
          for (let ch = 0; ch < C; ch++) if (out[o + ch] < 0) out[o + ch] = 0;
        }
      }
      const depthwise = (src: number, Ti: number, Fi: number, dst: number, To: number, Fo: number, idx: number) => {
        const inp = f32(src, Ti * Fi * C), out = f32(dst, To * Fo * C);
        const wt = w(`a.conv1d.${idx}.weight`, 9 * C), b = w(`a.conv1d.${idx}.bias`, C);
        for (let t = 0; t < To; t++) for (let f = 0; f < Fo; f++) {
          const o = (t * Fo + f) * C;
          for (let ch = 0; ch < C; ch++) out[o + ch] = b[ch];
          for (let kh = 0; kh < 3; kh++) {
            const ti = 2 * t + kh - 1;
            if (ti < 0 || ti >= Ti) continue;
            for (let kw = 0; kw < 3; kw++) {
              const fi = 2 * f + kw - 1;
              if (fi < 0 || fi >= Fi) continue;
              const s = (ti * Fi + fi) * C, kk = kh * 3 + kw;
              for (let ch = 0; ch < C; ch++) out[o + ch] += inp[s + ch] * wt[ch * 9 + kk];
            }
          }
        }
      };
      depthwise(bufA, T1, F1, bufB, T2, F2, 2);
      linear(pointwise("a.conv1d.3.weight"), bufB, T2 * F2, bufA, this.w.vector("a.conv1d.3.bias"));
      relu(bufA, T2 * F2 * C);
      depthwise(bufA, T2, F2, bufB, T, F3, 5);
      linear(pointwise("a.conv1d.6.weight"), bufB, T * F3, bufA, this.w.vector("a.conv1d.6.bias"));
      relu(bufA, T * F3 * C);
      {
        // flatten (channel, freq) with freq fastest, as llama.cpp's permute does
        const src = f32(bufA, T * F3 * C), dst = f32(h, T * C * F3);
        for (let t = 0; t < T; t++) for (let f = 0; f < F3; f++) for (let ch = 0; ch < C; ch++) {
          dst[t * C * F3 + ch * F3 + f] = src[(t * F3 + f) * C + ch];
        }
      }
      linear(this.w.matrix("a.pre_encode.out.weight"), h, T, x, this.w.vector("a.pre_encode.out.bias"));

      // relative sinusoidal positions: row r encodes the distance T-1-r (sin on even, cos on odd features)
      {
        const pe = f32(posIn, P * D);
        for (let r = 0; r < P; r++) for (let i = 0; i < D / 2; i++) {
          const invFreq = Math.exp(-(Math.log(10000) / D) * Math.fround(2 * i));
          const ang = Math.fround((T - r - 1) * invFreq);
          pe[r * D + 2 * i] = Math.sin(ang);
          pe[r * D + 2 * i + 1] = Math.cos(ang);
        }
      }

      for (const L of this.layers) {
        // ½ FFN 1
        this.layerNorm(x, h, T, L.ffnNorm);
        this.ffn(h, h2, T, L.ffnUp, L.ffnUpB, L.ffnDown, L.ffnDownB, linear);
        this.addScaled(x, h, T * D, 0.5);
        // relative-position self-attention
        this.layerNorm(x, h, T, L.ln1);
        linear(L.q, h, T, q, L.qB);
        linear(L.k, h, T, k, L.kB);
        linear(L.v, h, T, v, L.vB);
        linear(L.linearPos, posIn, P, pos);
        this.relPosAttention(q, k, v, pos, att, T, L.posBiasU, L.posBiasV);
        linear(L.o, att, T, h, L.oB);
        this.addScaled(x, h, T * D, 1);
        // conv module
        this.layerNorm(x, h, T, L.normConv);
        linear(L.pw1, h, T, h2, L.pw1B);
        this.convModule(h2, h, T, L);
        linear(L.pw2, h, T, h2, L.pw2B);
        this.addScaled(x, h2, T * D, 1);
        // ½ FFN 2, output norm (the next layer's input and residual)
        this.layerNorm(x, h, T, L.ffnNorm1);
        this.ffn(h, h2, T, L.ffnUp1, L.ffnUp1B, L.ffnDown1, L.ffnDown1B, linear);
        this.addScaled(x, h, T * D, 0.5);
        this.layerNorm(x, x, T, L.ln2);
      }

      // adapter
      this.layerNorm(x, h, T, [this.w.vector("mm.a.mlp.0.weight"), this.w.vector("mm.a.mlp.0.bias")]);
      const m1 = this.w.matrix("mm.a.mlp.1.weight"), m3 = this.w.matrix("mm.a.mlp.3.weight");
      linear(m1, h, T, h2, this.w.vector("mm.a.mlp.1.bias"));
      {
        const y = f32(h2, T * m1.nOut);
        for (let i = 0; i < y.length; i++) y[i] = 0.5 * y[i] * (1 + erf(y[i] * Math.SQRT1_2));
      }
      linear(m3, h2, T, h, this.w.vector("mm.a.mlp.3.bias"));
      const embeddings = f32(h, T * m3.nOut).slice();
      const rows = Array.from({ length: T }, (_, t) => embeddings.subarray(t * m3.nOut, (t + 1) * m3.nOut));
      return { tokens: T, embeddings, rows, melFrames: T0 };
    } finally {
      A.release(mark);
    }
  }

  private layerNorm(src: number, dst: number, T: number, [wp, bp]: [number, number]): void {
    const D = this.config.dModel, A = this.shard.arena;
    const x = A.f32(src, T * D), y = A.f32(dst, T * D), g = A.f32(wp, D), b = A.f32(bp, D);
    for (let t = 0; t < T; t++) {
      const o = t * D;
      let mean = 0;
      for (let i = 0; i < D; i++) mean += x[o + i];
      mean /= D;
      let v = 0;
      for (let i = 0; i < D; i++) v += (x[o + i] - mean) ** 2;
      const inv = 1 / Math.sqrt(v / D + LN_EPS);
      for (let i = 0; i < D; i++) y[o + i] = (x[o + i] - mean) * inv * g[i] + b[i];
    }
  }

  private ffn(src: number, tmp: number, T: number, up: Matrix, upB: number, down: Matrix, downB: number,
    linear: (m: Matrix, s: number, n: number, d: number, b?: number) => void): void {
    linear(up, src, T, tmp, upB);
    const y = this.shard.arena.f32(tmp, T * up.nOut);
    for (let i = 0; i < y.length; i++) y[i] = y[i] * sigmoid(y[i]);
    linear(down, tmp, T, src, downB);
  }

  private addScaled(dst: number, src: number, n: number, s: number): void {
    const a = this.shard.arena.f32(dst, n), b = this.shard.arena.f32(src, n);
    for (let i = 0; i < n; i++) a[i] += s * b[i];
  }

  /**
   * Transformer-XL attention: score(i, j) = ((q_i + u)·k_j + (q_i + v)·p_{T-1-i+j}) / √dh, where row r of
   * `pos` is the projected encoding of distance T-1-r (i.e. p_{T-1-i+j} encodes i − j). Full (unmasked).
   */
  private relPosAttention(qp: number, kp: number, vp: number, pp: number, outp: number, T: number, up: number, vbp: number): void {
    const { dModel: D, nHeads: H } = this.config, dh = D / H, A = this.shard.arena, P = 2 * T - 1;
    const q = A.f32(qp, T * D), k = A.f32(kp, T * D), v = A.f32(vp, T * D), p = A.f32(pp, P * D), out = A.f32(outp, T * D);
    const bu = A.f32(up, D), bv = A.f32(vbp, D);
    const scale = 1 / Math.sqrt(dh), s = new Float64Array(T), qu = new Float64Array(dh), qv = new Float64Array(dh);
    for (let hd = 0; hd < H; hd++) {
      const o = hd * dh;
      for (let i = 0; i < T; i++) {
        for (let d = 0; d < dh; d++) { qu[d] = q[i * D + o + d] + bu[o + d]; qv[d] = q[i * D + o + d] + bv[o + d]; }
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let ac = 0, bd = 0;
          const kr = j * D + o, pr = (T - 1 - i + j) * D + o;
          for (let d = 0; d < dh; d++) { ac += qu[d] * k[kr + d]; bd += qv[d] * p[pr + d]; }
          s[j] = (ac + bd) * scale;
          if (s[j] > max) max = s[j];
        }
        let sum = 0;
        for (let j = 0; j < T; j++) { s[j] = Math.exp(s[j] - max); sum += s[j]; }
        for (let d = 0; d < dh; d++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += s[j] * v[j * D + o + d];
          out[i * D + o + d] = acc / sum;
        }
      }
    }
  }

  /** GLU(sigmoid) → depthwise conv over time ("same" padding) → folded batch-norm → SiLU, into dst [T][D]. */
  private convModule(srcp: number, dstp: number, T: number, L: Layer): void {
    const { dModel: D, convKernel: K } = this.config, A = this.shard.arena, pad = (K - 1) >> 1;
    const x = A.f32(srcp, T * 2 * D), y = A.f32(dstp, T * D);
    const g = new Float32Array(T * D);
    for (let t = 0; t < T; t++) for (let c = 0; c < D; c++) g[t * D + c] = x[t * 2 * D + c] * sigmoid(x[t * 2 * D + D + c]);
    const w = A.f32(L.dw, K * D), b = A.f32(L.dwB, D), bnW = A.f32(L.bnW, D), bnB = A.f32(L.bnB, D);
    for (let t = 0; t < T; t++) for (let c = 0; c < D; c++) {
      let acc = b[c];
      for (let kk = 0; kk < K; kk++) {
        const ti = t + kk - pad;
        if (ti >= 0 && ti < T) acc += g[ti * D + c] * w[c * K + kk];
      }
      const z = acc * bnW[c] + bnB[c];
      y[t * D + c] = z * sigmoid(z);
    }
  }

  dispose(): void { this.shard.stopThreads(); }
}
