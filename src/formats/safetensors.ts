// Hugging Face safetensors reader: u64 header length, JSON header, raw little-endian data.
// LFM2 tensor names are mapped to the GGUF names the engine uses (spec §2.1, §3.3); shapes are
// reported in ggml order (ne[0] = the contiguous dimension).
import { Lfm2Error } from "../errors.js";
import type { TensorInfo } from "./gguf.js";
import { GGML, type GgmlType } from "../core/quant-types.js";
import { NeedMoreBytes } from "./gguf.js";
import { splitSource } from "../io/split.js";
import type { ByteSource } from "../io/source.js";

const DTYPES: Record<string, GgmlType> = { F32: GGML.F32, F16: GGML.F16, BF16: GGML.BF16 };
const MAX_HEADER = 100 << 20;

export interface SafetensorsFile { tensors: TensorInfo[]; metadata: Record<string, string>; dataOffset: number }

// HF LFM2 names ↔ GGUF names (spec §2.1, §3.3): whole-model tensors, then per-layer suffixes.
const GLOBAL_NAMES: Record<string, string> = {
  "embed_tokens.weight": "token_embd.weight", "embedding_norm.weight": "token_embd_norm.weight", "lm_head.weight": "output.weight",
};
const LAYER_NAMES: Record<string, string> = {
  "operator_norm.weight": "attn_norm.weight", "ffn_norm.weight": "ffn_norm.weight",
  "conv.in_proj.weight": "shortconv.in_proj.weight", "conv.conv.weight": "shortconv.conv.weight", "conv.out_proj.weight": "shortconv.out_proj.weight",
  "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.out_proj.weight": "attn_output.weight", "self_attn.q_layernorm.weight": "attn_q_norm.weight", "self_attn.k_layernorm.weight": "attn_k_norm.weight",
  "feed_forward.w1.weight": "ffn_gate.weight", "feed_forward.w3.weight": "ffn_up.weight", "feed_forward.w2.weight": "ffn_down.weight",
};
const invert = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));
const GLOBAL_HF = invert(GLOBAL_NAMES), LAYER_HF = invert(LAYER_NAMES);

// LFM2-MoE (spec §1.6): HF stores each expert apart; expert j of a stacked GGUF tensor is named
// `<stacked name>.<j>` here, and the lfm2moe architecture places the experts of a layer back to back.
const MOE_NAMES: Record<string, string> = { "feed_forward.gate.weight": "ffn_gate_inp.weight", "feed_forward.expert_bias": "exp_probs_b.bias" };
const EXPERT_NAMES: Record<string, string> = { w1: "ffn_gate_exps.weight", w3: "ffn_up_exps.weight", w2: "ffn_down_exps.weight" };
const MOE_HF = invert(MOE_NAMES), EXPERT_HF = invert(EXPERT_NAMES);

/** HF LFM2 tensor name → GGUF name (undefined: not an LFM2 text tensor, e.g. a vision tower's). */
export function hfToGgufName(name: string): string | undefined {
  const n = name.replace(/^(model\.language_model\.|language_model\.model\.|model\.)/, "");
  if (GLOBAL_NAMES[n]) return GLOBAL_NAMES[n];
  const m = /^layers\.(\d+)\.(.+)$/.exec(n);
  if (!m) return undefined;
  const g = LAYER_NAMES[m[2]] ?? MOE_NAMES[m[2]];
  if (g) return `blk.${m[1]}.${g}`;
  const e = /^feed_forward\.experts\.(\d+)\.(w[123])\.weight$/.exec(m[2]);
  return e ? `blk.${m[1]}.${EXPERT_NAMES[e[2]]}.${e[1]}` : undefined;
}

/** GGUF name → the name a Hugging Face LFM2 checkpoint uses (for writers and tests). */
export function ggufToHfName(name: string): string | undefined {
  if (GLOBAL_HF[name]) return name === "output.weight" ? "lm_head.weight" : `model.${GLOBAL_HF[name]}`;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const h = LAYER_HF[m[2]] ?? MOE_HF[m[2]];
  if (h) return `model.layers.${m[1]}.${h}`;
  const e = /^(ffn_(?:gate|up|down)_exps\.weight)\.(\d+)$/.exec(m[2]);
  return e ? `model.layers.${m[1]}.feed_forward.experts.${e[2]}.${EXPERT_HF[e[1]]}.weight` : undefined;
}

/**
 * Parse the header held in `bytes` (a prefix of a file of `fileSize` bytes). `rename` gives the engine's name
 * of the tensors to keep (default: the LFM2 text tensors; the LFM2-VL vision tower passes its own).
 */
