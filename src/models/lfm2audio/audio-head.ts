// LFM2-Audio's audio head, the "depthformer" (docs/lfm2-audio-out.md §1): the backbone's last hidden state →
// depth_linear → 8 inputs of width Dd; codebook c runs one step of a small causal transformer (KV cache over the
// 8 depth positions) on input_c + embedding of code c−1, then RMSNorm_c → to_logits_c over 2049 codes.
// Weights from a vocoder GGUF in llama.cpp's convert_vocoder_to_gguf.py names. The transformer runs either in
// plain f32 JavaScript (the reference) or on the engine: the depthformer is then written as an `lfm2` GGUF of
// attention-only layers (qkv split into q/k/v; its adjacent-pair RoPE turned into the engine's NeoX halves by
// permuting each q/k head's rows and norm weights, which leaves every q·k product unchanged; unit final norm,
// the per-codebook norm weight applied after) and loaded like any model (kernels, threads); depth_linear and the
// output tables then sit in its memory as matrices too.
// Checked against an independent PyTorch implementation of liquid-audio's code (scripts/reference/audio_head_ref.py,
// test/audio/audio-head-torch.test.ts): logits with forced codes, greedy codes, frame embeddings.
import { Lfm2Error } from "../../errors.js";
import { parseGguf } from "../../formats/gguf.js";
import { f16ToF32 } from "../../formats/fp16.js";
import { metaNumber } from "../../formats/gguf.js";
import { encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../../formats/gguf-writer.js";
import { quantizeTensor } from "../../formats/quantize.js";
import { ggmlTypeByName, kernelsFor, rowBytes, type GgmlType, type GgmlTypeName, type Matrix }
  from "../../core/quant-types.js";
import type { Ops } from "../../../bindings/ops.js";
import type { Lfm2Forward, Lfm2State } from "../lfm2/forward.js";

export const HEAD_CODEBOOKS = 8;
/** 2048 Mimi codes + end-of-audio (2048). */
export const HEAD_VOCAB = 2049;
export const END_OF_AUDIO = 2048;
const HEADS = 32, KV_HEADS = 8, EPS = 1e-5, THETA = 1e6;

export interface F32Tensor { shape: number[]; data: Float32Array }

/** F32/F16 tensors of a GGUF by name (the vocoder file is small enough to hold as f32). */
export function readF32Tensors(gguf: Uint8Array): { tensors: Map<string, F32Tensor>; meta: ReturnType<typeof parseGguf>["metadata"] } {
  const f = parseGguf(gguf), tensors = new Map<string, F32Tensor>();
  for (const t of f.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1), data = new Float32Array(n);
    const dv = new DataView(gguf.buffer, gguf.byteOffset + t.offset, t.byteLength);
    if (t.type.name === "F32") for (let i = 0; i < n; i++) data[i] = dv.getFloat32(4 * i, true);
    else if (t.type.name === "F16") for (let i = 0; i < n; i++) data[i] = f16ToF32(dv.getUint16(2 * i, true));
    else throw new Lfm2Error("UNSUPPORTED_TYPE", `${t.name}: ${t.type.name} (the audio head reads F32 or F16)`);
    tensors.set(t.name, { shape: t.shape, data });
  }
  return { tensors, meta: f.metadata };
}

export interface SampleOptions {
  /** ≤ 0 or undefined: greedy (argmax), as liquid-audio. */
  temperature?: number;
  topK?: number;
  /** Uniform [0, 1) source for sampling (seeded for reproducible audio). */
  random?: () => number;
}

interface Layer { opNorm: Float32Array; qkv: Float32Array; qNorm: Float32Array; kNorm: Float32Array; out: Float32Array;
  ffnNorm: Float32Array; w1: Float32Array; w2: Float32Array; w3: Float32Array }

export class AudioHead {
  readonly backboneDim: number; readonly dim: number; readonly ffDim: number; readonly nLayers: number; readonly headDim: number;
  private layers: Layer[] = [];
  private linW: Float32Array; private linB: Float32Array;
  private cbEmbed: Float32Array[] = []; private cbNorm: Float32Array[] = []; private cbLogits: Float32Array[] = [];
  private audioEmbed: Float32Array;
  private engine: EngineHead | null = null;

