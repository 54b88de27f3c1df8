// Kyutai's Mimi codec decoder (codes → 24 kHz), which the original LFM2-Audio-1.5B uses for speech out
// (liquid-audio loads `tokenizer-e351c8d8-checkpoint125.safetensors` with moshi's get_mimi defaults, 8 codebooks).
// Facts from kyutai-labs/moshi (models/compression.py, loaders.py, modules/{seanet,conv,resample,transformer,rope}.py,
// quantization/{vq,core_vq}.py) and transformers' Mimi conversion script (HF tensor names); docs/lfm2-audio-out.md §6.
//   codes [8 per 80 ms frame] → split RVQ: output_proj_first(cb0[c0]) + output_proj_rest(Σ_k cb_k[c_k]), each codebook
//   = embedding_sum / max(cluster_usage, 1e-5) → depthwise ConvTranspose (k 4, stride 2, no bias) to 25 Hz →
//   causal transformer (LayerNorm, interleaved RoPE, context 250, LayerScale, GELU MLP) → SEANet decoder (causal
//   convs, ELU, ConvTranspose ×8,×6,×5,×4 with residual blocks) → 1920 samples per frame.
// Everything is causal, so the decoder streams: a frame in → its 1920 samples out; decoding in chunks reproduces a
// whole decode bit for bit. Activations are time-major ([T][C]); convs, linear layers, ELU, overlap-adds and the
// attention run on assembly/conv1d.ts's kernels; layer norms, GELU, RoPE and the codebook sums run here.
import { Shard } from "../../../bindings/shard.js";
import { canShareMemory, chooseVariant, compileVariant, type WasmOptions } from "../../../bindings/wasm.js";
import { WorkerPool } from "../../../bindings/threads.js";
import { Lfm2Error } from "../../errors.js";
import { parseSafetensors } from "../../formats/safetensors.js";
import { bf16ToF32, f16ToF32 } from "../../formats/fp16.js";

export const MIMI_SAMPLE_RATE = 24000;
export const MIMI_FRAME_RATE = 12.5;
/** Samples per 80 ms code frame (24000 / 12.5). */
export const MIMI_SAMPLES_PER_FRAME = 1920;

export interface MimiConfig {
  /** Latent width (SEANet `dimension`, transformer d_model): 512. */
  dim: number;
  codebookDim: number;
  codebookSize: number;
  /** Codebooks decoded per frame (LFM2-Audio: 8 = 1 semantic + 7 acoustic). */
  codebooks: number;
  /** Latent upsampling 12.5 Hz → encoder rate (25 Hz): stride 2, kernel 4. */
  upsampleStride: number;
  layers: number;
  heads: number;
  ffDim: number;
  /** Attention reach in transformer steps (each query sees itself and the 249 before). */
  context: number;
  ropeMaxPeriod: number;
  nFilters: number;
  ratios: number[];
  /** Residual blocks per SEANet stage (dilation base^j). */
  residualLayers: number;
  dilationBase: number;
}

/** Which tensor naming the file uses: moshi's (the `tokenizer-*.safetensors` LFM2-Audio ships) or transformers'. */
export type MimiLayout = "moshi" | "hf";

export interface MimiLoadOptions extends WasmOptions {
  /** Codebooks per frame (default 8, LFM2-Audio's). */
  codebooks?: number;
  /** Transformer heads (default 8) and context (default 250): not recoverable from the tensor shapes. */
  heads?: number;
  context?: number;
  /** Frames decoded per kernel pass when a stream is given many at once (default 16). */
  maxChunkFrames?: number;
  threads?: number;
}

interface Mat { ptr: number; nOut: number; nIn: number }
/** Weights and biases (`bias`: arena pointer) of a causal conv and a transposed conv. */
interface Conv { w: Mat; bias: number; cin: number; cout: number; k: number; dilation: number }
interface ConvTr { w: Mat; bias: number; cin: number; cout: number; k: number; stride: number }
interface ResBlock { c0: Conv; c1: Conv; dim: number }
interface Stage { convtr: ConvTr; res: ResBlock[] }
interface TLayer {
  norm1w: Float32Array; norm1b: Float32Array; norm2w: Float32Array; norm2b: Float32Array;
  inProj: Mat; outProj: Mat; lin1: Mat; lin2: Mat; scale1: Float32Array; scale2: Float32Array;
}

const EPS_USAGE = 1e-5, LN_EPS = 1e-5;
const PARALLEL_MIN_MACS = 1 << 19;

/** A tensor read from the file as f32, with its torch shape. */
interface Tensor { shape: number[]; data: Float32Array }

