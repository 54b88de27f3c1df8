// LFM2-Audio in Liquid AI's Hugging Face layout (LFM2-Audio-1.5B / LFM2.5-Audio-1.5B, liquid-audio's
// LFM2AudioModel): config.json with `lfm` (the text tower's Lfm2Config), `encoder` (ConformerEncoderConfig),
// `preprocessor`, `depthformer`; one model.safetensors (or its shards) holding lfm.* (text tower), conformer.*
// (FastConformer), audio_adapter.model.{0,1,3}.* (LayerNorm → Linear → GELU → Linear) and the audio-out parts
// (audio_embedding.*, depth_*, depthformer.*; not read here). The encoder tensors are mapped to the mmproj names
// the encoder binds, with the transforms of llama.cpp's converter (conversion/gemma.py ConformerAudioModel,
// conversion/lfm2.py LFM2AudioModel, gguf-py tensor_mapping.py "lfm2" entries):
// - conv biases [C] and 1×1 / depthwise kernels keep their bytes (the converter's reshapes only add or drop
//   unit dimensions), so they stream straight in;
// - the conv module's BatchNorm (weight, bias, running_mean, running_var; eps 1e-5 as the converter hard-codes)
//   is folded into one scale and shift: a = w / sqrt(var + eps), b = bias − mean·a (computed in f32 here);
// - the mel filterbank and window are not weights: llama.cpp computes them (src/audio/mel.ts does the same).
// The converter skips nothing else the encoder reads; buffers such as `num_batches_tracked` are ignored.
import { Lfm2Error } from "../../errors.js";
import { parseGguf, type GgufValue, type TensorInfo } from "../../formats/gguf.js";
import { NeedMoreBytes } from "../../formats/gguf.js";
import { ggufToHfName, hfToGgufName, openSafetensorsShards, parseSafetensors } from "../../formats/safetensors.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../formats/safetensors-writer.js";
import { concatChunks } from "../../formats/gguf-writer.js";
import { dequantizeTensor, quantizeTensor } from "../../formats/quantize.js";
import { GGML } from "../../core/quant-types.js";
import type { ByteSource } from "../../io/source.js";
import { Tokenizer, toHfTokenizerConfig, toHfTokenizerJson } from "../../text/tokenizer.js";
import { configFromGguf, type Lfm2Config } from "../lfm2/config.js";
import { audioConfigFromGguf, audioTensorSpecs, type AudioEncoderConfig } from "./config.js";
import { AudioEncoder, type AudioEncoderLoadOptions, type AudioWeightsHeader } from "./encoder.js";

type Json = Record<string, any>;

/** BatchNorm eps: NeMo's BatchNorm1d default, which llama.cpp's converter hard-codes when folding. */
export const BATCH_NORM_EPS = 1e-5;

/** config.json of an LFM2-Audio checkpoint (architectures entry, else the `lfm` + `encoder` sections). */
export function isLfm2AudioConfig(j: Json): boolean {
  if (Array.isArray(j.architectures) && j.architectures.includes("Lfm2AudioForConditionalGeneration")) return true;
  return isObject(j.lfm) && isObject(j.encoder);
}

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The text tower's config: the `lfm` section (an Lfm2Config; model_type "lfm2" unless it says otherwise). */
export function lfm2AudioTextConfig(j: Json): Json {
  if (!isObject(j.lfm)) {
    throw new Lfm2Error("BAD_METADATA", "LFM2-Audio config.json has no `lfm` object (the text tower's config)");
  }
  return { model_type: "lfm2", ...j.lfm };
}

/** Text tower names: liquid-audio keeps HF's Lfm2Model under `lfm.` (the converter renames it to `model.`). */
export function lfm2AudioTextName(name: string): string | undefined {
  return name.startsWith("lfm.") ? hfToGgufName(`model.${name.slice(4)}`) : undefined;
}

