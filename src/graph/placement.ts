// Tensor specs (from an architecture) + the file's tensor descriptors → weights placed in the shards'
// WebAssembly memories. Matrices are copied byte for byte in their file type (no full-size copies in
// JS) and re-interleaved by four rows where the type has an x4 layout; norms and conv kernels (tiny)
// are converted to f32. Nothing here knows an architecture's tensor names.
import { Lfm2Error } from "../errors.js";
import type { TensorInfo } from "../formats/gguf.js";
import { GGML, kernelsFor, rowBytes } from "../core/quant-types.js";
import type { KernelExports } from "../../bindings/wasm.js";
import { dequantizeTensor } from "../formats/quantize.js";
import type { Arena } from "../../bindings/arena.js";
import type { PlacedTensors, TensorSpec } from "../core/tensor-spec.js";

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const sameShape = (a: number[], b: number[]) => {
  const strip = (s: number[]) => { const t = [...s]; while (t.length > 1 && t[t.length - 1] === 1) t.pop(); return t; };
  const x = strip(a), y = strip(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** The specs this file satisfies, each with its tensor; throws MISSING_TENSOR / SHAPE_MISMATCH. */
export function matchTensors(specs: TensorSpec[], tensors: TensorInfo[]): { spec: TensorSpec; info: TensorInfo }[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out: { spec: TensorSpec; info: TensorInfo }[] = [];
  const chosen = new Set<string>();
  for (const spec of specs) {
    if (spec.oneOf) {
      if (chosen.has(spec.oneOf)) continue;
      const alternatives = specs.filter((s) => s.oneOf === spec.oneOf);
      const first = alternatives.find((s) => byName.has(s.name));
      if (!first) throw new Lfm2Error("MISSING_TENSOR", `model has none of ${alternatives.map((s) => s.name).join(", ")} (${spec.oneOf})`);
      chosen.add(spec.oneOf);
      if (first !== spec) { out.push(check(first, byName.get(first.name)!)); continue; }
    }
    const info = byName.get(spec.name);
    if (!info) { if (spec.optional) continue; throw new Lfm2Error("MISSING_TENSOR", `model lacks tensor ${spec.name}`); }
    out.push(check(spec, info));
  }
  return out;
}

function check(spec: TensorSpec, info: TensorInfo) {
  if (!sameShape(info.shape, spec.shape)) {
    throw new Lfm2Error("SHAPE_MISMATCH", `tensor ${spec.name} has shape [${info.shape}] but the config implies [${spec.shape}]`);
  }
  return { spec, info };
}

/** Bytes a tensor occupies in memory: a matrix its file size or x4-interleaved size, others as f32. */
function placedBytes(spec: TensorSpec, info: TensorInfo): number {
  if (spec.kind !== "matrix") return count(spec.shape) * 4;
  const x4 = kernelsFor(info.type, spec.name).x4;
  const nOut = count(info.shape.slice(1));
  return x4 && nOut % 4 === 0 ? (nOut / 4) * (info.shape[0] / 32) * x4.groupBlockBytes : info.byteLength;
}

/** Bytes each placement group needs (64-byte alignment included). */
export function groupBytes(specs: TensorSpec[], tensors: TensorInfo[]): Map<number, number> {
  const g = new Map<number, number>();
  for (const { spec, info } of matchTensors(specs, tensors)) g.set(spec.group, (g.get(spec.group) ?? 0) + placedBytes(spec, info) + 64);
  return g;
}

/** Bytes all weights need (for the size check before allocating). */
export function weightArenaBytes(specs: TensorSpec[], tensors: TensorInfo[]): number {
  let n = 0;
  for (const b of groupBytes(specs, tensors).values()) n += b;
  return n;
}

/**
 * Groups in order (head first, then layers) packed greedily into shards of at most `capacity` bytes.
 * Returns the shard of each group and each shard's weight bytes.
 */
export function packGroups(bytes: Map<number, number>, capacity: number): { shardOf: Map<number, number>; shardBytes: number[] } {
  const shardOf = new Map<number, number>(), shardBytes: number[] = [0];
  for (const g of [...bytes.keys()].sort((a, b) => a - b)) {
    const b = bytes.get(g)!;
    if (b > capacity) throw new Lfm2Error("MODEL_TOO_LARGE", `one layer's weights (${b} bytes) exceed a shard's capacity of ${capacity} bytes`);
    if (shardBytes[shardBytes.length - 1] + b > capacity && shardBytes[shardBytes.length - 1] > 0) shardBytes.push(0);
    shardOf.set(g, shardBytes.length - 1);
    shardBytes[shardBytes.length - 1] += b;
  }
  return { shardOf, shardBytes };
}

interface Slot {
  spec: TensorSpec; info: TensorInfo; arena: Arena; dst: number;
  /** Small tensors are staged in JS and converted at finish. */
  staging?: Uint8Array;
  /** x4 matrices: file bytes land at the tail of their region and are repacked in place at finish. */
  tail?: number;
}

/**
 * Allocate every weight in its group's arena and return a byte sink for the file's data section plus
 * a finish() that repacks/converts and returns the placed tensors.
 */
export function planWeights(specs: TensorSpec[], tensors: TensorInfo[], arenaOf: (group: number) => Arena) {
  const slots = new Map<string, Slot>();
  for (const { spec, info } of matchTensors(specs, tensors)) {
    const arena = arenaOf(spec.group);
    const bytes = placedBytes(spec, info);
    if (spec.kind === "matrix") {
      const dst = arena.alloc(bytes);
      slots.set(spec.name, { spec, info, arena, dst, tail: bytes !== info.byteLength ? dst + bytes - info.byteLength : undefined });
    } else slots.set(spec.name, { spec, info, arena, dst: arena.alloc(bytes), staging: new Uint8Array(info.byteLength) });
  }
  const ordered = [...slots.values()].sort((a, b) => a.info.offset - b.info.offset);
  let cursor = 0;
  let placed = 0;

  /** Copy the part of `chunk` (at file `offset`) that belongs to wanted tensors. */
  function sink(offset: number, chunk: Uint8Array) {
    const end = offset + chunk.length;
    while (cursor < ordered.length && ordered[cursor].info.offset + ordered[cursor].info.byteLength <= offset) cursor++;
    for (let i = cursor; i < ordered.length && ordered[i].info.offset < end; i++) {
      const s = ordered[i];
      const from = Math.max(offset, s.info.offset), to = Math.min(end, s.info.offset + s.info.byteLength);
      if (to <= from) continue;
      const part = chunk.subarray(from - offset, to - offset);
      const at = from - s.info.offset;
      if (s.staging) s.staging.set(part, at);
      else s.arena.u8((s.tail ?? s.dst) + at, part.length).set(part);
      placed += part.length;
    }
  }

  function finish(kernelsOf: (arena: Arena) => KernelExports): PlacedTensors {
    const total = ordered.reduce((a, s) => a + s.info.byteLength, 0);
    if (placed !== total) throw new Lfm2Error("TRUNCATED", `only ${placed} of ${total} weight bytes were read`);
    for (const s of ordered) {
      if (s.tail === undefined) continue;
      const x4 = kernelsFor(s.info.type, s.info.name).x4!;
      const nOut = s.info.byteLength / rowBytes(s.info.type, s.info.shape[0]);
      const mark = s.arena.mark();
      const scratch = s.arena.alloc(4 * rowBytes(s.info.type, s.info.shape[0]));
      kernelsOf(s.arena)[x4.repack as `repack${string}`](s.dst, s.tail, nOut, s.info.shape[0], scratch);
      s.arena.release(mark);
    }
    for (const s of ordered) {
      if (!s.staging) continue;
      const n = count(s.info.shape);
      const f = s.info.type === GGML.F32 ? new Float32Array(s.staging.buffer, s.staging.byteOffset, n) : dequantizeTensor(s.info.type, s.staging, n);
      const out = s.arena.f32(s.dst, n);
      if (s.spec.kind === "conv") {
        // file layout: element (k, c) at L·c + k (ne = [L, D]); kernels want [L][D]
        const L = s.info.shape[0], D = n / L;
        for (let ch = 0; ch < D; ch++) for (let k = 0; k < L; k++) out[k * D + ch] = f[ch * L + k];
      } else out.set(f);
      s.staging = undefined;
    }
    const get = (name: string) => {
      const s = slots.get(name);
      if (!s) throw new Lfm2Error("MISSING_TENSOR", `model lacks tensor ${name}`);
      return s;
    };
    return {
      has: (name) => slots.has(name),
      matrix(name) {
        const s = get(name);
        const nIn = s.info.shape[0], nOut = count(s.info.shape.slice(1));
        return { ptr: s.dst, type: s.info.type, nIn, nOut, rowBytes: s.info.byteLength / nOut, x4: s.tail !== undefined };
      },
      vector: (name) => get(name).dst,
    };
  }

  const weightBytes = ordered.reduce((a, s) => a + s.info.byteLength, 0);
  return { sink, finish, weightBytes };
}
