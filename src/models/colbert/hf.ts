// Hugging Face / sentence-transformers / PyLate retrieval folders: the LFM2 trunk in model.safetensors
// (config.json: model_type lfm2, architectures Lfm2Model / Lfm2BidirectionalModel, is_causal), the dense
// projection as a sentence-transformers Dense module (1_Dense/config.json + 1_Dense/model.safetensors:
// `linear.weight` [out, in], `linear.bias` when config.bias), an optional Pooling module (1_Pooling) and
// PyLate's config_sentence_transformers.json (prefixes, lengths, expansion, skiplist). The dense tensors
// are bound under the names llama.cpp's converter gives them (dense_2.weight / dense_2.bias), so a folder
// and its GGUF conversion load into the same engine state.
import { Lfm2Error } from "../../errors.js";
import type { TensorInfo } from "../../formats/gguf.js";
import { GGML, type GgmlType } from "../../core/quant-types.js";
import { NeedMoreBytes } from "../../formats/gguf.js";
import { splitSource } from "../../io/split.js";
import type { ByteSource, SourceInput } from "../../io/source.js";
import type { Lfm2Config } from "../lfm2/config.js";
import { DEFAULT_RETRIEVAL, retrievalConfigFromJson, type RetrievalConfig } from "./encoder.js";

type Json = Record<string, any>;

/** The sentence-transformers parts of a retrieval folder (all optional; a plain LM folder has none). */
export interface SentenceTransformersInput {
  /** 1_Dense/config.json: in_features, out_features, bias, activation_function. */
  denseConfig?: Json | string;
  /** 1_Dense/model.safetensors. */
  dense?: SourceInput;
  /** 1_Pooling/config.json (pooled embedding models): pooling_mode_mean_tokens / cls_token / lasttoken. */
  poolingConfig?: Json | string;
  /** config_sentence_transformers.json (PyLate: query/document prefixes and lengths, skiplist, expansion). */
  sentenceTransformersConfig?: Json | string;
}

