// LFM2-VL in the Hugging Face layout (Lfm2VlForConditionalGeneration): config.json with text_config /
// vision_config, preprocessor_config.json, and one safetensors checkpoint (or its shards) holding
// model.language_model.* (the LFM2 text tower), model.vision_tower.vision_model.* (SigLIP2 NaFlex) and
// model.multi_modal_projector.*. Vision names are mapped to the mmproj names the encoder binds, as llama.cpp's
// convert_hf_to_gguf.py (LFM2VLModel) maps them; a synthetic writer builds the HF twin of a GGUF + mmproj pair.
import { Lfm2Error } from "../../errors.js";
import { parseGguf, type GgufValue, type TensorInfo } from "../../formats/gguf.js";
import { NeedMoreBytes } from "../../formats/gguf.js";
import { ggufToHfName, openSafetensorsShards, parseSafetensors } from "../../formats/safetensors.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../formats/safetensors-writer.js";
import { concatChunks } from "../../formats/gguf-writer.js";
import { quantizeTensor } from "../../formats/quantize.js";
import { GGML } from "../../core/quant-types.js";
import type { ByteSource } from "../../io/source.js";
import { Tokenizer, toHfTokenizerConfig, toHfTokenizerJson } from "../../text/tokenizer.js";
import { configFromGguf } from "../lfm2/config.js";
import { loadVisionWeights, type VisionEncoder, type VisionHeader, type VisionLoadOptions } from "./encoder.js";
import { visionConfigFromGguf, type VisionConfig } from "./mmproj.js";
import type { Lfm2VlImageOptions } from "./preprocess.js";

type Json = Record<string, any>;

/** config.json of an LFM2-VL checkpoint (model_type "lfm2_vl" / "lfm2-vl", or its architectures entry). */
export function isLfm2VlConfig(j: Json): boolean {
  const names = [j.model_type, ...(Array.isArray(j.architectures) ? j.architectures : [])];
  return names.some((n) => n === "lfm2_vl" || n === "lfm2-vl" || n === "Lfm2VlForConditionalGeneration");
}

/** The text tower's config (text_config; model_type "lfm2" unless it says otherwise, as Lfm2VlConfig does). */
export function lfm2VlTextConfig(j: Json): Json {
  const t = j.text_config;
  if (typeof t !== "object" || t === null || Array.isArray(t)) {
    throw new Lfm2Error("BAD_METADATA", "LFM2-VL config.json has no text_config object");
  }
  return { model_type: "lfm2", ...t };
}

// SigLIP2 layer suffixes → mmproj names (clip-impl.h), and the projector's modules
const LAYER: Record<string, string> = {
  "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.out_proj": "attn_out",
  layer_norm1: "ln1", layer_norm2: "ln2", "mlp.fc1": "ffn_up", "mlp.fc2": "ffn_down",
};
const PROJECTOR: Record<string, string> = { layer_norm: "mm.input_norm", linear_1: "mm.1", linear_2: "mm.2" };
const invert = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));
const LAYER_HF = invert(LAYER), PROJECTOR_HF = invert(PROJECTOR);

/** HF LFM2-VL vision/projector tensor name → its mmproj name (undefined: not one the encoder reads, e.g. text). */
export function hfVisionName(name: string): string | undefined {
  const v = /^(?:model\.)?vision_tower\.vision_model\.(.+)\.(weight|bias)$/.exec(name);
  if (v) {
    const [, mod, kind] = v;
    if (mod === "embeddings.patch_embedding") return `v.patch_embd.${kind}`;
    if (mod === "embeddings.position_embedding") return kind === "weight" ? "v.position_embd.weight" : undefined;
    if (mod === "post_layernorm") return `v.post_ln.${kind}`;
    const l = /^encoder\.layers\.(\d+)\.(.+)$/.exec(mod);
    return l && LAYER[l[2]] ? `v.blk.${l[1]}.${LAYER[l[2]]}.${kind}` : undefined;
  }
  const p = /^(?:model\.)?multi_modal_projector\.(\w+)\.(weight|bias)$/.exec(name);
  return p && PROJECTOR[p[1]] ? `${PROJECTOR[p[1]]}.${p[2]}` : undefined;
}