export function parseSafetensors(bytes: Uint8Array, fileSize = bytes.byteLength,
  rename: (hfName: string) => string | undefined = hfToGgufName): SafetensorsFile {
  if (fileSize < 8) throw new Lfm2Error("BAD_MAGIC", "file is too small to be a safetensors file");
  if (bytes.byteLength < 8) throw new NeedMoreBytes(8);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER)) throw new Lfm2Error("BAD_MAGIC", `not a safetensors file (header length ${n})`);
  if (n > BigInt(fileSize - 8)) throw new Lfm2Error("TRUNCATED", `safetensors header (${n} bytes) runs past the end of the file (${fileSize} bytes)`);
  const hl = Number(n);
  if (bytes.byteLength < 8 + hl) throw new NeedMoreBytes(8 + hl);
  let header: Record<string, any>;
  try { header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hl))); } catch (e) {
    throw new Lfm2Error("BAD_MAGIC", `safetensors header is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Lfm2Error("BAD_METADATA", "safetensors header is not an object");
  const dataOffset = 8 + hl, dataSize = fileSize - dataOffset;
  const tensors: TensorInfo[] = [];
  const metadata: Record<string, string> = typeof header.__metadata__ === "object" && header.__metadata__ ? header.__metadata__ : {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const ggufName = rename(name);
    if (!t || typeof t !== "object") throw new Lfm2Error("BAD_METADATA", `safetensors entry ${name} is malformed`);
    const type = DTYPES[t.dtype];
    const shape = t.shape, off = t.data_offsets;
    if (!Array.isArray(shape) || shape.length > 4 || !shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) > 0)) {
      throw new Lfm2Error("BAD_METADATA", `safetensors tensor ${name} has a bad shape`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0) || off[1] < off[0]) {
      throw new Lfm2Error("BAD_METADATA", `safetensors tensor ${name} has bad data_offsets`);
    }
    if (off[1] > dataSize) throw new Lfm2Error(fileSize < dataOffset + off[0] ? "OUT_OF_RANGE" : "TRUNCATED", `safetensors tensor ${name} data lies beyond the end of the file`);
    if (!ggufName) continue; // not part of the LFM2 text model (e.g. a vision tower): ignored
    if (!type) throw new Lfm2Error("UNSUPPORTED_TYPE", `safetensors tensor ${name} has dtype ${t.dtype} (supported: F32, F16, BF16)`);
    const elements = shape.reduce((a: number, b: number) => a * b, 1);
    if (elements * type.blockBytes !== off[1] - off[0]) throw new Lfm2Error("SHAPE_MISMATCH", `safetensors tensor ${name}: ${off[1] - off[0]} bytes for shape [${shape}] of ${t.dtype}`);
    // row-major [out, in] (conv kernels [D, 1, L]) → ggml ne order, dropping unit dims
    const ne = [...shape].reverse().filter((d: number, i: number, a: number[]) => d !== 1 || a.length === 1);
    tensors.push({ name: ggufName, shape: ne.length ? ne : [1], type, offset: dataOffset + off[0], byteLength: off[1] - off[0] });
  }
  return { tensors, metadata, dataOffset };
}

/**
 * The files of a sharded checkpoint (`model-0000k-of-0000n.safetensors`, listed by
 * `model.safetensors.index.json` when present) in order; throws BAD_INPUT when some are missing.
 */
export function safetensorsShardNames(folderFiles: string[], indexJson?: string): string[] {
  let names: string[];
  if (indexJson !== undefined) {
    let map: unknown;
    try { map = JSON.parse(indexJson)?.weight_map; } catch (e) { throw new Lfm2Error("BAD_INPUT", "model.safetensors.index.json is not valid JSON", { cause: e }); }
    if (typeof map !== "object" || map === null) throw new Lfm2Error("BAD_INPUT", "model.safetensors.index.json has no weight_map");
    names = [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort();
  } else names = folderFiles.filter((n) => /^model-\d+-of-\d+\.safetensors$/.test(n)).sort();
  const counts = new Set(names.map((n) => /-of-(\d+)\.safetensors$/.exec(n)?.[1]));
  const count = counts.size === 1 ? Number([...counts][0]) : NaN;
  const missing = names.filter((n) => !folderFiles.includes(n));
  if (!names.length || missing.length || names.length !== count) {
    throw new Lfm2Error("BAD_INPUT", `sharded safetensors checkpoint is incomplete: ${missing.length ? `missing ${missing.join(", ")}` : `${names.length} of ${Number.isNaN(count) ? "?" : count} parts`}`);
  }
  return names;
}

/** Read one safetensors header from the start of `src`. */
async function readHeader(src: ByteSource, signal?: AbortSignal, rename?: (hfName: string) => string | undefined): Promise<SafetensorsFile> {
  let prefix = new Uint8Array(0);
  for await (const chunk of src.chunks(0, signal)) {
    const grown = new Uint8Array(prefix.length + chunk.length);
    grown.set(prefix); grown.set(chunk, prefix.length);
    prefix = grown;
    try { return parseSafetensors(prefix, src.size, rename); } catch (e) { if (!(e instanceof NeedMoreBytes)) throw e; }
  }
  return parseSafetensors(prefix, src.size, rename); // throws: the file ends inside its header
}

/**
 * The parts of a sharded checkpoint as one file: the parts' bytes back to back, and every part's
 * tensors addressed in that virtual file. A tensor name in two parts is an error.
 */
export async function openSafetensorsShards(parts: ByteSource[], signal?: AbortSignal,
  rename?: (hfName: string) => string | undefined): Promise<{ src: ByteSource; file: SafetensorsFile }> {
  const tensors: TensorInfo[] = [], metadata: Record<string, string> = {}, seen = new Set<string>();
  let base = 0;
  for (const p of parts) {
    const f = await readHeader(p, signal, rename);
    for (const t of f.tensors) {
      if (seen.has(t.name)) throw new Lfm2Error("BAD_INPUT", `tensor ${t.name} appears in more than one safetensors part (${p.name})`);
      seen.add(t.name);
      tensors.push({ ...t, offset: base + t.offset });
    }
    Object.assign(metadata, f.metadata);
    base += p.size;
  }
  return { src: splitSource(parts), file: { tensors, metadata, dataOffset: 0 } };
}