const json = (v: Json | string | undefined, what: string): Json | undefined => {
  if (v === undefined) return undefined;
  let j: unknown = v;
  if (typeof v === "string") {
    try { j = JSON.parse(v); } catch (e) { throw new Lfm2Error("BAD_INPUT", `${what} is not valid JSON`, { cause: e }); }
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Lfm2Error("BAD_INPUT", `${what} must be a JSON object`);
  return j as Json;
};

/** Read a folder's sentence-transformers files (module folders from modules.json, else 1_Dense / 1_Pooling). */
export async function readSentenceTransformersFolder(path: string): Promise<SentenceTransformersInput> {
  const fs = await import("node:fs/promises");
  const read = (f: string) => fs.readFile(`${path}/${f}`, "utf8").catch(() => undefined);
  let denseDir = "1_Dense", poolingDir = "1_Pooling";
  const modules = await read("modules.json");
  if (modules !== undefined) {
    let list: unknown;
    try { list = JSON.parse(modules); } catch (e) { throw new Lfm2Error("BAD_INPUT", `${path}/modules.json is not valid JSON`, { cause: e }); }
    if (Array.isArray(list)) {
      for (const m of list) {
        if (typeof m?.type !== "string" || typeof m?.path !== "string") continue;
        if (/\.Dense$/.test(m.type)) denseDir = m.path;
        if (/\.Pooling$/.test(m.type)) poolingDir = m.path;
      }
    }
  }
  const out: SentenceTransformersInput = {};
  const denseConfig = await read(`${denseDir}/config.json`);
  if (denseConfig !== undefined) {
    const file = `${path}/${denseDir}/model.safetensors`;
    if (!(await fs.stat(file).catch(() => null))?.isFile()) throw new Lfm2Error("BAD_INPUT", `${path}/${denseDir} has config.json but no model.safetensors`);
    out.denseConfig = denseConfig;
    out.dense = file;
  }
  const pooling = await read(`${poolingDir}/config.json`);
  if (pooling !== undefined) out.poolingConfig = pooling;
  const st = await read("config_sentence_transformers.json");
  if (st !== undefined) out.sentenceTransformersConfig = st;
  return out;
}

/** True when the input carries any sentence-transformers part. */
export function hasSentenceTransformersParts(x: SentenceTransformersInput): boolean {
  return x.dense !== undefined || x.denseConfig !== undefined || x.poolingConfig !== undefined || x.sentenceTransformersConfig !== undefined;
}

/** config.json of an encoder checkpoint as the LFM2 config reader takes it (Lfm2Model / Lfm2BidirectionalModel). */
export function encoderConfigJson(j: Json): Json {
  const archs: unknown[] = Array.isArray(j.architectures) ? j.architectures : [];
  if (j.model_type === undefined && archs.some((a) => a === "Lfm2Model" || a === "Lfm2BidirectionalModel")) return { ...j, model_type: "lfm2" };
  return j;
}

/** is_causal: false, or the Lfm2BidirectionalModel class (LFM2.5-ColBERT / LFM2.5-Embedding). */
function isBidirectional(j: Json): boolean {
  return j.is_causal === false || (Array.isArray(j.architectures) && j.architectures.includes("Lfm2BidirectionalModel"));
}

const POOLING_MODES: [string, number][] = [["pooling_mode_mean_tokens", 1], ["pooling_mode_cls_token", 2], ["pooling_mode_lasttoken", 3]];

/** The dense projection's header: its tensors renamed to dense_2.*, offsets within its own file. */
async function readDenseHeader(src: ByteSource, signal?: AbortSignal): Promise<TensorInfo[]> {
  let prefix = new Uint8Array(0);
  for await (const chunk of src.chunks(0, signal)) {
    const grown = new Uint8Array(prefix.length + chunk.length);
    grown.set(prefix); grown.set(chunk, prefix.length);
    prefix = grown;
    try { return parseDenseHeader(prefix, src.size); } catch (e) { if (!(e instanceof NeedMoreBytes)) throw e; }
  }
  return parseDenseHeader(prefix, src.size);
}

const DTYPES: Record<string, GgmlType> = { F32: GGML.F32, F16: GGML.F16, BF16: GGML.BF16 };
const DENSE_NAMES: Record<string, string> = { "linear.weight": "dense_2.weight", "linear.bias": "dense_2.bias" };

function parseDenseHeader(bytes: Uint8Array, fileSize: number): TensorInfo[] {
  if (fileSize < 8) throw new Lfm2Error("BAD_MAGIC", "1_Dense/model.safetensors is too small to be a safetensors file");
  if (bytes.length < 8) throw new NeedMoreBytes(8);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n < 2 || n > Math.min(1 << 24, fileSize - 8)) throw new Lfm2Error("BAD_MAGIC", `1_Dense/model.safetensors: bad header length ${n}`);
  if (bytes.length < 8 + n) throw new NeedMoreBytes(8 + n);
  let header: Json;
  try { header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n))); } catch (e) {
    throw new Lfm2Error("BAD_MAGIC", "1_Dense/model.safetensors header is not valid JSON", { cause: e });
  }
  const tensors: TensorInfo[] = [], dataOffset = 8 + n;
  for (const [name, t] of Object.entries(header)) {
    const gguf = DENSE_NAMES[name];
    if (!gguf) continue;
    const type = DTYPES[t?.dtype];
    if (!type) throw new Lfm2Error("UNSUPPORTED_TYPE", `1_Dense tensor ${name} has dtype ${t?.dtype} (supported: F32, F16, BF16)`);
    const shape: unknown = t.shape, off: unknown = t.data_offsets;
    const okShape = Array.isArray(shape) && shape.length === (name === "linear.weight" ? 2 : 1) && shape.every((d) => Number.isSafeInteger(d) && d > 0);
    if (!okShape || !Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Lfm2Error("BAD_METADATA", `1_Dense tensor ${name} has a bad shape or data_offsets`);
    }
    const bytesNeeded = (shape as number[]).reduce((a, b) => a * b, 1) * type.blockBytes;
    if (off[1] - off[0] !== bytesNeeded) throw new Lfm2Error("SHAPE_MISMATCH", `1_Dense tensor ${name}: ${off[1] - off[0]} bytes for shape [${shape}]`);
    if (dataOffset + off[1] > fileSize) throw new Lfm2Error("TRUNCATED", `1_Dense tensor ${name} data lies beyond the end of the file`);
    // row-major [out, in] → ggml order [in, out], as dense_2.weight in a GGUF
    tensors.push({ name: gguf, shape: [...(shape as number[])].reverse(), type, offset: dataOffset + off[0], byteLength: bytesNeeded });
  }
  if (!tensors.some((t) => t.name === "dense_2.weight")) throw new Lfm2Error("MISSING_TENSOR", "1_Dense/model.safetensors has no linear.weight");
  return tensors;
}