/** mmproj name → the name in an HF LFM2-VL checkpoint (for writers and tests). */
export function visionHfName(g: string): string | undefined {
  const root = "model.vision_tower.vision_model.";
  const m = /^(.+)\.(weight|bias)$/.exec(g);
  if (!m) return undefined;
  const [, mod, kind] = m;
  if (mod === "v.patch_embd") return `${root}embeddings.patch_embedding.${kind}`;
  if (mod === "v.position_embd") return `${root}embeddings.position_embedding.${kind}`;
  if (mod === "v.post_ln") return `${root}post_layernorm.${kind}`;
  const l = /^v\.blk\.(\d+)\.(\w+)$/.exec(mod);
  if (l) return LAYER_HF[l[2]] ? `${root}encoder.layers.${l[1]}.${LAYER_HF[l[2]]}.${kind}` : undefined;
  return PROJECTOR_HF[mod] ? `model.multi_modal_projector.${PROJECTOR_HF[mod]}.${kind}` : undefined;
}

// vision_config.hidden_act → the encoder's FFN activation (SigLIP2 uses the tanh approximation)
const VISION_ACTS: Record<string, VisionConfig["activation"]> = {
  gelu_pytorch_tanh: "gelu", gelu_new: "gelu", quick_gelu: "gelu_quick",
};
// The projector runs the engine's GELU (tanh form, as llama.cpp's ggml_gelu); HF's "gelu" is the erf form,
// which differs by < 1e-3 per activation: the same choice the mmproj path makes.
const PROJECTOR_ACTS = new Set(["gelu", "gelu_pytorch_tanh", "gelu_new"]);

const int = (v: unknown, what: string, dflt?: number): number => {
  const n = v ?? dflt;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new Lfm2Error("BAD_METADATA", `LFM2-VL config ${what} is ${JSON.stringify(v)}`);
  }
  return n;
};

/** The vision config of an LFM2-VL config.json (+ preprocessor_config.json), shapes checked against the tensors. */
export function visionConfigFromHf(j: Json, pre: Json | undefined, tensors: TensorInfo[]): VisionConfig {
  const v = j.vision_config ?? {};
  if (typeof v !== "object" || Array.isArray(v)) throw new Lfm2Error("BAD_METADATA", "LFM2-VL vision_config is not an object");
  const act = VISION_ACTS[v.hidden_act ?? "gelu_pytorch_tanh"];
  if (!act) {
    throw new Lfm2Error("BAD_METADATA", `vision_config.hidden_act ${JSON.stringify(v.hidden_act)} is not supported ` +
      `(${Object.keys(VISION_ACTS).join(", ")})`);
  }
  const projAct = j.projector_hidden_act ?? "gelu";
  if (!PROJECTOR_ACTS.has(projAct)) {
    throw new Lfm2Error("BAD_METADATA", `projector_hidden_act ${JSON.stringify(projAct)} is not supported (${[...PROJECTOR_ACTS].join(", ")})`);
  }
  if (v.num_channels !== undefined && v.num_channels !== 3) {
    throw new Lfm2Error("BAD_METADATA", `vision_config.num_channels is ${v.num_channels}, expected 3`);
  }
  const nPos = int(v.num_patches, "vision_config.num_patches", 256), posSide = Math.round(Math.sqrt(nPos));
  if (posSide * posSide !== nPos) throw new Lfm2Error("BAD_METADATA", `vision_config.num_patches ${nPos} is not a square grid`);
  const text = lfm2VlTextConfig(j);
  const hiddenSize = int(v.hidden_size, "vision_config.hidden_size", 768);
  const nHeads = int(v.num_attention_heads, "vision_config.num_attention_heads", 12);
  const mean = pre?.image_mean ?? [0.5, 0.5, 0.5], std = pre?.image_std ?? [0.5, 0.5, 0.5];
  const okStats = (a: unknown) => Array.isArray(a) && a.length === 3 && a.every((x) => typeof x === "number" && Number.isFinite(x));
  if (!okStats(mean) || !okStats(std) || std.some((x: number) => x === 0)) {
    throw new Lfm2Error("BAD_METADATA", "preprocessor_config image_mean/image_std need 3 finite values (std non-zero)");
  }
  const names = new Set(tensors.map((t) => t.name));
  // HF runs every layer of vision_config (vision_feature_layer is not read by Lfm2VlModel; -1 is the last anyway)
  const nLayers = v.num_hidden_layers ?? 12;
  if (!Number.isInteger(nLayers) || nLayers < 0 || nLayers > 256) {
    throw new Lfm2Error("BAD_METADATA", `vision_config.num_hidden_layers is ${nLayers}`);
  }
  const c: VisionConfig = {
    hiddenSize, nHeads, headDim: hiddenSize / nHeads, nLayers,
    ffDim: int(v.intermediate_size, "vision_config.intermediate_size", 3072),
    eps: v.layer_norm_eps ?? 1e-6, patchSize: int(v.patch_size, "vision_config.patch_size", 16), imageSize: 256, posSide,
    scaleFactor: int(j.downsample_factor, "downsample_factor", 2),
    projHidden: int(j.projector_hidden_size, "projector_hidden_size", 2560),
    outDim: int(text.hidden_size, "text_config.hidden_size"), activation: act, imageMean: mean, imageStd: std,
    // trust the weights over projector_use_layernorm (some LFM2.5-VL configs say false while the norm exists)
    hasInputNorm: names.has("mm.input_norm.weight"), hasPostNorm: names.has("v.post_ln.weight"),
  };
  if (!Number.isInteger(c.headDim) || c.scaleFactor < 2 || typeof c.eps !== "number" || !(c.eps > 0)) {
    throw new Lfm2Error("BAD_METADATA", `LFM2-VL vision hyper-parameters are inconsistent: ${JSON.stringify(c)}`);
  }
  if (c.hiddenSize % 4 !== 0 || c.ffDim % 4 !== 0 || c.projHidden % 4 !== 0 || c.outDim % 4 !== 0) {
    throw new Lfm2Error("SHAPE_MISMATCH", "LFM2-VL vision widths must be multiples of 4");
  }
  return c;
}

