// Hugging Face safetensors reader: u64 header length, JSON header, raw little-endian data.
// LFM2 tensor names are mapped to the GGUF names the engine uses (spec §2.1, §3.3); shapes are
// reported in ggml order (ne[0] = the contiguous dimension).
import { Lfm2Error } from "../errors.js";
import type { TensorInfo } from "./gguf.js";
import { GGML, type GgmlType } from "../core/quant-types.js";
import { NeedMoreBytes } from "./gguf.js";

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

/** HF LFM2 tensor name → GGUF name (undefined: not an LFM2 text tensor, e.g. a vision tower's). */
export function hfToGgufName(name: string): string | undefined {
  const n = name.replace(/^(model\.language_model\.|language_model\.model\.|model\.)/, "");
  if (GLOBAL_NAMES[n]) return GLOBAL_NAMES[n];
  const m = /^layers\.(\d+)\.(.+)$/.exec(n);
  const g = m && LAYER_NAMES[m[2]];
  return g ? `blk.${m![1]}.${g}` : undefined;
}

/** GGUF name → the name a Hugging Face LFM2 checkpoint uses (for writers and tests). */
export function ggufToHfName(name: string): string | undefined {
  if (GLOBAL_HF[name]) return name === "output.weight" ? "lm_head.weight" : `model.${GLOBAL_HF[name]}`;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const h = m && LAYER_HF[m[2]];
  return h ? `model.layers.${m![1]}.${h}` : undefined;
}

/** Parse the header held in `bytes` (a prefix of a file of `fileSize` bytes). */
export function parseSafetensors(bytes: Uint8Array, fileSize = bytes.byteLength): SafetensorsFile {
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
    const ggufName = hfToGgufName(name);
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
