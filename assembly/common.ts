// Shared helpers for the kernels: horizontal sums, fp16 conversion, activation-buffer layout.

/** Sum of the four f32 lanes. */
// @ts-ignore: decorator
@inline export function hsumF32(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Sum of the four i32 lanes. */
// @ts-ignore: decorator
@inline export function hsumI32(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** IEEE half → f32 for 4 halves held in the low 16 bits of each i32 lane (normals, subnormals, zero). */
// @ts-ignore: decorator
@inline export function f16x4ToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  // 2^112 rescales the exponent bias 15 → 127 and handles subnormals exactly
  return v128.or(f32x4.mul(mag, f32x4.splat(5.192296858534828e+33)), sign);
}

/** Eight halves at p → two f32x4 (lo, hi) via callback-free pair of loads. */
// @ts-ignore: decorator
@inline export function loadF16Lo(p: usize): v128 { return f16x4ToF32(v128.load16x4_u(p)); }

export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const mag = f32(reinterpret<f32>((h & 0x7fff) << 13)) * reinterpret<f32>(0x77800000);
  return reinterpret<f32>(reinterpret<u32>(mag) | sign);
}

/** f32 → IEEE half, round to nearest even (finite inputs). */
export function f32ToF16(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a >= 0x47800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00); // overflow / inf / nan
  if (a < 0x38800000) { // subnormal half: let the FPU round via a magic add
    const f = reinterpret<f32>(a) + 0.5;
    return sign | (reinterpret<u32>(f) - 0x3f000000);
  }
  const mantOdd = (a >> 13) & 1;
  return sign | ((a + 0xc8000fff + mantOdd) >> 13);
}

/**
 * Quantized-activation buffer (one token, n values): qs i8[n] | d f32[n/32] | isum i32[n/32] | s f32[n/32]
 * for 32-blocks (Q8_0 / Q8_1), or qs i8[n] | d f32[n/256] | bsums i32[n/16] for Q8_K.
 */
// @ts-ignore: decorator
@inline export function q8Stride(n: i32): i32 { return n + 12 * (n >> 5); }
// @ts-ignore: decorator
@inline export function q8kStride(n: i32): i32 { return n + 4 * (n >> 8) + 4 * (n >> 4); }