  /** `source` names the file and its tensors in messages (the HF checkpoint spells some names differently). */
  constructor(t: Map<string, F32Tensor>, nLayers: number,
    source: { file: string; name(n: string): string } = { file: "the vocoder file", name: (n) => n }) {
    const get = (name: string, shape?: number[]) => {
      const x = t.get(name);
      if (!x) throw new Lfm2Error("MISSING_TENSOR", `${source.file} has no ${source.name(name)}`);
      if (shape && (x.shape.length !== shape.length || x.shape.some((v, i) => v !== shape[i]))) {
        throw new Lfm2Error("SHAPE_MISMATCH",
          `${source.name(name)} is {${x.shape.join(", ")}}, expected {${shape.join(", ")}}`);
      }
      return x;
    };
    const lin = get("depth_linear.weight");
    this.backboneDim = lin.shape[0];
    this.dim = lin.shape[1] / HEAD_CODEBOOKS;
    if (!Number.isInteger(this.dim) || this.dim % HEADS !== 0) throw new Lfm2Error("SHAPE_MISMATCH", `depth_linear width ${lin.shape[1]} is not 8 × a multiple of 32`);
    if (!Number.isInteger(nLayers) || nLayers < 1 || nLayers > 64) throw new Lfm2Error("BAD_METADATA", `depthformer_n_layer ${nLayers} is out of range`);
    this.nLayers = nLayers; this.headDim = this.dim / HEADS;
    const Dd = this.dim, dh = this.headDim;
    this.linW = lin.data; this.linB = get("depth_linear.bias", [HEAD_CODEBOOKS * Dd]).data;
    this.ffDim = get("depthformer.layers.0.feed_forward.w1.weight").shape[1];
    for (let l = 0; l < nLayers; l++) {
      const p = `depthformer.layers.${l}.`;
      this.layers.push({ opNorm: get(p + "operator_norm.weight", [Dd]).data, qkv: get(p + "operator.qkv_proj.weight", [Dd, Dd + 2 * KV_HEADS * dh]).data,
        qNorm: get(p + "operator.attention.q_layernorm.weight", [dh]).data, kNorm: get(p + "operator.attention.k_layernorm.weight", [dh]).data,
        out: get(p + "operator.out_proj.weight", [Dd, Dd]).data, ffnNorm: get(p + "ffn_norm.weight", [Dd]).data,
        w1: get(p + "feed_forward.w1.weight", [Dd, this.ffDim]).data, w2: get(p + "feed_forward.w2.weight", [this.ffDim, Dd]).data,
        w3: get(p + "feed_forward.w3.weight", [Dd, this.ffDim]).data });
    }
    for (let c = 0; c < HEAD_CODEBOOKS; c++) {
      const p = `depth_embeddings.${c}.`;
      this.cbEmbed.push(get(p + "embedding.weight", [Dd, HEAD_VOCAB]).data);
      this.cbNorm.push(get(p + "embedding_norm.weight", [Dd]).data);
      this.cbLogits.push((t.get(p + "to_logits.weight") ?? get(p + "embedding.weight")).data); // tied when absent
    }
    this.audioEmbed = get("audio_embedding.embedding.weight", [this.backboneDim, HEAD_CODEBOOKS * HEAD_VOCAB]).data;
  }

  /** The backbone input of a generated frame: Σ_c audio_embedding[c·2049 + code_c]. */
  frameEmbedding(codes: ArrayLike<number>): Float32Array {
    const D = this.backboneDim, out = new Float32Array(D);
    for (let c = 0; c < HEAD_CODEBOOKS; c++) {
      const code = codes[c];
      if (!Number.isInteger(code) || code < 0 || code >= HEAD_VOCAB) throw new Lfm2Error("BAD_INPUT", `audio code ${code} is outside 0..2048`);
      const row = (c * HEAD_VOCAB + code) * D;
      for (let j = 0; j < D; j++) out[j] += this.audioEmbed[row + j];
    }
    return out;
  }

  /**
   * One frame's 8 codes from the backbone's last hidden state (D floats). If codebook 0 gives end-of-audio
   * (2048) the frame is all 2048, as liquid-audio and llama.cpp return it. `logits` (optional) receives each
   * codebook's logits (8 × 2049) for inspection.
   */
  sampleFrame(hidden: Float32Array, opts: SampleOptions = {}, logits?: Float32Array): Int32Array {
    const greedy = !(opts.temperature !== undefined && opts.temperature > 0) || opts.topK === 1;
    if (!greedy && !opts.random) throw new Lfm2Error("BAD_INPUT", "sampling needs a random source");
    const pick = (_: number, lg: Float32Array) => (greedy ? argmax(lg) : sample(lg, opts.temperature!, opts.topK, opts.random!));
    const codes = this.runFrame(hidden, pick, logits);
    if (codes[0] === END_OF_AUDIO) codes.fill(END_OF_AUDIO);
    return codes;
  }