// conformer layer modules → mmproj names (tensor_mapping.py, the "# lfm2" rows)
const LAYER: Record<string, string> = {
  norm_feed_forward1: "ffn_norm", "feed_forward1.linear1": "ffn_up", "feed_forward1.linear2": "ffn_down",
  norm_self_att: "ln1", "self_attn.linear_q": "attn_q", "self_attn.linear_k": "attn_k", "self_attn.linear_v": "attn_v",
  "self_attn.linear_out": "attn_out", "self_attn.linear_pos": "linear_pos", norm_conv: "norm_conv",
  "conv.pointwise_conv1": "conv_pw1", "conv.depthwise_conv": "conv_dw", "conv.pointwise_conv2": "conv_pw2",
  norm_feed_forward2: "ffn_norm_1", "feed_forward2.linear1": "ffn_up_1", "feed_forward2.linear2": "ffn_down_1", norm_out: "ln2",
};
const LAYER_HF = Object.fromEntries(Object.entries(LAYER).map(([k, v]) => [v, k]));
/** BatchNorm parts, kept under names no spec has: the sink folds them into conv_norm.{weight,bias}. */
const BATCH_NORM: Record<string, string> = {
  weight: "bn_weight", bias: "bn_bias", running_mean: "bn_mean", running_var: "bn_var",
};

/** HF LFM2-Audio encoder/adapter tensor name → its mmproj name (undefined: not one the encoder reads). */
export function hfAudioName(name: string): string | undefined {
  const n = name.replace(/^model\./, ""); // UNCONFIRMED: a `model.` prefix (transformers ports); liquid-audio has none
  let m = /^conformer\.pre_encode\.conv\.(\d+)\.(weight|bias)$/.exec(n);
  if (m) return `a.conv1d.${m[1]}.${m[2]}`;
  m = /^conformer\.pre_encode\.out\.(weight|bias)$/.exec(n);
  if (m) return `a.pre_encode.out.${m[1]}`;
  m = /^audio_adapter\.model\.(\d+)\.(weight|bias)$/.exec(n);
  if (m) return `mm.a.mlp.${m[1]}.${m[2]}`;
  m = /^conformer\.layers\.(\d+)\.(.+)$/.exec(n);
  if (!m) return undefined;
  const [, l, rest] = m;
  const bias = /^self_attn\.(pos_bias_[uv])$/.exec(rest);
  if (bias) return `a.blk.${l}.${bias[1]}`;
  const bn = /^conv\.batch_norm\.(weight|bias|running_mean|running_var)$/.exec(rest);
  if (bn) return `a.blk.${l}.${BATCH_NORM[bn[1]]}`;
  const mod = /^(.+)\.(weight|bias)$/.exec(rest);
  return mod && LAYER[mod[1]] ? `a.blk.${l}.${LAYER[mod[1]]}.${mod[2]}` : undefined;
}

/** mmproj name → the HF name (the writer's inverse of hfAudioName). */
function audioHfName(name: string): string | undefined {
  let m = /^a\.conv1d\.(\d+)\.(weight|bias)$/.exec(name);
  if (m) return `conformer.pre_encode.conv.${m[1]}.${m[2]}`;
  if (name.startsWith("a.pre_encode.out.")) return `conformer.pre_encode.out.${name.slice(17)}`;
  m = /^mm\.a\.mlp\.(\d+)\.(weight|bias)$/.exec(name);
  if (m) return `audio_adapter.model.${m[1]}.${m[2]}`;
  if (name === "a.position_embd.weight") return "audio_embedding.embedding.weight";
  m = /^a\.blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const [, l, rest] = m;
  if (rest === "pos_bias_u" || rest === "pos_bias_v") return `conformer.layers.${l}.self_attn.${rest}`;
  const mod = /^(.+)\.(weight|bias)$/.exec(rest);
  if (mod && mod[1] === "conv_norm") return `conformer.layers.${l}.conv.batch_norm.${mod[2]}`;
  return mod && LAYER_HF[mod[1]] ? `conformer.layers.${l}.${LAYER_HF[mod[1]]}.${mod[2]}` : undefined;
}

