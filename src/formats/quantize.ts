// Reference quantizers (f32 rows → ggml block bytes) and dequantizers, one entry per type.
// They follow ggml's reference formulas so files written here read back identically in llama.cpp.
import { Lfm2Error } from "../errors.js";
import { f16ToF32, f32ToF16, f32ToBf16, bf16ToF32 } from "./fp16.js";
import { GGML, rowBytes, type GgmlType } from "../core/quant-types.js";

export interface BlockCodec {
  /** Encode `x` (a whole number of blocks) into `out` starting at byte 0. */
  quantize(x: Float32Array, out: Uint8Array): void;
  /** Decode `n` values from `src` into `y`. */
  dequantize(src: Uint8Array, y: Float32Array): void;
}

const codecs = new Map<number, BlockCodec>();
export function registerCodec(t: GgmlType, c: BlockCodec) { codecs.set(t.id, c); }

export function codecFor(t: GgmlType): BlockCodec {
  const c = codecs.get(t.id);
  if (!c) throw new Lfm2Error("UNSUPPORTED_TYPE", `no quantizer for ${t.name}`);
  return c;
}

export function quantizeTensor(t: GgmlType, x: Float32Array, rowLen: number): Uint8Array {
  const out = new Uint8Array(rowBytes(t, rowLen) * (x.length / rowLen));
  codecFor(t).quantize(x, out);
  return out;
}

export function dequantizeTensor(t: GgmlType, src: Uint8Array, n: number): Float32Array {
  const y = new Float32Array(n);
  codecFor(t).dequantize(src, y);
  return y;
}

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

registerCodec(GGML.F32, {
  quantize(x, out) { const v = dv(out); for (let i = 0; i < x.length; i++) v.setFloat32(4 * i, x[i], true); },
  dequantize(src, y) { const v = dv(src); for (let i = 0; i < y.length; i++) y[i] = v.getFloat32(4 * i, true); },
});
registerCodec(GGML.F16, {
  quantize(x, out) { const v = dv(out); for (let i = 0; i < x.length; i++) v.setUint16(2 * i, f32ToF16(x[i]), true); },
  dequantize(src, y) { const v = dv(src); for (let i = 0; i < y.length; i++) y[i] = f16ToF32(v.getUint16(2 * i, true)); },
});
registerCodec(GGML.BF16, {
  quantize(x, out) { const v = dv(out); for (let i = 0; i < x.length; i++) v.setUint16(2 * i, f32ToBf16(x[i]), true); },
  dequantize(src, y) { const v = dv(src); for (let i = 0; i < y.length; i++) y[i] = bf16ToF32(v.getUint16(2 * i, true)); },
});

// Q8_0: d = amax/127, q = round(x/d)
registerCodec(GGML.Q8_0, {
  quantize(x, out) {
    const v = dv(out);
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
      const d = amax / 127, id = d ? 1 / d : 0;
      v.setUint16(34 * b, f32ToF16(d), true);
      for (let j = 0; j < 32; j++) v.setInt8(34 * b + 2 + j, Math.round(x[32 * b + j] * id));
    }
  },
  dequantize(src, y) {
    const v = dv(src);
    for (let b = 0; b < y.length / 32; b++) {
      const d = f16ToF32(v.getUint16(34 * b, true));
      for (let j = 0; j < 32; j++) y[32 * b + j] = d * v.getInt8(34 * b + 2 + j);
    }
  },
});

// Q4_0: d = max/-8 (signed value of largest magnitude), q = clamp(round(x/d + 8.5) - ..., 0, 15)
registerCodec(GGML.Q4_0, {
  quantize(x, out) {
    const v = dv(out);
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0, max = 0;
      for (let j = 0; j < 32; j++) { const a = x[32 * b + j]; if (Math.abs(a) > amax) { amax = Math.abs(a); max = a; } }
      const d = max / -8, id = d ? 1 / d : 0;
      v.setUint16(18 * b, f32ToF16(d), true);
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(15, Math.trunc(x[32 * b + j] * id + 8.5));
        const q1 = Math.min(15, Math.trunc(x[32 * b + 16 + j] * id + 8.5));
        out[18 * b + 2 + j] = q0 | (q1 << 4);
      }
    }
  },
  dequantize(src, y) {
    const v = dv(src);
    for (let b = 0; b < y.length / 32; b++) {
      const d = f16ToF32(v.getUint16(18 * b, true));
      for (let j = 0; j < 16; j++) {
        const q = src[18 * b + 2 + j];
        y[32 * b + j] = d * ((q & 15) - 8);
        y[32 * b + 16 + j] = d * ((q >> 4) - 8);
      }
    }
  },
});
import { registerMoreCodecs } from "./quantize-more.js"; registerMoreCodecs(registerCodec);