  /** The 8 codebooks' logits (8 × 2049) with the given codes fed back (teacher forcing), as training sees them. */
  frameLogits(hidden: Float32Array, codes: ArrayLike<number>): Float32Array {
    if (codes.length !== HEAD_CODEBOOKS) {
      throw new Lfm2Error("BAD_INPUT", `a frame has ${HEAD_CODEBOOKS} codes, got ${codes.length}`);
    }
    for (let c = 0; c < HEAD_CODEBOOKS; c++) {
      const v = codes[c];
      if (!Number.isInteger(v) || v < 0 || v >= HEAD_VOCAB) throw new Lfm2Error("BAD_INPUT", `audio code ${v} is outside 0..2048`);
    }
    const out = new Float32Array(HEAD_CODEBOOKS * HEAD_VOCAB);
    this.runFrame(hidden, (c) => codes[c], out);
    return out;
  }

  /** Codebooks 0..7 in turn; `pick(c, logits)` chooses the code fed back to codebook c + 1. */
  private runFrame(hidden: Float32Array, pick: (c: number, logits: Float32Array) => number, logits?: Float32Array) {
    const D = this.backboneDim, Dd = this.dim, dh = this.headDim;
    if (hidden.length !== D) {
      throw new Lfm2Error("BAD_INPUT", `the audio head takes a ${D}-wide hidden state, got ${hidden.length}`);
    }
    const e = this.engine;
    const depthIn = e ? e.depthInput(hidden) : matvec(this.linW, hidden, D, HEAD_CODEBOOKS * Dd);
    for (let i = 0; i < depthIn.length; i++) depthIn[i] += this.linB[i];
    const kvw = KV_HEADS * dh;
    const kCache = e ? [] : this.layers.map(() => new Float32Array(HEAD_CODEBOOKS * kvw));
    const vCache = e ? [] : this.layers.map(() => new Float32Array(HEAD_CODEBOOKS * kvw));
    const codes = new Int32Array(HEAD_CODEBOOKS);
    let prev = -1;
    for (let c = 0; c < HEAD_CODEBOOKS; c++) {
      // row c of depth_linear's output (the "(C D)" split) plus the embedding of code c − 1 in codebook c − 1's table
      const x = depthIn.subarray(c * Dd, (c + 1) * Dd);
      if (prev >= 0) for (let j = 0; j < Dd; j++) x[j] += this.cbEmbed[c - 1][prev * Dd + j];
      let lg: Float32Array;
      if (e) lg = e.codebookLogits(x, c, this.cbNorm[c]);
      else {
        for (let l = 0; l < this.nLayers; l++) this.layerStep(l, x, c, kCache[l], vCache[l]);
        lg = matvec(this.cbLogits[c], rmsNorm(x, this.cbNorm[c]), Dd, HEAD_VOCAB);
      }
      if (logits) logits.set(lg, c * HEAD_VOCAB);
      prev = pick(c, lg);
      codes[c] = prev;
    }
    return codes;
  }

  /**
   * Run the head on the engine from now on (`fwd` from loadModel(this.engineGguf(…))): the depthformer's layers,
   * and depth_linear and the 8 output tables as matrices of the depthformer's weight type in its memory, so
   * every matmul of a frame runs on the kernels and the worker threads. JS keeps the O(D) vector steps.
   */
  useEngine(fwd: Lfm2Forward): void {
    const c = fwd.cfg;
    if (c.hiddenSize !== this.dim || c.nLayers !== this.nLayers || fwd.maxTok < 1) throw new Lfm2Error("SHAPE_MISMATCH", "the engine depthformer does not match the head");
    this.engine?.release();
    this.engine = new EngineHead(fwd, this.linW, this.backboneDim, this.dim, this.cbLogits);
  }

