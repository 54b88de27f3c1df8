// The LFM2.5-Audio detokenizer in its Hugging Face layout: the checkpoint's `audio_detokenizer/` folder,
// config.json (an Lfm2Config plus `sliding_window` and `output_size`; architectures "Lfm25AudioTokenizer", the
// name llama.cpp's converter registers) and model.safetensors holding
// - lfm.*          the LFM2 backbone (HF Lfm2Model; `sliding_attention` layers: causal windowed attention),
// - lin.{weight,bias}  Linear(hidden → output_size = 1282): log-magnitudes and phases of the ISTFT,
// - emb.emb.weight the code table (8·2048 rows × hidden), averaged per frame (docs/lfm2-audio-out.md §3),
// - istft.window   the Hann window (not read: src/audio/istft-stream.ts computes it).
// llama.cpp's converter (conversion/lfm2.py LFM25AudioTokenizer) maps lfm.* → model.* as for LFM2 and `lin` →
// `dense_2_out`; the engine binds that projection as `dense_2` (per-token, pooling none), as the GGUF path does.
import { Lfm2Error } from "../../errors.js";
import { parseGguf, type TensorInfo } from "../../formats/gguf.js";
import { hfToGgufName, parseSafetensors } from "../../formats/safetensors.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../formats/safetensors-writer.js";
import { concatChunks } from "../../formats/gguf-writer.js";
import { dequantizeTensor } from "../../formats/quantize.js";
import { GGML } from "../../core/quant-types.js";
import { configFromGguf, configFromHf, validateConfig, type Lfm2Config } from "../lfm2/config.js";
import { DETOK_CODEBOOKS, DETOK_CODES, DETOK_N_FFT } from "./detokenizer.js";
import { hfLfm2ConfigJson, hfTextTensors } from "./hf.js";

type Json = Record<string, any>;

/** Window of the sliding attention when config.json has none (liquid-audio: getattr(config, "sliding_window", 30)). */
export const DEFAULT_DETOK_WINDOW = 30;

/** config.json of the LFM2.5-Audio detokenizer (its architectures entry). */
export function isLfm2AudioDetokenizerConfig(j: Json): boolean {
  return Array.isArray(j.architectures) && j.architectures.includes("Lfm25AudioTokenizer");
}

/** The detokenizer backbone's engine config: an lfm2 model with a causal sliding window and a 1282-wide `lin`. */
export function detokenizerConfigFromHf(j: Json): Lfm2Config {
  if (!Array.isArray(j.layer_types)) {
    throw new Lfm2Error("BAD_METADATA", "the detokenizer config.json has no layer_types");
  }
  const bad = j.layer_types.find((t: unknown) => t !== "conv" && t !== "sliding_attention" && t !== "full_attention");
  if (bad !== undefined) {
    throw new Lfm2Error("BAD_METADATA",
      `detokenizer layer type ${JSON.stringify(bad)} is not conv / sliding_attention`);
  }
  // every attention layer of the published config is a sliding one; the engine's window applies to all of them
  if (j.layer_types.includes("full_attention") && j.layer_types.includes("sliding_attention")) {
    throw new Lfm2Error("UNSUPPORTED_ARCH", "a detokenizer mixing full and sliding attention layers is not supported");
  }
  const layerTypes = j.layer_types.map((t: string) => (t === "conv" ? "conv" : "full_attention"));
  const c = configFromHf({ ...j, model_type: "lfm2", architectures: undefined, layer_types: layerTypes });
  const out = j.output_size;
  if (out !== 2 * (DETOK_N_FFT / 2 + 1)) {
    throw new Lfm2Error("BAD_METADATA",
      `detokenizer output_size is ${JSON.stringify(out)}, expected ${2 * (DETOK_N_FFT / 2 + 1)} (n_fft ${DETOK_N_FFT})`);
  }
  c.embeddingOut = out;
  c.pooling = 0;
  if (j.layer_types.includes("sliding_attention")) c.slidingWindow = j.sliding_window ?? DEFAULT_DETOK_WINDOW;
  validateConfig(c);
  return c;
}