/** What the HF loader adds for an encoder: tensors appended after the trunk's, the config's encoder fields, the retrieval settings. */
export interface EncoderParts {
  /** The trunk's bytes followed by the dense file's (when there is one). */
  src: ByteSource;
  /** Tensors of the dense file, addressed after the trunk's bytes. */
  tensors: TensorInfo[];
  /** Apply the encoder fields (causal, embeddingOut, pooling) to the trunk's config. */
  config(base: Lfm2Config, configJson: Json): Lfm2Config;
  retrieval: RetrievalConfig;
}

/**
 * Combine a trunk (its byte source) with the sentence-transformers parts. Returns null for a causal
 * folder without any (a text-generation model), so plain LM loading is untouched.
 */
export async function encoderParts(trunk: ByteSource, st: SentenceTransformersInput, configJson: Json,
  open: (s: SourceInput) => Promise<ByteSource>, signal?: AbortSignal): Promise<EncoderParts | null> {
  if (!hasSentenceTransformersParts(st) && !isBidirectional(configJson)) return null;
  if ((st.dense === undefined) !== (st.denseConfig === undefined)) {
    throw new Lfm2Error("BAD_INPUT", "a Dense module needs both its config.json and its model.safetensors");
  }
  const denseCfg = json(st.denseConfig, "1_Dense/config.json");
  let tensors: TensorInfo[] = [], src = trunk;
  if (st.dense !== undefined) {
    const dense = await open(st.dense);
    tensors = (await readDenseHeader(dense, signal)).map((t) => ({ ...t, offset: trunk.size + t.offset }));
    src = splitSource([trunk, dense], trunk.name);
    const act = denseCfg!.activation_function;
    // llama.cpp applies dense_2 without an activation: other activations would give different vectors
    if (act !== undefined && !/Identity$/.test(String(act))) {
      throw new Lfm2Error("UNSUPPORTED_ARCH", `1_Dense activation ${String(act)} is not supported (only Identity, as llama.cpp's dense_2)`);
    }
    if (denseCfg!.bias === true && !tensors.some((t) => t.name === "dense_2.bias")) throw new Lfm2Error("MISSING_TENSOR", "1_Dense config says bias but the file has no linear.bias");
  }
  const weight = tensors.find((t) => t.name === "dense_2.weight");
  const pooling = json(st.poolingConfig, "1_Pooling/config.json");
  let poolingType: number | undefined;
  if (pooling) {
    const modes = POOLING_MODES.filter(([k]) => pooling[k] === true);
    const others = Object.keys(pooling).filter((k) => k.startsWith("pooling_mode_") && pooling[k] === true && !POOLING_MODES.some(([m]) => m === k));
    if (modes.length !== 1 || others.length) {
      throw new Lfm2Error("UNSUPPORTED_ARCH", "1_Pooling: exactly one of mean, cls or last-token pooling is supported");
    }
    poolingType = modes[0][1];
  }
  const stCfg = json(st.sentenceTransformersConfig, "config_sentence_transformers.json");
  return {
    src, tensors,
    config(base, cj) {
      const c: Lfm2Config = { ...base };
      if (isBidirectional(cj)) c.causal = false;
      if (weight) {
        const [inF, outF] = weight.shape;
        if (inF !== c.hiddenSize) throw new Lfm2Error("SHAPE_MISMATCH", `1_Dense linear.weight takes ${inF} features; the model's hidden size is ${c.hiddenSize}`);
        if (denseCfg!.out_features !== undefined && denseCfg!.out_features !== outF) {
          throw new Lfm2Error("SHAPE_MISMATCH", `1_Dense config says out_features ${denseCfg!.out_features}; linear.weight has ${outF}`);
        }
        c.embeddingOut = outF;
      }
      if (poolingType !== undefined) c.pooling = poolingType;
      else if (weight) c.pooling = 0; // a ColBERT head: one vector per token
      return c;
    },
    retrieval: retrievalConfigFromJson(stCfg, DEFAULT_RETRIEVAL),
  };
}
