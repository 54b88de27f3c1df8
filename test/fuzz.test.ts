// Fuzzing the model readers (deterministic: a seeded PRNG). 30,000 mutated GGUF files and 8,000
// mutated safetensors files per run. Every case must either load — and then a 1-token forward gives
// finite logits (bit-identical to the unmutated file's when the mutation left the weights and the
// config alone) — or throw an Lfm2Error. Any other exception (TypeError, RangeError, a WebAssembly
// trap), a NeedMoreBytes escaping with the whole file given, a case slower than 2 s, or a small file
// that asks for a large arena is a failure.
//
// Most cases take the header path — parse → config → weight plan on one reused arena → finish →
// forward (what loadModel does, minus a fresh WebAssembly.Memory per case); every 5th GGUF case
// and every 4th safetensors case also runs the real loadModel({ threads: 1 }) — on the bytes, or on
// a source handing them out in ragged chunks — and must agree with the header path (same error
// code, or bit-identical logits).
//
// Environment knobs: FUZZ_SEED (default 0x5eed), FUZZ_GGUF (30000), FUZZ_ST (8000),
// FUZZ_ONLY=<case index> to rerun one case, FUZZ_VERBOSE=1 to print each case.
import { beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { Lfm2Error } from "../src/errors.js";
import { GgufValueType, NeedMoreBytes, parseGguf, type GgufValue, type TensorInfo } from "../src/formats/gguf.js";
import { ggufToHfName, parseSafetensors } from "../src/formats/safetensors.js";
import { encodeSafetensors } from "../src/formats/safetensors-writer.js";
import { concatChunks, encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../src/formats/gguf-writer.js";
import { GGML, ggmlTypeByName, type GgmlType, type GgmlTypeName } from "../src/core/quant-types.js";
import { quantizeTensor } from "../src/formats/quantize.js";
import type { Lfm2Config } from "../src/models/lfm2/config.js";
import { architecture, configFromGguf, configFromHf } from "../src/models/registry.js";
import { planWeights, weightArenaBytes } from "../src/graph/placement.js";
import { Lfm2Forward } from "../src/models/lfm2/forward.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import type { ByteSource } from "../src/io/source.js";
import { HANG_GUARD_MS } from "./helpers/hang-guard.js";
import { BYTE_TO_CHAR } from "../src/text/byte-unicode.js";
import { Arena, createMemory, MAX_BYTES } from "../bindings/arena.js";
import { Shard } from "../bindings/shard.js";
import { chooseVariant, compileVariant, instantiateKernels, type KernelExports } from "../bindings/wasm.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const N_GGUF = Number(process.env.FUZZ_GGUF ?? 30_000);
const N_ST = Number(process.env.FUZZ_ST ?? 8_000);
const ONLY = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY);
const VERBOSE = !!process.env.FUZZ_VERBOSE;
const FULL_EVERY_GGUF = 5;
const FULL_EVERY_ST = 4;
// a hang guard, not a speed check: one case is a few ms; fail-slow plans are caught by size checks
const CASE_LIMIT_MS = HANG_GUARD_MS;

// ---- random helpers ---------------------------------------------------------------------------

class Rng {
  private r: () => number;
  constructor(seed: number) { this.r = mulberry32(seed); }
  next(): number { return this.r(); }
  int(n: number): number { return Math.floor(this.r() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  chance(p: number): boolean { return this.r() < p; }
  u32(): number { return (this.r() * 2 ** 32) >>> 0; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** Pick from weighted options. */
  weighted<T>(opts: readonly [number, T][]): T {
    const total = opts.reduce((a, [w]) => a + w, 0);
    let x = this.r() * total;
    for (const [w, v] of opts) { if ((x -= w) < 0) return v; }
    return opts[opts.length - 1][1];
  }
}

/** Seed of case `i` of stream `stream`: every case can be replayed alone. */
const caseSeed = (stream: number, i: number) => (SEED ^ Math.imul(stream + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca77)) >>> 0;

// ---- micro models (hand-made LFM2 files with a few tensors, cheap to load) ----------------------

interface MicroSpec {
  name: string;
  D: number; nLayers: number; attn: number[]; nHeads: number; nKv: number; ff: number; V: number;
  /** Types of the matrices, cycled (norms and conv kernels stay F32). */
  types: GgmlTypeName[];
  tokenizer?: boolean; untied?: boolean; outputNorm?: boolean; alignment?: number; version?: 2 | 3;
  /** head_count_kv as one scalar instead of a per-layer array (only valid when every layer is attention). */
  scalarKv?: boolean;
}

interface MicroTensor { name: string; shape: number[]; type: GgmlType; values: Float32Array }

function microTensors(s: MicroSpec, seed: number): MicroTensor[] {
  const rand = mulberry32(seed);
  const uni = (n: number, std: number, mean = 0) => { const x = new Float32Array(n); for (let i = 0; i < n; i++) x[i] = mean + (rand() - 0.5) * std * 3.4641; return x; };
  const out: MicroTensor[] = [];
  let k = 0;
  const mat = (name: string, nIn: number, nOut: number, gain = 0.8) =>
    out.push({ name, shape: [nIn, nOut], type: ggmlTypeByName(s.types[k++ % s.types.length]), values: uni(nIn * nOut, gain / Math.sqrt(nIn)) });
  const vec = (name: string, n: number) => out.push({ name, shape: [n], type: GGML.F32, values: uni(n, 0.1, 1) });
  const { D, ff, V } = s, dh = D / s.nHeads;
  mat("token_embd.weight", D, V, 3);
  for (let l = 0; l < s.nLayers; l++) {
    const p = `blk.${l}.`;
    vec(p + "attn_norm.weight", D);
    if (s.attn.includes(l)) {
      mat(p + "attn_q.weight", D, s.nHeads * dh); mat(p + "attn_k.weight", D, s.nKv * dh); mat(p + "attn_v.weight", D, s.nKv * dh);
      mat(p + "attn_output.weight", s.nHeads * dh, D);
      vec(p + "attn_q_norm.weight", dh); vec(p + "attn_k_norm.weight", dh);
    } else {
      mat(p + "shortconv.in_proj.weight", D, 3 * D, 1.2);
      out.push({ name: p + "shortconv.conv.weight", shape: [3, D], type: GGML.F32, values: uni(3 * D, 0.6) });
      mat(p + "shortconv.out_proj.weight", D, D);
    }
    vec(p + "ffn_norm.weight", D);
    mat(p + "ffn_gate.weight", D, ff); mat(p + "ffn_up.weight", D, ff); mat(p + "ffn_down.weight", ff, D);
  }
  vec(s.outputNorm ? "output_norm.weight" : "token_embd_norm.weight", D);
  if (s.untied) mat("output.weight", D, V, 3);
  return out;
}

/** A small byte-level BPE vocabulary: five control tokens, the 256 byte symbols, three merges. */
function microVocab(): { tokens: string[]; types: number[]; merges: string[] } {
  const tokens = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", ...BYTE_TO_CHAR, "Ġt", "he", "Ġthe"];
  return { tokens, types: tokens.map((_, i) => (i < 5 ? 3 : 1)), merges: ["Ġ t", "h e", "Ġt he"] };
}

function microGguf(s: MicroSpec, seed: number): Uint8Array {
  const tensors = microTensors(s, seed);
  const meta: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: "lfm2" },
    "general.name": { type: "string", value: s.name },
  };
  if (s.alignment) meta["general.alignment"] = { type: "u32", value: s.alignment };
  Object.assign(meta, {
    "lfm2.context_length": { type: "u32", value: 128 },
    "lfm2.embedding_length": { type: "u32", value: s.D },
    "lfm2.block_count": { type: "u32", value: s.nLayers },
    "lfm2.feed_forward_length": { type: "u32", value: s.ff },
    "lfm2.attention.head_count": { type: "u32", value: s.nHeads },
    "lfm2.attention.head_count_kv": s.scalarKv ? { type: "u32", value: s.nKv }
      : { type: "i32[]", value: Array.from({ length: s.nLayers }, (_, l) => (s.attn.includes(l) ? s.nKv : 0)) },
    "lfm2.rope.freq_base": { type: "f32", value: 1e6 },
    "lfm2.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 },
    "lfm2.vocab_size": { type: "u32", value: s.V },
    "lfm2.shortconv.l_cache": { type: "u32", value: 3 },
  } satisfies Record<string, GgufWriteValue>);
  if (s.tokenizer) {
    const v = microVocab();
    Object.assign(meta, {
      "tokenizer.ggml.model": { type: "string", value: "gpt2" },
      "tokenizer.ggml.pre": { type: "string", value: "lfm2" },
      "tokenizer.ggml.tokens": { type: "string[]", value: v.tokens },
      "tokenizer.ggml.token_type": { type: "i32[]", value: v.types },
      "tokenizer.ggml.merges": { type: "string[]", value: v.merges },
      "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
      "tokenizer.ggml.eos_token_id": { type: "u32", value: 4 },
      "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    } satisfies Record<string, GgufWriteValue>);
  }
  const w: GgufWriteTensor[] = tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: quantizeTensor(t.type, t.values, t.shape[0]) }));
  const bytes = concatChunks(encodeGguf(meta, w, s.alignment ?? 32));
  if (s.version === 2) new DataView(bytes.buffer).setUint32(4, 2, true);
  return bytes;
}

const MICROS: MicroSpec[] = [
  { name: "f32", D: 32, nLayers: 2, attn: [1], nHeads: 2, nKv: 1, ff: 64, V: 48, types: ["F32"] },
  { name: "q8_0+tok+untied", D: 32, nLayers: 2, attn: [0], nHeads: 2, nKv: 2, ff: 64, V: 264, types: ["Q8_0"], tokenizer: true, untied: true },
  { name: "q4_0+output_norm+align64", D: 64, nLayers: 3, attn: [1], nHeads: 4, nKv: 1, ff: 96, V: 40, types: ["Q4_0"], outputNorm: true, alignment: 64 },
  { name: "mixed-32-blocks+v2", D: 32, nLayers: 2, attn: [1], nHeads: 2, nKv: 1, ff: 64, V: 36, types: ["Q4_1", "Q5_0", "Q5_1", "F16", "BF16", "Q8_0", "Q4_0"], version: 2 },
  { name: "k-quants", D: 256, nLayers: 2, attn: [1], nHeads: 4, nKv: 2, ff: 256, V: 24, types: ["Q4_K", "Q5_K", "Q6_K", "Q8_0"] },
  { name: "all-attention+scalar-kv+tok", D: 32, nLayers: 2, attn: [0, 1], nHeads: 4, nKv: 2, ff: 32, V: 264, types: ["F16", "Q8_0"], tokenizer: true, scalarKv: true },
];

// ---- GGUF layout scan (field positions of a valid file) ---------------------------------------

interface Field { pos: number; size: 4 | 8; kind: string }
interface Range { start: number; end: number; key: string }
interface GgufLayout { fields: Field[]; byKind: Map<string, Field[]>; kvs: Range[]; tinfos: Range[]; headerEnd: number; dataOffset: number; alignment: number }

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function scanGguf(b: Uint8Array): GgufLayout {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  const fields: Field[] = [];
  let p = 8;
  const u32 = (kind: string | null) => { if (kind) fields.push({ pos: p, size: 4, kind }); const x = v.getUint32(p, true); p += 4; return x; };
  const u64 = (kind: string | null) => { if (kind) fields.push({ pos: p, size: 8, kind }); const x = Number(v.getBigUint64(p, true)); p += 8; return x; };
  const str = (kind: string | null) => { const n = u64(kind); const s = dec.decode(b.subarray(p, p + n)); p += n; return s; };
  let alignment = 32;
  const scalar = (t: number, key: string, record: boolean): number | string => {
    if (t === GgufValueType.STRING) return str(record ? "string-length" : "array-string-length");
    const n = SCALAR_SIZE[t];
    const kind = record ? `value-${GgufValueType[t]}` : null;
    if (n === 4) { const pos = p; const x = u32(kind); return t === GgufValueType.F32 ? v.getFloat32(pos, true) : x; }
    if (n === 8) return u64(kind);
    const x = n === 1 ? v.getUint8(p) : v.getUint16(p, true);
    p += n;
    void key;
    return x;
  };
  const nT = u64("tensor-count"), nKv = u64("kv-count");
  const kvs: Range[] = [];
  for (let i = 0; i < nKv; i++) {
    const start = p;
    const key = str("key-length");
    const type = u32("value-type");
    if (type === GgufValueType.ARRAY) {
      const et = u32("array-type");
      const n = u64("array-length");
      for (let j = 0; j < n; j++) scalar(et, key, j < 2);
    } else {
      const x = scalar(type, key, true);
      if (key === "general.alignment") alignment = Number(x);
    }
    kvs.push({ start, end: p, key });
  }
  const tinfos: Range[] = [];
  for (let i = 0; i < nT; i++) {
    const start = p;
    const name = str("tensor-name-length");
    const nd = u32("tensor-n-dims");
    for (let d = 0; d < nd; d++) u64("tensor-dim");
    u32("tensor-type");
    u64("tensor-offset");
    tinfos.push({ start, end: p, key: name });
  }
  const byKind = new Map<string, Field[]>();
  for (const f of fields) { let a = byKind.get(f.kind); if (!a) byKind.set(f.kind, (a = [])); a.push(f); }
  return { fields, byKind, kvs, tinfos, headerEnd: p, dataOffset: Math.ceil(p / alignment) * alignment, alignment };
}

// ---- GGUF mutations ---------------------------------------------------------------------------

class Writer {
  private parts: number[] = [];
  u8(x: number) { this.parts.push(x & 255); return this; }
  u16(x: number) { this.u8(x); this.u8(x >>> 8); return this; }
  u32(x: number) { for (let i = 0; i < 4; i++) this.u8(Number((BigInt.asUintN(32, BigInt(Math.trunc(x))) >> BigInt(8 * i)) & 255n)); return this; }
  u64(x: bigint | number) { const v = BigInt.asUintN(64, BigInt(x)); for (let i = 0; i < 8; i++) this.u8(Number((v >> BigInt(8 * i)) & 255n)); return this; }
  f32(x: number) { const b = new Uint8Array(4); new DataView(b.buffer).setFloat32(0, x, true); return this.raw(b); }
  f64(x: number) { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, x, true); return this.raw(b); }
  raw(b: Uint8Array) { for (const x of b) this.parts.push(x); return this; }
  str(s: string | Uint8Array) { const b = typeof s === "string" ? new TextEncoder().encode(s) : s; this.u64(b.length); return this.raw(b); }
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

const BOUNDARY_INTS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 255, 256, 1023, 1024, 1025, 4096, 65535, 65536, 65537,
  2 ** 22, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -1, -2, -(2 ** 31)];