const positiveInt = (v: unknown, what: string): number => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new Lfm2Error("BAD_METADATA", `LFM2-Audio config ${what} is ${JSON.stringify(v)}`);
  }
  return v;
};

/**
 * The encoder config of an LFM2-Audio config.json, widths the config leaves implicit read from the weights (as
 * the mmproj path does). Only the FastConformer variant llama.cpp's lfm2a graph runs is accepted.
 */
export function audioConfigFromHf(j: Json, tensors: TensorInfo[]): AudioEncoderConfig {
  const e = j.encoder;
  if (!isObject(e)) throw new Lfm2Error("BAD_METADATA", "LFM2-Audio config.json has no `encoder` object");
  const text = lfm2AudioTextConfig(j);
  const want = (key: string, value: unknown, dflt: unknown) => {
    const v = e[key] ?? dflt;
    if (v !== value) {
      throw new Lfm2Error("UNSUPPORTED_ARCH",
        `encoder.${key} is ${JSON.stringify(v)}; only ${JSON.stringify(value)} is supported`);
    }
  };
  want("subsampling", "dw_striding", "dw_striding");
  want("subsampling_factor", 8, 8);
  want("self_attention_model", "rel_pos", "rel_pos");
  want("conv_norm_type", "batch_norm", "batch_norm");
  const dModel = positiveInt(e.d_model, "encoder.d_model");
  if (dModel !== 512) {
    throw new Lfm2Error("SHAPE_MISMATCH", `encoder.d_model must be 512 (the relative-position width), got ${dModel}`);
  }
  // feat_out > 0 adds conformer.out_proj, which llama.cpp's graph does not have
  if (e.feat_out !== undefined && e.feat_out !== null && e.feat_out > 0 && e.feat_out !== dModel) {
    throw new Lfm2Error("UNSUPPORTED_ARCH", `encoder.feat_out ${e.feat_out} (an output projection) is not supported`);
  }
  const nHeads = positiveInt(e.n_heads, "encoder.n_heads");
  if (dModel % nHeads !== 0) {
    throw new Lfm2Error("BAD_METADATA", `encoder.n_heads ${nHeads} does not divide d_model ${dModel}`);
  }
  const nMel = positiveInt(e.feat_in, "encoder.feat_in");
  if (nMel % 8 !== 0) throw new Lfm2Error("BAD_METADATA", `encoder.feat_in ${nMel} is not a multiple of 8`);
  const features = j.preprocessor?.features;
  if (features !== undefined && features !== nMel) {
    throw new Lfm2Error("BAD_METADATA", `preprocessor.features ${features} differs from encoder.feat_in ${nMel}`);
  }
  const nLayers = e.n_layers;
  if (!Number.isInteger(nLayers) || nLayers < 0 || nLayers > 256) {
    throw new Lfm2Error("BAD_METADATA", `encoder.n_layers is ${JSON.stringify(nLayers)}`);
  }
  const subChannels = positiveInt(e.subsampling_conv_channels, "encoder.subsampling_conv_channels");
  if (subChannels % 4 !== 0) {
    throw new Lfm2Error("SHAPE_MISMATCH", `subsampling channels ${subChannels} are not a multiple of 4`);
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));
  // FFN and adapter widths from the weights (liquid-audio: d_model·ff_expansion_factor and the text width)
  const rows = (name: string, hf: string) => {
    const t = byName.get(name);
    if (!t) throw new Lfm2Error("MISSING_TENSOR", `checkpoint lacks ${hf}`);
    return t.shape[t.shape.length - 1];
  };
  const ffDim = nLayers > 0 ? rows("a.blk.0.ffn_up.weight", "conformer.layers.0.feed_forward1.linear1.weight")
    : dModel * (e.ff_expansion_factor ?? 4);
  if (e.ff_expansion_factor !== undefined && ffDim !== dModel * e.ff_expansion_factor) {
    throw new Lfm2Error("SHAPE_MISMATCH",
      `feed_forward1.linear1 has ${ffDim} rows, encoder.ff_expansion_factor implies ${dModel * e.ff_expansion_factor}`);
  }
  if (ffDim % 4 !== 0) throw new Lfm2Error("SHAPE_MISMATCH", `FFN width ${ffDim} is not a multiple of 4`);
  const outDim = positiveInt(text.hidden_size, "lfm.hidden_size");
  return {
    dModel, nLayers, nHeads, ffDim, nMel, subChannels,
    convKernel: positiveInt(e.conv_kernel_size ?? 9, "encoder.conv_kernel_size"),
    adapterHidden: rows("mm.a.mlp.1.weight", "audio_adapter.model.1.weight"), outDim, posRows: 1,
  };
}

