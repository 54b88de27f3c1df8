// Row-interleaved ("x4") layouts for the hottest types, made once at load time:
// for each group of four rows and each 32-block: the four scales as f32, then the four rows' quants.
//   Q4_0x4 block: f32 d[4] | u8 qs[4][16]   (80 bytes)      Q8_0x4 block: f32 d[4] | i8 qs[4][32] (144 bytes)
// Scales are converted from fp16 once instead of per block per token, one v128 load brings all four,
// and the four rows' integer sums are reduced together so each block costs one convert + one FMA.
import { f16ToF32, q8Stride } from "./common";

/** [Σa, Σb, Σc, Σd] of four i32x4 vectors. */
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

// ---- repacking (in place: the file's rows sit at the tail of the destination region) -------------

/**
 * Convert nRows (multiple of 4) rows of ggml blocks at src into the x4 layout at dst. src may lie
 * inside [dst, dst + size) past the write position; each group is staged in `scratch` first.
 */
function repack(dst: usize, src: usize, nRows: i32, nb: i32, blockBytes: i32, quantBytes: i32, scratch: usize): void {
  const rowBytes = <usize>(nb * blockBytes), groupIn = rowBytes * 4, outBlock = <usize>(16 + 4 * quantBytes);
  for (let g = 0; g < (nRows >> 2); g++) {
    memory.copy(scratch, src + <usize>g * groupIn, groupIn);
    const out = dst + <usize>g * <usize>nb * outBlock;
    for (let b = 0; b < nb; b++) {
      const o = out + <usize>b * outBlock;
      for (let r = 0; r < 4; r++) {
        const blk = scratch + <usize>r * rowBytes + <usize>(b * blockBytes);
        store<f32>(o + <usize>(r * 4), f16ToF32(load<u16>(blk)));
        memory.copy(o + 16 + <usize>(r * quantBytes), blk + 2, <usize>quantBytes);
      }
    }
  }
}

export function repackQ4_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 18, 16, scratch); }
export function repackQ8_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 34, 32, scratch); }

export function dequantRowQ4_0x4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 5, blk = w + <usize>(row >> 2) * <usize>(nb * 80), r = row & 3;
  for (let b = 0; b < nb; b++) {
    const o = blk + <usize>(b * 80), d = load<f32>(o + <usize>(r * 4)), q = o + 16 + <usize>(r * 16);
    for (let j = 0; j < 16; j++) {
      const v = <i32>load<u8>(q + <usize>j);
      store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>((v & 15) - 8));
      store<f32>(dst + <usize>((b * 32 + j + 16) * 4), d * <f32>((v >> 4) - 8));
    }
  }
}

export function dequantRowQ8_0x4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 5, blk = w + <usize>(row >> 2) * <usize>(nb * 144), r = row & 3;
  for (let b = 0; b < nb; b++) {
    const o = blk + <usize>(b * 144), d = load<f32>(o + <usize>(r * 4)), q = o + 16 + <usize>(r * 32);
    for (let j = 0; j < 32; j++) store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>load<i8>(q + <usize>j));
  }
}

// ---- kernels ------------------------------------------------------------------------------------
// y[t·yStride + r] for rows [r0, r1) (multiples of 4) and tokens [0, nTok); x is a Q8_0 activation.

/** Σ over 16 int8 weights widened to i16 against pre-widened activations xa (first 8), xb (last 8). */
// @ts-ignore: decorator
@inline function dotS8W(w: v128, xa: v128, xb: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), xa), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), xb));
}
// @ts-ignore: decorator
@inline function dotU8W(w: v128, xa: v128, xb: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(w), xa), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(w), xb));
}

/** Integer dot of one Q4_0 row block (nibbles q ∈ [0,15], no −8 yet) with the activation block. */
// @ts-ignore: decorator
@inline function q4Dot(q: v128, xlo: v128, xhi: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const lo = v128.and(q, i8x16.splat(15)), hi = v128.and(i16x8.shr_u(q, 4), i8x16.splat(15));
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(xhi, hi, i32x4.relaxed_dot_i8x16_i7x16_add_s(xlo, lo, i32x4.splat(0)));
  return i32x4.add(dotU8W(lo, x0, x1), dotU8W(hi, x2, x3));
}

export function matmulQ4_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, gs = <usize>(nb * 80), xs = q8Stride(n);
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xsum = xd + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * 80), xb = xqs + <usize>(b * 32);
        const xlo = v128.load(xb), xhi = v128.load(xb + 16);
        let x0 = xlo, x1 = xlo, x2 = xhi, x3 = xhi;
        if (!ASC_FEATURE_RELAXED_SIMD) {
          x0 = i16x8.extend_low_i8x16_s(xlo); x1 = i16x8.extend_high_i8x16_s(xlo);
          x2 = i16x8.extend_low_i8x16_s(xhi); x3 = i16x8.extend_high_i8x16_s(xhi);
        }
        const s = reduce4(q4Dot(v128.load(o + 16), xlo, xhi, x0, x1, x2, x3), q4Dot(v128.load(o + 32), xlo, xhi, x0, x1, x2, x3),
          q4Dot(v128.load(o + 48), xlo, xhi, x0, x1, x2, x3), q4Dot(v128.load(o + 64), xlo, xhi, x0, x1, x2, x3));
        const corrected = i32x4.sub(s, i32x4.splat(load<i32>(xsum + <usize>(b * 4)) << 3));   // − 8·Σxq
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(corrected), f32x4.mul(v128.load(o), f32x4.splat(load<f32>(xd + <usize>(b * 4))))));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}

export function matmulQ8_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, gs = <usize>(nb * 144), xs = q8Stride(n);
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n;
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * 144), xb = xqs + <usize>(b * 32);
        const xlo = v128.load(xb), xhi = v128.load(xb + 16);
        const x0 = i16x8.extend_low_i8x16_s(xlo), x1 = i16x8.extend_high_i8x16_s(xlo);
        const x2 = i16x8.extend_low_i8x16_s(xhi), x3 = i16x8.extend_high_i8x16_s(xhi);
        const s = reduce4(
          i32x4.add(dotS8W(v128.load(o + 16), x0, x1), dotS8W(v128.load(o + 32), x2, x3)),
          i32x4.add(dotS8W(v128.load(o + 48), x0, x1), dotS8W(v128.load(o + 64), x2, x3)),
          i32x4.add(dotS8W(v128.load(o + 80), x0, x1), dotS8W(v128.load(o + 96), x2, x3)),
          i32x4.add(dotS8W(v128.load(o + 112), x0, x1), dotS8W(v128.load(o + 128), x2, x3)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load(o), f32x4.splat(load<f32>(xd + <usize>(b * 4))))));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}