const IMAGE_KEYS = ["min_image_tokens", "max_image_tokens", "do_image_splitting", "min_tiles", "max_tiles", "use_thumbnail", "tile_size",
  "max_pixels_tolerance", "encoder_patch_size", "downsample_factor", "image_mean", "image_std"] as const;

/** Processor options of the checkpoint: config.json's, then preprocessor_config.json's over them. */
export function lfm2VlImageOptions(j: Json, pre: Json | undefined): Lfm2VlImageOptions {
  const o: Record<string, unknown> = {};
  for (const src of [j, pre ?? {}]) for (const k of IMAGE_KEYS) if (src[k] !== undefined && src[k] !== null) o[k] = src[k];
  return o as Lfm2VlImageOptions;
}

/**
 * Retype and check the patch embedding: NaFlex stores a Linear [C, p·p·3] over (y, x, channel) patches; the
 * encoder multiplies a conv-layout row (channel, y, x), as llama.cpp's converter permutes it. A 4-D conv kernel
 * [C, 3, p, p] is already in that layout. Returns whether the bytes need the permutation.
 */
function retypePatchEmbedding(tensors: TensorInfo[], c: VisionConfig): boolean {
  const t = tensors.find((x) => x.name === "v.patch_embd.weight");
  if (!t) throw new Lfm2Error("MISSING_TENSOR", "checkpoint lacks model.vision_tower.vision_model.embeddings.patch_embedding.weight");
  const p = c.patchSize, C = c.hiddenSize;
  if (t.shape.length === 4 && t.shape.join() === [p, p, 3, C].join()) return false;
  if (t.shape.length !== 2 || t.shape[0] !== 3 * p * p || t.shape[1] !== C) {
    const got = [...t.shape].reverse();
    throw new Lfm2Error("SHAPE_MISMATCH", `patch_embedding.weight has shape [${got}], expected [${C}, ${3 * p * p}]`);
  }
  if (![GGML.F32, GGML.F16, GGML.BF16].includes(t.type as never)) {
    throw new Lfm2Error("UNSUPPORTED_TYPE", `patch_embedding.weight is ${t.type.name}`);
  }
  t.shape = [p, p, 3, C];
  return true;
}

/** (y, x, channel) → (channel, y, x) within each of the rows of a patch-embedding tensor's bytes. */
function permutePatchRows(bytes: Uint8Array, p: number, elemBytes: number): Uint8Array {
  const n = 3 * p * p, rowBytes = n * elemBytes, out = new Uint8Array(bytes.length);
  for (let r = 0; r < bytes.length; r += rowBytes) {
    for (let y = 0; y < p; y++) for (let x = 0; x < p; x++) for (let ch = 0; ch < 3; ch++) {
      const from = r + ((y * p + x) * 3 + ch) * elemBytes, to = r + (ch * p * p + y * p + x) * elemBytes;
      for (let b = 0; b < elemBytes; b++) out[to + b] = bytes[from + b];
    }
  }
  return out;
}