  /** The depthformer as an lfm2 GGUF (attention-only layers, NeoX-permuted q/k heads, unit final norm). */
  engineGguf(weightType: GgmlTypeName = "F32"): Uint8Array[] {
    const Dd = this.dim, dh = this.headDim, kvw = KV_HEADS * dh, type = ggmlTypeByName(weightType), f32 = ggmlTypeByName("F32");
    const perm = Array.from({ length: dh }, (_, i) => (i < dh / 2 ? 2 * i : 2 * (i - dh / 2) + 1));
    const permHeads = (rows: Float32Array, heads: number) => { // rows: heads·dh rows of Dd
      const out = new Float32Array(rows.length);
      for (let h = 0; h < heads; h++) for (let i = 0; i < dh; i++) out.set(rows.subarray((h * dh + perm[i]) * Dd, (h * dh + perm[i] + 1) * Dd), (h * dh + i) * Dd);
      return out;
    };
    const permVec = (v: Float32Array) => Float32Array.from(perm, (p) => v[p]);
    const t: GgufWriteTensor[] = [];
    const mat = (name: string, v: Float32Array, nIn: number, nOut: number) => t.push({ name, shape: [nIn, nOut], type, data: quantizeTensor(type, v, nIn) });
    const vec = (name: string, v: Float32Array) => t.push({ name, shape: [v.length], type: f32, data: new Uint8Array(v.slice().buffer) });
    t.push({ name: "token_embd.weight", shape: [Dd, 8], type: f32, data: new Uint8Array(Dd * 8 * 4) }); // never read: embeddings go in
    vec("token_embd_norm.weight", new Float32Array(Dd).fill(1));
    this.layers.forEach((L, l) => {
      const p = `blk.${l}.`;
      vec(p + "attn_norm.weight", L.opNorm);
      mat(p + "attn_q.weight", permHeads(L.qkv.subarray(0, Dd * Dd), HEADS), Dd, Dd);
      mat(p + "attn_k.weight", permHeads(L.qkv.subarray(Dd * Dd, (Dd + kvw) * Dd), KV_HEADS), Dd, kvw);
      mat(p + "attn_v.weight", L.qkv.slice((Dd + kvw) * Dd, (Dd + 2 * kvw) * Dd), Dd, kvw);
      mat(p + "attn_output.weight", L.out, Dd, Dd);
      vec(p + "attn_q_norm.weight", permVec(L.qNorm)); vec(p + "attn_k_norm.weight", permVec(L.kNorm));
      vec(p + "ffn_norm.weight", L.ffnNorm);
      mat(p + "ffn_gate.weight", L.w1, Dd, this.ffDim); mat(p + "ffn_up.weight", L.w3, Dd, this.ffDim); mat(p + "ffn_down.weight", L.w2, this.ffDim, Dd);
    });
    const meta: Record<string, GgufWriteValue> = {
      "general.architecture": { type: "string", value: "lfm2" }, "general.name": { type: "string", value: "LFM2-Audio depthformer" },
      "lfm2.context_length": { type: "u32", value: HEAD_CODEBOOKS }, "lfm2.embedding_length": { type: "u32", value: Dd },
      "lfm2.block_count": { type: "u32", value: this.nLayers }, "lfm2.feed_forward_length": { type: "u32", value: this.ffDim },
      "lfm2.attention.head_count": { type: "u32", value: HEADS },
      "lfm2.attention.head_count_kv": { type: "i32[]", value: new Array(this.nLayers).fill(KV_HEADS) },
      "lfm2.rope.freq_base": { type: "f32", value: THETA }, "lfm2.attention.layer_norm_rms_epsilon": { type: "f32", value: EPS },
      "lfm2.vocab_size": { type: "u32", value: 8 }, "lfm2.shortconv.l_cache": { type: "u32", value: 3 },
    };
    return encodeGguf(meta, t);
  }

