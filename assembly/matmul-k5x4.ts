// Row-interleaved ("x4") layout for Q5_K, made once at load time like Q4_Kx4 / Q6_Kx4 (matmul-kx4.ts, whose
// header explains the pairing trick and whose helpers this file uses). Per group of four rows and 256-weight
// super-block one record; the scales, mins and d/dmin are laid out as in Q4_Kx4, and the 5-bit quants of a
// row's 64-weight chunk (P = sub-block 2c, Q = 2c+1, interleaved in 2-weight units into u'_0..u'_3 exactly
// as Q4_Kx4's nibbles) fill three 16-byte planes, Q6_Kx4-style:
//
//   Q5_Kx4 record (864 bytes = 4 rows × 216; 108 per 32 weights per four rows):
//     0   f32 d[4]             16  f32 dmin[4]
//     32  u8  m[4][4][2]       64  u8  sc[4][4][2]      [chunk c][row r][sub-block 2c, 2c+1]
//     96  u8  q[4][4][48]      [chunk c][row r]: planes A, B, C (u ∈ [0, 31]):
//                              A = u'_0 | u'_3[4:2] << 5, B = u'_1 | u'_3[1:0] << 6, C = u'_2
//                              (u'_0, u'_1 one AND each, u'_2 as stored, u'_3 five ops)
//
// Arithmetic as Q4_K: dx·(d·Σ_j sc_j·Σ u·xq − dmin·Σ_j m_j·Σ_32 xq). Bounds: relaxed dot4 sums four i8×i7
// pair-dots, ≤ 4·2·128·31 = 31744 < 2^15; the plain build's dot8 eight products, the same bound.
// Rows [r0, r1) must be multiples of four.
import { f16ToF32, q8kStride } from "./common";
import { hiNib, loNib, reduce4, storeAffine16 } from "./matmul-legacy";
import { bsumPairs, dot4, dot8, evenUnits, finishQ4K, ihi, ilo, kScales, minsQ4K, oddUnits, pair0, pair1, pair2, pair3 } from "./matmul-kx4";

export const Q5K_REC: i32 = 864;

/** Bit k (0 or 1, constant) of every byte of h moved to 0x10 (16-bit shift: the bit stays in its byte). */
// @ts-ignore: decorator
@inline function bitTo16(h: v128, k: i32): v128 { return v128.and(i16x8.shl(h, 4 - k), i8x16.splat(16)); }

// @ts-ignore: decorator
@inline function lo5(A: v128): v128 { return v128.and(A, i8x16.splat(0x1f)); }
/** u'_3 from the top three bits of A (→ 4:2) and the top two of B (→ 1:0); masked before the 16-bit
 *  shifts, so no bit crosses a byte. */
// @ts-ignore: decorator
@inline function top5(A: v128, B: v128): v128 {
  return i16x8.shr_u(v128.or(v128.and(A, i8x16.splat(<i8>0xe0)), i16x8.shr_u(v128.and(B, i8x16.splat(<i8>0xc0)), 3)), 3);
}