const BOUNDARY_U64: bigint[] = [0n, 1n, 2n, 7n, 8n, 31n, 32n, 33n, 255n, 4096n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n,
  2n ** 40n, 2n ** 52n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n - 32n];
const BOUNDARY_FLOATS = [NaN, Infinity, -Infinity, 0, -0, 1e-45, 1e-30, 1e-5, 0.5, 1, 2, 1e6, 3.4e38, -1, 32, 1.5];
const INTERESTING_KEYS = ["general.architecture", "general.alignment", "general.name", "lfm2.context_length", "lfm2.embedding_length", "lfm2.block_count",
  "lfm2.feed_forward_length", "lfm2.attention.head_count", "lfm2.attention.head_count_kv", "lfm2.rope.freq_base", "lfm2.attention.layer_norm_rms_epsilon",
  "lfm2.vocab_size", "lfm2.shortconv.l_cache", "lfm2.attention.key_length", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
  "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
  "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.chat_template", "tokenizer.ggml.fim_pad_token_id"];
const INTERESTING_STRINGS = ["", "lfm2", "llama", "gpt2", "llama3", "LFM2", "lfm2\u0000", "\u{1F999}", "x".repeat(300), "Ġt he"];

/** A random metadata value (type id + payload), biased towards values that stress the readers. */
function randomValue(r: Rng): Uint8Array {
  const w = new Writer();
  const intOf = () => (r.chance(0.7) ? r.pick(BOUNDARY_INTS) : r.range(-3, 70));
  const scalarPayload = (t: number) => {
    switch (t) {
      case GgufValueType.U8: case GgufValueType.I8: w.u8(intOf()); break;
      case GgufValueType.U16: case GgufValueType.I16: w.u16(intOf()); break;
      case GgufValueType.U32: case GgufValueType.I32: w.u32(intOf()); break;
      case GgufValueType.F32: w.f32(r.pick(BOUNDARY_FLOATS)); break;
      case GgufValueType.BOOL: w.u8(r.pick([0, 1, 1, 2, 255])); break;
      case GgufValueType.STRING: r.chance(0.1) ? w.str(Uint8Array.from([0xff, 0xfe, 0xc3])) : w.str(r.pick(INTERESTING_STRINGS)); break;
      case GgufValueType.U64: case GgufValueType.I64: w.u64(r.chance(0.5) ? r.pick(BOUNDARY_U64) : BigInt(intOf())); break;
      case GgufValueType.F64: w.f64(r.pick(BOUNDARY_FLOATS)); break;
    }
  };
  const kind = r.int(10);
  if (kind < 5) { const t = r.int(13); if (t === GgufValueType.ARRAY) { w.u32(t).u32(GgufValueType.U8).u64(0); } else { w.u32(t); scalarPayload(t); } }
  else if (kind < 9) {
    const et = r.pick([0, 1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 8, 10, 11, 12]);
    const n = r.pick([0, 1, 2, 3, 4, 6, 7, 264]);
    w.u32(GgufValueType.ARRAY).u32(et).u64(n);
    for (let i = 0; i < n; i++) scalarPayload(et);
  } else if (r.chance(0.5)) {
    w.u32(GgufValueType.ARRAY).u32(GgufValueType.ARRAY).u64(1).u32(GgufValueType.U8).u64(0); // nested array
  } else {
    w.u32(r.pick([13, 14, 99, 0xffffffff])).u64(r.u64()); // unknown type id
  }
  return w.bytes();
}