/** Backbone names (`lfm.`; `model.` UNCONFIRMED, as a transformers port may write it) and `lin` → `dense_2`. */
export function detokenizerTensorName(name: string): string | undefined {
  const lin = /^lin\.(weight|bias)$/.exec(name);
  if (lin) return `dense_2.${lin[1]}`;
  if (name.startsWith("lfm.")) return hfToGgufName(`model.${name.slice(4)}`);
  return name.startsWith("model.") ? hfToGgufName(name) : undefined;
}

/** `emb.emb.weight` (8·2048 rows × D) from the detokenizer's model.safetensors bytes, as F32. */
export function readHfCodeEmbeddings(file: Uint8Array): { table: Float32Array; dim: number } {
  let t: TensorInfo | undefined;
  for (const x of parseSafetensors(file, file.byteLength, (n) => (n === "emb.emb.weight" ? n : undefined)).tensors) t = x;
  if (!t) {
    throw new Lfm2Error("MISSING_TENSOR", "the detokenizer checkpoint has no emb.emb.weight (the code embeddings)");
  }
  const [dim, rows] = t.shape;
  if (t.shape.length !== 2 || rows !== DETOK_CODEBOOKS * DETOK_CODES) {
    throw new Lfm2Error("SHAPE_MISMATCH",
      `emb.emb.weight must be [${DETOK_CODEBOOKS * DETOK_CODES}, D], got [${[...t.shape].reverse().join(", ")}]`);
  }
  const bytes = file.slice(t.offset, t.offset + t.byteLength);
  const table = t.type === GGML.F32 ? new Float32Array(bytes.buffer) : dequantizeTensor(t.type, bytes, dim * rows);
  return { table, dim };
}

// ---------------------------------------------------------------- synthetic writer (tests, tooling)

/**
 * The `audio_detokenizer/` folder (file name → contents) of a detokenizer given as its backbone GGUF (lfm2 with a
 * 1282-wide dense_2 and a sliding window) and the vocoder GGUF holding `emb.emb.weight` (all F32).
 */
export function detokenizerHfFolder(backbone: Uint8Array, vocoder: Uint8Array,
  opts: { omit?: string[] } = {}): Map<string, Uint8Array | string> {
  const c = configFromGguf(parseGguf(backbone).metadata);
  const out: SafetensorsWriteTensor[] = hfTextTensors(backbone, "lfm.", "F32");
  for (const t of parseGguf(backbone).tensors) {
    const lin = /^dense_2\.(weight|bias)$/.exec(t.name);
    if (!lin) continue;
    if (t.type !== GGML.F32) {
      throw new Lfm2Error("UNSUPPORTED_TYPE", `the HF writer needs F32 tensors; ${t.name} is ${t.type.name}`);
    }
    const data = backbone.slice(t.offset, t.offset + t.byteLength);
    out.push({ name: `lin.${lin[1]}`, dtype: "F32", shape: [...t.shape].reverse(), data });
  }
  const emb = parseGguf(vocoder).tensors.find((t) => t.name === "emb.emb.weight");
  if (!emb || emb.type !== GGML.F32) {
    throw new Lfm2Error("MISSING_TENSOR", "the vocoder GGUF has no F32 emb.emb.weight");
  }
  const table = vocoder.slice(emb.offset, emb.offset + emb.byteLength);
  out.push({ name: "emb.emb.weight", dtype: "F32", shape: [...emb.shape].reverse(), data: table });
  const win = new Float32Array(DETOK_N_FFT).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / DETOK_N_FFT));
  out.push({ name: "istft.window", dtype: "F32", shape: [DETOK_N_FFT], data: new Uint8Array(win.buffer) });
  const files = new Map<string, Uint8Array | string>();
  const kept = out.filter((t) => !opts.omit?.includes(t.name));
  files.set("model.safetensors", concatChunks(encodeSafetensors(kept, { format: "pt" })));
  const lfm = hfLfm2ConfigJson(c), attention = c.slidingWindow ? "sliding_attention" : "full_attention";
  files.set("config.json", JSON.stringify({
    ...lfm, architectures: ["Lfm25AudioTokenizer"], model_type: "lfm2", output_size: c.embeddingOut,
    layer_types: lfm.layer_types.map((t: string) => (t === "conv" ? "conv" : attention)),
    ...(c.slidingWindow ? { sliding_window: c.slidingWindow } : {}),
  }, null, 1));
  return files;
}
