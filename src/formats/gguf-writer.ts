// A small GGUF v3 writer: used by the synthetic-model generator (demo model, tests, benchmarks).
import { GgufValueType, GGUF_MAGIC } from "./gguf.js";
import type { GgmlType } from "../core/quant-types.js";

export type GgufWriteValue =
  | { type: "u32" | "i32" | "f32" | "u64" | "u8"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "u32[]" | "i32[]" | "f32[]"; value: ArrayLike<number> }
  | { type: "string[]"; value: string[] };

export interface GgufWriteTensor {
  name: string;
  shape: number[];          // ggml ne order
  type: GgmlType;
  data: Uint8Array;         // already encoded in `type`
}

const enc = new TextEncoder();

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private view = new DataView(this.cur.buffer);
  private pos = 0;
  length = 0;
  private ensure(n: number) {
    if (this.pos + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = new Uint8Array(Math.max(1 << 16, n));
    this.view = new DataView(this.cur.buffer);
    this.pos = 0;
  }
  u8(v: number) { this.ensure(1); this.view.setUint8(this.pos, v); this.pos++; this.length++; }
  u32(v: number) { this.ensure(4); this.view.setUint32(this.pos, v, true); this.pos += 4; this.length += 4; }
  i32(v: number) { this.ensure(4); this.view.setInt32(this.pos, v, true); this.pos += 4; this.length += 4; }
  f32(v: number) { this.ensure(4); this.view.setFloat32(this.pos, v, true); this.pos += 4; this.length += 4; }
  u64(v: number) { this.ensure(8); this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; this.length += 8; }
  bytes(b: Uint8Array) { this.ensure(b.length); this.cur.set(b, this.pos); this.pos += b.length; this.length += b.length; }
  str(s: string) { const b = enc.encode(s); this.u64(b.length); this.bytes(b); }
  finish(): Uint8Array[] { this.chunks.push(this.cur.subarray(0, this.pos)); return this.chunks; }
}

function writeValue(s: ByteSink, v: GgufWriteValue) {
  const arr = (elem: GgufValueType, n: number) => { s.u32(GgufValueType.ARRAY); s.u32(elem); s.u64(n); };
  switch (v.type) {
    case "u8": s.u32(GgufValueType.U8); s.u8(v.value); break;
    case "u32": s.u32(GgufValueType.U32); s.u32(v.value); break;
    case "i32": s.u32(GgufValueType.I32); s.i32(v.value); break;
    case "f32": s.u32(GgufValueType.F32); s.f32(v.value); break;
    case "u64": s.u32(GgufValueType.U64); s.u64(v.value); break;
    case "bool": s.u32(GgufValueType.BOOL); s.u8(v.value ? 1 : 0); break;
    case "string": s.u32(GgufValueType.STRING); s.str(v.value); break;
    case "u32[]": arr(GgufValueType.U32, v.value.length); for (let i = 0; i < v.value.length; i++) s.u32(v.value[i]); break;
    case "i32[]": arr(GgufValueType.I32, v.value.length); for (let i = 0; i < v.value.length; i++) s.i32(v.value[i]); break;
    case "f32[]": arr(GgufValueType.F32, v.value.length); for (let i = 0; i < v.value.length; i++) s.f32(v.value[i]); break;
    case "string[]": arr(GgufValueType.STRING, v.value.length); for (const x of v.value) s.str(x); break;
  }
}

/**
 * Encode a GGUF v3 file as a list of chunks (header chunks, then each tensor's bytes and padding),
 * so large files can be streamed to disk without one contiguous buffer.
 */
export function encodeGguf(metadata: Record<string, GgufWriteValue>, tensors: GgufWriteTensor[], alignment = 32): Uint8Array[] {
  const pad = (n: number) => (alignment - (n % alignment)) % alignment;
  const out = encodeGgufHeader(metadata, tensors.map((t) => ({ ...t, byteLength: t.data.length })), alignment);
  for (const t of tensors) {
    out.push(t.data);
    const p = pad(t.data.length);
    if (p) out.push(new Uint8Array(p));
  }
  return out;
}

/**
 * The header of a GGUF v3 file (padded to the data section): tensors are described by byte length, so
 * a writer can stream data it has not produced yet (each tensor followed by padding to `alignment`).
 */
export function encodeGgufHeader(metadata: Record<string, GgufWriteValue>,
  tensors: { name: string; shape: number[]; type: GgmlType; byteLength: number }[], alignment = 32): Uint8Array[] {
  const s = new ByteSink();
  const entries = Object.entries(metadata);
  s.u32(GGUF_MAGIC); s.u32(3); s.u64(tensors.length); s.u64(entries.length);
  for (const [k, v] of entries) { s.str(k); writeValue(s, v); }
  let offset = 0;
  const pad = (n: number) => (alignment - (n % alignment)) % alignment;
  for (const t of tensors) {
    s.str(t.name); s.u32(t.shape.length); for (const d of t.shape) s.u64(d); s.u32(t.type.id); s.u64(offset);
    offset += t.byteLength + pad(t.byteLength);
  }
  const out = s.finish();
  const headPad = pad(s.length);
  if (headPad) out.push(new Uint8Array(headPad));
  return out;
}

export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}