/** `dataStart`: where the unmutated data section begins in the mutated file (tensor bytes are read relative to it). */
interface Mutated { bytes: Uint8Array; desc: string; dataTouched: boolean; dataStart?: number }

function setU64(b: Uint8Array, pos: number, v: bigint) { new DataView(b.buffer, b.byteOffset).setBigUint64(pos, BigInt.asUintN(64, v), true); }
function getU64(b: Uint8Array, pos: number): bigint { return new DataView(b.buffer, b.byteOffset).getBigUint64(pos, true); }

/** Reassemble a GGUF from (possibly edited) KV and tensor-info byte ranges, re-padding the data section. */
function rebuildGguf(base: Uint8Array, L: GgufLayout, kvs: Uint8Array[], tinfos: Uint8Array[], counts: { t?: bigint; kv?: bigint } = {}): Uint8Array {
  const w = new Writer();
  w.raw(base.subarray(0, 8));
  w.u64(counts.t ?? BigInt(tinfos.length)).u64(counts.kv ?? BigInt(kvs.length));
  for (const k of kvs) w.raw(k);
  for (const t of tinfos) w.raw(t);
  const head = w.bytes();
  const padded = Math.ceil(head.length / L.alignment) * L.alignment;
  const out = new Uint8Array(padded + base.length - L.dataOffset);
  out.set(head); out.set(base.subarray(L.dataOffset), padded);
  return out;
}

