// Row-interleaved ("x4") layouts for the hottest types, made once at load time:
// for each group of four rows and each 32-block: the four scales as f32, then the four rows' quants
// interleaved in 4-byte chunks, so that 16-byte vector k holds bytes 4k..4k+3 of rows 0, 1, 2, 3:
//   Q4_0x4 block: f32 d[4] | 4 × [u8 qs_r[4k..4k+3] for r = 0..3]   (80 bytes; k = 0..3)
//   Q8_0x4 block: f32 d[4] | 8 × [i8 qs_r[4k..4k+3] for r = 0..3]   (144 bytes; k = 0..7)
// Each i32 lane of a weight vector then belongs to one row. Multiplied against four activation bytes
// broadcast to every lane, the products of row r stay in lane r: the block's dot products come out
// as one i32x4 [row0, row1, row2, row3] with no horizontal reduction, and one convert, multiply and add
// apply the four rows' scales (converted from fp16 once here instead of per block per token).
import { f16ToF32, q8Stride } from "./common";

/** Bytes of one x4 block (four rows × 32 weights); exported so tests check them against src/core/quant-types.ts. */
export const Q4_0X4_REC: i32 = 16 + 4 * 16;
export const Q8_0X4_REC: i32 = 16 + 4 * 32;

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
        for (let c = 0; c < (quantBytes >> 2); c++) store<u32>(o + 16 + <usize>(c * 16 + r * 4), load<u32>(blk + 2 + <usize>(c * 4)));
      }
    }
  }
}

export function repackQ4_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 18, 16, scratch); }
export function repackQ8_0(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void { repack(dst, src, nRows, n >> 5, 34, 32, scratch); }

/** Address of quant byte j (0 ≤ j < quant bytes per row) of row r (0..3) in the x4 block at o. */
// @ts-ignore: decorator
@inline function x4Byte(o: usize, r: i32, j: i32): usize { return o + 16 + <usize>((j >> 2) * 16 + r * 4 + (j & 3)); }

export function dequantRowQ4_0x4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 5, blk = w + <usize>(row >> 2) * <usize>(nb * Q4_0X4_REC), r = row & 3;
  for (let b = 0; b < nb; b++) {
    const o = blk + <usize>(b * Q4_0X4_REC), d = load<f32>(o + <usize>(r * 4));
    for (let j = 0; j < 16; j++) {
      const v = <i32>load<u8>(x4Byte(o, r, j));
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
// plain and relaxed builds give bit-identical results. Measured on Zen 4 / V8 (bench/matmul-micro.ts): an
// 8-row × 4-token or 16-row × 2-token prefill tile spills registers and is slower; a decode pass over two or four
// groups at once (sharing the activation splats) is faster while the weights sit in cache but about half as fast
// streaming from DRAM (--copies 16), as every real decode does, so each group is read as one sequential stream.

/** Four activation bytes x[0..3] in every i32 lane. */
// @ts-ignore: decorator
@inline function splat4(p: usize): v128 { return v128.load32_splat(p); }

// Q4_0, relaxed SIMD: nibbles 0..15 are the 7-bit operand of the i8×i7 dot. A lane pair of the i16 sum
// gathers 16 products per block: |Σ| ≤ 16·15·128 = 30720 < 2^15 (even for −128, which Q8_0 activations
// never hold), so the block's sum stays in i16 until one pairwise widening.
/** Σ over weights 4k..4k+3 (low nibbles lo) and 16+4k.. (high nibbles hi) against activations xl, xh (splat4). */
// @ts-ignore: decorator
@inline function q4Pair(lo: v128, hi: v128, xl: v128, xh: v128): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xh, hi));
}

// Q4_0 and Q8_0, plain SIMD: weights widened to i16 per row pair (lw: rows 0,1; hw: rows 2,3) against the
// four activations widened and repeated twice; i32 lanes 2r, 2r+1 of a pair's sum belong to row r.
/** Σ of the row-pair halves a (rows 0,1) and b (rows 2,3): [row0, row1, row2, row3]. */
// @ts-ignore: decorator
@inline function pairSums(a: v128, b: v128): v128 {
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7));
}
// @ts-ignore: decorator
@inline function widen4(x: usize): v128 { return i16x8.extend_low_i8x16_s(splat4(x)); }

