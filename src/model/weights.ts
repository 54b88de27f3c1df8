// Tensor descriptors → weights placed in WebAssembly memory. Matrices are copied byte for byte in
// their file type (no full-size copies in JS); norms and conv kernels (tiny) are converted to f32.
import { Lfm2Error } from "../errors.js";
import type { TensorInfo } from "../formats/gguf.js";
import { GGML, rowBytes, type GgmlType } from "../formats/ggml-types.js";
import type { KernelExports } from "../../bindings/wasm.js";
import { dequantizeTensor } from "../formats/quantize.js";
import { kernelsFor } from "../../bindings/kernels.js";
import type { Arena } from "../../bindings/arena.js";
import { isAttention, type Lfm2Config } from "./config.js";

export interface Matrix {
  ptr: number; type: GgmlType; nIn: number; nOut: number; rowBytes: number;
  /** Rows interleaved by four at load time (see bindings/kernels.ts X4Kernels). */
  x4: boolean;
}

export interface LayerWeights {
  attnNorm: number; ffnNorm: number;
  conv?: { inProj: Matrix; kernelT: number; outProj: Matrix };
  attn?: { q: Matrix; k: Matrix; v: Matrix; o: Matrix; qNorm: number; kNorm: number };
  ffn: { gate: Matrix; up: Matrix; down: Matrix };
}

export interface Lfm2Weights { embed: Matrix; output: Matrix; finalNorm: number; layers: LayerWeights[] }

type Kind = "matrix" | "vector" | "conv";
interface Want { name: string; kind: Kind; shape: number[]; optional?: boolean }

/** Every tensor an LFM2 model needs, with its expected ggml shape (spec §3.3). */
export function expectedTensors(c: Lfm2Config): Want[] {
  const D = c.hiddenSize, dh = c.headDim;
  const w: Want[] = [{ name: "token_embd.weight", kind: "matrix", shape: [D, c.vocabSize] },
    { name: "output.weight", kind: "matrix", shape: [D, c.vocabSize], optional: true }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    w.push({ name: p + "attn_norm.weight", kind: "vector", shape: [D] }, { name: p + "ffn_norm.weight", kind: "vector", shape: [D] });
    if (isAttention(c, l)) {
      const kv = c.kvHeads[l] * dh;
      w.push({ name: p + "attn_q.weight", kind: "matrix", shape: [D, c.nHeads * dh] },
        { name: p + "attn_k.weight", kind: "matrix", shape: [D, kv] },
        { name: p + "attn_v.weight", kind: "matrix", shape: [D, kv] },
        { name: p + "attn_output.weight", kind: "matrix", shape: [c.nHeads * dh, D] },
        { name: p + "attn_q_norm.weight", kind: "vector", shape: [dh] },
        { name: p + "attn_k_norm.weight", kind: "vector", shape: [dh] });
    } else {
      w.push({ name: p + "shortconv.in_proj.weight", kind: "matrix", shape: [D, 3 * D] },
        { name: p + "shortconv.conv.weight", kind: "conv", shape: [c.convL, D] },
        { name: p + "shortconv.out_proj.weight", kind: "matrix", shape: [D, D] });
    }
    w.push({ name: p + "ffn_gate.weight", kind: "matrix", shape: [D, c.ffDim] },
      { name: p + "ffn_up.weight", kind: "matrix", shape: [D, c.ffDim] },
      { name: p + "ffn_down.weight", kind: "matrix", shape: [c.ffDim, D] });
  }
  return w;
}