function structuralMutation(r: Rng, base: Uint8Array, L: GgufLayout): Mutated {
  const kvs: Uint8Array[] = L.kvs.map((k) => base.slice(k.start, k.end));
  const tinfos: Uint8Array[] = L.tinfos.map((t) => base.slice(t.start, t.end));
  const keyBytes = (key: string) => new Writer().str(key).bytes();
  const kvIndex = (key: string) => L.kvs.findIndex((k) => k.key === key);
  const op = r.weighted<string>([[3, "replace-value"], [2, "retype-known-key"], [1, "dup-kv"], [1, "remove-kv"], [1, "swap-kv"], [1, "add-kv"],
    [1, "dup-tensor"], [1, "remove-tensor"], [1, "swap-tensor-offsets"], [1, "count-off-by-one"], [0.5, "move-tensor-offset"]]);
  let desc = op, counts: { t?: bigint; kv?: bigint } = {};
  switch (op) {
    case "replace-value": {
      const i = r.int(kvs.length);
      kvs[i] = concatChunks([keyBytes(L.kvs[i].key), randomValue(r)]);
      desc += ` ${L.kvs[i].key}`;
      break;
    }
    case "retype-known-key": {
      // the same key, a value of another (or the same) type: numbers as strings, floats as ints, arrays as scalars…
      const key = r.pick(INTERESTING_KEYS);
      const i = kvIndex(key);
      const kv = concatChunks([keyBytes(key), randomValue(r)]);
      if (i >= 0) kvs[i] = kv; else kvs.splice(r.int(kvs.length + 1), 0, kv);
      desc += ` ${key}`;
      break;
    }
    case "dup-kv": { const i = r.int(kvs.length); kvs.splice(r.int(kvs.length + 1), 0, kvs[i]); desc += ` ${L.kvs[i].key}`; break; }
    case "remove-kv": { const i = r.int(kvs.length); kvs.splice(i, 1); desc += ` ${L.kvs[i].key}`; break; }
    case "swap-kv": { const i = r.int(kvs.length), j = r.int(kvs.length); [kvs[i], kvs[j]] = [kvs[j], kvs[i]]; break; }
    case "add-kv": { const key = r.pick(INTERESTING_KEYS); kvs.splice(r.int(kvs.length + 1), 0, concatChunks([keyBytes(key), randomValue(r)])); desc += ` ${key}`; break; }
    case "dup-tensor": { const i = r.int(tinfos.length); tinfos.splice(r.int(tinfos.length + 1), 0, tinfos[i]); desc += ` ${L.tinfos[i].key}`; break; }
    case "remove-tensor": { const i = r.int(tinfos.length); tinfos.splice(i, 1); desc += ` ${L.tinfos[i].key}`; break; }
    case "swap-tensor-offsets": {
      const i = r.int(tinfos.length), j = r.int(tinfos.length);
      const a = tinfos[i], b = tinfos[j];
      const oa = getU64(a, a.length - 8), ob = getU64(b, b.length - 8);
      setU64(a, a.length - 8, ob); setU64(b, b.length - 8, oa);
      desc += ` ${L.tinfos[i].key} <-> ${L.tinfos[j].key}`;
      break;
    }
    case "move-tensor-offset": {
      // another aligned offset inside the data section: the tensor now reads some other tensor's bytes
      const i = r.int(tinfos.length), t = tinfos[i];
      const span = base.length - L.dataOffset;
      setU64(t, t.length - 8, BigInt(Math.floor(r.int(Math.max(1, span)) / L.alignment) * L.alignment));
      desc += ` ${L.tinfos[i].key}`;
      break;
    }
    case "count-off-by-one": {
      const which = r.chance(0.5) ? "kv" : "t";
      const d = BigInt(r.pick([-1, 1]));
      counts = which === "kv" ? { kv: BigInt(kvs.length) + d } : { t: BigInt(tinfos.length) + d };
      desc += ` ${which}${d > 0 ? "+1" : "-1"}`;
      break;
    }
  }
  const bytes = rebuildGguf(base, L, kvs, tinfos, counts);
  return { bytes, desc, dataTouched: false, dataStart: bytes.length - (base.length - L.dataOffset) };
}

function pickField(r: Rng, L: GgufLayout, size: 4 | 8): Field | undefined {
  const kinds = [...L.byKind.keys()].filter((k) => L.byKind.get(k)![0].size === size);
  if (!kinds.length) return undefined;
  return r.pick(L.byKind.get(r.pick(kinds))!);
}

function fieldMutation(r: Rng, b: Uint8Array, L: GgufLayout): string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (r.chance(0.55)) {
    const f = pickField(r, L, 8)!;
    const orig = dv.getBigUint64(f.pos, true);
    const v = r.weighted<bigint>([[6, r.pick(BOUNDARY_U64)], [1, BigInt(b.length)], [1, BigInt(b.length + r.range(-40, 40))], [2, orig + BigInt(r.range(-3, 3))],
      [1, orig * 2n], [1, orig + 32n], [1, orig - 32n], [1, r.u64()], [1, BigInt(r.u32())]]);
    dv.setBigUint64(f.pos, BigInt.asUintN(64, v), true);
    return `${f.kind}@${f.pos}=${BigInt.asUintN(64, v)}`;
  }
  const f = pickField(r, L, 4)!;
  const orig = dv.getUint32(f.pos, true);
  let v: number;
  if (f.kind === "tensor-type") v = r.chance(0.8) ? r.int(42) : r.pick([0xffff, 0x7fffffff, 0xffffffff, 64, 99]);
  else if (f.kind === "value-F32") { dv.setFloat32(f.pos, r.pick(BOUNDARY_FLOATS), true); return `${f.kind}@${f.pos}=${dv.getFloat32(f.pos, true)}`; }
  else v = r.weighted<number>([[5, r.int(16)], [2, r.pick(BOUNDARY_INTS) >>> 0], [2, (orig + r.range(-2, 2)) >>> 0], [1, r.u32()]]);
  dv.setUint32(f.pos, v, true);
  return `${f.kind}@${f.pos}=${v}`;
}