class TensorSource {
  private byName = new Map<string, { shape: number[]; dtype: string; offset: number; bytes: number }>();
  constructor(private bytes: Uint8Array) {
    parseSafetensors(bytes, bytes.byteLength, () => undefined); // validates the header and every entry's bounds
    const hl = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl)));
    for (const [name, t] of Object.entries<any>(header)) {
      if (name === "__metadata__") continue;
      const [a, b] = t.data_offsets;
      this.byName.set(name, { shape: t.shape, dtype: t.dtype, offset: 8 + hl + a, bytes: b - a });
    }
  }
  has(name: string): boolean { return this.byName.has(name); }
  shape(name: string): number[] { return this.byName.get(name)?.shape ?? []; }
  names(): string[] { return [...this.byName.keys()]; }
  get(name: string, shape?: (number | null)[]): Tensor {
    const e = this.byName.get(name);
    if (!e) throw new Lfm2Error("MISSING_TENSOR", `the Mimi file has no ${name}`);
    if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16") {
      throw new Lfm2Error("UNSUPPORTED_TYPE", `Mimi tensor ${name} has dtype ${e.dtype} (F32, F16 or BF16 expected)`);
    }
    if (shape && (shape.length !== e.shape.length || shape.some((d, i) => d !== null && d !== e.shape[i]))) {
      throw new Lfm2Error("SHAPE_MISMATCH", `Mimi tensor ${name} is [${e.shape}], expected [${shape.map((d) => d ?? "·")}]`);
    }
    const n = e.shape.reduce((a, b) => a * b, 1), out = new Float32Array(n);
    if (n * (e.dtype === "F32" ? 4 : 2) !== e.bytes) {
      throw new Lfm2Error("SHAPE_MISMATCH", `Mimi tensor ${name}: ${e.bytes} bytes for shape [${e.shape}] of ${e.dtype}`);
    }
    const dv = new DataView(this.bytes.buffer, this.bytes.byteOffset + e.offset, e.bytes);
    if (e.dtype === "F32") for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
    else if (e.dtype === "F16") for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
    else for (let i = 0; i < n; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true));
    return { shape: e.shape, data: out };
  }
}

/** Tensor names of one layout; `n` and `l` index decoder modules and transformer layers. */
const NAMES: Record<MimiLayout, {
  codebook(first: boolean, k: number): { sum: string; usage: string };
  outProj(first: boolean): string;
  upsample: string;
  layer(l: number, part: "in" | "q" | "k" | "v" | "out" | "norm1" | "norm2" | "lin1" | "lin2" | "scale1" | "scale2"): string;
  conv(path: string, kind: "conv" | "convtr"): string;
}> = {
  moshi: {
    codebook: (first, k) => {
      const p = `quantizer.${first ? "rvq_first" : "rvq_rest"}.vq.layers.${k}._codebook.`;
      return { sum: p + "embedding_sum", usage: p + "cluster_usage" };
    },
    outProj: (first) => `quantizer.${first ? "rvq_first" : "rvq_rest"}.output_proj.weight`,
    upsample: "upsample.convtr.convtr.convtr.weight",
    layer: (l, part) => `decoder_transformer.transformer.layers.${l}.` + ({
      in: "self_attn.in_proj_weight", q: "", k: "", v: "", out: "self_attn.out_proj.weight", norm1: "norm1", norm2: "norm2",
      lin1: "linear1.weight", lin2: "linear2.weight", scale1: "layer_scale_1.scale", scale2: "layer_scale_2.scale",
    })[part],
    conv: (path, kind) => `decoder.model.${path}.${kind}.${kind}`,
  },
  hf: {
    codebook: (first, k) => {
      const p = `quantizer.${first ? "semantic" : "acoustic"}_residual_vector_quantizer.layers.${k}.codebook.`;
      return { sum: p + "embed_sum", usage: p + "cluster_usage" };
    },
    outProj: (first) => `quantizer.${first ? "semantic" : "acoustic"}_residual_vector_quantizer.output_proj.weight`,
    upsample: "upsample.conv.weight",
    layer: (l, part) => `decoder_transformer.layers.${l}.` + ({
      in: "", q: "self_attn.q_proj.weight", k: "self_attn.k_proj.weight", v: "self_attn.v_proj.weight",
      out: "self_attn.o_proj.weight",
      norm1: "input_layernorm", norm2: "post_attention_layernorm", lin1: "mlp.fc1.weight", lin2: "mlp.fc2.weight",
      scale1: "self_attn_layer_scale.scale", scale2: "mlp_layer_scale.scale",
    })[part],
    conv: (path) => `decoder.layers.${path}.conv`,
  },
};

/** Layout of a Mimi safetensors file from its names (BAD_INPUT when it holds no Mimi decoder). */
export function mimiLayoutOf(names: string[]): MimiLayout {
  const s = new Set(names);
  if (s.has(NAMES.moshi.upsample)) return "moshi";
  if (s.has(NAMES.hf.upsample)) return "hf";
  throw new Lfm2Error("BAD_INPUT",
    "not a Mimi checkpoint: neither upsample.convtr.convtr.convtr.weight (moshi) nor upsample.conv.weight (transformers)");
}

/** erf to ~1e-7 (Numerical Recipes' erfc Chebyshev fit), for the exact (erf) GELU torch uses by default. */
function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