/** nRows (multiple of 4) Q5_K rows at src → Q5_Kx4 records at dst (in place, as repackQ4_K). */
export function repackQ5_K(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void {
  const nb = n >> 8, rowBytes = <usize>(nb * 176), groupIn = rowBytes * 4;
  for (let g = 0; g < (nRows >> 2); g++) {
    memory.copy(scratch, src + <usize>g * groupIn, groupIn);
    const out = dst + <usize>g * <usize>nb * Q5K_REC;
    for (let b = 0; b < nb; b++) {
      const o = out + <usize>(b * Q5K_REC);
      for (let r = 0; r < 4; r++) {
        const p = scratch + <usize>r * rowBytes + <usize>(b * 176);
        store<f32>(o + <usize>(4 * r), f16ToF32(load<u16>(p)));
        store<f32>(o + 16 + <usize>(4 * r), f16ToF32(load<u16>(p + 2)));
        const k = kScales(p + 4), rr = <usize>(2 * r);
        store<u16>(o + 64 + rr, i16x8.extract_lane_u(k, 0)); store<u16>(o + 72 + rr, i16x8.extract_lane_u(k, 1));
        store<u16>(o + 80 + rr, i16x8.extract_lane_u(k, 2)); store<u16>(o + 88 + rr, i16x8.extract_lane_u(k, 3));
        store<u16>(o + 32 + rr, i16x8.extract_lane_u(k, 4)); store<u16>(o + 40 + rr, i16x8.extract_lane_u(k, 5));
        store<u16>(o + 48 + rr, i16x8.extract_lane_u(k, 6)); store<u16>(o + 56 + rr, i16x8.extract_lane_u(k, 7));
        for (let c = 0; c < 4; c++) {
          // file chunk c: qs byte i holds P_i (low nibble) and Q_i (high nibble); qh[i] bits 2c, 2c+1 their 5th bits
          const f0 = v128.load(p + 48 + <usize>(32 * c)), f1 = v128.load(p + 64 + <usize>(32 * c));
          const hs = i16x8.shr_u(v128.load(p + 16), 2 * c), ht = i16x8.shr_u(v128.load(p + 32), 2 * c);
          const P0 = v128.or(loNib(f0), bitTo16(hs, 0)), P1 = v128.or(loNib(f1), bitTo16(ht, 0));
          const Q0 = v128.or(hiNib(f0), bitTo16(hs, 1)), Q1 = v128.or(hiNib(f1), bitTo16(ht, 1));
          const u0 = ilo(P0, Q0), u1 = ihi(P0, Q0), u2 = ilo(P1, Q1), u3 = ihi(P1, Q1);
          const q = o + 96 + <usize>(192 * c + 48 * r);
          v128.store(q, v128.or(u0, i16x8.shl(v128.and(u3, i8x16.splat(0x1c)), 3)));
          v128.store(q + 16, v128.or(u1, i16x8.shl(v128.and(u3, i8x16.splat(0x03)), 6)));
          v128.store(q + 32, u2);
        }
      }
    }
  }
}

/** Row `row` of a Q5_Kx4 matrix → n floats at dst, bit-exact with ggml's dequantize_row_q5_K. */
export function dequantRowQ5_Kx4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 8, r = row & 3;
  const base = w + <usize>(row >> 2) * <usize>(nb * Q5K_REC);
  for (let b = 0; b < nb; b++) {
    const o = base + <usize>(b * Q5K_REC), out = dst + <usize>(b * 1024);
    const d = load<f32>(o + <usize>(4 * r)), dmin = load<f32>(o + 16 + <usize>(4 * r));
    for (let c = 0; c < 4; c++) {
      const q = o + 96 + <usize>(192 * c + 48 * r), A = v128.load(q), B = v128.load(q + 16);
      const u0 = lo5(A), u1 = lo5(B), u2 = v128.load(q + 32), u3 = top5(A, B);
      const at = <usize>(8 * c + 2 * r);
      const sp = d * <f32>load<u8>(o + 64 + at), sq = d * <f32>load<u8>(o + 65 + at);
      const mp = -(dmin * <f32>load<u8>(o + 32 + at)), mq = -(dmin * <f32>load<u8>(o + 33 + at));
      const p0 = evenUnits(u0, u1), p1 = evenUnits(u2, u3), q0 = oddUnits(u0, u1), q1 = oddUnits(u2, u3);
      const op = out + <usize>(256 * c), oq = op + 128;
      storeAffine16(op, i16x8.extend_low_i8x16_u(p0), i16x8.extend_high_i8x16_u(p0), sp, mp);
      storeAffine16(op + 64, i16x8.extend_low_i8x16_u(p1), i16x8.extend_high_i8x16_u(p1), sp, mp);
      storeAffine16(oq, i16x8.extend_low_i8x16_u(q0), i16x8.extend_high_i8x16_u(q0), sq, mq);
      storeAffine16(oq + 64, i16x8.extend_low_i8x16_u(q1), i16x8.extend_high_i8x16_u(q1), sq, mq);
    }
  }
}

// @ts-ignore: decorator
@inline function rowQ5K(acc: v128, q: usize, v0: v128, v1: v128, v2: v128, v3: v128, s: v128): v128 {
  const A = v128.load(q), B = v128.load(q + 16);
  return dot4(acc, v0, v1, v2, v3, lo5(A), lo5(B), v128.load(q + 32), top5(A, B), s);
}