const sameShape = (a: number[], b: number[]) => {
  const strip = (s: number[]) => { const t = [...s]; while (t.length > 1 && t[t.length - 1] === 1) t.pop(); return t; };
  const x = strip(a), y = strip(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

interface Slot { info: TensorInfo; kind: Kind; dst: number; staging?: Uint8Array; /** file bytes land here, repacked at finish */ tail?: number }

/**
 * Allocate every weight in the arena and return a byte sink for the file's data section plus a
 * finish() that converts the small tensors and returns the weight pointers.
 */
export function planWeights(c: Lfm2Config, tensors: TensorInfo[], arena: Arena) {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const finalNormInfo = byName.get("token_embd_norm.weight") ?? byName.get("output_norm.weight");
  if (!finalNormInfo) throw new Lfm2Error("MISSING_TENSOR", "model has neither token_embd_norm.weight nor output_norm.weight (final norm)");
  const wants = [...expectedTensors(c), { name: finalNormInfo.name, kind: "vector" as Kind, shape: [c.hiddenSize] }];
  const slots = new Map<string, Slot>();
  for (const w of wants) {
    const info = byName.get(w.name);
    if (!info) { if (w.optional) continue; throw new Lfm2Error("MISSING_TENSOR", `model lacks tensor ${w.name}`); }
    if (!sameShape(info.shape, w.shape)) {
      throw new Lfm2Error("SHAPE_MISMATCH", `tensor ${w.name} has shape [${info.shape}] but the config implies [${w.shape}]`);
    }
    if (w.kind === "matrix") {
      const bytes = matrixBytes(info, w.name);
      if (bytes !== info.byteLength) {
        const dst = arena.alloc(bytes);
        slots.set(w.name, { info, kind: w.kind, dst, tail: dst + bytes - info.byteLength });
      } else slots.set(w.name, { info, kind: w.kind, dst: arena.alloc(info.byteLength) });
    } else {
      const n = w.shape.reduce((a, b) => a * b, 1);
      slots.set(w.name, { info, kind: w.kind, dst: arena.alloc(n * 4), staging: new Uint8Array(info.byteLength) });
    }
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
      else arena.u8((s.tail ?? s.dst) + at, part.length).set(part);
      placed += part.length;
    }
  }

  function finish(kernels: KernelExports): Lfm2Weights {
    const total = ordered.reduce((a, s) => a + s.info.byteLength, 0);
    if (placed !== total) throw new Lfm2Error("TRUNCATED", `only ${placed} of ${total} weight bytes were read`);
    const mark = arena.mark();
    for (const s of ordered) {
      if (s.tail === undefined) continue;
      const x4 = kernelsFor(s.info.type, s.info.name).x4!;
      const nOut = s.info.byteLength / rowBytes(s.info.type, s.info.shape[0]);
      const scratch = arena.alloc(4 * rowBytes(s.info.type, s.info.shape[0]));
      kernels[x4.repack as `repack${string}`](s.dst, s.tail, nOut, s.info.shape[0], scratch);
      arena.release(mark);
    }
    for (const s of ordered) {
      if (!s.staging) continue;
      const n = s.info.shape.reduce((a, b) => a * b, 1);
      const f = s.info.type === GGML.F32 ? new Float32Array(s.staging.buffer, s.staging.byteOffset, n) : dequantizeTensor(s.info.type, s.staging, n);
      const out = arena.f32(s.dst, n);
      if (s.kind === "conv") {
        // file layout: element (k, c) at 3c + k (ne = [L, D]); kernels want [L][D]
        const L = s.info.shape[0], D = n / L;
        for (let ch = 0; ch < D; ch++) for (let k = 0; k < L; k++) out[k * D + ch] = f[ch * L + k];
      } else out.set(f);
      s.staging = undefined;
    }
    const mat = (name: string): Matrix => {
      const s = slots.get(name)!;
      const nIn = s.info.shape[0], nOut = s.info.shape.slice(1).reduce((a, b) => a * b, 1);
      return { ptr: s.dst, type: s.info.type, nIn, nOut, rowBytes: s.info.byteLength / nOut, x4: s.tail !== undefined };
    };
    const vec = (name: string) => slots.get(name)!.dst;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const p = `blk.${l}.`;
      const lw: LayerWeights = {
        attnNorm: vec(p + "attn_norm.weight"), ffnNorm: vec(p + "ffn_norm.weight"),
        ffn: { gate: mat(p + "ffn_gate.weight"), up: mat(p + "ffn_up.weight"), down: mat(p + "ffn_down.weight") },
      };
      if (isAttention(c, l)) {
        lw.attn = { q: mat(p + "attn_q.weight"), k: mat(p + "attn_k.weight"), v: mat(p + "attn_v.weight"), o: mat(p + "attn_output.weight"),
          qNorm: vec(p + "attn_q_norm.weight"), kNorm: vec(p + "attn_k_norm.weight") };
      } else {
        lw.conv = { inProj: mat(p + "shortconv.in_proj.weight"), kernelT: vec(p + "shortconv.conv.weight"), outProj: mat(p + "shortconv.out_proj.weight") };
      }
      layers.push(lw);
    }
    const embed = mat("token_embd.weight");
    return { embed, output: slots.has("output.weight") ? mat("output.weight") : embed, finalNorm: vec(finalNormInfo!.name), layers };
  }

  const weightBytes = ordered.reduce((a, s) => a + s.info.byteLength, 0);
  return { sink, finish, weightBytes };
}

/** Bytes a matrix occupies in memory: its file size, or its x4-interleaved size where that applies. */
function matrixBytes(info: TensorInfo, name: string): number {
  const x4 = kernelsFor(info.type, name).x4;
  const nOut = info.shape.slice(1).reduce((a, b) => a * b, 1);
  return x4 && nOut % 4 === 0 ? (nOut / 4) * (info.shape[0] / 32) * x4.groupBlockBytes : info.byteLength;
}

/** Bytes the arena will need for these weights (for the size check before allocating). */
export function weightArenaBytes(c: Lfm2Config, tensors: TensorInfo[]): number {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let n = 0;
  for (const w of expectedTensors(c)) {
    const t = byName.get(w.name);
    if (!t) continue;
    n += (w.kind === "matrix" ? matrixBytes(t, w.name) : w.shape.reduce((a, b) => a * b, 1) * 4) + 64;
  }
  return n + c.hiddenSize * 4 + 64;
}