/** A spec's ggml shape as the HF checkpoint stores it (row-major, slowest first), for messages. */
const torchShape = (shape: number[]) => `[${[...shape].reverse().join(", ")}]`;
const nonUnit = (s: number[]) => s.filter((d) => d !== 1);

/**
 * The header the encoder binds: every spec's tensor checked (shape up to unit dimensions: the converter's
 * reshapes only add or drop those) and given the spec's shape; the folded batch norms as F32 tensors placed
 * past the end of the file (`fileEnd`), filled in after the last byte.
 */
function audioHeader(tensors: TensorInfo[], metadata: Record<string, string>, j: Json, fileEnd: number): AudioWeightsHeader {
  const config = audioConfigFromHf(j, tensors);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const d = config.dModel;
  const out: TensorInfo[] = [...tensors];
  for (const spec of audioTensorSpecs(config)) {
    const bn = /^a\.blk\.(\d+)\.conv_norm\.(weight|bias)$/.exec(spec.name);
    if (bn) {
      for (const part of Object.keys(BATCH_NORM)) {
        const name = `a.blk.${bn[1]}.${BATCH_NORM[part]}`, t = byName.get(name);
        const hf = `conformer.layers.${bn[1]}.conv.batch_norm.${part}`;
        if (!t) throw new Lfm2Error("MISSING_TENSOR", `checkpoint lacks ${hf}`);
        if (nonUnit(t.shape).join() !== String(d)) {
          throw new Lfm2Error("SHAPE_MISMATCH", `${hf} has shape ${torchShape(t.shape)}, expected [${d}]`);
        }
      }
      const l = Number(bn[1]), k = bn[2] === "weight" ? 0 : 1;
      out.push({ name: spec.name, shape: [d], type: GGML.F32, offset: fileEnd + (2 * l + k) * 4 * d, byteLength: 4 * d });
      continue;
    }
    const t = byName.get(spec.name);
    const hf = audioHfName(spec.name) ?? spec.name;
    if (!t) throw new Lfm2Error("MISSING_TENSOR", `checkpoint lacks ${hf}`);
    if (nonUnit(t.shape).join() !== nonUnit(spec.shape).join()) {
      throw new Lfm2Error("SHAPE_MISMATCH",
        `${hf} has shape ${torchShape(t.shape)}, the config implies ${torchShape(spec.shape)}`);
    }
    t.shape = [...spec.shape];
  }
  return { tensors: out, metadata: new Map<string, GgufValue>(Object.entries(metadata)), config };
}

