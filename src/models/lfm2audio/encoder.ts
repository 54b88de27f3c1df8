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
import { openSource, streamSource, type ByteSource, type ProgressCallback, type SourceInput } from "../../io/source.js";
import { planWeights } from "../../graph/placement.js";
import { toMono16k, type AudioInput } from "../../audio/input.js";
import { logMelSpectrogram, type LogMel } from "../../audio/mel.js";
import { audioConfigFromGguf, audioTensorSpecs, audioTokensForFrames, NotAudioMmproj, type AudioEncoderConfig } from "./config.js";

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

export interface AudioWeightsHeader { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: AudioEncoderConfig }

/** Where an encoder's weights stream from: the file, its header parser, and optional byte rewriting. */
export interface AudioWeightsSource {
  src: ByteSource;
  /** The header from a prefix of the file; undefined while more bytes are needed. */
  parse(prefix: Uint8Array): AudioWeightsHeader | undefined;
  /** Wraps the placement sink (tensors whose bytes need rearranging on the way in). */
  wrapSink?(h: AudioWeightsHeader, sink: (offset: number, bytes: Uint8Array) => void): (offset: number, bytes: Uint8Array) => void;
  /** After the last byte: emit tensors derived from several file tensors (placed at offsets past the file). */
  afterStream?(h: AudioWeightsHeader, sink: (offset: number, bytes: Uint8Array) => void): void;
}

interface Layer {
  ffnNorm: [number, number]; ffnUp: Matrix; ffnUpB: number; ffnDown: Matrix; ffnDownB: number;
  ln1: [number, number]; q: Matrix; qB: number; k: Matrix; kB: number; v: Matrix; vB: number; o: Matrix; oB: number;
  linearPos: Matrix; posBiasU: number; posBiasV: number;
  normConv: [number, number]; pw1: Matrix; pw1B: number; dw: number; dwB: number; bnW: number; bnB: number; pw2: Matrix; pw2B: number;
  ffnNorm1: [number, number]; ffnUp1: Matrix; ffnUp1B: number; ffnDown1: Matrix; ffnDown1B: number;
  ln2: [number, number];
}