function mutateGguf(r: Rng, base: Uint8Array, L: GgufLayout): Mutated {
  const kind = r.weighted<string>([[14, "truncate"], [18, "flip-header"], [26, "field"], [22, "structural"], [8, "combo"], [4, "flip-data"],
    [4, "magic-version"], [4, "huge-count"]]);
  const b = base.slice();
  switch (kind) {
    case "truncate": {
      const n = r.weighted<number>([[5, r.int(L.headerEnd + 64)], [3, r.int(b.length)], [2, b.length - r.range(1, 2 * L.alignment)]]);
      return { bytes: b.slice(0, Math.max(0, n)), desc: `truncate at ${n} of ${b.length}`, dataTouched: true };
    }
    case "flip-header": {
      const k = r.range(1, 8), at: number[] = [];
      for (let i = 0; i < k; i++) {
        const p = r.chance(0.5) ? (() => { const f = r.pick(L.fields); return f.pos + r.int(f.size); })() : r.int(L.headerEnd);
        if (r.chance(0.5)) b[p] ^= 1 << r.int(8); else b[p] = r.int(256);
        at.push(p);
      }
      return { bytes: b, desc: `flip header bytes ${at.join(",")}`, dataTouched: false };
    }
    case "field": return { bytes: b, desc: fieldMutation(r, b, L), dataTouched: false };
    case "structural": return structuralMutation(r, base, L);
    case "combo": {
      const descs: string[] = [];
      for (let i = r.range(2, 3); i > 0; i--) descs.push(fieldMutation(r, b, L));
      if (r.chance(0.3)) { const n = r.int(b.length); descs.push(`truncate at ${n}`); return { bytes: b.slice(0, n), desc: descs.join("; "), dataTouched: true }; }
      return { bytes: b, desc: descs.join("; "), dataTouched: false };
    }
    case "flip-data": {
      const k = r.range(1, 16);
      for (let i = 0; i < k; i++) b[L.dataOffset + r.int(b.length - L.dataOffset)] = r.int(256);
      return { bytes: b, desc: `flip ${k} data bytes`, dataTouched: true };
    }
    case "magic-version": {
      const dv = new DataView(b.buffer);
      if (r.chance(0.3)) { dv.setUint32(0, r.pick([0x46554746, 0x47475546, 0, 0x00000001, r.u32()]), true); return { bytes: b, desc: "magic", dataTouched: false }; }
      const v = r.pick([0, 1, 2, 3, 4, 5, 0xffff, 0xffffffff]);
      dv.setUint32(4, v, true);
      return { bytes: b, desc: `version ${v}`, dataTouched: false };
    }
    default: { // huge-count: an array length, string length or count claiming far more than the file holds
      const f = r.pick([...(L.byKind.get("array-length") ?? []), ...(L.byKind.get("tensor-count") ?? []), ...(L.byKind.get("kv-count") ?? []),
        ...(L.byKind.get("string-length") ?? []), ...(L.byKind.get("key-length") ?? [])]);
      const v = r.pick([2n ** 30n, 2n ** 32n, 2n ** 40n, 2n ** 56n, 2n ** 63n, 2n ** 64n - 1n, BigInt(b.length)]);
      setU64(b, f.pos, v);
      return { bytes: b, desc: `huge ${f.kind}@${f.pos}=${v}`, dataTouched: false };
    }
  }
}

// ---- the header path: what loadModel does, on one reused WebAssembly memory ---------------------

let kernels: KernelExports;
let memory: WebAssembly.Memory;

interface Header { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: Lfm2Config; dataOffset: number }
interface Loaded { logits: Float32Array; config: Lfm2Config; sig: string; dataOffset: number }

/** Tensor descriptors relative to the data section: equal signatures + untouched data = the same weights. */
const tensorSig = (h: Header) => h.tensors.map((t) => `${t.name}:${t.type.name}:${t.shape.join("x")}:${t.offset - h.dataOffset}:${t.byteLength}`).sort().join("|");

function placeAndRun(h: Header, bytes: Uint8Array, tokenizer: () => unknown): Loaded {
  const c = h.config;
  const arch = architecture(c.architecture);
  const specs = arch.tensors(c);
  const need = weightArenaBytes(specs, h.tensors);
  if (need > MAX_BYTES * 0.95) throw new Lfm2Error("MODEL_TOO_LARGE", "(as loadModel)");
  // weights come from the file: a small file must not plan a large arena (that would be a fail-slow path)
  if (need > 8 * bytes.length + (4 << 20)) throw new Error(`a ${bytes.length}-byte file plans ${need} bytes of weights`);
  const shard = new Shard(0, new Arena(memory));
  shard.kernels = kernels;
  const plan = planWeights(specs, h.tensors, () => shard.arena);
  plan.sink(0, bytes);
  const weights = arch.bind(c, plan.finish(() => kernels));
  shard.initOps(Math.max(c.hiddenSize * 3, c.ffDim, c.nHeads * c.headDim), 1);
  const fwd = new Lfm2Forward(c, weights, { shards: [shard], headShard: 0, layerShard: c.kvHeads.map(() => 0) }, 1);
  tokenizer();
  const state = fwd.allocState(4);
  fwd.clearState(state);
  const logits = fwd.step([1 % c.vocabSize], 0, state, true)!.slice();
  return { logits, config: c, sig: tensorSig(h), dataOffset: h.dataOffset };
}

function noPartial<T>(f: () => T): T {
  try { return f(); } catch (e) {
    if (e instanceof NeedMoreBytes) throw new Error(`NeedMoreBytes(${e.needed}) escaped although the whole file was given`);
    throw e;
  }
}

function headerPathGguf(bytes: Uint8Array): Loaded {
  const h = noPartial(() => {
    const f = parseGguf(bytes, bytes.length);
    return { tensors: f.tensors, metadata: f.metadata, config: configFromGguf(f.metadata), dataOffset: f.dataOffset };
  });
  return placeAndRun(h, bytes, () => (h.metadata.has("tokenizer.ggml.tokens") ? Tokenizer.fromGguf(h.metadata) : null));
}

function headerPathSafetensors(bytes: Uint8Array, cfg: Record<string, unknown>): Loaded {
  const h = noPartial(() => {
    const f = parseSafetensors(bytes, bytes.length);
    return { tensors: f.tensors, metadata: new Map<string, GgufValue>(Object.entries(f.metadata)), config: configFromHf(cfg), dataOffset: f.dataOffset };
  });
  return placeAndRun(h, bytes, () => null);
}

// ---- outcome bookkeeping ----------------------------------------------------------------------

interface Ref { logits: Float32Array; config: string; sig: string; dataOffset: number }
type Outcome = { ok: true; loaded: Loaded } | { ok: false; code: string; message: string };

