// Row-interleaved ("x4") layouts for the hottest types, made once at load time: for each group of four rows
// and each 32-block, the four scales as f32 (converted from fp16 once here instead of per block per token),
// then the four rows' quants.
//   Q4_0x4 block: f32 d[4] | u8 qs[4][16]                            (80 bytes: row after row)
//   Q8_0x4 block: f32 d[4] | 8 × [i8 qs_r[4k..4k+3] for r = 0..3]   (144 bytes: 4-byte chunks, k = 0..7)
// Q8_0x4's 16-byte vector k holds bytes 4k..4k+3 of rows 0..3, so each i32 lane belongs to one row: against four
// activations broadcast to every lane, the block's four dot products come out as one i32x4 [row0..row3] with no
// horizontal reduction. Q4_0x4 keeps rows whole: the same 4-byte interleave (tried, with the i8×i7 relaxed dot
// into i16 and one widening) measured on Zen 4 / V8 (bench/matmul-micro.ts) only 3 % faster in prefill and 7 %
// slower in decode than dotting each row against the loaded activations and reducing the four rows together.
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
function repack(dst: usize, src: usize, nRows: i32, nb: i32, blockBytes: i32, quantBytes: i32, interleave: bool, scratch: usize): void {
  const rowBytes = <usize>(nb * blockBytes), groupIn = rowBytes * 4, outBlock = <usize>(16 + 4 * quantBytes);
  for (let g = 0; g < (nRows >> 2); g++) {
    memory.copy(scratch, src + <usize>g * groupIn, groupIn);
    const out = dst + <usize>g * <usize>nb * outBlock;
    for (let b = 0; b < nb; b++) {
      const o = out + <usize>b * outBlock;
      for (let r = 0; r < 4; r++) {
        const blk = scratch + <usize>r * rowBytes + <usize>(b * blockBytes);
        store<f32>(o + <usize>(r * 4), f16ToF32(load<u16>(blk)));
        if (!interleave) memory.copy(o + 16 + <usize>(r * quantBytes), blk + 2, <usize>quantBytes);
        else for (let c = 0; c < (quantBytes >> 2); c++) store<u32>(o + 16 + <usize>(c * 16 + r * 4), load<u32>(blk + 2 + <usize>(c * 4)));
      }
    }
  }
}

export function repackQ4_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 18, 16, false, scratch); }
export function repackQ8_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 34, 32, true, scratch); }

/** Address of quant byte j (0 ≤ j < 32) of row r (0..3) in the Q8_0x4 block at o. */
// @ts-ignore: decorator
@inline function x4Byte(o: usize, r: i32, j: i32): usize { return o + 16 + <usize>((j >> 2) * 16 + r * 4 + (j & 3)); }

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
    const o = blk + <usize>(b * Q8_0X4_REC), d = load<f32>(o + <usize>(r * 4));
    for (let j = 0; j < 32; j++) store<f32>(dst + <usize>((b * 32 + j) * 4), d * <f32>load<i8>(x4Byte(o, r, j)));
  }
}

// ---- kernels ------------------------------------------------------------------------------------
// y[t·yStride + r] for rows [r0, r1) (multiples of 4) and tokens [0, nTok); x is a Q8_0 activation
// (qs i8[n] | d f32[n/32] | Σqs i32[n/32] per token, see q8Stride). Prefill takes tokens four at a time so each
// weight vector is loaded and unpacked once for four tokens; decode (and the last nTok mod 4 tokens) goes
// group by group. The integer sums of a block are exact in every build and the float steps are the same, so the
// plain and relaxed builds give bit-identical results. Measured on Zen 4 / V8 (bench/matmul-micro.ts): a decode
// pass over two or four groups at once (sharing the activation splats) is faster while the weights sit in cache
// but about half as fast streaming from DRAM (--copies 16), as every real decode does, so each group is read as
// one sequential stream.

/** Four activation bytes x[0..3] in every i32 lane. */
// @ts-ignore: decorator
@inline function splat4(p: usize): v128 { return v128.load32_splat(p); }

// Q8_0: weights widened to i16 per row pair (rows 0,1 and rows 2,3) against the four activations widened and
// repeated twice; i32 lanes 2r, 2r+1 of a pair's sum belong to row r.
/** Σ of the row-pair halves a (rows 0,1) and b (rows 2,3): [row0, row1, row2, row3]. */
// @ts-ignore: decorator
@inline function pairSums(a: v128, b: v128): v128 {
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7));
}
// @ts-ignore: decorator
@inline function widen4(x: usize): v128 { return i16x8.extend_low_i8x16_s(splat4(x)); }