  /** x += Attn(RMSNorm(x)) at depth position `pos`; x += SwiGLU(RMSNorm(x)). */
  private layerStep(l: number, x: Float32Array, pos: number, kc: Float32Array, vc: Float32Array): void {
    const L = this.layers[l], Dd = this.dim, dh = this.headDim, kvw = KV_HEADS * dh;
    const qkv = matvec(L.qkv, rmsNorm(x, L.opNorm), Dd, Dd + 2 * kvw);
    for (let h = 0; h < HEADS + KV_HEADS; h++) { // per-head norms, then RoPE on adjacent pairs (ggml NORM)
      const head = qkv.subarray(h * dh, (h + 1) * dh);
      head.set(rmsNorm(head, h < HEADS ? L.qNorm : L.kNorm));
      for (let i = 0; i < dh / 2; i++) {
        const a = pos * Math.pow(THETA, (-2 * i) / dh), cs = Math.cos(a), sn = Math.sin(a);
        const x0 = head[2 * i], x1 = head[2 * i + 1];
        head[2 * i] = x0 * cs - x1 * sn; head[2 * i + 1] = x0 * sn + x1 * cs;
      }
    }
    kc.set(qkv.subarray(Dd, Dd + kvw), pos * kvw); vc.set(qkv.subarray(Dd + kvw, Dd + 2 * kvw), pos * kvw);
    const att = new Float32Array(Dd), group = HEADS / KV_HEADS, scale = 1 / Math.sqrt(dh), w = new Float64Array(pos + 1);
    for (let h = 0; h < HEADS; h++) {
      const g = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j <= pos; j++) {
        let s = 0;
        for (let i = 0; i < dh; i++) s += qkv[h * dh + i] * kc[j * kvw + g * dh + i];
        w[j] = s * scale; max = Math.max(max, w[j]);
      }
      let sum = 0;
      for (let j = 0; j <= pos; j++) { w[j] = Math.exp(w[j] - max); sum += w[j]; }
      for (let j = 0; j <= pos; j++) for (let i = 0; i < dh; i++) att[h * dh + i] += (w[j] / sum) * vc[j * kvw + g * dh + i];
    }
    const o = matvec(L.out, att, Dd, Dd);
    for (let j = 0; j < Dd; j++) x[j] += o[j];
    const u = rmsNorm(x, L.ffnNorm), g1 = matvec(L.w1, u, Dd, this.ffDim), g3 = matvec(L.w3, u, Dd, this.ffDim);
    for (let i = 0; i < this.ffDim; i++) g1[i] = (g1[i] / (1 + Math.exp(-g1[i]))) * g3[i];
    const y = matvec(L.w2, g1, this.ffDim, Dd);
    for (let j = 0; j < Dd; j++) x[j] += y[j];
  }
}

/** Output tables padded to a multiple of 4 rows (the x4 layouts interleave rows by four). */
const PADDED_VOCAB = Math.ceil(HEAD_VOCAB / 4) * 4;

/**
 * The head's matmuls on the engine: the depthformer (an lfm2 model of attention layers) plus depth_linear and the
 * 8 to_logits tables placed in the depthformer's memory as matrices of its weight type (x4 where the type has it).
 */
class EngineHead {
  private state: Lfm2State;
  private lin: Matrix;
  private tables: Matrix[];
  /** Arena buffers: the backbone state in, depth_linear out, a normalised depthformer output, logits out. */
  private hiddenIn: number; private depthOut: number; private normed: number; private logits: number;

  constructor(readonly fwd: Lfm2Forward, linW: Float32Array, private D: number, private Dd: number,
    toLogits: Float32Array[]) {
    const ops = fwd.ops, a = ops.arena, attn = fwd.w.layers[0].attn;
    if (!attn) throw new Lfm2Error("SHAPE_MISMATCH", "the engine depthformer has no attention layer");
    // the activation buffers are sized for the engine's widest row; the backbone state must fit in them
    if (D > ops.maxWidth) {
      throw new Lfm2Error("SHAPE_MISMATCH", `a ${D}-wide backbone state exceeds the depthformer engine's width ${ops.maxWidth}`);
    }
    const type = attn.q.type;
    this.state = fwd.allocState(HEAD_CODEBOOKS);
    this.lin = placeMatrix(ops, type, linW, D, HEAD_CODEBOOKS * Dd);
    this.tables = toLogits.map((t) => {
      const padded = new Float32Array(PADDED_VOCAB * Dd);
      padded.set(t);
      return placeMatrix(ops, type, padded, Dd, PADDED_VOCAB);
    });
    this.hiddenIn = a.alloc(D * 4); this.depthOut = a.alloc(HEAD_CODEBOOKS * Dd * 4);
    this.normed = a.alloc(Dd * 4); this.logits = a.alloc(PADDED_VOCAB * 4);
  }

  /** depth_linear without its bias (8·Dd floats, a copy). */
  depthInput(hidden: Float32Array): Float32Array {
    const ops = this.fwd.ops, a = ops.arena;
    a.f32(this.hiddenIn, this.D).set(hidden);
    ops.matmul(this.lin, ops.act(this.hiddenIn, this.D, 1), this.depthOut);
    return a.f32(this.depthOut, HEAD_CODEBOOKS * this.Dd).slice();
  }

