// GGUF v2/v3 reader: header, metadata and tensor descriptors. Every count, length and offset is checked
// against the bytes actually present before it is used, so hostile files end in an Lfm2Error.
import { Lfm2Error } from "../errors.js";
import { ggmlType, rowBytes, type GgmlType } from "../core/quant-types.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

export enum GgufValueType { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }

export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufScalar[] | GgufTypedArray;
/**
 * A GGUF bool array: one byte per element, each 0 or 1. A Uint8Array (not boolean[]) so that an
 * array of millions of flags costs its bytes, not a JS value each; the class keeps it apart from u8.
 */
export class GgufBoolArray extends Uint8Array {}

export type GgufTypedArray = GgufBoolArray | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

export interface TensorInfo {
  name: string;
  /** ggml `ne`: ne[0] is the contiguous dimension. */
  shape: number[];
  type: GgmlType;
  /** Byte offset of the data from the start of the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: TensorInfo[];
  /** Start of the tensor data section in the file. */
  dataOffset: number;
  alignment: number;
}

/** Thrown internally when the header continues past the bytes given; `needed` is a lower bound. */
export class NeedMoreBytes extends Error {
  constructor(readonly needed: number) { super(`need ${needed} bytes`); }
}

const MAX_DIMS = 4;
const MAX_STRING = 1 << 24;           // 16 MiB: no legitimate key, token or template is larger
const MAX_ELEMENTS = 2 ** 52;
const MAX_COUNT = 1 << 20;            // tensors or metadata entries
const MAX_ARRAY = 1 << 28;            // elements of a metadata array