/** A sink that gathers one tensor's bytes, rearranges them, and passes everything else straight through. */
function rearrangingSink(t: TensorInfo, rearrange: (b: Uint8Array) => Uint8Array,
  sink: (offset: number, bytes: Uint8Array) => void): (offset: number, bytes: Uint8Array) => void {
  const buf = new Uint8Array(t.byteLength), start = t.offset, end = t.offset + t.byteLength;
  let have = 0;
  return (offset, bytes) => {
    const stop = offset + bytes.length;
    if (stop <= start || offset >= end) { sink(offset, bytes); return; }
    if (offset < start) sink(offset, bytes.subarray(0, start - offset));
    const from = Math.max(offset, start), to = Math.min(stop, end);
    buf.set(bytes.subarray(from - offset, to - offset), from - start);
    have += to - from;
    if (have === t.byteLength) sink(start, rearrange(buf));
    if (stop > end) sink(end, bytes.subarray(end - offset));
  };
}

/**
 * The vision encoder + projector of an LFM2-VL checkpoint, streamed from its safetensors file (or the parts of
 * a sharded one, in order); the text tower's tensors in the same file are skipped.
 */
export async function loadHfVision(parts: ByteSource[], config: Json, preprocessor: Json | undefined,
  opts: VisionLoadOptions = {}): Promise<VisionEncoder> {
  let permute = false;
  const header = (tensors: TensorInfo[], meta: Record<string, string>): VisionHeader => {
    const c = visionConfigFromHf(config, preprocessor, tensors);
    permute = retypePatchEmbedding(tensors, c);
    return { tensors, metadata: new Map<string, GgufValue>(Object.entries(meta)), config: c };
  };
  const wrapSink = (h: VisionHeader, sink: (offset: number, bytes: Uint8Array) => void) => {
    if (!permute) return sink;
    const t = h.tensors.find((x) => x.name === "v.patch_embd.weight")!;
    return rearrangingSink(t, (b) => permutePatchRows(b, h.config.patchSize, t.type.blockBytes), sink);
  };
  if (parts.length === 1) {
    const src = parts[0];
    return loadVisionWeights({ src, wrapSink, parse(prefix) {
      try { const f = parseSafetensors(prefix, src.size, hfVisionName); return header(f.tensors, f.metadata); } catch (e) {
        if (e instanceof NeedMoreBytes) return undefined;
        throw e;
      }
    } }, opts);
  }
  const { src, file } = await openSafetensorsShards(parts, opts.signal, hfVisionName);
  const h = header(file.tensors, file.metadata);
  return loadVisionWeights({ src, wrapSink, parse: () => h }, opts);
}

/** The checkpoint's image token must be the tokenizer's `<image>` (HF scatters the rows at image_token_id). */
export function checkImageToken(config: Json, tok: Tokenizer): void {
  const id = config.image_token_id ?? config.image_token_index;
  if (id !== undefined && id !== tok.tokenId("<image>")) {
    throw new Lfm2Error("BAD_METADATA", `config image_token_id ${id} is not the tokenizer's <image> (${tok.tokenId("<image>")})`);
  }
}

// ---------------------------------------------------------------- synthetic writer (tests, tooling)

export interface HfVlWriteOptions {
  /** Type of every tensor with two or more dimensions (vectors stay F32, as in the text writer). */
  dtype?: "F32" | "BF16";
  /** Split the weights over this many model-0000k-of-0000n.safetensors files (+ the index). */
  shards?: number;
  /** Written to preprocessor_config.json (processor options beside the mean/std the mmproj carries). */
  preprocessor?: Lfm2VlImageOptions;
  /** HF tensor names to leave out (malformed-checkpoint tests). */
  omit?: string[];
}

function f32Values(file: Uint8Array, t: TensorInfo): Float32Array {
  if (t.type !== GGML.F32) throw new Lfm2Error("UNSUPPORTED_TYPE", `the HF writer needs F32 tensors; ${t.name} is ${t.type.name}`);
  return new Float32Array(file.slice(t.offset, t.offset + t.byteLength).buffer);
}

/**
 * The Hugging Face folder (file name → contents) of an LFM2-VL model given as a text GGUF and an mmproj GGUF
 * (all tensors F32): names, shapes and layouts as an Lfm2VlForConditionalGeneration checkpoint stores them.
 */