// @ts-ignore: decorator
@inline function rowQ5KPlain(acc: v128, q: usize, e0: v128, f0: v128, e1: v128, f1: v128, e2: v128, f2: v128, e3: v128, f3: v128, s: v128): v128 {
  const A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
  const u0 = lo5(A), u1 = lo5(B), u3 = top5(A, B);
  return dot8(acc, e0, f0, e1, f1, e2, f2, e3, f3,
    i16x8.extend_low_i8x16_u(u0), i16x8.extend_high_i8x16_u(u0), i16x8.extend_low_i8x16_u(u1), i16x8.extend_high_i8x16_u(u1),
    i16x8.extend_low_i8x16_u(C), i16x8.extend_high_i8x16_u(C), i16x8.extend_low_i8x16_u(u3), i16x8.extend_high_i8x16_u(u3), s);
}

export function matmulQ5_Kx4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 8, gs = <usize>(nb * Q5K_REC), xs = q8kStride(n), ys = <usize>yStride * 4;
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    let t = 0;
    // prefill: four tokens per pass (activations interleaved once per chunk, quants unpacked once per row)
    for (; t + 4 <= nTok; t += 4) {
      const x0 = xq + <usize>(t * xs), x1 = x0 + <usize>xs, x2 = x1 + <usize>xs, x3 = x2 + <usize>xs;
      let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q5K_REC);
        // a{row}{token}
        let a00 = i32x4.splat(0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        let a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (let c = 0; c < 4; c++) {
          const xo = <usize>(b * 256 + 64 * c);
          let p = x0 + xo, l = v128.load(p), h = v128.load(p + 32);
          const v00 = ilo(l, h), v01 = ihi(l, h);
          l = v128.load(p + 16); h = v128.load(p + 48);
          const v02 = ilo(l, h), v03 = ihi(l, h);
          p = x1 + xo; l = v128.load(p); h = v128.load(p + 32);
          const v10 = ilo(l, h), v11 = ihi(l, h);
          l = v128.load(p + 16); h = v128.load(p + 48);
          const v12 = ilo(l, h), v13 = ihi(l, h);
          p = x2 + xo; l = v128.load(p); h = v128.load(p + 32);
          const v20 = ilo(l, h), v21 = ihi(l, h);
          l = v128.load(p + 16); h = v128.load(p + 48);
          const v22 = ilo(l, h), v23 = ihi(l, h);
          p = x3 + xo; l = v128.load(p); h = v128.load(p + 32);
          const v30 = ilo(l, h), v31 = ihi(l, h);
          l = v128.load(p + 16); h = v128.load(p + 48);
          const v32 = ilo(l, h), v33 = ihi(l, h);
          const s = i16x8.extend_low_i8x16_u(v128.load64_zero(o + 64 + <usize>(8 * c)));
          const q = o + 96 + <usize>(192 * c);
          if (ASC_FEATURE_RELAXED_SIMD) {
            let A = v128.load(q), B = v128.load(q + 16), S = pair0(s);
            let u0 = lo5(A), u1 = lo5(B), u2 = v128.load(q + 32), u3 = top5(A, B);
            a00 = dot4(a00, v00, v01, v02, v03, u0, u1, u2, u3, S); a01 = dot4(a01, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a02 = dot4(a02, v20, v21, v22, v23, u0, u1, u2, u3, S); a03 = dot4(a03, v30, v31, v32, v33, u0, u1, u2, u3, S);
            A = v128.load(q + 48); B = v128.load(q + 64); S = pair1(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 80); u3 = top5(A, B);
            a10 = dot4(a10, v00, v01, v02, v03, u0, u1, u2, u3, S); a11 = dot4(a11, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a12 = dot4(a12, v20, v21, v22, v23, u0, u1, u2, u3, S); a13 = dot4(a13, v30, v31, v32, v33, u0, u1, u2, u3, S);
            A = v128.load(q + 96); B = v128.load(q + 112); S = pair2(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 128); u3 = top5(A, B);
            a20 = dot4(a20, v00, v01, v02, v03, u0, u1, u2, u3, S); a21 = dot4(a21, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a22 = dot4(a22, v20, v21, v22, v23, u0, u1, u2, u3, S); a23 = dot4(a23, v30, v31, v32, v33, u0, u1, u2, u3, S);
            A = v128.load(q + 144); B = v128.load(q + 160); S = pair3(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 176); u3 = top5(A, B);
            a30 = dot4(a30, v00, v01, v02, v03, u0, u1, u2, u3, S); a31 = dot4(a31, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a32 = dot4(a32, v20, v21, v22, v23, u0, u1, u2, u3, S); a33 = dot4(a33, v30, v31, v32, v33, u0, u1, u2, u3, S);
          } else {
            const e00 = i16x8.extend_low_i8x16_s(v00), f00 = i16x8.extend_high_i8x16_s(v00), e01 = i16x8.extend_low_i8x16_s(v01), f01 = i16x8.extend_high_i8x16_s(v01);
            const e02 = i16x8.extend_low_i8x16_s(v02), f02 = i16x8.extend_high_i8x16_s(v02), e03 = i16x8.extend_low_i8x16_s(v03), f03 = i16x8.extend_high_i8x16_s(v03);
            const e10 = i16x8.extend_low_i8x16_s(v10), f10 = i16x8.extend_high_i8x16_s(v10), e11 = i16x8.extend_low_i8x16_s(v11), f11 = i16x8.extend_high_i8x16_s(v11);
            const e12 = i16x8.extend_low_i8x16_s(v12), f12 = i16x8.extend_high_i8x16_s(v12), e13 = i16x8.extend_low_i8x16_s(v13), f13 = i16x8.extend_high_i8x16_s(v13);
            const e20 = i16x8.extend_low_i8x16_s(v20), f20 = i16x8.extend_high_i8x16_s(v20), e21 = i16x8.extend_low_i8x16_s(v21), f21 = i16x8.extend_high_i8x16_s(v21);
            const e22 = i16x8.extend_low_i8x16_s(v22), f22 = i16x8.extend_high_i8x16_s(v22), e23 = i16x8.extend_low_i8x16_s(v23), f23 = i16x8.extend_high_i8x16_s(v23);
            const e30 = i16x8.extend_low_i8x16_s(v30), f30 = i16x8.extend_high_i8x16_s(v30), e31 = i16x8.extend_low_i8x16_s(v31), f31 = i16x8.extend_high_i8x16_s(v31);
            const e32 = i16x8.extend_low_i8x16_s(v32), f32 = i16x8.extend_high_i8x16_s(v32), e33 = i16x8.extend_low_i8x16_s(v33), f33 = i16x8.extend_high_i8x16_s(v33);
            let A = v128.load(q), B = v128.load(q + 16), S = pair0(s);
            let u0 = lo5(A), u1 = lo5(B), u2 = v128.load(q + 32), u3 = top5(A, B);
            let w0 = i16x8.extend_low_i8x16_u(u0), w1 = i16x8.extend_high_i8x16_u(u0), w2 = i16x8.extend_low_i8x16_u(u1), w3 = i16x8.extend_high_i8x16_u(u1);
            let w4 = i16x8.extend_low_i8x16_u(u2), w5 = i16x8.extend_high_i8x16_u(u2), w6 = i16x8.extend_low_i8x16_u(u3), w7 = i16x8.extend_high_i8x16_u(u3);
            a00 = dot8(a00, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a01 = dot8(a01, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a02 = dot8(a02, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a03 = dot8(a03, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            A = v128.load(q + 48); B = v128.load(q + 64); S = pair1(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 80); u3 = top5(A, B);
            w0 = i16x8.extend_low_i8x16_u(u0); w1 = i16x8.extend_high_i8x16_u(u0); w2 = i16x8.extend_low_i8x16_u(u1); w3 = i16x8.extend_high_i8x16_u(u1);
            w4 = i16x8.extend_low_i8x16_u(u2); w5 = i16x8.extend_high_i8x16_u(u2); w6 = i16x8.extend_low_i8x16_u(u3); w7 = i16x8.extend_high_i8x16_u(u3);
            a10 = dot8(a10, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a11 = dot8(a11, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a12 = dot8(a12, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a13 = dot8(a13, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            A = v128.load(q + 96); B = v128.load(q + 112); S = pair2(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 128); u3 = top5(A, B);
            w0 = i16x8.extend_low_i8x16_u(u0); w1 = i16x8.extend_high_i8x16_u(u0); w2 = i16x8.extend_low_i8x16_u(u1); w3 = i16x8.extend_high_i8x16_u(u1);
            w4 = i16x8.extend_low_i8x16_u(u2); w5 = i16x8.extend_high_i8x16_u(u2); w6 = i16x8.extend_low_i8x16_u(u3); w7 = i16x8.extend_high_i8x16_u(u3);
            a20 = dot8(a20, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a21 = dot8(a21, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a22 = dot8(a22, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a23 = dot8(a23, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            A = v128.load(q + 144); B = v128.load(q + 160); S = pair3(s);
            u0 = lo5(A); u1 = lo5(B); u2 = v128.load(q + 176); u3 = top5(A, B);
            w0 = i16x8.extend_low_i8x16_u(u0); w1 = i16x8.extend_high_i8x16_u(u0); w2 = i16x8.extend_low_i8x16_u(u1); w3 = i16x8.extend_high_i8x16_u(u1);
            w4 = i16x8.extend_low_i8x16_u(u2); w5 = i16x8.extend_high_i8x16_u(u2); w6 = i16x8.extend_low_i8x16_u(u3); w7 = i16x8.extend_high_i8x16_u(u3);
            a30 = dot8(a30, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a31 = dot8(a31, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a32 = dot8(a32, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a33 = dot8(a33, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
          }
        }
        const dxo = <usize>(n + 4 * b), bso = <usize>(n + 4 * nb + 64 * b);
        f0 = f32x4.add(f0, finishQ4K(o, reduce4(a00, a10, a20, a30), minsQ4K(o + 32, bsumPairs(x0 + bso)), load<f32>(x0 + dxo)));
        f1 = f32x4.add(f1, finishQ4K(o, reduce4(a01, a11, a21, a31), minsQ4K(o + 32, bsumPairs(x1 + bso)), load<f32>(x1 + dxo)));
        f2 = f32x4.add(f2, finishQ4K(o, reduce4(a02, a12, a22, a32), minsQ4K(o + 32, bsumPairs(x2 + bso)), load<f32>(x2 + dxo)));
        f3 = f32x4.add(f3, finishQ4K(o, reduce4(a03, a13, a23, a33), minsQ4K(o + 32, bsumPairs(x3 + bso)), load<f32>(x3 + dxo)));
      }
      const yp = y + <usize>(t * yStride + (g << 2)) * 4;
      v128.store(yp, f0); v128.store(yp + ys, f1); v128.store(yp + 2 * ys, f2); v128.store(yp + 3 * ys, f3);
    }
    for (; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xbs = xd + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q5K_REC), xb = xqs + <usize>(b * 256);
        const mins = minsQ4K(o + 32, bsumPairs(xbs + <usize>(b * 64)));
        let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let c = 0; c < 4; c++) {
          const x = xb + <usize>(64 * c);
          const l0 = v128.load(x), h0 = v128.load(x + 32), l1 = v128.load(x + 16), h1 = v128.load(x + 48);
          const v0 = ilo(l0, h0), v1 = ihi(l0, h0), v2 = ilo(l1, h1), v3 = ihi(l1, h1);
          const s = i16x8.extend_low_i8x16_u(v128.load64_zero(o + 64 + <usize>(8 * c)));
          const q = o + 96 + <usize>(192 * c);
          if (ASC_FEATURE_RELAXED_SIMD) {
            a0 = rowQ5K(a0, q, v0, v1, v2, v3, pair0(s));
            a1 = rowQ5K(a1, q + 48, v0, v1, v2, v3, pair1(s));
            a2 = rowQ5K(a2, q + 96, v0, v1, v2, v3, pair2(s));
            a3 = rowQ5K(a3, q + 144, v0, v1, v2, v3, pair3(s));
          } else {
            const e0 = i16x8.extend_low_i8x16_s(v0), f0 = i16x8.extend_high_i8x16_s(v0), e1 = i16x8.extend_low_i8x16_s(v1), f1 = i16x8.extend_high_i8x16_s(v1);
            const e2 = i16x8.extend_low_i8x16_s(v2), f2 = i16x8.extend_high_i8x16_s(v2), e3 = i16x8.extend_low_i8x16_s(v3), f3 = i16x8.extend_high_i8x16_s(v3);
            a0 = rowQ5KPlain(a0, q, e0, f0, e1, f1, e2, f2, e3, f3, pair0(s));
            a1 = rowQ5KPlain(a1, q + 48, e0, f0, e1, f1, e2, f2, e3, f3, pair1(s));
            a2 = rowQ5KPlain(a2, q + 96, e0, f0, e1, f1, e2, f2, e3, f3, pair2(s));
            a3 = rowQ5KPlain(a3, q + 144, e0, f0, e1, f1, e2, f2, e3, f3, pair3(s));
          }
        }
        acc = f32x4.add(acc, finishQ4K(o, reduce4(a0, a1, a2, a3), mins, load<f32>(xd + <usize>(b * 4))));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}