class Cursor {
  pos = 0;
  private view: DataView;
  private dec = new TextDecoder("utf-8", { fatal: false });
  constructor(private bytes: Uint8Array, private fileSize: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number): void {
    const end = this.pos + n;
    if (end > this.fileSize) throw new Lfm2Error("TRUNCATED", `GGUF header is truncated (needs byte ${end}, file has ${this.fileSize})`);
    if (end > this.bytes.byteLength) throw new NeedMoreBytes(end);
  }
  u8() { this.need(1); return this.view.getUint8(this.pos++); }
  i8() { this.need(1); return this.view.getInt8(this.pos++); }
  u16() { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16() { this.need(2); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32() { this.need(4); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64() { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64big() { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64big() { this.need(8); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }
  /**
   * u64 that must be a safe integer no larger than `max`. With `itemBytes`, it counts items of at
   * least that many bytes still to come: more than the rest of the file holds means the file is cut
   * short (TRUNCATED), while a value past `max` is implausible for any file (OUT_OF_RANGE).
   */
  size(what: string, max: number, itemBytes = 0): number {
    const v = this.u64big();
    if (v > BigInt(max)) throw new Lfm2Error("OUT_OF_RANGE", `GGUF ${what} ${v} exceeds the limit ${max}`);
    const left = this.fileSize - this.pos;
    if (itemBytes > 0 && v * BigInt(itemBytes) > BigInt(left)) {
      throw new Lfm2Error("TRUNCATED", `GGUF header is truncated: ${what} ${v} needs at least ${v * BigInt(itemBytes)} more bytes, the file has ${left} left`);
    }
    return Number(v);
  }
  str(what: string): string {
    const n = this.size(`${what} length`, MAX_STRING, 1);
    this.need(n);
    const s = this.dec.decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  remaining() { return this.fileSize - this.pos; }
  typed<T extends GgufTypedArray>(Ctor: { new(b: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, count: number): T {
    const n = count * Ctor.BYTES_PER_ELEMENT;
    this.need(n);
    const copy = new Uint8Array(n); // a copy: aligned, and independent of the read buffer (Buffer.slice would not copy)
    copy.set(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return new Ctor(copy.buffer);
  }
}

const scalarSize: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function readScalar(c: Cursor, type: number, what: string): GgufScalar {
  switch (type) {
    case GgufValueType.U8: return c.u8();
    case GgufValueType.I8: return c.i8();
    case GgufValueType.U16: return c.u16();
    case GgufValueType.I16: return c.i16();
    case GgufValueType.U32: return c.u32();
    case GgufValueType.I32: return c.i32();
    case GgufValueType.F32: return c.f32();
    case GgufValueType.BOOL: { const b = c.u8(); if (b > 1) throw new Lfm2Error("BAD_METADATA", `GGUF bool ${what} has value ${b}`); return b === 1; }
    case GgufValueType.STRING: return c.str(what);
    case GgufValueType.U64: { const v = c.u64big(); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
    case GgufValueType.I64: { const v = c.i64big(); return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
    case GgufValueType.F64: return c.f64();
    default: throw new Lfm2Error("BAD_METADATA", `GGUF metadata ${what} has unknown value type ${type}`);
  }
}

function readValue(c: Cursor, type: number, what: string): GgufValue {
  if (type !== GgufValueType.ARRAY) return readScalar(c, type, what);
  const elemType = c.u32();
  if (elemType === GgufValueType.ARRAY) throw new Lfm2Error("BAD_METADATA", `GGUF nested arrays are not supported (${what})`);
  const minSize = elemType === GgufValueType.STRING ? 8 : scalarSize[elemType];
  if (minSize === undefined) throw new Lfm2Error("BAD_METADATA", `GGUF array ${what} has unknown element type ${elemType}`);
  const count = c.size(`${what} array length`, MAX_ARRAY, minSize);
  switch (elemType) {
    case GgufValueType.U8: return c.typed(Uint8Array, count);
    case GgufValueType.I8: return c.typed(Int8Array, count);
    case GgufValueType.U16: return c.typed(Uint16Array, count);
    case GgufValueType.I16: return c.typed(Int16Array, count);
    case GgufValueType.U32: return c.typed(Uint32Array, count);
    case GgufValueType.I32: return c.typed(Int32Array, count);
    case GgufValueType.F32: return c.typed(Float32Array, count);
    case GgufValueType.F64: return c.typed(Float64Array, count);
    case GgufValueType.U64: return c.typed(BigUint64Array, count);
    case GgufValueType.I64: return c.typed(BigInt64Array, count);
    case GgufValueType.BOOL: {
      const flags = c.typed(GgufBoolArray, count);
      for (let i = 0; i < flags.length; i++) {
        if (flags[i]! > 1) throw new Lfm2Error("BAD_METADATA", `GGUF bool array ${what} has value ${flags[i]} at ${i}`);
      }
      return flags;
    }
  }
  const out: GgufScalar[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readScalar(c, elemType, what);
  return out;
}

/**
 * Parse the GGUF header held in `bytes` (a prefix of a file of `fileSize` bytes).
 * Throws NeedMoreBytes if the header continues past `bytes`, Lfm2Error if the file is invalid.
 */
export function parseGguf(bytes: Uint8Array, fileSize = bytes.byteLength): GgufFile {
  const c = new Cursor(bytes, fileSize);
  if (fileSize < 4) throw new Lfm2Error("BAD_MAGIC", "file is too small to be a GGUF model");
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) throw new Lfm2Error("BAD_MAGIC", "not a GGUF file (bad magic)");
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new Lfm2Error("UNSUPPORTED_VERSION", `GGUF version ${version} is not supported (2 and 3 are)`);
  // every tensor info needs at least 8+4+8+4+8 bytes, every kv at least 8+4+1
  const nTensors = c.size("tensor count", MAX_COUNT, 32);
  const nKv = c.size("metadata count", MAX_COUNT, 13);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str("metadata key");
    const type = c.u32();
    metadata.set(key, readValue(c, type, key));
  }
  const alignRaw = metadata.get("general.alignment") ?? 32;
  const alignment = typeof alignRaw === "number" ? alignRaw : NaN;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) {
    throw new Lfm2Error("BAD_METADATA", `general.alignment ${String(alignRaw)} is not a power of two`);
  }
  const infos: { name: string; shape: number[]; type: GgmlType; rel: number; byteLength: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.str("tensor name");
    if (names.has(name)) throw new Lfm2Error("BAD_METADATA", `tensor ${name} appears twice`);
    names.add(name);
    const nDims = c.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw new Lfm2Error("OUT_OF_RANGE", `tensor ${name} has ${nDims} dimensions`);
    const shape: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const ne = c.size(`tensor ${name} dimension`, MAX_ELEMENTS);
      if (ne === 0) throw new Lfm2Error("OUT_OF_RANGE", `tensor ${name} has an empty dimension`);
      elements *= ne;
      if (elements > MAX_ELEMENTS) throw new Lfm2Error("OUT_OF_RANGE", `tensor ${name} has too many elements`);
      shape.push(ne);
    }
    const typeId = c.u32();
    const type = ggmlType(typeId);
    if (!type) throw new Lfm2Error("UNSUPPORTED_TYPE", `tensor ${name} has ggml type ${typeId}, which this runtime does not support`);
    const rel = c.size(`tensor ${name} offset`, Number.MAX_SAFE_INTEGER); // checked against the file below
    if (rel % alignment !== 0) throw new Lfm2Error("OUT_OF_RANGE", `tensor ${name} offset ${rel} is not aligned to ${alignment}`);
    const byteLength = rowBytes(type, shape[0]) * (elements / shape[0]);
    infos.push({ name, shape, type, rel, byteLength });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  // Data past the end of the file: a file cut short if the tensors tile the data section the way
  // writers lay them out (back to back, aligned), else an offset pointing outside the file.
  const sorted = [...infos].sort((a, b) => a.rel - b.rel);
  const tiled = sorted.every((t, i) => t.rel === (i === 0 ? 0 : Math.ceil((sorted[i - 1].rel + sorted[i - 1].byteLength) / alignment) * alignment));
  const tensors: TensorInfo[] = infos.map(({ name, shape, type, rel, byteLength }) => {
    const offset = dataOffset + rel;
    if (offset + byteLength > fileSize) {
      throw new Lfm2Error(tiled || offset <= fileSize ? "TRUNCATED" : "OUT_OF_RANGE",
        `tensor ${name} data [${offset}, ${offset + byteLength}) lies beyond the end of the file (${fileSize} bytes)`);
    }
    return { name, shape, type, offset, byteLength };
  });
  return { version, metadata, tensors, dataOffset, alignment };
}

// ---- typed metadata access -------------------------------------------------------------------

export function metaNumber(m: Map<string, GgufValue>, key: string): number | undefined {
  const v = m.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new Lfm2Error("BAD_METADATA", `metadata ${key} should be a number`);
}

export function metaString(m: Map<string, GgufValue>, key: string): string | undefined {
  const v = m.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new Lfm2Error("BAD_METADATA", `metadata ${key} should be a string`);
  return v;
}

/** A numeric scalar or array as a plain number array (per-layer values may be either). */
export function metaNumbers(m: Map<string, GgufValue>, key: string): number[] | undefined {
  const v = m.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return [v];
  if (ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<number | bigint>, Number);
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  throw new Lfm2Error("BAD_METADATA", `metadata ${key} should be numeric`);
}

export function metaStrings(m: Map<string, GgufValue>, key: string): string[] | undefined {
  const v = m.get(key);
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw new Lfm2Error("BAD_METADATA", `metadata ${key} should be a string array`);
}