/** assembly/conformer.ts's exports. */
interface ConformerKernels {
  conv2dS2(x: number, w: number, b: number, y: number, Ti: number, Fi: number, C: number, To: number, Fo: number,
    depthwise: number, relu: number, t0: number, t1: number): void;
  gluSigmoid(x: number, y: number, T: number, D: number): void;
  depthwiseConv1dBnSilu(x: number, w: number, b: number, bnW: number, bnB: number, y: number, T: number, D: number, K: number): void;
  relPosAttention(q: number, k: number, v: number, p: number, bu: number, bv: number, out: number, T: number, H: number,
    dh: number, scale: number, h0: number, h1: number, scratch: number): void;
  relPosAttentionScratch(T: number, dh: number): number;
  siluInPlace(x: number, n: number): void;
  /** assembly/vision.ts (LFM2-VL's): LayerNorm with bias, bias add. */
  layerNorm(x: number, w: number, b: number, y: number, n: number, nRows: number, eps: number): void;
  addBias(x: number, b: number, n: number, nRows: number): void;
}

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
    return AudioEncoder.loadWeights({ src, parse(prefix) {
      try {
        const f = parseGguf(prefix, src.size);
        return { tensors: f.tensors, metadata: f.metadata, config: audioConfigFromGguf(f.metadata, f.tensors) };
      } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
    } }, opts);
  }

  /** Load from any weight layout that names its tensors as the mmproj does (hf.ts: the Hugging Face checkpoint). */
  static async loadWeights(w: AudioWeightsSource, opts: AudioEncoderLoadOptions = {}): Promise<AudioEncoder> {
    throwIfAborted(opts.signal);
    const src = w.src;
    let threads = Math.max(1, Math.floor(opts.threads ?? 1));
    if (threads > 1 && !canShareMemory()) threads = 1;
    const shared = threads > 1;
    const modulePromise = compileVariant(chooseVariant(shared, opts), opts);
    let plan: ReturnType<typeof planWeights> | undefined;
    let shard: Shard | undefined;
    let sink: ((offset: number, bytes: Uint8Array) => void) | undefined;
    const header = await streamSource<AudioWeightsHeader>(src, w.parse, (h, offset, bytes) => {
      if (!plan) {
        const specs = audioTensorSpecs(h.config);
        const total = h.tensors.reduce((a, t) => a + t.byteLength, 0);
        shard = Shard.create(0, total * 1.1 + (64 << 20), shared);
        plan = planWeights(specs, h.tensors, () => shard!.arena);
        sink = w.wrapSink ? w.wrapSink(h, plan.sink) : plan.sink;
      }
      sink!(offset, bytes);
    }, { signal: opts.signal, onProgress: opts.onProgress });
    if (!plan) throw new Lfm2Error("TRUNCATED", `${src.name} holds no audio encoder weights`);
    w.afterStream?.(header, plan.sink);
    const module = await modulePromise;
    await shard!.instantiate(module);
    const placed = plan.finish(() => shard!.kernels);
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

  /**
   * Normalised log-mel ([nMel][nFrames]) → embeddings. `profile`, when given, receives milliseconds per
   * stage (subsampling, matmuls, attention, conv module, elementwise) for the benchmark.
   */
  encodeMel(mel: LogMel, profile?: Record<string, number>): AudioEmbeddings {
    const c = this.config, A = this.shard.arena, ops = this.shard.ops;
    if (mel.nMel !== c.nMel) throw new Lfm2Error("SHAPE_MISMATCH", `mel has ${mel.nMel} bins, the encoder wants ${c.nMel}`);
    const T0 = mel.nFrames, F0 = c.nMel, C = c.subChannels, D = c.dModel;
    const T1 = Math.floor((T0 + 1) / 2), F1 = F0 / 2, T2 = Math.floor((T1 + 1) / 2), F2 = F1 / 2;
    const T = Math.floor((T2 + 1) / 2), F3 = F2 / 2;
    if (T < 1) throw new Lfm2Error("BAD_AUDIO", "audio too short");
    const mark = A.mark();
    let clock = profile ? performance.now() : 0;
    const lap = (stage: string) => {
      if (!profile) return;
      const now = performance.now();
      profile[stage] = (profile[stage] ?? 0) + now - clock;
      clock = now;
    };
    try {
      const P = 2 * T - 1;
      const bufA = A.alloc(4 * T1 * F1 * C), bufB = A.alloc(4 * T1 * F1 * C);
      const x = A.alloc(4 * T * D), h = A.alloc(4 * T * Math.max(D * 2, c.ffDim, c.adapterHidden, C * F3));
      const h2 = A.alloc(4 * T * Math.max(D * 2, c.ffDim, c.adapterHidden, c.outDim));
      const q = A.alloc(4 * T * D), k = A.alloc(4 * T * D), v = A.alloc(4 * T * D), att = A.alloc(4 * T * D);
      const posIn = A.alloc(4 * P * D), pos = A.alloc(4 * P * D);
      const kern = this.shard.kernels as unknown as ConformerKernels;
      const threads = this.shard.ops.executor?.size ?? 1;
      const attScratch = A.alloc(4 * kern.relPosAttentionScratch(T, D / c.nHeads) * threads);
      const f32 = (p: number, n: number) => A.f32(p, n);
      const w = (name: string, n: number) => f32(this.w.vector(name), n);
      const linear = (m: Matrix, src: number, nTok: number, dst: number, bias?: number) => {
        lap("elementwise");
        for (let t0 = 0; t0 < nTok; t0 += CHUNK) {
          const n = Math.min(CHUNK, nTok - t0);
          ops.matmul(m, ops.act(src + 4 * t0 * m.nIn, m.nIn, n), dst + 4 * t0 * m.nOut);
        }
        if (bias !== undefined) kern.addBias(dst, bias, m.nOut, nTok);
        lap("matmul");
      };
      const pointwise = (name: string): Matrix => ({ ptr: this.w.vector(name), type: GGML.F32, nIn: C, nOut: C, rowBytes: 4 * C, x4: false });
      const relu = (p: number, n: number) => { const y = f32(p, n); for (let i = 0; i < n; i++) if (y[i] < 0) y[i] = 0; };

      // --- conv subsampling, activations [time][freq][channel] ---
      const w9 = A.alloc(4 * 9 * C), melT = A.alloc(4 * T0 * F0);
      /** conv weights [C][3][3] → [3·3][C] for the kernels; fp16-rounded for the first conv */
      const taps = (name: string, round: boolean) => {
        const src = w(name, 9 * C), dst = f32(w9, 9 * C);
        for (let ch = 0; ch < C; ch++) for (let k = 0; k < 9; k++) dst[k * C + ch] = round ? roundToF16(src[ch * 9 + k]) : src[ch * 9 + k];
        return w9;
      };
      {
        // ggml_conv_2d runs as im2col in fp16 × the kernel converted to fp16 (f32 sums): both are rounded
        const x0 = f32(melT, T0 * F0);
        for (let fq = 0; fq < F0; fq++) for (let t = 0; t < T0; t++) x0[t * F0 + fq] = roundToF16(mel.data[fq * T0 + t]);
        kern.conv2dS2(melT, taps("a.conv1d.0.weight", true), this.w.vector("a.conv1d.0.bias"), bufA, T0, F0, C, T1, F1, 0, 1, 0, T1);
      }
      lap("subsampling");
      kern.conv2dS2(bufA, taps("a.conv1d.2.weight", false), this.w.vector("a.conv1d.2.bias"), bufB, T1, F1, C, T2, F2, 1, 0, 0, T2);
      lap("subsampling");
      linear(pointwise("a.conv1d.3.weight"), bufB, T2 * F2, bufA, this.w.vector("a.conv1d.3.bias"));
      relu(bufA, T2 * F2 * C);
      kern.conv2dS2(bufA, taps("a.conv1d.5.weight", false), this.w.vector("a.conv1d.5.bias"), bufB, T2, F2, C, T, F3, 1, 0, 0, T);
      lap("subsampling");
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
        lap("elementwise");
        this.relPosAttention(kern, q, k, v, pos, att, T, L.posBiasU, L.posBiasV, attScratch);
        lap("attention");
        linear(L.o, att, T, h, L.oB);
        this.addScaled(x, h, T * D, 1);
        // conv module
        this.layerNorm(x, h, T, L.normConv);
        linear(L.pw1, h, T, h2, L.pw1B);
        lap("elementwise");
        kern.gluSigmoid(h2, att, T, D);
        kern.depthwiseConv1dBnSilu(att, L.dw, L.dwB, L.bnW, L.bnB, h, T, D, c.convKernel);
        lap("conv module");
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
      lap("elementwise");
      const embeddings = f32(h, T * m3.nOut).slice();
      const rows = Array.from({ length: T }, (_, t) => embeddings.subarray(t * m3.nOut, (t + 1) * m3.nOut));
      return { tokens: T, embeddings, rows, melFrames: T0 };
    } finally {
      A.release(mark);
    }
  }

  private layerNorm(src: number, dst: number, T: number, [wp, bp]: [number, number]): void {
    (this.shard.kernels as unknown as ConformerKernels).layerNorm(src, wp, bp, dst, this.config.dModel, T, LN_EPS);
  }

  private ffn(src: number, tmp: number, T: number, up: Matrix, upB: number, down: Matrix, downB: number,
    linear: (m: Matrix, s: number, n: number, d: number, b?: number) => void): void {
    linear(up, src, T, tmp, upB);
    (this.shard.kernels as unknown as ConformerKernels).siluInPlace(tmp, T * up.nOut);
    linear(down, tmp, T, src, downB);
  }

  private addScaled(dst: number, src: number, n: number, s: number): void {
    const a = this.shard.arena.f32(dst, n), b = this.shard.arena.f32(src, n);
    for (let i = 0; i < n; i++) a[i] += s * b[i];
  }

  /**
   * Transformer-XL attention: score(i, j) = ((q_i + u)·k_j + (q_i + v)·p_{T-1-i+j}) / √dh, where row r of
   * `pos` is the projected encoding of distance T-1-r (i.e. p_{T-1-i+j} encodes i − j). Full (unmasked);
   * heads are split across the worker pool.
   */
  private relPosAttention(kern: ConformerKernels, q: number, k: number, v: number, pos: number, out: number, T: number,
    bu: number, bv: number, scratch: number): void {
    const { dModel: D, nHeads: H } = this.config, dh = D / H, scale = 1 / Math.sqrt(dh);
    const exec = this.shard.ops.executor;
    const threads = Math.min(exec?.size ?? 1, H);
    if (!exec || threads < 2) { kern.relPosAttention(q, k, v, pos, bu, bv, out, T, H, dh, scale, 0, H, scratch); return; }
    const each = 4 * kern.relPosAttentionScratch(T, dh);
    const parts = Array.from({ length: threads }, (_, t) => [Math.floor((t * H) / threads), Math.floor(((t + 1) * H) / threads), scratch + t * each]);
    exec.run("relPosAttention", [q, k, v, pos, bu, bv, out, T, H, dh, scale], parts);
  }

  dispose(): void { this.shard.stopThreads(); }
}

/** An LFM2-Audio encoder if `input` is an lfm2a mmproj, else null (only its header has been read then). */
export async function loadAudioMmproj(input: SourceInput, opts: AudioEncoderLoadOptions = {}): Promise<AudioEncoder | null> {
  try { return await AudioEncoder.load(input, opts); } catch (e) { if (e instanceof NotAudioMmproj) return null; throw e; }
}