/** f32 contribution of one block: (Σ − 8·Σxq for Q4_0, or Σ) · d_w[r] · d_x. */
// @ts-ignore: decorator
@inline function scaled(s: v128, d4: v128, xd: usize): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(d4, v128.load32_splat(xd)));
}
// @ts-ignore: decorator
@inline function q4Scaled(s: v128, d4: v128, xd: usize, xsum: usize): v128 {
  return scaled(i32x4.sub(s, i32x4.shl(v128.load32_splat(xsum), 3)), d4, xd);
}

/** Row sums [row0..row3] of Q4_0x4 block o against a token's eight 4-byte activation splats c0..c7 (relaxed). */
// @ts-ignore: decorator
@inline function q4RelaxedSplats(o: usize, m15: v128, c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128, c6: v128, c7: v128): v128 {
  const q0 = v128.load(o, 16), q1 = v128.load(o, 32), q2 = v128.load(o, 48), q3 = v128.load(o, 64);
  const s01 = i16x8.add(q4Pair(v128.and(q0, m15), v128.and(i16x8.shr_u(q0, 4), m15), c0, c4),
    q4Pair(v128.and(q1, m15), v128.and(i16x8.shr_u(q1, 4), m15), c1, c5));
  const s23 = i16x8.add(q4Pair(v128.and(q2, m15), v128.and(i16x8.shr_u(q2, 4), m15), c2, c6),
    q4Pair(v128.and(q3, m15), v128.and(i16x8.shr_u(q3, 4), m15), c3, c7));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(s01, s23));
}