/** Gathers the batch-norm tensors' bytes as they stream past (everything is passed on unchanged). */
function batchNormGatherer(h: AudioWeightsHeader) {
  const wanted = h.tensors.filter((t) => /\.bn_(weight|bias|mean|var)$/.test(t.name)).sort((a, b) => a.offset - b.offset);
  const bufs = new Map(wanted.map((t) => [t.name, new Uint8Array(t.byteLength)]));
  const seen = new Map(wanted.map((t) => [t.name, 0]));
  const wrap = (sink: (offset: number, bytes: Uint8Array) => void) => (offset: number, bytes: Uint8Array) => {
    const end = offset + bytes.length;
    for (const t of wanted) {
      const from = Math.max(offset, t.offset), to = Math.min(end, t.offset + t.byteLength);
      if (to <= from) continue;
      bufs.get(t.name)!.set(bytes.subarray(from - offset, to - offset), from - t.offset);
      seen.set(t.name, seen.get(t.name)! + to - from);
    }
    sink(offset, bytes);
  };
  const values = (name: string): Float32Array => {
    const t = h.tensors.find((x) => x.name === name)!;
    if (seen.get(name) !== t.byteLength) {
      throw new Lfm2Error("TRUNCATED", `the batch-norm tensor ${name} was not read whole`);
    }
    const n = t.byteLength / t.type.blockBytes, b = bufs.get(name)!;
    return t.type === GGML.F32 ? new Float32Array(b.buffer, b.byteOffset, n) : dequantizeTensor(t.type, b, n);
  };
  return { wrap, values };
}

/** Fold BatchNorm (inference) into a scale and shift, in f32 as torch computes the converter's expression. */
export function foldBatchNorm(w: Float32Array, bias: Float32Array, mean: Float32Array, variance: Float32Array,
  eps = BATCH_NORM_EPS): { scale: Float32Array; shift: Float32Array } {
  const n = w.length, scale = new Float32Array(n), shift = new Float32Array(n), e = Math.fround(eps);
  for (let i = 0; i < n; i++) {
    const a = Math.fround(w[i] / Math.fround(Math.sqrt(Math.fround(variance[i] + e))));
    scale[i] = a;
    shift[i] = Math.fround(bias[i] - Math.fround(mean[i] * a));
  }
  return { scale, shift };
}

/**
 * The audio encoder + adapter of an LFM2-Audio checkpoint, streamed from its safetensors file (or the parts of a
 * sharded one, in order); the text tower and audio-out tensors in the same file are skipped.
 */