export function lfm2VlHfFolder(textGguf: Uint8Array, mmproj: Uint8Array,
  opts: HfVlWriteOptions = {}): Map<string, Uint8Array | string> {
  const dtype = opts.dtype ?? "F32";
  const text = parseGguf(textGguf), vis = parseGguf(mmproj);
  const tc = configFromGguf(text.metadata), vc = visionConfigFromGguf(vis.metadata, vis.tensors);
  const out: SafetensorsWriteTensor[] = [];
  const put = (name: string, shape: number[], values: Float32Array, vector: boolean) => {
    if (opts.omit?.includes(name)) return;
    const d = vector ? "F32" : dtype;
    out.push({ name, dtype: d, shape, data: quantizeTensor(d === "F32" ? GGML.F32 : GGML.BF16, values, shape[shape.length - 1]) });
  };
  for (const t of text.tensors) {
    const hf = ggufToHfName(t.name);
    if (!hf) throw new Lfm2Error("BAD_INPUT", `no HF name for text tensor ${t.name}`);
    const name = hf.replace(/^model\./, "model.language_model.");
    const conv = t.name.endsWith("shortconv.conv.weight");
    const shape = t.shape.length === 1 ? t.shape : conv ? [t.shape[1], 1, t.shape[0]] : [...t.shape].reverse();
    put(name, shape, f32Values(textGguf, t), t.shape.length === 1 || conv);
  }
  const p = vc.patchSize, C = vc.hiddenSize;
  for (const t of vis.tensors) {
    const name = visionHfName(t.name);
    if (!name) throw new Lfm2Error("BAD_INPUT", `no HF name for mmproj tensor ${t.name}`);
    let values = f32Values(mmproj, t);
    let shape = [...t.shape].reverse();
    if (t.name === "v.patch_embd.weight") {
      // conv layout (channel, y, x) → NaFlex Linear over (y, x, channel)
      const n = 3 * p * p, lin = new Float32Array(values.length);
      for (let o = 0; o < C; o++) {
        for (let ch = 0; ch < 3; ch++) for (let i = 0; i < p * p; i++) lin[o * n + i * 3 + ch] = values[o * n + ch * p * p + i];
      }
      values = lin; shape = [C, n];
    }
    put(name, shape, values, t.shape.length === 1);
  }
  const tok = Tokenizer.fromGguf(text.metadata);
  const files = new Map<string, Uint8Array | string>();
  const n = opts.shards ?? 1;
  if (n <= 1) files.set("model.safetensors", concatChunks(encodeSafetensors(out, { format: "pt" })));
  else {
    const weightMap: Record<string, string> = {}, per = Math.ceil(out.length / n);
    for (let k = 0; k < n; k++) {
      const file = `model-${String(k + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
      const part = out.slice(k * per, (k + 1) * per);
      for (const t of part) weightMap[t.name] = file;
      files.set(file, concatChunks(encodeSafetensors(part, { format: "pt" })));
    }
    files.set("model.safetensors.index.json", JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  const attnIdx = tc.kvHeads.flatMap((h, i) => (h > 0 ? [i] : []));
  const imageId = tok.tokenId("<image>");
  files.set("config.json", JSON.stringify({
    architectures: ["Lfm2VlForConditionalGeneration"], model_type: "lfm2_vl", downsample_factor: vc.scaleFactor,
    projector_hidden_act: "gelu", projector_hidden_size: vc.projHidden, projector_bias: true, vision_feature_layer: -1,
    ...(imageId !== undefined ? { image_token_index: imageId } : {}),
    text_config: {
      model_type: "lfm2", hidden_size: tc.hiddenSize, num_hidden_layers: tc.nLayers, num_attention_heads: tc.nHeads,
      num_key_value_heads: Math.max(1, ...tc.kvHeads), block_ff_dim: tc.ffDim, block_auto_adjust_ff_dim: false,
      full_attn_idxs: attnIdx, vocab_size: tc.vocabSize, norm_eps: tc.normEps, rope_theta: tc.ropeTheta, conv_L_cache: tc.convL,
      max_position_embeddings: tc.contextLength, head_dim: tc.headDim,
    },
    vision_config: {
      model_type: "siglip2_vision_model", hidden_size: C, intermediate_size: vc.ffDim, num_hidden_layers: vc.nLayers,
      num_attention_heads: vc.nHeads, num_channels: 3, num_patches: vc.posSide * vc.posSide, patch_size: p,
      hidden_act: vc.activation === "gelu" ? "gelu_pytorch_tanh" : "quick_gelu", layer_norm_eps: vc.eps, vision_use_head: false,
    },
  }, null, 1));
  files.set("preprocessor_config.json", JSON.stringify({
    image_processor_type: "Lfm2VlImageProcessorFast", image_mean: vc.imageMean, image_std: vc.imageStd,
    encoder_patch_size: p, downsample_factor: vc.scaleFactor, ...opts.preprocessor,
  }, null, 1));
  files.set("tokenizer.json", JSON.stringify(toHfTokenizerJson(tok)));
  files.set("tokenizer_config.json", JSON.stringify(toHfTokenizerConfig(tok)));
  const template = text.metadata.get("tokenizer.chat_template");
  if (typeof template === "string") files.set("chat_template.jinja", template);
  return files;
}