/** assembly/conv1d.ts's exports. */
interface MimiKernels {
  matmulF32Strided(w: number, x: number, y: number, n: number, nTok: number, xStride: number, yStride: number, bias: number,
    r0: number, r1: number): void;
  eluF32(src: number, dst: number, n: number): void;
  addRows(dst: number, src: number, nRows: number, rowLen: number, dstStride: number, srcStride: number): void;
  ringAttention(q: number, keys: number, values: number, out: number, heads: number, dh: number, cap: number, first: number,
    n: number, scale: number, scores: number): void;
}

export class MimiDecoder {
  private codebookTables: Float32Array[] = [];
  private outFirst!: Mat;
  private outRest!: Mat;
  private upsampleW!: Float32Array;
  private tLayers: TLayer[] = [];
  private conv0!: Conv;
  private stages: Stage[] = [];
  private convLast!: Conv;
  /** Scratch buffers in the arena (sized for maxChunk frames). */
  private buf: Record<"x" | "y" | "e" | "h" | "z" | "t0" | "t1" | "t2" | "t3", number> = {} as never;
  /** RoPE frequency of each pair: max_period^(−2i/dh). */
  private ropeFreq!: Float32Array;

  private constructor(readonly config: MimiConfig, readonly layout: MimiLayout, private shard: Shard,
    readonly maxChunk: number, readonly threads: number) {}

  /** Load the decoder half of a Mimi safetensors file (moshi or transformers names; F32, F16 or BF16). */
  static async load(bytes: Uint8Array, opts: MimiLoadOptions = {}): Promise<MimiDecoder> {
    if (!(bytes instanceof Uint8Array)) {
      throw new Lfm2Error("BAD_INPUT", "the Mimi weights must be the bytes of a safetensors file");
    }
    const src = new TensorSource(bytes);
    const layout = mimiLayoutOf(src.names());
    const N = NAMES[layout];
    const codebooks = opts.codebooks ?? 8, heads = opts.heads ?? 8, context = opts.context ?? 250;
    const maxChunk = opts.maxChunkFrames ?? 16;
    const counts = [["codebooks", codebooks], ["heads", heads], ["context", context], ["maxChunkFrames", maxChunk]] as const;
    for (const [k, v] of counts) {
      if (!Number.isInteger(v) || v < 1) throw new Lfm2Error("BAD_INPUT", `${k} must be a positive integer, got ${v}`);
    }
    // shapes that fix the config
    const first = src.get(N.codebook(true, 0).sum);
    if (first.shape.length !== 2) {
      throw new Lfm2Error("SHAPE_MISMATCH", `${N.codebook(true, 0).sum} must be 2-D, got [${first.shape}]`);
    }
    const [codebookSize, codebookDim] = first.shape;
    const up = src.get(N.upsample);
    if (up.shape.length !== 3 || up.shape[1] !== 1 || up.shape[2] % 2 !== 0) {
      throw new Lfm2Error("SHAPE_MISMATCH", `${N.upsample} must be [D, 1, 2·stride] (depthwise), got [${up.shape}]`);
    }
    const dim = up.shape[0];
    let layers = 0;
    while (src.has(N.layer(layers, layout === "moshi" ? "in" : "q"))) layers++;
    if (layers === 0) throw new Lfm2Error("MISSING_TENSOR", "the Mimi file has no decoder transformer layers");
    const ffDim = src.get(N.layer(0, "lin1")).shape[0];
    if (dim % heads !== 0 || (dim / heads) % 4 !== 0) {
      throw new Lfm2Error("SHAPE_MISMATCH",
        `width ${dim} does not split into ${heads} heads of a multiple of 4 (the attention kernel's step)`);
    }
    // SEANet: module 0 is the input conv, then per stage ELU, ConvTranspose, residual blocks; then ELU, last conv
    const ratios: number[] = [];
    let idx = 1, residualLayers = -1;
    // (transformers names a ConvTranspose like a conv: the last conv is the module with one output channel)
    const isConvTr = (i: number) => {
      const name = N.conv(String(i), "convtr") + ".weight";
      return src.has(name) && src.shape(name)[0] > 1;
    };
    while (isConvTr(idx + 1)) {
      const w = src.get(N.conv(String(idx + 1), "convtr") + ".weight");
      ratios.push(w.shape[2] / 2);
      let j = 0;
      while (src.has(N.conv(`${idx + 2 + j}.block.1`, "conv") + ".weight")) j++;
      if (residualLayers >= 0 && j !== residualLayers) {
        throw new Lfm2Error("SHAPE_MISMATCH", "SEANet stages have different residual block counts");
      }
      residualLayers = j;
      idx += 2 + j;
    }
    if (ratios.length === 0) {
      throw new Lfm2Error("MISSING_TENSOR", `the Mimi file has no SEANet decoder (${N.conv("2", "convtr")}.weight)`);
    }
    const c0 = src.get(N.conv("0", "conv") + ".weight");
    const nFilters = c0.shape[0] >> ratios.length;
    const config: MimiConfig = {
      dim, codebookDim, codebookSize, codebooks, upsampleStride: up.shape[2] / 2, layers, heads, ffDim, context,
      ropeMaxPeriod: 10000, nFilters, ratios, residualLayers, dilationBase: 2,
    };

    let threads = Math.max(1, Math.floor(opts.threads ?? 1));
    if (threads > 1 && !canShareMemory()) threads = 1;
    const module = await compileVariant(chooseVariant(threads > 1, opts), opts);
    // the decoder half as f32 plus scratch (the encoder half of a moshi file is never placed)
    const decoderBytes = src.names().filter((n) => /^(decoder|decoder_transformer|quantizer|upsample)\./.test(n))
      .reduce((a, n) => a + 4 * src.shape(n).reduce((x, y) => x * y, 1), 0);
    const shard = Shard.create(0, decoderBytes + maxChunk * (2 << 20) + (16 << 20), threads > 1);
    await shard.instantiate(module);
    const d = new MimiDecoder(config, layout, shard, maxChunk, threads);
    d.place(src, idx);
    if (threads > 1) {
      try { shard.pool = await WorkerPool.create(threads, module, shard.kernels, shard.arena); } catch { /* single thread */ }
    }
    return d;
  }

