// TS reference versions of llama.cpp's activation quantizers (ggml quantize_row_q8_0_ref / q8_1_ref /
// q8_K_ref, arithmetic emulated in f32) and a reference row dot product with llama.cpp's CPU semantics:
// the weight row stays in its quantized blocks, the activation is quantized to the type's vec_dot_type,
// and the sum is formed blockwise in float64. Used to check the WASM kernels.
import { Lfm2Error } from "../errors.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./fp16.js";
import { GGML, type GgmlType } from "../core/quant-types.js";
import { nearestInt, newUnpacked, unpackBlock } from "./quantize-more.js";

const fr = Math.fround;
/** C roundf: half away from zero. */
const roundf = (v: number) => (v < 0 ? -Math.round(-v) : Math.round(v));
const toF16 = (v: number) => f16ToF32(f32ToF16(v));

function checkLen(n: number, block: number, what: string) {
  if (n % block !== 0) throw new Lfm2Error("SHAPE_MISMATCH", `${what} needs a multiple of ${block} values, got ${n}`);
}

export interface Q8_0Act { qs: Int8Array; /** per 32, fp16-rounded */ d: Float32Array }
export interface Q8_1Act extends Q8_0Act { /** per 32: fp16(d·Σqs), with the unrounded d */ s: Float32Array }
export interface Q8_KAct { qs: Int8Array; /** per 256, f32 */ d: Float32Array; /** per 16 */ bsums: Int16Array }

function q8Blocks(x: Float32Array, withSum: boolean): Q8_1Act {
  checkLen(x.length, 32, "Q8_0/Q8_1 quantization");
  const nb = x.length / 32;
  const qs = new Int8Array(x.length), d = new Float32Array(nb), s = new Float32Array(withSum ? nb : 0);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * i + j]));
    const di = fr(amax / 127), id = di ? fr(1 / di) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) { const q = roundf(fr(x[32 * i + j] * id)); qs[32 * i + j] = q; sum += q; }
    d[i] = toF16(di);
    if (withSum) s[i] = toF16(fr(sum * di));
  }
  return { qs, d, s };
}

/** quantize_row_q8_0_ref: d = amax/127 (stored fp16), q = roundf(x/d). */
export function quantizeQ8_0(x: Float32Array): Q8_0Act {
  const { qs, d } = q8Blocks(x, false);
  return { qs, d };
}

/** quantize_row_q8_1_ref: as Q8_0 plus s = fp16(d·Σq). */
export function quantizeQ8_1(x: Float32Array): Q8_1Act {
  return q8Blocks(x, true);
}

/** quantize_row_q8_K_ref: iscale = −127/max (max = signed value of largest |x|), q = min(127, nearest_int(iscale·x)),
 *  d = 1/iscale (f32), bsums = sums of 16 consecutive q. */
export function quantizeQ8_K(x: Float32Array): Q8_KAct {
  checkLen(x.length, 256, "Q8_K quantization");
  const nb = x.length / 256;
  const qs = new Int8Array(x.length), d = new Float32Array(nb), bsums = new Int16Array(nb * 16);
  for (let i = 0; i < nb; i++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 256; j++) { const a = Math.abs(x[256 * i + j]); if (a > amax) { amax = a; max = x[256 * i + j]; } }
    if (!amax) continue;
    const iscale = fr(-127 / max);
    for (let j = 0; j < 256; j++) qs[256 * i + j] = Math.min(127, nearestInt(fr(iscale * x[256 * i + j])));
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += qs[256 * i + 16 * g + l];
      bsums[16 * i + g] = sum;
    }
    d[i] = fr(1 / iscale);
  }
  return { qs, d, bsums };
}

/** The activation type llama.cpp's CPU backend pairs with a weight type (type_traits_cpu vec_dot_type). */
export function vecDotType(t: GgmlType): GgmlType | "Q8_1" | "Q8_K" {
  switch (t.id) {
    case GGML.Q4_0.id: case GGML.Q5_0.id: case GGML.Q8_0.id: return GGML.Q8_0;
    case GGML.Q4_1.id: case GGML.Q5_1.id: return "Q8_1";
    case GGML.Q4_K.id: case GGML.Q5_K.id: case GGML.Q6_K.id: return "Q8_K";
    case GGML.F16.id: return GGML.F16;
    case GGML.BF16.id: return GGML.BF16;
    case GGML.F32.id: return GGML.F32;
  }
  throw new Lfm2Error("UNSUPPORTED_TYPE", `no reference dot for ${t.name}`);
}

/**
 * Row dot product with llama.cpp's semantics: Σ_blocks d_w·d_x·Σ q_w·q_x (+ m·s for Q4_1/Q5_1, − dmin·m·d_x·Σq_x
 * for K-quants), formed in float64, so it equals llama.cpp's result up to float summation order.
 */
export function dotReference(t: GgmlType, rowBytes: Uint8Array, x: Float32Array): number {
  checkLen(x.length, t.blockSize, `${t.name} dot`);
  const nb = x.length / t.blockSize;
  if (rowBytes.byteLength < nb * t.blockBytes) {
    throw new Lfm2Error("SHAPE_MISMATCH", `${t.name} row of ${x.length} needs ${nb * t.blockBytes} bytes, got ${rowBytes.byteLength}`);
  }
  const dv = new DataView(rowBytes.buffer, rowBytes.byteOffset, rowBytes.byteLength);
  let acc = 0;
  switch (t.id) {
    case GGML.F32.id:
      for (let i = 0; i < x.length; i++) acc += dv.getFloat32(4 * i, true) * x[i];
      return acc;
    case GGML.F16.id:
      for (let i = 0; i < x.length; i++) acc += f16ToF32(dv.getUint16(2 * i, true)) * toF16(x[i]);
      return acc;
    case GGML.BF16.id:
      for (let i = 0; i < x.length; i++) acc += bf16ToF32(dv.getUint16(2 * i, true)) * bf16ToF32(f32ToBf16(x[i]));
      return acc;
  }
  const u = newUnpacked(t);
  const act = vecDotType(t);
  if (act === "Q8_K") {
    const a = quantizeQ8_K(x);
    const per16 = u.groupSize / 16;
    for (let b = 0; b < nb; b++) {
      unpackBlock(t, rowBytes, b * t.blockBytes, u);
      const dx = a.d[b], xo = 256 * b;
      for (let g = 0; g < u.scale.length; g++) {
        let sumi = 0, qsum = 0;
        for (let l = 0; l < u.groupSize; l++) sumi += u.q[g * u.groupSize + l] * a.qs[xo + g * u.groupSize + l];
        for (let k = 0; k < per16; k++) qsum += a.bsums[16 * b + g * per16 + k];
        acc += u.scale[g] * dx * sumi + u.offset[g] * dx * qsum;
      }
    }
    return acc;
  }
  const one = act === "Q8_1";
  const a = one ? quantizeQ8_1(x) : quantizeQ8_0(x);
  for (let b = 0; b < nb; b++) {
    unpackBlock(t, rowBytes, b * t.blockBytes, u);
    let sumi = 0;
    for (let j = 0; j < 32; j++) sumi += u.q[j] * a.qs[32 * b + j];
    acc += u.scale[0] * a.d[b] * sumi;
    if (one) acc += u.offset[0] * (a as Q8_1Act).s[b];
  }
  return acc;
}
