// Activation quantizers (f32 → int8 blocks, as llama.cpp's vec_dot types) and row dequantizers
// for embedding lookups. Weight block layouts are in spec §3.5.
import { f16ToF32, f16x4ToF32, f32ToF16, q8Stride, q8kStride } from "./common";

/**
 * Quantize nTok rows of n floats (row stride n) into 32-blocks: d = amax/127 rounded to fp16 as ggml
 * stores it, q = round_half_even(x·127/amax); isum = Σq; s = fp16(d·Σq) (block_q8_1's s).
 */
export function quantizeQ8_0(x: usize, n: i32, nTok: i32, out: usize): void {
  const nb = n >> 5;
  const stride = q8Stride(n);
  for (let t = 0; t < nTok; t++) {
    const src = x + <usize>(t * n) * 4;
    const qs = out + <usize>(t * stride);
    const dp = qs + <usize>n, sp = dp + <usize>(nb * 4), s2 = sp + <usize>(nb * 4);
    for (let b = 0; b < nb; b++) {
      const p = src + <usize>(b * 128);
      let m = f32x4.abs(v128.load(p));
      for (let k = 1; k < 8; k++) m = f32x4.max(m, f32x4.abs(v128.load(p + k * 16)));
      m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
      const d = amax / 127.0;
      const id = amax != 0 ? <f32>127.0 / amax : <f32>0;
      const vid = f32x4.splat(id);
      let isum = i32x4.splat(0);
      for (let k = 0; k < 2; k++) {
        const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + k * 64), vid)));
        const b1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + k * 64 + 16), vid)));
        const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + k * 64 + 32), vid)));
        const e = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + k * 64 + 48), vid)));
        isum = i32x4.add(isum, i32x4.add(i32x4.add(a, b1), i32x4.add(c, e)));
        const q = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b1), i16x8.narrow_i32x4_s(c, e));
        v128.store(qs + <usize>(b * 32 + k * 16), q);
      }
      const s = i32x4.extract_lane(isum, 0) + i32x4.extract_lane(isum, 1) + i32x4.extract_lane(isum, 2) + i32x4.extract_lane(isum, 3);
      const dh = f16ToF32(f32ToF16(d));
      store<f32>(dp + <usize>(b * 4), dh);
      store<i32>(sp + <usize>(b * 4), s);
      store<f32>(s2 + <usize>(b * 4), f16ToF32(f32ToF16(<f32>s * d)));
    }
  }
}

/**
 * Q8_K (super-blocks of 256): the value of largest magnitude v gives iscale = -127/v,
 * q = nearest(iscale·x) capped at 127, d = 1/iscale (f32), bsums = Σq per 16.
 */
export function quantizeQ8_K(x: usize, n: i32, nTok: i32, out: usize): void {
  const nb = n >> 8;
  const stride = q8kStride(n);
  for (let t = 0; t < nTok; t++) {
    const src = x + <usize>(t * n) * 4;
    const qs = out + <usize>(t * stride);
    const dp = qs + <usize>n, bp = dp + <usize>(nb * 4);
    for (let b = 0; b < nb; b++) {
      const p = src + <usize>(b * 1024);
      let amax: f32 = 0, vmax: f32 = 0;
      for (let j = 0; j < 256; j++) {
        const v = load<f32>(p + <usize>(j * 4));
        if (abs(v) > amax) { amax = abs(v); vmax = v; }
      }
      if (amax == 0) {
        store<f32>(dp + <usize>(b * 4), 0);
        memory.fill(qs + <usize>(b * 256), 0, 256);
        for (let j = 0; j < 16; j++) store<i32>(bp + <usize>((b * 16 + j) * 4), 0);
        continue;
      }
      const iscale: f32 = -127.0 / vmax;
      const vis = f32x4.splat(iscale);
      for (let g = 0; g < 16; g++) {
        const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + g * 64), vis)));
        const b1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + g * 64 + 16), vis)));
        const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + g * 64 + 32), vis)));
        const e = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + g * 64 + 48), vis)));
        const q = i8x16.min_s(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b1), i16x8.narrow_i32x4_s(c, e)), i8x16.splat(127));
        v128.store(qs + <usize>(b * 256 + g * 16), q);
        const s16 = i16x8.extadd_pairwise_i8x16_s(q);
        const s32 = i32x4.extadd_pairwise_i16x8_s(s16);
        store<i32>(bp + <usize>((b * 16 + g) * 4), i32x4.extract_lane(s32, 0) + i32x4.extract_lane(s32, 1) + i32x4.extract_lane(s32, 2) + i32x4.extract_lane(s32, 3));
      }
      store<f32>(dp + <usize>(b * 4), <f32>1.0 / iscale);
    }
  }
}

/** Round n floats to fp16 precision in place (llama.cpp converts activations to F16 for F16 weights). */
export function roundF16(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(x + <usize>(i * 4), f16ToF32(f32ToF16(load<f32>(x + <usize>(i * 4)))));
}

/** Round n floats to bf16 precision in place (nearest even), for BF16 weights. */
export function roundBf16(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const b = load<u32>(x + <usize>(i * 4));
    store<u32>(x + <usize>(i * 4), (b + 0x7fff + ((b >> 16) & 1)) & 0xffff0000);
  }
}

// ---- row dequantizers (embedding lookup) ----------------------------------------------------------

export function dequantRowF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) v128.store(dst + <usize>(i * 4), f16x4ToF32(v128.load16x4_u(src + <usize>(i * 2))));
}

export function dequantRowBf16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) v128.store(dst + <usize>(i * 4), i32x4.shl(v128.load16x4_u(src + <usize>(i * 2)), 16));
}

export function dequantRowQ8_0(src: usize, dst: usize, n: i32): void {
  for (let b = 0; b < (n >> 5); b++) {
    const p = src + <usize>(b * 34);
    const d = f16ToF32(load<u16>(p));
    for (let j = 0; j < 32; j++) store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>load<i8>(p + 2 + <usize>j));
  }
}

export function dequantRowQ4_0(src: usize, dst: usize, n: i32): void {
  for (let b = 0; b < (n >> 5); b++) {
    const p = src + <usize>(b * 18);
    const d = f16ToF32(load<u16>(p));
    for (let j = 0; j < 16; j++) {
      const q = <i32>load<u8>(p + 2 + <usize>j);
      store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>((q & 15) - 8));
      store<f32>(dst + <usize>((b * 32 + j + 16) * 4), d * <f32>((q >> 4) - 8));
    }
  }
}