  /** Sample rate and samples per frame of the output. */
  get sampleRate(): number { return MIMI_SAMPLE_RATE; }
  get samplesPerFrame(): number { return this.config.upsampleStride * this.config.ratios.reduce((a, b) => a * b, 1); }

  private matrix(data: Float32Array, nOut: number, nIn: number): Mat {
    const ptr = this.shard.arena.alloc(4 * data.length);
    this.shard.arena.f32(ptr, data.length).set(data);
    return { ptr, nOut, nIn };
  }

  private vector(data: Float32Array): number { return this.matrix(data, data.length, 1).ptr; }

  /** torch Conv1d weight [Cout][Cin][K] → rows [Cout][K·Cin] (tap-major: matches the padded input rows). */
  private conv(src: TensorSource, name: string, cin: number | null, cout: number | null, dilation = 1): Conv {
    const N = NAMES[this.layout];
    const w = src.get(N.conv(name, "conv") + ".weight", [cout, cin, null]);
    const [co, ci, k] = w.shape;
    const bias = this.vector(src.get(N.conv(name, "conv") + ".bias", [co]).data);
    const t = new Float32Array(co * k * ci);
    for (let o = 0; o < co; o++) {
      for (let i = 0; i < ci; i++) for (let j = 0; j < k; j++) t[(o * k + j) * ci + i] = w.data[(o * ci + i) * k + j];
    }
    return { w: this.matrix(t, co, k * ci), bias, cin: ci, cout: co, k, dilation };
  }

  /** torch ConvTranspose1d weight [Cin][Cout][K] → rows (k, o) of Cin: Z[t][k·Cout + o] = Σ_i x[t][i]·W[i][o][k]. */
  private convTr(src: TensorSource, name: string, cin: number, stride: number): ConvTr {
    const N = NAMES[this.layout];
    const w = src.get(N.conv(name, "convtr") + ".weight", [cin, null, 2 * stride]);
    const [, co, k] = w.shape;
    const bias = this.vector(src.get(N.conv(name, "convtr") + ".bias", [co]).data);
    const t = new Float32Array(k * co * cin);
    for (let i = 0; i < cin; i++) {
      for (let o = 0; o < co; o++) for (let j = 0; j < k; j++) t[(j * co + o) * cin + i] = w.data[(i * co + o) * k + j];
    }
    return { w: this.matrix(t, k * co, cin), bias, cin, cout: co, k, stride };
  }