export async function loadHfAudio(parts: ByteSource[], config: Json,
  opts: AudioEncoderLoadOptions = {}): Promise<AudioEncoder> {
  let gather: ReturnType<typeof batchNormGatherer> | undefined;
  type Sink = (offset: number, bytes: Uint8Array) => void;
  const wrapSink = (h: AudioWeightsHeader, sink: Sink) => (gather ??= batchNormGatherer(h)).wrap(sink);
  const afterStream = (h: AudioWeightsHeader, sink: Sink) => {
    const g = gather!;
    for (let l = 0; l < h.config.nLayers; l++) {
      const p = `a.blk.${l}.`;
      const [w, b, mean, variance] = ["weight", "bias", "mean", "var"].map((k) => g.values(`${p}bn_${k}`));
      const { scale, shift } = foldBatchNorm(w, b, mean, variance);
      for (const [name, v] of [[`${p}conv_norm.weight`, scale], [`${p}conv_norm.bias`, shift]] as const) {
        sink(h.tensors.find((t) => t.name === name)!.offset, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      }
    }
  };
  if (parts.length === 1) {
    const src = parts[0];
    return AudioEncoder.loadWeights({ src, wrapSink, afterStream, parse(prefix) {
      try {
        const f = parseSafetensors(prefix, src.size, hfAudioName);
        return audioHeader(f.tensors, f.metadata, config, src.size);
      } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
    } }, opts);
  }
  const { src, file } = await openSafetensorsShards(parts, opts.signal, hfAudioName);
  const h = audioHeader(file.tensors, file.metadata, config, src.size);
  return AudioEncoder.loadWeights({ src, wrapSink, afterStream, parse: () => h }, opts);
}

// ---------------------------------------------------------------- synthetic writer (tests, tooling)

export interface HfAudioWriteOptions {
  /** Type of every tensor with two or more dimensions (vectors stay F32). */
  dtype?: "F32" | "BF16";
  /** HF tensor names to leave out (malformed-checkpoint tests). */
  omit?: string[];
  /** HF tensor name → shape written in place of the right one (its values are zero-filled to fit). */
  reshape?: Record<string, number[]>;
  /** The audio head's tensors (HF names; they replace the writer's audio_embedding stand-in) and config.depthformer. */
  audioOut?: { tensors: SafetensorsWriteTensor[]; layers: number; dim: number };
}

function f32Values(file: Uint8Array, t: TensorInfo): Float32Array {
  if (t.type !== GGML.F32) {
    throw new Lfm2Error("UNSUPPORTED_TYPE", `the HF writer needs F32 tensors; ${t.name} is ${t.type.name}`);
  }
  return new Float32Array(file.slice(t.offset, t.offset + t.byteLength).buffer);
}

/** A running variance whose f32 sqrt(var + eps) is exactly 2, so the writer's batch norm folds back bit for bit. */
function varianceForScaleTwo(): number {
  const e = Math.fround(BATCH_NORM_EPS);
  for (let v = Math.fround(4 - e), i = 0; i < 64; i++, v = Math.fround(v + 2 ** -21)) {
    if (Math.fround(Math.sqrt(Math.fround(v + e))) === 2) return v;
  }
  throw new Lfm2Error("BAD_INPUT", "no f32 variance folds to a scale of exactly 1/2");
}

/** The text GGUF's tensors under `prefix` (HF names, torch shapes), for the writers of this folder. */
export function hfTextTensors(textGguf: Uint8Array, prefix: string, dtype: "F32" | "BF16"): SafetensorsWriteTensor[] {
  const text = parseGguf(textGguf), out: SafetensorsWriteTensor[] = [];
  for (const t of text.tensors) {
    const hf = ggufToHfName(t.name);
    if (!hf) continue; // not a text-tower tensor (dense_2: the callers map it)
    const conv = t.name.endsWith("shortconv.conv.weight");
    const shape = t.shape.length === 1 ? t.shape : conv ? [t.shape[1], 1, t.shape[0]] : [...t.shape].reverse();
    const d = t.shape.length === 1 || conv ? "F32" : dtype;
    out.push({ name: hf.replace(/^model\./, prefix).replace(/^lm_head\./, `${prefix}lm_head.`), dtype: d, shape,
      data: quantizeTensor(d === "F32" ? GGML.F32 : GGML.BF16, f32Values(textGguf, t), shape[shape.length - 1]) });
  }
  return out;
}

/** The text GGUF's LFM2 config as the `lfm` section (or a detokenizer's config.json) writes it. */
export function hfLfm2ConfigJson(c: Lfm2Config): Json {
  return {
    model_type: "lfm2", hidden_size: c.hiddenSize, num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads,
    num_key_value_heads: Math.max(1, ...c.kvHeads), block_ff_dim: c.ffDim, block_auto_adjust_ff_dim: false,
    layer_types: c.kvHeads.map((h) => (h > 0 ? "full_attention" : "conv")), vocab_size: c.vocabSize, norm_eps: c.normEps,
    rope_theta: c.ropeTheta, conv_L_cache: c.convL, max_position_embeddings: c.contextLength, head_dim: c.headDim,
  };
}

/**
 * The Hugging Face folder (file name → contents) of an LFM2-Audio model given as a text GGUF and an lfm2a mmproj
 * (all F32): names, shapes and layouts as liquid-audio's LFM2AudioModel checkpoint stores them — the inverse of
 * the converter's transforms (batch norm unfolded with mean 0 and a variance whose scale is exactly ½).
 */
export function lfm2AudioHfFolder(textGguf: Uint8Array, mmproj: Uint8Array,
  opts: HfAudioWriteOptions = {}): Map<string, Uint8Array | string> {
  const dtype = opts.dtype ?? "F32";
  const text = parseGguf(textGguf), mm = parseGguf(mmproj);
  const tc = configFromGguf(text.metadata), ac = audioConfigFromGguf(mm.metadata, mm.tensors);
  const out: SafetensorsWriteTensor[] = hfTextTensors(textGguf, "lfm.", dtype);
  const put = (name: string, shape: number[], values: Float32Array) => {
    if (opts.omit?.includes(name)) return;
    const bad = opts.reshape?.[name];
    if (bad) { shape = bad; values = new Float32Array(bad.reduce((a, b) => a * b, 1)); }
    const d = shape.filter((x) => x > 1).length < 2 ? "F32" : dtype;
    const data = quantizeTensor(d === "F32" ? GGML.F32 : GGML.BF16, values, shape[shape.length - 1]);
    out.push({ name, dtype: d, shape, data });
  };
  const variance = varianceForScaleTwo(), d = ac.dModel;
  for (const t of mm.tensors) {
    const name = audioHfName(t.name);
    if (!name) throw new Lfm2Error("BAD_INPUT", `no HF name for mmproj tensor ${t.name}`);
    const values = f32Values(mmproj, t);
    const conv = /^a\.conv1d\.\d+\./.exec(t.name), rest = t.name.replace(/^a\.blk\.\d+\./, "");
    if (rest === "conv_norm.weight") {
      const base = name.slice(0, -"weight".length);
      put(name, [d], values.map((x) => 2 * x)); // scale ½ undoes the doubling exactly
      put(`${base}running_mean`, [d], new Float32Array(d));
      put(`${base}running_var`, [d], new Float32Array(d).fill(variance));
    } else if (rest === "conv_norm.bias") put(name, [d], values);
    else if (conv && t.name.endsWith(".bias")) put(name, [ac.subChannels], values);
    else if (rest === "conv_pw1.weight" || rest === "conv_pw2.weight") put(name, [t.shape[1], t.shape[0], 1], values);
    else if (rest === "conv_dw.weight") put(name, [t.shape[1], 1, t.shape[0]], values);
    else put(name, [...t.shape].reverse(), values);
  }
  const files = new Map<string, Uint8Array | string>();
  if (opts.audioOut) {
    const head = opts.audioOut.tensors.filter((t) => !opts.omit?.includes(t.name));
    const names = new Set(head.map((t) => t.name));
    out.splice(0, out.length, ...out.filter((t) => !names.has(t.name)), ...head);
  }
  files.set("model.safetensors", concatChunks(encodeSafetensors(out, { format: "pt" })));
  files.set("config.json", JSON.stringify({
    architectures: ["Lfm2AudioForConditionalGeneration"], codebooks: 8, tie_audio_embeddings: false,
    interleaved_n_text: 6, interleaved_n_audio: 12, lfm: hfLfm2ConfigJson(tc),
    encoder: {
      feat_in: ac.nMel, feat_out: -1, n_layers: ac.nLayers, d_model: d, subsampling: "dw_striding", subsampling_factor: 8,
      subsampling_conv_channels: ac.subChannels, causal_downsampling: false, ff_expansion_factor: ac.ffDim / d,
      self_attention_model: "rel_pos", n_heads: ac.nHeads, att_context_size: [-1, -1], xscaling: false, untie_biases: true,
      pos_emb_max_len: 5000, conv_kernel_size: ac.convKernel, conv_norm_type: "batch_norm",
    },
    preprocessor: { sample_rate: 16000, normalize: "per_feature", window_size: 0.025, window_stride: 0.01, window: "hann",
      features: ac.nMel, n_fft: 512, log: true, frame_splicing: 1, dither: 1e-5, pad_to: 0, pad_value: 0 },
    depthformer: { layers: opts.audioOut?.layers ?? 6, dim: opts.audioOut?.dim ?? 1024, tie: true },
  }, null, 1));
  const tok = Tokenizer.fromGguf(text.metadata);
  files.set("tokenizer.json", JSON.stringify(toHfTokenizerJson(tok)));
  files.set("tokenizer_config.json", JSON.stringify(toHfTokenizerConfig(tok)));
  const template = text.metadata.get("tokenizer.chat_template");
  if (typeof template === "string") files.set("chat_template.jinja", template);
  return files;
}