class Tally {
  counts = new Map<string, number>();
  failures: string[] = [];
  full = 0;
  prefixChecks = 0;
  slowest = { ms: 0, what: "" };
  bump(k: string) { this.counts.set(k, (this.counts.get(k) ?? 0) + 1); }
  fail(msg: string) { this.failures.push(msg); }
  print(title: string, n: number, ms: number) {
    const rows = [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`);
    console.log(`${title}: ${n} cases (${this.full} also through loadModel, ${this.prefixChecks} prefix parses) in ${(ms / 1000).toFixed(1)} s; slowest ${this.slowest.ms.toFixed(0)} ms (${this.slowest.what})\n${rows.join("\n")}` +
      (this.failures.length ? `\n  FAILURES (${this.failures.length}):\n    ${this.failures.slice(0, 20).join("\n    ")}` : ""));
  }
}

const finite = (a: Float32Array) => a.every(Number.isFinite);
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/** Run a case through `run`, classify it, and check the invariants. */
function classify(run: () => Loaded, ref: Ref, m: Mutated, tally: Tally, label: string): Outcome {
  const t0 = performance.now();
  let out: Outcome;
  try {
    out = { ok: true, loaded: run() };
  } catch (e) {
    if (e instanceof Lfm2Error) out = { ok: false, code: e.code, message: e.message };
    else {
      tally.fail(`${label} [${m.desc}]: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? e}`);
      tally.bump(`FAIL ${(e as Error)?.constructor?.name}`);
      return { ok: false, code: "FAIL", message: String(e) };
    }
  }
  const ms = performance.now() - t0;
  if (ms > tally.slowest.ms) tally.slowest = { ms, what: `${label} [${m.desc}]` };
  if (ms > CASE_LIMIT_MS) tally.fail(`${label} [${m.desc}]: took ${ms.toFixed(0)} ms`);
  if (!out.ok) {
    if (!out.message || out.message.length < 8) tally.fail(`${label} [${m.desc}]: unhelpful message "${out.message}"`);
    tally.bump(`Lfm2Error ${out.code}`);
  } else {
    const l = out.loaded;
    const sameWeights = !m.dataTouched && l.sig === ref.sig && l.dataOffset === (m.dataStart ?? ref.dataOffset);
    if (sameWeights && JSON.stringify(l.config) === ref.config) {
      if (!sameBits(l.logits, ref.logits)) tally.fail(`${label} [${m.desc}]: same weights and config, different logits`);
      tally.bump("loaded: unchanged model, identical logits");
    } else if (sameWeights) {
      if (!finite(l.logits)) tally.fail(`${label} [${m.desc}]: same weights, changed config, non-finite logits`);
      tally.bump("loaded: same weights, changed config, finite logits");
    } else {
      // the mutation changed which bytes a tensor reads: NaN/Inf weights are data, not a reader error
      tally.bump(finite(l.logits) ? "loaded: changed weights, finite logits" : "loaded: changed weights, non-finite logits (allowed)");
    }
  }
  if (VERBOSE) console.log(label, m.desc, out.ok ? "loaded" : out.code);
  return out;
}

/**
 * The bytes as loadModel gets them: half the time whole, else in chunks of random sizes (1 byte to
 * 64 KiB), so tensors straddle chunk boundaries and the header is parsed from growing prefixes.
 */
function raggedSource(bytes: Uint8Array, r: Rng): Uint8Array | ByteSource {
  if (r.chance(0.5)) return bytes;
  const sizes: number[] = [];
  for (let o = 0; o < bytes.length;) { const n = r.chance(0.2) ? r.range(1, 64) : r.range(1, 64 << 10); sizes.push(n); o += n; }
  return {
    name: "ragged", size: bytes.length,
    async *chunks(start = 0) { let o = 0; for (const n of sizes) { if (o + n > start) yield bytes.subarray(Math.max(o, start), Math.min(bytes.length, o + n)); o += n; } },
  };
}

/** The same case through the real loadModel: must agree with the header path. */
async function checkFull(load: () => Promise<import("../src/index.js").Model>, header: Outcome, m: { desc: string }, tally: Tally, label: string) {
  if (!header.ok && header.code === "FAIL") return;
  tally.full++;
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((res) => { timer = setTimeout(() => res("timeout"), CASE_LIMIT_MS * 2); });
  try {
    const model = await Promise.race([load(), timeout]);
    if (model === "timeout") { tally.fail(`${label} [${m.desc}]: loadModel hung`); return; }
    const logits = await model.createSession({ contextLength: 8 }).forward([1 % model.info.config.vocabSize]);
    if (!header.ok) tally.fail(`${label} [${m.desc}]: loadModel loaded what the header path rejected (${header.code}: ${header.message})`);
    else if (!sameBits(logits, header.loaded.logits) && (finite(logits) || finite(header.loaded.logits))) {
      tally.fail(`${label} [${m.desc}]: loadModel logits differ from the header path's`);
    }
  } catch (e) {
    if (!(e instanceof Lfm2Error)) { tally.fail(`${label} [${m.desc}]: loadModel threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`); return; }
    if (header.ok) tally.fail(`${label} [${m.desc}]: loadModel threw ${e.code} (${e.message}) but the header path loaded`);
    else if (header.code !== e.code) tally.fail(`${label} [${m.desc}]: loadModel threw ${e.code}, the header path ${header.code}`);
  } finally { clearTimeout(timer); }
  const ms = performance.now() - t0;
  if (ms > CASE_LIMIT_MS) tally.fail(`${label} [${m.desc}]: loadModel took ${ms.toFixed(0)} ms`);
}

/**
 * loadModel parses growing prefixes of the file: on a prefix a parser must either ask for more bytes
 * (NeedMoreBytes) or reach exactly the verdict it reaches on the whole file.
 */