  private place(src: TensorSource, lastIdx: number): void {
    const c = this.config, N = NAMES[this.layout], D = c.dim;
    // split RVQ: codebook 0 through rvq_first, the rest through rvq_rest
    for (let q = 0; q < c.codebooks; q++) {
      const names = N.codebook(q === 0, q === 0 ? 0 : q - 1);
      if (!src.has(names.sum)) {
        throw new Lfm2Error("MISSING_TENSOR", `the Mimi file has no ${names.sum} (codebook ${q} of ${c.codebooks})`);
      }
      const sum = src.get(names.sum, [c.codebookSize, c.codebookDim]).data, usage = src.get(names.usage, [c.codebookSize]).data;
      const table = new Float32Array(sum.length);
      for (let r = 0; r < c.codebookSize; r++) {
        const u = Math.max(usage[r], EPS_USAGE);
        for (let j = 0; j < c.codebookDim; j++) table[r * c.codebookDim + j] = sum[r * c.codebookDim + j] / u;
      }
      this.codebookTables.push(table);
    }
    this.outFirst = this.matrix(src.get(N.outProj(true), [D, c.codebookDim, 1]).data, D, c.codebookDim);
    this.outRest = this.matrix(src.get(N.outProj(false), [D, c.codebookDim, 1]).data, D, c.codebookDim);
    this.upsampleW = src.get(N.upsample, [D, 1, 2 * c.upsampleStride]).data;
    for (let l = 0; l < c.layers; l++) {
      const g = (p: Parameters<typeof N.layer>[1], shape: number[]) => src.get(N.layer(l, p), shape).data;
      let inProj: Float32Array;
      if (this.layout === "moshi") inProj = g("in", [3 * D, D]);
      else {
        // transformers permutes q and k rows for its half-split RoPE; undo it to moshi's interleaved pairs
        inProj = new Float32Array(3 * D * D);
        inProj.set(unpermuteRope(g("q", [D, D]), c.heads, D), 0);
        inProj.set(unpermuteRope(g("k", [D, D]), c.heads, D), D * D);
        inProj.set(g("v", [D, D]), 2 * D * D);
      }
      this.tLayers.push({
        norm1w: src.get(N.layer(l, "norm1") + ".weight", [D]).data, norm1b: src.get(N.layer(l, "norm1") + ".bias", [D]).data,
        norm2w: src.get(N.layer(l, "norm2") + ".weight", [D]).data, norm2b: src.get(N.layer(l, "norm2") + ".bias", [D]).data,
        inProj: this.matrix(inProj, 3 * D, D), outProj: this.matrix(g("out", [D, D]), D, D),
        lin1: this.matrix(g("lin1", [c.ffDim, D]), c.ffDim, D), lin2: this.matrix(g("lin2", [D, c.ffDim]), D, c.ffDim),
        scale1: g("scale1", [D]), scale2: g("scale2", [D]),
      });
    }
    let mult = 1 << c.ratios.length, idx = 1;
    this.conv0 = this.conv(src, "0", D, mult * c.nFilters);
    for (const ratio of c.ratios) {
      const ch = mult * c.nFilters;
      const convtr = this.convTr(src, String(idx + 1), ch, ratio);
      if (convtr.cout !== ch / 2) {
        throw new Lfm2Error("SHAPE_MISMATCH",
          `SEANet ConvTranspose ${idx + 1} gives ${convtr.cout} channels, expected ${ch / 2}`);
      }
      const res: ResBlock[] = [];
      for (let j = 0; j < c.residualLayers; j++) {
        const p = `${idx + 2 + j}.block.`;
        const c0 = this.conv(src, p + "1", ch / 2, null, c.dilationBase ** j);
        res.push({ c0, c1: this.conv(src, p + "3", c0.cout, ch / 2), dim: ch / 2 });
      }
      this.stages.push({ convtr, res });
      idx += 2 + c.residualLayers;
      mult >>= 1;
    }
    if (idx !== lastIdx) throw new Lfm2Error("SHAPE_MISMATCH", "SEANet module count disagrees with its stages");
    this.convLast = this.conv(src, String(idx + 1), c.nFilters, null);
    if (this.convLast.cout !== 1) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the last SEANet conv gives ${this.convLast.cout} channels (mono expected)`);
    }

    // scratch, sized by walking the stages for maxChunk frames
    const F = this.maxChunk, T0 = F * c.upsampleStride;
    let rows = T0, big = (T0 + 2 * c.upsampleStride) * Math.max(this.conv0.cout, D);
    let pad = (this.conv0.k - 1) * D + T0 * D, z = 0, hid = 0;
    for (const s of this.stages) {
      z = Math.max(z, rows * s.convtr.k * s.convtr.cout);
      const out = rows * s.convtr.stride;
      big = Math.max(big, (out + s.convtr.k) * s.convtr.cout);
      pad = Math.max(pad, (rows + 1) * s.convtr.cin);
      for (const r of s.res) {
        pad = Math.max(pad, ((r.c0.k - 1) * r.c0.dilation + out) * r.dim);
        hid = Math.max(hid, out * r.c0.cout);
        if (r.c0.dilation > 1) z = Math.max(z, out * r.c0.k * r.dim);
      }
      rows = out;
    }
    pad = Math.max(pad, (this.convLast.k - 1 + rows) * c.nFilters);
    const A = this.shard.arena;
    this.buf = {
      x: A.alloc(4 * big), y: A.alloc(4 * big), e: A.alloc(4 * pad), h: A.alloc(4 * Math.max(hid, rows)),
      z: A.alloc(4 * Math.max(z, 1)),
      t0: A.alloc(4 * T0 * 3 * D), t1: A.alloc(4 * T0 * Math.max(c.ffDim, D)), t2: A.alloc(4 * T0 * D), t3: A.alloc(4 * T0 * D),
    };
    const dh = D / c.heads, half = dh / 2;
    this.ropeFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) this.ropeFreq[i] = Math.exp(i * (-Math.log(c.ropeMaxPeriod) * 2 / dh));
  }

  /** A stream: frames of codes in, their samples out (1920 per frame); `reset()` starts a new utterance. */
  stream(): MimiStream { return new MimiStream(this); }

  /** Frames (frames × codebooks codes, frame-major) → all samples. */
  decode(codes: ArrayLike<number>): Float32Array {
    const s = this.stream();
    try { return s.pushFrames(codes); } finally { s.dispose(); }
  }

  dispose(): void {
    this.shard.pool?.terminate();
    this.shard.pool = null;
  }

  private get f(): Float32Array { return new Float32Array(this.shard.arena.memory.buffer); }
  private get k(): MimiKernels { return this.shard.kernels as unknown as MimiKernels; }

  /** y[t·yStride + r] = Σ_i W[r][i]·x[t·xStride + i] (rows of W split across the pool when it pays). */
  private mm(w: Mat, x: number, xStride: number, nTok: number, y: number, yStride: number, bias = 0): void {
    const k = this.shard.kernels as unknown as MimiKernels, pool = this.shard.pool;
    if (pool && w.nOut * w.nIn * nTok >= PARALLEL_MIN_MACS) {
      const T = pool.size, pairs = Math.ceil(w.nOut / 2), parts: number[][] = [];
      const edge = (t: number) => Math.min(w.nOut, Math.floor((pairs * t) / T) * 2); // row pairs, as the kernel tiles
      for (let t = 0; t < T; t++) parts.push([edge(t), edge(t + 1)]);
      pool.run("matmulF32Strided", [w.ptr, x, y, w.nIn, nTok, xStride, yStride, bias], parts);
    } else k.matmulF32Strided(w.ptr, x, y, w.nIn, nTok, xStride, yStride, bias, 0, w.nOut);
  }

  /** Frames of codes → latent rows [F][D] at buffer t2. */
  latent(codes: ArrayLike<number>, off: number, F: number): void {
    const c = this.config, E = c.codebookDim, f = this.f;
    const sem = this.buf.t0 >> 2, ac = (this.buf.t0 >> 2) + F * E;
    f.fill(0, sem, sem + 2 * F * E);
    for (let t = 0; t < F; t++) {
      for (let q = 0; q < c.codebooks; q++) {
        const code = codes[off + t * c.codebooks + q];
        if (!Number.isInteger(code) || code < 0 || code >= c.codebookSize) {
          throw new Lfm2Error("BAD_INPUT", `code ${code} of codebook ${q} is outside 0..${c.codebookSize - 1}`);
        }
        const row = this.codebookTables[q].subarray(code * E, (code + 1) * E), o = (q === 0 ? sem : ac) + t * E;
        for (let j = 0; j < E; j++) f[o + j] += row[j];
      }
    }
    this.mm(this.outFirst, this.buf.t0, E, F, this.buf.t2, c.dim);
    this.mm(this.outRest, this.buf.t0 + 4 * F * E, E, F, this.buf.t3, c.dim);
    const a = this.buf.t2 >> 2, b = this.buf.t3 >> 2;
    for (let i = 0; i < F * c.dim; i++) f[a + i] += f[b + i];
  }

  /** Depthwise ConvTranspose (no bias), latent t2 [F][D] → x [F·S][D]; `partial` carries the overlap. */
  upsample(F: number, partial: Float32Array): void {
    const c = this.config, D = c.dim, S = c.upsampleStride, K = 2 * S, f = this.f, x = this.buf.x >> 2, src = this.buf.t2 >> 2;
    const rows = F * S + K - S;
    f.fill(0, x, x + rows * D);
    f.set(partial, x);
    const w = this.upsampleW;
    for (let t = 0; t < F; t++) {
      for (let k = 0; k < K; k++) {
        const o = x + (t * S + k) * D, s = src + t * D;
        for (let ch = 0; ch < D; ch++) f[o + ch] += f[s + ch] * w[ch * K + k];
      }
    }
    partial.set(f.subarray(x + F * S * D, x + rows * D));
  }

  /** The transformer over x [T][D] in place; KV rings and the position live in `st`. */
  transformer(T: number, st: MimiStreamState): void {
    const c = this.config, D = c.dim, H = c.heads, dh = D / H, half = dh / 2, cap = c.context, f = this.f;
    const x = this.buf.x >> 2, nrm = this.buf.t2 >> 2, qkv = this.buf.t0 >> 2, att = this.buf.t3 >> 2, ff = this.buf.t1 >> 2;
    const scale = 1 / Math.sqrt(dh), kern = this.k;
    for (let l = 0; l < c.layers; l++) {
      const L = this.tLayers[l], kc = st.keys[l] >> 2, vc = st.values[l] >> 2;
      layerNorm(f, x, nrm, T, D, L.norm1w, L.norm1b);
      this.mm(L.inProj, this.buf.t2, D, T, this.buf.t0, 3 * D);
      for (let t = 0; t < T; t++) {
        const pos = st.pos + t, base = qkv + t * 3 * D;
        // interleaved RoPE on q and k (pairs 2i, 2i+1); the angle rounded to f32 as moshi computes it
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < half; i++) {
            const a = Math.fround(pos * this.ropeFreq[i]), cs = Math.cos(a), sn = Math.sin(a);
            for (const off of [base + h * dh + 2 * i, base + D + h * dh + 2 * i]) {
              const re = f[off], im = f[off + 1];
              f[off] = re * cs - im * sn; f[off + 1] = re * sn + im * cs;
            }
          }
        }
        // write this step's key and value, then attend (later steps of the chunk never see an overwritten row)
        const slot = (pos % cap) * D;
        f.copyWithin(kc + slot, base + D, base + 2 * D);
        f.copyWithin(vc + slot, base + 2 * D, base + 3 * D);
        const first = Math.max(0, pos - cap + 1);
        kern.ringAttention(4 * base, st.keys[l], st.values[l], 4 * (att + t * D), H, dh, cap, first, pos - first + 1, scale,
          st.scores);
      }
      this.mm(L.outProj, this.buf.t3, D, T, this.buf.t2, D);
      for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) f[x + t * D + i] += L.scale1[i] * f[nrm + t * D + i];
      layerNorm(f, x, nrm, T, D, L.norm2w, L.norm2b);
      this.mm(L.lin1, this.buf.t2, D, T, this.buf.t1, c.ffDim);
      for (let i = 0; i < T * c.ffDim; i++) { const v = f[ff + i]; f[ff + i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2)); }
      this.mm(L.lin2, this.buf.t1, c.ffDim, T, this.buf.t2, D);
      for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) f[x + t * D + i] += L.scale2[i] * f[nrm + t * D + i];
    }
    st.pos += T;
  }

  /**
   * Causal conv of rows [T][cin] at `src` (ELU first when `elu`) into `dst` [T][cout]: the history rows (the last
   * (K−1)·dilation inputs, zeros at the start) go in front, so output t sees inputs t−(K−1)·d … t.
   */
  convStep(cv: Conv, hist: Float32Array, src: number, T: number, dst: number, elu: boolean): void {
    const f = this.f, ci = cv.cin, pad = (cv.k - 1) * cv.dilation, e = this.buf.e >> 2;
    let input = src;
    if (pad > 0 || elu) {
      f.set(hist, e);
      const s = src >> 2, o = e + pad * ci;
      if (elu) this.k.eluF32(src, 4 * o, T * ci);
      else f.copyWithin(o, s, s + T * ci);
      input = this.buf.e;
      hist.set(f.subarray(e + T * ci, e + (T + pad) * ci));
    }
    if (cv.dilation === 1) this.mm(cv.w, input, ci, T, dst, cv.cout, cv.bias);
    else {
      // dilated: gather the K taps of each output row (im2col) — moshi's decoder has none at 1 residual layer
      const z = this.buf.z >> 2, n = cv.k * ci, inp = input >> 2;
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < cv.k; k++) {
          const from = inp + (t + k * cv.dilation) * ci;
          f.copyWithin(z + t * n + k * ci, from, from + ci);
        }
      }
      this.mm(cv.w, this.buf.z, n, T, dst, cv.cout, cv.bias);
    }
  }

  /** ELU then ConvTranspose of rows [T][cin] into dst [T·S][cout]; `partial` holds the K−S overlap rows (no bias). */
  convTrStep(ct: ConvTr, partial: Float32Array, src: number, T: number, dst: number): void {
    const f = this.f, kern = this.k;
    kern.eluF32(src, this.buf.e, T * ct.cin);
    this.mm(ct.w, this.buf.e, ct.cin, T, this.buf.z, ct.k * ct.cout);
    const S = ct.stride, C = ct.cout, row = ct.k * C, d = dst >> 2, total = (T * S + ct.k - S) * C;
    f.fill(0, d, d + total);
    f.set(partial, d);
    // output rows t·S … t·S + K − 1 are contiguous, as are Z's K·C values of input t
    kern.addRows(dst, this.buf.z, T, row, S * C, row);
    partial.set(f.subarray(d + T * S * C, d + total));
    kern.addRows(dst, ct.bias, T * S, C, C, 0);
  }

  /** x [T][D] → samples [T·hop] via the SEANet decoder, states in `st`. */
  seanet(T: number, st: MimiStreamState): Float32Array {
    const f = this.f;
    let cur = this.buf.y, other = this.buf.x, rows = T, si = 0;
    this.convStep(this.conv0, st.convHist[si++], this.buf.x, T, cur, false);
    for (let s = 0; s < this.stages.length; s++) {
      const stg = this.stages[s];
      this.convTrStep(stg.convtr, st.trPartial[s], cur, rows, other);
      [cur, other] = [other, cur];
      rows *= stg.convtr.stride;
      for (const r of stg.res) {
        this.convStep(r.c0, st.convHist[si++], cur, rows, this.buf.h, true);
        this.convStep(r.c1, st.convHist[si++], this.buf.h, rows, other, true);
        this.k.addRows(cur, other, 1, rows * r.dim, 0, 0); // true skip: x + block(x)
      }
    }
    this.convStep(this.convLast, st.convHist[si++], cur, rows, other, true);
    return f.slice(other >> 2, (other >> 2) + rows);
  }

  /** Give a stream state's arena blocks back. */
  freeState(st: MimiStreamState): void {
    for (const p of [...st.keys, ...st.values, st.scores]) this.shard.arena.free(p);
  }

  /** Fresh per-stream state: conv histories, transposed-conv overlaps, KV rings. */
  newState(): MimiStreamState {
    const c = this.config, convs: Conv[] = [this.conv0];
    for (const s of this.stages) for (const r of s.res) convs.push(r.c0, r.c1);
    convs.push(this.convLast);
    const A = this.shard.arena, ring = () => A.alloc(4 * c.context * c.dim);
    return {
      pos: 0,
      upPartial: new Float32Array(c.upsampleStride * c.dim),
      keys: this.tLayers.map(ring),
      values: this.tLayers.map(ring),
      scores: A.alloc(4 * c.context),
      convHist: convs.map((cv) => new Float32Array((cv.k - 1) * cv.dilation * cv.cin)),
      trPartial: this.stages.map((s) => new Float32Array((s.convtr.k - s.convtr.stride) * s.convtr.cout)),
    };
  }
}

export interface MimiStreamState {
  pos: number;
  upPartial: Float32Array;
  /** KV rings (context × dim floats per layer) and the attention scores row, in the arena. */
  keys: number[];
  values: number[];
  scores: number;
  convHist: Float32Array[];
  trPartial: Float32Array[];
}

export class MimiStream {
  private st: MimiStreamState;
  private disposed = false;
  constructor(private d: MimiDecoder) { this.st = d.newState(); }

  /** One frame of codes → its samples (1920). */
  push(codes: ArrayLike<number>): Float32Array {
    const K = this.d.config.codebooks;
    if (codes.length !== K) throw new Lfm2Error("BAD_INPUT", `a frame has ${K} codes, got ${codes.length}`);
    return this.pushFrames(codes);
  }

  /** Several frames (frame-major codes) → their samples, decoded in chunks of at most maxChunk frames. */
  pushFrames(codes: ArrayLike<number>): Float32Array {
    if (this.disposed) throw new Lfm2Error("BAD_INPUT", "this Mimi stream was disposed");
    const d = this.d, K = d.config.codebooks;
    if (codes.length % K !== 0) throw new Lfm2Error("BAD_INPUT", `codes come in frames of ${K}`);
    const frames = codes.length / K, out = new Float32Array(frames * d.samplesPerFrame);
    for (let f0 = 0; f0 < frames; f0 += d.maxChunk) {
      const F = Math.min(d.maxChunk, frames - f0), T = F * d.config.upsampleStride;
      d.latent(codes, f0 * K, F);
      d.upsample(F, this.st.upPartial);
      d.transformer(T, this.st);
      out.set(d.seanet(T, this.st), f0 * d.samplesPerFrame);
    }
    return out;
  }

  /**
   * End of an audio segment: nothing is held back (the decoder is causal) and the state carries on, as in
   * liquid-audio's chat demo, which decodes every segment of one generation inside one `mimi.streaming(1)` and
   * skips the end-of-audio frames.
   */
  end(): Float32Array { return new Float32Array(0); }

  /** Forget the past: the next frame decodes as the first of an utterance. */
  reset(): void {
    this.d.freeState(this.st);
    this.st = this.d.newState();
  }

  /** Free the stream's KV rings; the stream is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.d.freeState(this.st);
  }
}

function layerNorm(f: Float32Array, src: number, dst: number, T: number, D: number, w: Float32Array, b: Float32Array): void {
  for (let t = 0; t < T; t++) {
    const s = src + t * D, o = dst + t * D;
    let mean = 0;
    for (let i = 0; i < D; i++) mean += f[s + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) { const x = f[s + i] - mean; v += x * x; }
    const inv = 1 / Math.sqrt(v / D + LN_EPS);
    for (let i = 0; i < D; i++) f[o + i] = (f[s + i] - mean) * inv * w[i] + b[i];
  }
}

/**
 * transformers' conversion stores q/k rows per head as [half][2] → [2][half] (for its rotate-half RoPE):
 * row c·half + i of a head came from row 2i + c. Put them back in moshi's interleaved order.
 */
function unpermuteRope(w: Float32Array, heads: number, dim: number): Float32Array {
  const dh = dim / heads, half = dh / 2, out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) for (let c = 0; c < 2; c++) for (let i = 0; i < half; i++) {
    out.set(w.subarray((h * dh + c * half + i) * dim, (h * dh + c * half + i + 1) * dim), (h * dh + 2 * i + c) * dim);
  }
  return out;
}

/** The inverse of unpermuteRope (for writing transformers-layout files in tests). */
export function permuteRopeForHf(w: Float32Array, heads: number, dim: number): Float32Array {
  const dh = dim / heads, half = dh / 2, out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) for (let c = 0; c < 2; c++) for (let i = 0; i < half; i++) {
    out.set(w.subarray((h * dh + 2 * i + c) * dim, (h * dh + 2 * i + c + 1) * dim), (h * dh + c * half + i) * dim);
  }
  return out;
}
