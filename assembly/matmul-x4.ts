// Row-interleaved ("x4") layouts for the hottest types, made once at load time:
// for each group of four rows and each 32-block: the four scales as f32, then the four rows' quants.
//   Q4_0x4 block: f32 d[4] | u8 qs[4][16]   (80 bytes)      Q8_0x4 block: f32 d[4] | i8 qs[4][32] (144 bytes)
// Scales are converted from fp16 once instead of per block per token, one v128 load brings all four,
// and the four rows' integer sums are reduced together so each block costs one convert + one FMA.
import { f16ToF32, q8Stride } from "./common";

/** Bytes of one x4 block (four rows × 32 weights); exported so tests check them against src/core/quant-types.ts. */
export const Q4_0X4_REC: i32 = 16 + 4 * 16;
export const Q8_0X4_REC: i32 = 16 + 4 * 32;

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
  const nb = n >> 5, blk = w + <usize>(row >> 2) * <usize>(nb * Q4_0X4_REC), r = row & 3;
  for (let b = 0; b < nb; b++) {
    const o = blk + <usize>(b * Q4_0X4_REC), d = load<f32>(o + <usize>(r * 4)), q = o + 16 + <usize>(r * 16);
    for (let j = 0; j < 16; j++) {
      const v = <i32>load<u8>(q + <usize>j);
      store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>((v & 15) - 8));
      store<f32>(dst + <usize>((b * 32 + j + 16) * 4), d * <f32>((v >> 4) - 8));
    }
  }
}

export function dequantRowQ8_0x4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 5, blk = w + <usize>(row >> 2) * <usize>(nb * Q8_0X4_REC), r = row & 3;
  for (let b = 0; b < nb; b++) {
    const o = blk + <usize>(b * Q8_0X4_REC), d = load<f32>(o + <usize>(r * 4)), q = o + 16 + <usize>(r * 32);
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

/** Σ over a Q4_0x4 block for one token: the four rows' sums, corrected and scaled (f32x4). */
// @ts-ignore: decorator
@inline function q4Token(l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128, d4: v128, xqs: usize, xd: usize, xsum: usize, b: i32): v128 {
  const xb = xqs + <usize>(b * 32);
  const xlo = v128.load(xb), xhi = v128.load(xb + 16);
  let s: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    s = reduce4(
      i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xlo, l0), i16x8.relaxed_dot_i8x16_i7x16_s(xhi, h0))),
      i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xlo, l1), i16x8.relaxed_dot_i8x16_i7x16_s(xhi, h1))),
      i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xlo, l2), i16x8.relaxed_dot_i8x16_i7x16_s(xhi, h2))),
      i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xlo, l3), i16x8.relaxed_dot_i8x16_i7x16_s(xhi, h3))));
  } else {
    const x0 = i16x8.extend_low_i8x16_s(xlo), x1 = i16x8.extend_high_i8x16_s(xlo);
    const x2 = i16x8.extend_low_i8x16_s(xhi), x3 = i16x8.extend_high_i8x16_s(xhi);
    s = reduce4(i32x4.add(dotU8W(l0, x0, x1), dotU8W(h0, x2, x3)), i32x4.add(dotU8W(l1, x0, x1), dotU8W(h1, x2, x3)),
      i32x4.add(dotU8W(l2, x0, x1), dotU8W(h2, x2, x3)), i32x4.add(dotU8W(l3, x0, x1), dotU8W(h3, x2, x3)));
  }
  const corrected = i32x4.sub(s, i32x4.splat(load<i32>(xsum + <usize>(b * 4)) << 3));   // − 8·Σxq
  return f32x4.mul(f32x4.convert_i32x4_s(corrected), f32x4.mul(d4, f32x4.splat(load<f32>(xd + <usize>(b * 4)))));
}

export function matmulQ4_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, gs = <usize>(nb * Q4_0X4_REC), xs = q8Stride(n);
  const m15 = i8x16.splat(15);
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    let t = 0;
    // prefill: four tokens per pass, so each weight block is loaded and unpacked once for four tokens
    for (; t + 4 <= nTok; t += 4) {
      const x0 = xq + <usize>(t * xs), x1 = x0 + <usize>xs, x2 = x1 + <usize>xs, x3 = x2 + <usize>xs;
      const d0 = x0 + <usize>n, d1 = x1 + <usize>n, d2 = x2 + <usize>n, d3 = x3 + <usize>n;
      const nb4 = <usize>(nb * 4);
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q4_0X4_REC);
        const q0 = v128.load(o + 16), q1 = v128.load(o + 32), q2 = v128.load(o + 48), q3 = v128.load(o + 64);
        const l0 = v128.and(q0, m15), h0 = v128.and(i16x8.shr_u(q0, 4), m15), l1 = v128.and(q1, m15), h1 = v128.and(i16x8.shr_u(q1, 4), m15);
        const l2 = v128.and(q2, m15), h2 = v128.and(i16x8.shr_u(q2, 4), m15), l3 = v128.and(q3, m15), h3 = v128.and(i16x8.shr_u(q3, 4), m15);
        const d4 = v128.load(o);
        a0 = f32x4.add(a0, q4Token(l0, h0, l1, h1, l2, h2, l3, h3, d4, x0, d0, d0 + nb4, b));
        a1 = f32x4.add(a1, q4Token(l0, h0, l1, h1, l2, h2, l3, h3, d4, x1, d1, d1 + nb4, b));
        a2 = f32x4.add(a2, q4Token(l0, h0, l1, h1, l2, h2, l3, h3, d4, x2, d2, d2 + nb4, b));
        a3 = f32x4.add(a3, q4Token(l0, h0, l1, h1, l2, h2, l3, h3, d4, x3, d3, d3 + nb4, b));
      }
      const yp = y + <usize>(t * yStride + (g << 2)) * 4, ys = <usize>yStride * 4;
      v128.store(yp, a0); v128.store(yp + ys, a1); v128.store(yp + 2 * ys, a2); v128.store(yp + 3 * ys, a3);
    }
    for (; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xsum = xd + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q4_0X4_REC);
        const q0 = v128.load(o + 16), q1 = v128.load(o + 32), q2 = v128.load(o + 48), q3 = v128.load(o + 64);
        acc = f32x4.add(acc, q4Token(v128.and(q0, m15), v128.and(i16x8.shr_u(q0, 4), m15), v128.and(q1, m15), v128.and(i16x8.shr_u(q1, 4), m15),
          v128.and(q2, m15), v128.and(i16x8.shr_u(q2, 4), m15), v128.and(q3, m15), v128.and(i16x8.shr_u(q3, 4), m15), v128.load(o), xqs, xd, xsum, b));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}

export function matmulQ8_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, gs = <usize>(nb * Q8_0X4_REC), xs = q8Stride(n);
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n;
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q8_0X4_REC), xb = xqs + <usize>(b * 32);
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