function prefixCheck(parse: (b: Uint8Array, size: number) => unknown, bytes: Uint8Array, r: Rng, tally: Tally, label: string, desc: string) {
  const verdict = (f: () => unknown) => {
    try { f(); return "ok"; } catch (e) {
      if (e instanceof NeedMoreBytes) return "need more bytes";
      return e instanceof Lfm2Error ? e.code : `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
    }
  };
  const full = verdict(() => parse(bytes, bytes.length));
  const k = r.chance(0.5) ? r.int(Math.min(bytes.length, 4096)) : r.int(bytes.length);
  const part = verdict(() => parse(bytes.subarray(0, k), bytes.length));
  tally.prefixChecks++;
  if (part !== "need more bytes" && part !== full) tally.fail(`${label} [${desc}]: a ${k}-byte prefix gives ${part}, the whole file ${full}`);
}

// ---- safetensors ------------------------------------------------------------------------------

const hfName = (g: string) => ggufToHfName(g)!;

interface StBase { name: string; bytes: Uint8Array; config: Record<string, unknown>; ref?: Ref }

function microSafetensors(s: MicroSpec, seed: number): StBase {
  const st = microTensors(s, seed).map((t) => {
    const isConv = t.name.endsWith("shortconv.conv.weight");
    const shape = t.shape.length === 1 ? t.shape : isConv ? [t.shape[1], 1, t.shape[0]] : [t.shape[1], t.shape[0]];
    return { name: hfName(t.name), dtype: t.type.name as "F32" | "F16" | "BF16", shape, data: quantizeTensor(t.type, t.values, t.shape[0]) };
  });
  const config = {
    architectures: ["Lfm2ForCausalLM"], model_type: "lfm2", hidden_size: s.D, num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads,
    num_key_value_heads: s.nKv, block_ff_dim: s.ff, block_auto_adjust_ff_dim: false, full_attn_idxs: s.attn, vocab_size: s.V,
    norm_eps: 1e-5, rope_theta: 1e6, conv_L_cache: 3, max_position_embeddings: 128, tie_embedding: !s.untied,
  };
  return { name: s.name, bytes: concatChunks(encodeSafetensors(st, { format: "pt" })), config };
}

const ST_MICROS: MicroSpec[] = [
  { name: "st-f32", D: 32, nLayers: 2, attn: [1], nHeads: 2, nKv: 1, ff: 64, V: 40, types: ["F32"] },
  { name: "st-bf16+untied", D: 32, nLayers: 2, attn: [0], nHeads: 4, nKv: 2, ff: 32, V: 24, types: ["BF16"], untied: true },
  { name: "st-mixed", D: 32, nLayers: 3, attn: [2], nHeads: 2, nKv: 1, ff: 64, V: 36, types: ["F16", "BF16", "F32"] },
];

const JSON_SHAPES: unknown[] = [[], [0], [-1], [1.5], ["32"], [2 ** 53], [2 ** 31, 2 ** 31], [1, 1, 1, 1, 1], [32, 1], [1, 32], null, "x", {}, [2 ** 26, 2 ** 26], [3, 3, 3]];
const JSON_DTYPES: unknown[] = ["F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "Q4_0", "f32", "", 1, null, ["F32"]];

function mutateSafetensors(r: Rng, base: StBase): Mutated & { config: Record<string, unknown>; configMutated: boolean } {
  const hl = Number(new DataView(base.bytes.buffer, base.bytes.byteOffset).getBigUint64(0, true));
  const dataOffset = 8 + hl;
  const kind = r.weighted<string>([[12, "truncate"], [14, "flip-json"], [8, "header-length"], [44, "json"], [6, "flip-data"], [16, "config"]]);
  let config = base.config, configMutated = false;
  const b = base.bytes.slice();
  const reassemble = (header: unknown, json?: string) => {
    let s = json ?? JSON.stringify(header);
    if (r.chance(0.8)) s += " ".repeat((8 - ((8 + new TextEncoder().encode(s).length) % 8)) % 8);
    const head = new TextEncoder().encode(s);
    const w = new Writer().u64(head.length).raw(head).bytes();
    return concatChunks([w, base.bytes.subarray(dataOffset)]);
  };
  switch (kind) {
    case "truncate": {
      const n = r.chance(0.6) ? r.int(dataOffset + 16) : r.int(b.length);
      return { bytes: b.slice(0, n), desc: `truncate at ${n} of ${b.length}`, dataTouched: true, config, configMutated };
    }
    case "flip-json": {
      const k = r.range(1, 4);
      for (let i = 0; i < k; i++) { const p = 8 + r.int(hl); b[p] = r.chance(0.6) ? r.pick([...'0123456789[]{}",:-.eE ']).charCodeAt(0) : r.int(256); }
      return { bytes: b, desc: `flip ${k} JSON bytes`, dataTouched: false, config, configMutated };
    }
    case "header-length": {
      const v = r.weighted<bigint>([[4, r.pick(BOUNDARY_U64)], [2, BigInt(hl + r.range(-9, 9))], [1, BigInt(b.length)], [1, BigInt(b.length - 7)], [1, 100n << 20n]]);
      setU64(b, 0, v);
      return { bytes: b, desc: `header length ${BigInt.asUintN(64, v)}`, dataTouched: false, config, configMutated };
    }
    case "flip-data": {
      for (let i = r.range(1, 16); i > 0; i--) b[dataOffset + r.int(b.length - dataOffset)] = r.int(256);
      return { bytes: b, desc: "flip data bytes", dataTouched: true, config, configMutated };
    }
    case "config": {
      const c: Record<string, any> = structuredClone(base.config);
      const keys = [...Object.keys(c), "layer_types", "head_dim", "block_auto_adjust_ff_dim", "block_ffn_dim_multiplier", "block_multiple_of", "intermediate_size", "block_dim"];
      const key = r.pick(keys);
      const vals: unknown[] = [0, 1, -1, 3, 2.5, 1e9, 2 ** 32, 2 ** 53, NaN, null, "lfm2", "8", true, [], [0, 1], [5, 5, 5], ["full_attention", "conv"], { a: 1 }, undefined];
      let v = r.pick(vals);
      if (key === "layer_types" && r.chance(0.5)) v = Array.from({ length: r.pick([0, 1, 2, 3, 4]) }, () => r.pick(["full_attention", "conv", 7]));
      if (key === "full_attn_idxs" && r.chance(0.5)) v = Array.from({ length: r.range(0, 4) }, () => r.pick([0, 1, 2, -1, 9, 1.5, "1"]));
      if (v === undefined) delete c[key]; else c[key] = v;
      config = c; configMutated = true;
      if (r.chance(0.04)) { // not an object at all
        const root = r.pick<unknown>([null, [], 5, "lfm2", true]);
        return { bytes: b, desc: `config = ${JSON.stringify(root)}`, dataTouched: false, config: root as any, configMutated: true };
      }
      const asString = r.chance(0.1);
      return { bytes: b, desc: `config ${key}=${JSON.stringify(v)}${asString ? " (as text)" : ""}`, dataTouched: false, config: asString ? (JSON.stringify(c) as any) : c, configMutated };
    }
    default: { // json: structural edits of the header object
      const header: Record<string, any> = JSON.parse(new TextDecoder().decode(base.bytes.subarray(8, dataOffset)));
      const names = Object.keys(header).filter((n) => n !== "__metadata__");
      const name = r.pick(names), t = header[name];
      const op = r.weighted<string>([[3, "dtype"], [3, "shape"], [4, "offsets"], [1, "remove"], [1, "alias"], [1, "rename"], [1, "metadata"], [1, "entry"], [1, "root"], [1, "deep"]]);
      let desc = `json ${op} ${name}`;
      let json: string | undefined;
      switch (op) {
        case "dtype": t.dtype = r.pick(JSON_DTYPES); desc += `=${JSON.stringify(t.dtype)}`; break;
        case "shape": {
          t.shape = r.chance(0.5) ? r.pick(JSON_SHAPES) : Array.isArray(t.shape) ? [...t.shape].reverse().concat(r.chance(0.5) ? [1] : []) : t.shape;
          desc += `=${JSON.stringify(t.shape)}`;
          break;
        }
        case "offsets": {
          const [a, bb] = t.data_offsets as number[];
          const n = base.bytes.length - dataOffset;
          t.data_offsets = r.pick<unknown>([[bb, a], [a, a + 1], [0, n + 1], [-1, bb], [a], [a, bb, bb], null, [a + 4, bb + 4], [a, 2 ** 64], [a + 0.5, bb], [n, n],
            [0, bb - a], [a, bb + 2], ["0", "4"], [2 ** 53, 2 ** 53 + 4]]);
          desc += `=${JSON.stringify(t.data_offsets)}`;
          break;
        }
        case "remove": delete header[name]; break;
        case "alias": header[name.replace(/^model\./, r.pick(["", "model.language_model.", "language_model.model."]))] = structuredClone(t); break;
        case "rename": header[name + r.pick(["x", ".bias", "_"])] = t; delete header[name]; break;
        case "metadata": header.__metadata__ = r.pick<unknown>([null, [], 5, "x", { "general.name": 5 }, { a: { b: 1 } }, { format: "pt" }]); break;
        case "entry": header[name] = r.pick<unknown>([null, 1, "x", [], { dtype: "F32" }, { shape: [1], data_offsets: [0, 4] }]); break;
        case "root": json = r.pick(["[]", "null", "1", "\"x\"", "{}", "{\"__metadata__\":{}}", "{\"a\":"]); break;
        case "deep": json = "[".repeat(r.pick([1000, 100_000])) + "]".repeat(r.pick([0, 1000])); break;
      }
      const bytes = reassemble(header, json);
      return { bytes, desc, dataTouched: false, dataStart: bytes.length - (base.bytes.length - dataOffset), config, configMutated };
    }
  }
}

// ---- the tests --------------------------------------------------------------------------------

interface GgufBase { name: string; bytes: Uint8Array; layout: GgufLayout; ref: Ref; weight: number }

describe("fuzz: mutated model files end in a model or an Lfm2Error", () => {
  const ggufBases: GgufBase[] = [];
  const stBases: StBase[] = [];

  beforeAll(async () => {
    const module = await compileVariant(chooseVariant(false));
    memory = createMemory(32 << 20, false);
    kernels = await instantiateKernels(module, memory);
    const specs: { name: string; bytes: Uint8Array; weight: number }[] = [
      ...MICROS.map((s, i) => ({ name: s.name, bytes: microGguf(s, 100 + i), weight: 15 })),
      { name: "tiny-q4_0 (synthetic, 2.5 MB)", bytes: concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q4_0", seed: 7 })), weight: 6 },
    ];
    for (const s of specs) {
      const loaded = headerPathGguf(s.bytes);
      expect(finite(loaded.logits)).toBe(true);
      ggufBases.push({ ...s, layout: scanGguf(s.bytes), ref: { logits: loaded.logits, config: JSON.stringify(loaded.config), sig: loaded.sig, dataOffset: loaded.dataOffset } });
    }
    for (const [i, s] of ST_MICROS.entries()) {
      const b = microSafetensors(s, 200 + i);
      const loaded = headerPathSafetensors(b.bytes, b.config);
      expect(finite(loaded.logits)).toBe(true);
      b.ref = { logits: loaded.logits, config: JSON.stringify(loaded.config), sig: loaded.sig, dataOffset: loaded.dataOffset };
      stBases.push(b);
    }
  }, 120_000);

  it("the unmutated bases load through loadModel with the header path's logits", async () => {
    for (const b of ggufBases) {
      const m = await loadModel(b.bytes, { threads: 1 });
      expect(sameBits(await m.createSession({ contextLength: 8 }).forward([1 % m.info.config.vocabSize]), b.ref.logits)).toBe(true);
    }
    for (const b of stBases) {
      const m = await loadModel({ config: b.config, safetensors: b.bytes }, { threads: 1 });
      expect(sameBits(await m.createSession({ contextLength: 8 }).forward([1]), b.ref!.logits)).toBe(true);
    }
  });

  it(`GGUF: ${N_GGUF} mutated files (every ${FULL_EVERY_GGUF}th also through loadModel)`, async () => {
    const tally = new Tally();
    const t0 = performance.now();
    const weights = ggufBases.map((b) => [b.weight, b] as [number, GgufBase]);
    for (let i = 0; i < N_GGUF; i++) {
      if (ONLY !== undefined && i !== ONLY) continue;
      const r = new Rng(caseSeed(1, i));
      const base = r.weighted(weights);
      const m = mutateGguf(r, base.bytes, base.layout);
      const label = `gguf #${i} ${base.name}`;
      const out = classify(() => headerPathGguf(m.bytes), base.ref, m, tally, label);
      if (r.chance(0.3)) prefixCheck(parseGguf, m.bytes, r, tally, label, m.desc);
      if (i % FULL_EVERY_GGUF === 0 || ONLY !== undefined) await checkFull(() => loadModel(raggedSource(m.bytes, r), { threads: 1 }), out, m, tally, label);
    }
    tally.print("GGUF fuzz", ONLY !== undefined ? 1 : N_GGUF, performance.now() - t0);
    expect(tally.failures).toEqual([]);
    // the mix must exercise both sides: real rejections of many kinds, and mutated files that still load
    if (ONLY === undefined && N_GGUF >= 1000) {
      const codes = [...tally.counts.keys()].filter((k) => k.startsWith("Lfm2Error"));
      expect(codes.length).toBeGreaterThanOrEqual(8);
      expect([...tally.counts.keys()].some((k) => k.startsWith("loaded"))).toBe(true);
    }
  }, 300_000);

  it(`safetensors: ${N_ST} mutated files and configs (every ${FULL_EVERY_ST}th, and every config mutation, also through loadModel)`, async () => {
    const tally = new Tally();
    const t0 = performance.now();
    for (let i = 0; i < N_ST; i++) {
      if (ONLY !== undefined && i !== ONLY) continue;
      const r = new Rng(caseSeed(2, i));
      const base = r.pick(stBases);
      const m = mutateSafetensors(r, base);
      const label = `safetensors #${i} ${base.name}`;
      let out: Outcome;
      if (m.configMutated) {
        // config.json handling (text or object) lives in loadModel: only the full path covers it
        out = { ok: false, code: "(full only)", message: "" };
        const t1 = performance.now();
        try {
          const model = await loadModel({ config: m.config, safetensors: m.bytes }, { threads: 1 });
          const logits = await model.createSession({ contextLength: 8 }).forward([1 % model.info.config.vocabSize]);
          tally.bump(finite(logits) ? "loaded (config mutated), finite logits" : "loaded (config mutated), NON-FINITE logits");
          if (!finite(logits)) tally.fail(`${label} [${m.desc}]: non-finite logits`);
        } catch (e) {
          if (e instanceof Lfm2Error) tally.bump(`Lfm2Error ${e.code} (config)`);
          else { tally.bump(`FAIL ${(e as Error)?.constructor?.name} (config)`); tally.fail(`${label} [${m.desc}]: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`); }
        }
        tally.full++;
        if (performance.now() - t1 > CASE_LIMIT_MS) tally.fail(`${label} [${m.desc}]: took ${(performance.now() - t1).toFixed(0)} ms`);
        continue;
      }
      out = classify(() => headerPathSafetensors(m.bytes, m.config), base.ref!, m, tally, label);
      if (r.chance(0.3)) prefixCheck(parseSafetensors, m.bytes, r, tally, label, m.desc);
      if (i % FULL_EVERY_ST === 0 || ONLY !== undefined) await checkFull(() => loadModel({ config: m.config, safetensors: raggedSource(m.bytes, r) }, { threads: 1 }), out, m, tally, label);
    }
    tally.print("safetensors fuzz", ONLY !== undefined ? 1 : N_ST, performance.now() - t0);
    expect(tally.failures).toEqual([]);
  }, 300_000);
});