/** Tokens [0, nTok4) (a multiple of 4) of one group, four at a time. */
function q4Group4(wg: usize, xq: usize, y: usize, n: i32, nTok4: i32, yStride: i32): void {
  const nb = n >> 5, xs = <usize>q8Stride(n), nb4 = <usize>(nb * 4), ys = <usize>yStride * 4;
  const m15 = i8x16.splat(15), zero = i32x4.splat(0);
  for (let t = 0; t < nTok4; t += 4) {
    const x0 = xq + <usize>t * xs, x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
    let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    for (let b = 0; b < nb; b++) {
      const o = wg + <usize>(b * Q4_0X4_REC), xo = <usize>(b * 32), bo = <usize>(b * 4);
      let s0: v128, s1: v128, s2: v128, s3: v128;
      if (ASC_FEATURE_RELAXED_SIMD) {
        // unrolled: literal offsets (loop-computed addresses cost V8 an extra scalar op per load)
        const xa = x0 + xo, xb = x1 + xo, xc = x2 + xo, xe = x3 + xo;
        let q: v128 = v128.load(o, 16); let lo: v128 = v128.and(q, m15); let hi: v128 = v128.and(i16x8.shr_u(q, 4), m15);
        s0 = q4Pair(lo, hi, v128.load32_splat(xa, 0), v128.load32_splat(xa, 16));
        s1 = q4Pair(lo, hi, v128.load32_splat(xb, 0), v128.load32_splat(xb, 16));
        s2 = q4Pair(lo, hi, v128.load32_splat(xc, 0), v128.load32_splat(xc, 16));
        s3 = q4Pair(lo, hi, v128.load32_splat(xe, 0), v128.load32_splat(xe, 16));
        q = v128.load(o, 32); lo = v128.and(q, m15); hi = v128.and(i16x8.shr_u(q, 4), m15);
        s0 = i16x8.add(s0, q4Pair(lo, hi, v128.load32_splat(xa, 4), v128.load32_splat(xa, 20)));
        s1 = i16x8.add(s1, q4Pair(lo, hi, v128.load32_splat(xb, 4), v128.load32_splat(xb, 20)));
        s2 = i16x8.add(s2, q4Pair(lo, hi, v128.load32_splat(xc, 4), v128.load32_splat(xc, 20)));
        s3 = i16x8.add(s3, q4Pair(lo, hi, v128.load32_splat(xe, 4), v128.load32_splat(xe, 20)));
        q = v128.load(o, 48); lo = v128.and(q, m15); hi = v128.and(i16x8.shr_u(q, 4), m15);
        s0 = i16x8.add(s0, q4Pair(lo, hi, v128.load32_splat(xa, 8), v128.load32_splat(xa, 24)));
        s1 = i16x8.add(s1, q4Pair(lo, hi, v128.load32_splat(xb, 8), v128.load32_splat(xb, 24)));
        s2 = i16x8.add(s2, q4Pair(lo, hi, v128.load32_splat(xc, 8), v128.load32_splat(xc, 24)));
        s3 = i16x8.add(s3, q4Pair(lo, hi, v128.load32_splat(xe, 8), v128.load32_splat(xe, 24)));
        q = v128.load(o, 64); lo = v128.and(q, m15); hi = v128.and(i16x8.shr_u(q, 4), m15);
        s0 = i16x8.add(s0, q4Pair(lo, hi, v128.load32_splat(xa, 12), v128.load32_splat(xa, 28)));
        s1 = i16x8.add(s1, q4Pair(lo, hi, v128.load32_splat(xb, 12), v128.load32_splat(xb, 28)));
        s2 = i16x8.add(s2, q4Pair(lo, hi, v128.load32_splat(xc, 12), v128.load32_splat(xc, 28)));
        s3 = i16x8.add(s3, q4Pair(lo, hi, v128.load32_splat(xe, 12), v128.load32_splat(xe, 28)));
        s0 = i32x4.extadd_pairwise_i16x8_s(s0); s1 = i32x4.extadd_pairwise_i16x8_s(s1);
        s2 = i32x4.extadd_pairwise_i16x8_s(s2); s3 = i32x4.extadd_pairwise_i16x8_s(s3);
      } else {
        let p0 = zero, p1 = zero, p2 = zero, p3 = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;
        for (let k: usize = 0; k < 16; k += 4) {
          const q = v128.load(o + 16 + (k << 2)), lo = v128.and(q, m15), hi = v128.and(i16x8.shr_u(q, 4), m15);
          const ll = i16x8.extend_low_i8x16_u(lo), lh = i16x8.extend_high_i8x16_u(lo);
          const hl = i16x8.extend_low_i8x16_u(hi), hh = i16x8.extend_high_i8x16_u(hi);
          let xl = widen4(x0 + xo + k), xh = widen4(x0 + xo + k + 16);
          p0 = i32x4.add(p0, i32x4.add(i32x4.dot_i16x8_s(ll, xl), i32x4.dot_i16x8_s(hl, xh)));
          q0 = i32x4.add(q0, i32x4.add(i32x4.dot_i16x8_s(lh, xl), i32x4.dot_i16x8_s(hh, xh)));
          xl = widen4(x1 + xo + k); xh = widen4(x1 + xo + k + 16);
          p1 = i32x4.add(p1, i32x4.add(i32x4.dot_i16x8_s(ll, xl), i32x4.dot_i16x8_s(hl, xh)));
          q1 = i32x4.add(q1, i32x4.add(i32x4.dot_i16x8_s(lh, xl), i32x4.dot_i16x8_s(hh, xh)));
          xl = widen4(x2 + xo + k); xh = widen4(x2 + xo + k + 16);
          p2 = i32x4.add(p2, i32x4.add(i32x4.dot_i16x8_s(ll, xl), i32x4.dot_i16x8_s(hl, xh)));
          q2 = i32x4.add(q2, i32x4.add(i32x4.dot_i16x8_s(lh, xl), i32x4.dot_i16x8_s(hh, xh)));
          xl = widen4(x3 + xo + k); xh = widen4(x3 + xo + k + 16);
          p3 = i32x4.add(p3, i32x4.add(i32x4.dot_i16x8_s(ll, xl), i32x4.dot_i16x8_s(hl, xh)));
          q3 = i32x4.add(q3, i32x4.add(i32x4.dot_i16x8_s(lh, xl), i32x4.dot_i16x8_s(hh, xh)));
        }
        s0 = pairSums(p0, q0); s1 = pairSums(p1, q1); s2 = pairSums(p2, q2); s3 = pairSums(p3, q3);
      }
      const d4 = v128.load(o);
      a0 = f32x4.add(a0, q4Scaled(s0, d4, x0 + n + bo, x0 + n + nb4 + bo));
      a1 = f32x4.add(a1, q4Scaled(s1, d4, x1 + n + bo, x1 + n + nb4 + bo));
      a2 = f32x4.add(a2, q4Scaled(s2, d4, x2 + n + bo, x2 + n + nb4 + bo));
      a3 = f32x4.add(a3, q4Scaled(s3, d4, x3 + n + bo, x3 + n + nb4 + bo));
    }
    const yp = y + (<usize>(t * yStride) << 2);
    v128.store(yp, a0); v128.store(yp + ys, a1); v128.store(yp + 2 * ys, a2); v128.store(yp + 3 * ys, a3);
  }
}