/** f32 contribution of one Q8_0 block: Σ · d_w[r] · d_x. */
// @ts-ignore: decorator
@inline function scaled(s: v128, d4: v128, xd: usize): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(d4, v128.load32_splat(xd)));
}

// ---- Q4_0x4 (rows whole) -----------------------------------------------------------------------

/** Σ over 16 nibbles widened to i16 against pre-widened activations xa (first 8), xb (last 8). */
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

// Q8_0: both operands are full i8, outside the relaxed dot's 7-bit range, so every build widens to i16
// (p: rows 0,1; q: rows 2,3, as pairSums expects).
/** Row sums [row0..row3] of Q8_0x4 block o against a token's eight widened 4-activation splats e0..e7. */
// @ts-ignore: decorator
@inline function q8Splats(o: usize, e0: v128, e1: v128, e2: v128, e3: v128, e4: v128, e5: v128, e6: v128, e7: v128): v128 {
  let w = v128.load(o, 16);
  let p = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e0);
  let q = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e0);
  w = v128.load(o, 32);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e1));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e1));
  w = v128.load(o, 48);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e2));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e2));
  w = v128.load(o, 64);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e3));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e3));
  w = v128.load(o, 80);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e4));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e4));
  w = v128.load(o, 96);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e5));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e5));
  w = v128.load(o, 112);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e6));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e6));
  w = v128.load(o, 128);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), e7));
  q = i32x4.add(q, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), e7));
  return pairSums(p, q);
}

export function matmulQ8_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, gs = <usize>(nb * Q8_0X4_REC), xs = <usize>q8Stride(n), ys = <usize>yStride * 4;
  const zero = i32x4.splat(0), nTok4 = nTok & ~3, g1 = r1 >> 2;
  for (let g = r0 >> 2; g < g1; g++) {
    const wg = w + <usize>g * gs;
    for (let t = 0; t < nTok4; t += 4) {
      const x0 = xq + <usize>t * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q8_0X4_REC), xo = <usize>(b * 32), bo = <usize>(b * 4);
        let p0 = zero, p1 = zero, p2 = zero, p3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;
        for (let k: usize = 0; k < 32; k += 4) {
          const wv = v128.load(o + 16 + (k << 2)), wl = i16x8.extend_low_i8x16_s(wv), wh = i16x8.extend_high_i8x16_s(wv);
          let xe = widen4(x0 + xo + k);
          p0 = i32x4.add(p0, i32x4.dot_i16x8_s(wl, xe)); q0 = i32x4.add(q0, i32x4.dot_i16x8_s(wh, xe));
          xe = widen4(x1 + xo + k);
          p1 = i32x4.add(p1, i32x4.dot_i16x8_s(wl, xe)); q1 = i32x4.add(q1, i32x4.dot_i16x8_s(wh, xe));
          xe = widen4(x2 + xo + k);
          p2 = i32x4.add(p2, i32x4.dot_i16x8_s(wl, xe)); q2 = i32x4.add(q2, i32x4.dot_i16x8_s(wh, xe));
          xe = widen4(x3 + xo + k);
          p3 = i32x4.add(p3, i32x4.dot_i16x8_s(wl, xe)); q3 = i32x4.add(q3, i32x4.dot_i16x8_s(wh, xe));
        }
        const d4 = v128.load(o);
        a0 = f32x4.add(a0, scaled(pairSums(p0, q0), d4, x0 + n + bo));
        a1 = f32x4.add(a1, scaled(pairSums(p1, q1), d4, x1 + n + bo));
        a2 = f32x4.add(a2, scaled(pairSums(p2, q2), d4, x2 + n + bo));
        a3 = f32x4.add(a3, scaled(pairSums(p3, q3), d4, x3 + n + bo));
      }
      const yp = y + (<usize>(t * yStride + (g << 2)) << 2);
      v128.store(yp, a0); v128.store(yp + ys, a1); v128.store(yp + 2 * ys, a2); v128.store(yp + 3 * ys, a3);
    }
  }
  for (let g = r0 >> 2; g < g1; g++) {
    const wg = w + <usize>g * gs;
    for (let t = nTok4; t < nTok; t++) {
      const x0 = xq + <usize>t * xs;
      let a0 = zero;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q8_0X4_REC), xb = x0 + <usize>(b * 32);
        const s = q8Splats(o, widen4(xb), widen4(xb + 4), widen4(xb + 8), widen4(xb + 12), widen4(xb + 16), widen4(xb + 20),
          widen4(xb + 24), widen4(xb + 28));
        a0 = f32x4.add(a0, scaled(s, v128.load(o), x0 + n + <usize>(b * 4)));
      }
      v128.store(y + (<usize>(t * yStride + (g << 2)) << 2), a0);
    }
  }
}