  /** One depth position through the layers, then the codebook's norm weight and output table (a copy of the logits). */
  codebookLogits(x: Float32Array, c: number, normWeight: Float32Array): Float32Array {
    const f = this.fwd, ops = f.ops, Dd = this.Dd;
    // the engine's final norm has unit weight: it returns x / rms(x); codebook c's embedding_norm weight goes on here
    const h = f.step({ embeddings: x }, c, this.state, "hidden")!;
    const y = ops.arena.f32(this.normed, Dd);
    for (let j = 0; j < Dd; j++) y[j] = h[j] * normWeight[j];
    ops.matmul(this.tables[c], ops.act(this.normed, Dd, 1), this.logits);
    return ops.arena.f32(this.logits, HEAD_VOCAB).slice();
  }

  release(): void {
    this.fwd.releaseState(this.state);
    const a = this.fwd.ops.arena;
    const blocks = [this.lin.ptr, ...this.tables.map((t) => t.ptr), this.hiddenIn, this.depthOut, this.normed, this.logits];
    for (const p of blocks) a.free(p);
  }
}

/** A {nIn, nOut} matrix of `type` made from f32 rows, in the ops' memory (re-interleaved by four where the type can). */
export function placeMatrix(ops: Ops, type: GgmlType, values: Float32Array, nIn: number, nOut: number): Matrix {
  const a = ops.arena, bytes = quantizeTensor(type, values, nIn), rb = rowBytes(type, nIn);
  const x4 = kernelsFor(type, "the audio head").x4;
  if (!x4 || nOut % 4 !== 0) {
    const ptr = a.alloc(bytes.length);
    a.u8(ptr, bytes.length).set(bytes);
    return { ptr, type, nIn, nOut, rowBytes: rb, x4: false };
  }
  const ptr = a.alloc((nOut / 4) * (nIn / 32) * x4.groupBlockBytes);
  const mark = a.mark();
  const src = a.alloc(bytes.length), scratch = a.alloc(4 * rb);
  a.u8(src, bytes.length).set(bytes);
  ops.k[x4.repack as `repack${string}`](ptr, src, nOut, nIn, scratch);
  a.release(mark);
  return { ptr, type, nIn, nOut, rowBytes: rb, x4: true };
}

/** Rows of `nOut` × `nIn` (ggml {nIn, nOut}) times x. */
function matvec(w: Float32Array, x: ArrayLike<number>, nIn: number, nOut: number): Float32Array {
  const y = new Float32Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = 0;
    const r = o * nIn;
    for (let i = 0; i < nIn; i++) s += w[r + i] * x[i];
    y[o] = s;
  }
  return y;
}

function rmsNorm(x: Float32Array, w: Float32Array): Float32Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + EPS), y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * inv * w[i];
  return y;
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

/** logits / T, keep the top k (ties at the k-th value kept, as a `< min` mask does), softmax, one draw. */
export function sample(logits: Float32Array, temperature: number, topK: number | undefined, random: () => number): number {
  const z = Float64Array.from(logits, (v) => v / temperature);
  let min = -Infinity;
  if (topK !== undefined && topK > 0 && topK < z.length) min = z.slice().sort()[z.length - topK]; // numeric typed-array sort
  let max = -Infinity;
  for (const v of z) if (v >= min) max = Math.max(max, v);
  const p = z.map((v) => (v >= min ? Math.exp(v - max) : 0));
  let total = 0;
  for (const v of p) total += v;
  let r = random() * total;
  for (let i = 0; i < p.length; i++) { r -= p[i]; if (r < 0 && p[i] > 0) return i; }
  for (let i = p.length - 1; i >= 0; i--) if (p[i] > 0) return i;
  return 0;
}

/** The head from a vocoder GGUF (keys depthformer_n_layer / depthformer_n_embd, as llama.cpp reads them). */
export function loadAudioHead(gguf: Uint8Array): AudioHead {
  const { tensors, meta } = readF32Tensors(gguf);
  const nLayers = metaNumber(meta, "depthformer_n_layer"), dim = metaNumber(meta, "depthformer_n_embd");
  if (nLayers === undefined || dim === undefined) throw new Lfm2Error("BAD_METADATA", "the vocoder file lacks depthformer_n_layer / depthformer_n_embd");
  const head = new AudioHead(tensors, nLayers);
  if (head.dim !== dim) throw new Lfm2Error("SHAPE_MISMATCH", `depthformer_n_embd ${dim} disagrees with depth_linear (${head.dim})`);
  return head;
}