/** Tokens [t0, nTok) of one group, one at a time (decode, and the prefill's last nTok mod 4). */
function q4Group1(wg: usize, xq: usize, y: usize, n: i32, t0: i32, nTok: i32, yStride: i32): void {
  const nb = n >> 5, xs = <usize>q8Stride(n), nb4 = <usize>(nb * 4);
  const m15 = i8x16.splat(15), zero = i32x4.splat(0);
  for (let t = t0; t < nTok; t++) {
    const x0 = xq + <usize>t * xs;
    let a0 = zero;
    for (let b = 0; b < nb; b++) {
      const o = wg + <usize>(b * Q4_0X4_REC), xb = x0 + <usize>(b * 32);
      let s: v128;
      if (ASC_FEATURE_RELAXED_SIMD) {
        // splats by shuffling two loads: measured faster here than eight load32_splat
        const xl = v128.load(xb), xh = v128.load(xb, 16);
        s = q4RelaxedSplats(o, m15, i32x4.shuffle(xl, xl, 0, 0, 0, 0), i32x4.shuffle(xl, xl, 1, 1, 1, 1),
          i32x4.shuffle(xl, xl, 2, 2, 2, 2), i32x4.shuffle(xl, xl, 3, 3, 3, 3), i32x4.shuffle(xh, xh, 0, 0, 0, 0),
          i32x4.shuffle(xh, xh, 1, 1, 1, 1), i32x4.shuffle(xh, xh, 2, 2, 2, 2), i32x4.shuffle(xh, xh, 3, 3, 3, 3));
      } else {
        let p = zero, r = zero;
        for (let k: usize = 0; k < 16; k += 4) {
          const q = v128.load(o + 16 + (k << 2)), lo = v128.and(q, m15), hi = v128.and(i16x8.shr_u(q, 4), m15);
          const xl = widen4(xb + k), xh = widen4(xb + k + 16);
          p = i32x4.add(p, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), xl), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), xh)));
          r = i32x4.add(r, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), xh)));
        }
        s = pairSums(p, r);
      }
      a0 = f32x4.add(a0, q4Scaled(s, v128.load(o), x0 + n + <usize>(b * 4), x0 + n + nb4 + <usize>(b * 4)));
    }
    v128.store(y + (<usize>(t * yStride) << 2), a0);
  }
}

export function matmulQ4_0x4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const gs = <usize>((n >> 5) * Q4_0X4_REC), g1 = r1 >> 2, nTok4 = nTok & ~3;
  for (let g = r0 >> 2; g < g1; g++) q4Group4(w + <usize>g * gs, xq, y + (<usize>g << 4), n, nTok4, yStride);
  for (let g = r0 >> 2; g < g1; g++) q4Group1(w + <usize>g * gs, xq, y + (<usize>g << 4), n, nTok4, nTok, yStride);
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
