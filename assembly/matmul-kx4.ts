// Row-interleaved ("x4") layouts for Q4_K and Q6_K, made once at load time (bindings/kernels.ts X4Kernels):
// for each group of four rows and each 256-weight super-block, one record holding everything the four rows
// need, in the order the kernels read it. The file layout makes a four-row kernel read four streams (one
// per row) and unpack packed 6-bit scales and fp16 d/dmin per super-block, row and token; here a matmul
// reads one sequential stream, scales are plain bytes and d/dmin are f32 (four rows per v128 load).
//
// Pairing trick. Within a 64-weight piece of a row, two neighbouring sub-blocks P and Q (Q4_K: the two
// 32-weight sub-blocks of a chunk; Q6_K: two 16-weight sub-blocks) are interleaved in 2-weight units: the
// kernels interleave the activations the same way (i16x8 interleave of P's and Q's activation vectors, one
// punpck{l,h}wd each, shared by the four rows), so every i8 dot produces i16 lanes that alternate P, Q and
// a single i32x4.dot_i16x8_s against [sc_P, sc_Q, sc_P, sc_Q, …] (one pshufd of the row's scale pair)
// scales both sub-blocks: per 64 weights and row one pmaddwd and no scale broadcasts instead of two and four.
// (The plain build's two extending multiplies pair lanes k and k + 8 instead of 2k and 2k + 1; its scale
// vector is [sc_P, sc_P, sc_Q, sc_Q, …] accordingly.) With x the activations of P then Q (16 each: xP0 =
// P[0..15], xP1 = P[16..31] for Q4_K), the interleaved vectors are
//   v0 = ilo(xP0, xQ0) = [P0 P1 Q0 Q1 P2 P3 Q2 Q3 … P6 P7 Q6 Q7]   v1 = ihi(xP0, xQ0) = [P8 P9 Q8 Q9 … Q15]
//   v2 = ilo(xP1, xQ1)                                            v3 = ihi(xP1, xQ1)
// and the record stores the weights u'_k in the order of v_k (byte j of u'_k multiplies byte j of v_k).
//
//   Q4_Kx4 record (608 bytes = 4 rows × 152; 76 per 32 weights per four rows):
//     0   f32 d[4]             16  f32 dmin[4]
//     32  u8  m[4][4][2]       64  u8  sc[4][4][2]      [chunk c][row r][sub-block 2c, 2c+1]
//     96  u8  q[4][4][32]      [chunk c][row r]: bytes 0..15 = u'_0 | u'_1 << 4, bytes 16..31 = u'_2 | u'_3 << 4,
//                              P = sub-block 2c (weights 64c..64c+31), Q = sub-block 2c+1 (64c+32..64c+63)
//   Q6_Kx4 record (848 bytes = 4 rows × 212; 106 per 32 weights per four rows):
//     0   f32 d[4]             16  i8  sc[4][4][4]      [quad k][row r][sub-block 4k..4k+3]
//     80  u8  q[4][4][48]      [quad k][row r]: planes A, B, C of 16 bytes for weights 64k..64k+63 (u = q + 32
//                              ∈ [0, 63]); u'_0,1 pair sub-blocks 4k, 4k+1 and u'_2,3 pair 4k+2, 4k+3:
//                              A = u'_0 | u'_3[5:4] << 6, B = u'_1 | u'_3[3:2] << 6, C = u'_2 | u'_3[1:0] << 6
//                              (three vectors one AND each, the fourth eight ops)
//
// Arithmetic as in matmul-kquants.ts (exact integer sums per super-block, one float step per four rows):
//   Q4_K: dx·(d·Σ_j sc_j·Σ u·xq − dmin·Σ_j m_j·Σ_32 xq)      Q6_K: dx·d·(Σ_g sc_g·Σ u·xq − 32·Σ_g sc_g·Σ_16 xq)
// Unsigned quants meet the int8 activations in i16x8.relaxed_dot_i8x16_i7x16_s (relaxed build) or two
// extending multiplies (plain build). Prefill (nTok ≥ 4) takes four tokens per pass: the interleaved
// activations of four tokens are made once per 64 weights, and each row's quants are unpacked once for the
// four tokens. Rows [r0, r1) must be multiples of four (x4 layouts exist only for nOut % 4 == 0).
import { f16ToF32, q8kStride } from "./common";
import { dot16, hiNib, loNib, reduce4, storeAffine16 } from "./matmul-legacy";

// ---- helpers -----------------------------------------------------------------------------------------

/** [a0 a1 b0 b1 a2 a3 b2 b3 … a6 a7 b6 b7] (bytes; i16x8 interleave low, one punpcklwd). */
// @ts-ignore: decorator
@inline export function ilo(a: v128, b: v128): v128 { return i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23); }
/** [a8 a9 b8 b9 … a14 a15 b14 b15] (punpckhwd). */
// @ts-ignore: decorator
@inline export function ihi(a: v128, b: v128): v128 { return i8x16.shuffle(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31); }
/** Inverse of ilo/ihi: the a-bytes (even 2-byte units) and b-bytes (odd units) of [ilo | ihi]. */
// @ts-ignore: decorator
@inline export function evenUnits(v: v128, w: v128): v128 { return i8x16.shuffle(v, w, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29); }
// @ts-ignore: decorator
@inline export function oddUnits(v: v128, w: v128): v128 { return i8x16.shuffle(v, w, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31); }

// Scale vectors for the paired dots: i32 lane L of s holds the i16 pair (sc_P, sc_Q).
// relaxed: [P Q P Q P Q P Q] (dot16 pairs lanes 2k, 2k+1); plain: [P P Q Q P P Q Q] (pairs k, k+8).
// @ts-ignore: decorator
@inline export function pair0(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.shuffle(s, s, 0, 0, 0, 0);
  return i8x16.shuffle(s, s, 0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3);
}
// @ts-ignore: decorator
@inline export function pair1(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.shuffle(s, s, 1, 1, 1, 1);
  return i8x16.shuffle(s, s, 4, 5, 4, 5, 6, 7, 6, 7, 4, 5, 4, 5, 6, 7, 6, 7);
}
// @ts-ignore: decorator
@inline export function pair2(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.shuffle(s, s, 2, 2, 2, 2);
  return i8x16.shuffle(s, s, 8, 9, 8, 9, 10, 11, 10, 11, 8, 9, 8, 9, 10, 11, 10, 11);
}
// @ts-ignore: decorator
@inline export function pair3(s: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.shuffle(s, s, 3, 3, 3, 3);
  return i8x16.shuffle(s, s, 12, 13, 12, 13, 14, 15, 14, 15, 12, 13, 12, 13, 14, 15, 14, 15);
}

/** Sums of adjacent pairs of the 16 bsums at bs (i32) as i16x8: lane j = bsum_2j + bsum_2j+1 (= Σ xq of
 *  the 32-weight sub-block j, |·| ≤ 32·127). */
// @ts-ignore: decorator
@inline export function bsumPairs(bs: usize): v128 {
  const v0 = v128.load(bs), v1 = v128.load(bs + 16), v2 = v128.load(bs + 32), v3 = v128.load(bs + 48);
  const a = i32x4.add(i32x4.shuffle(v0, v1, 0, 2, 4, 6), i32x4.shuffle(v0, v1, 1, 3, 5, 7));
  const b = i32x4.add(i32x4.shuffle(v2, v3, 0, 2, 4, 6), i32x4.shuffle(v2, v3, 1, 3, 5, 7));
  return i16x8.narrow_i32x4_s(a, b);
}

// ---- Q4_K x4 -----------------------------------------------------------------------------------------

export const Q4K_REC: i32 = 608;

/**
 * The 12 packed scale bytes of a Q4_K super-block (at p) → 16 bytes: sc_0..sc_7 then m_0..m_7
 * (get_scale_min_k4 for all j at once, as in matmul-kquants.ts). Reads 16 bytes; the last 4 are ignored.
 */
// @ts-ignore: decorator
@inline export function kScales(p: usize): v128 {
  const v = v128.load(p);
  const t = i32x4.shuffle(v, v, 0, 2, 1, 2);
  const lo = v128.and(i32x4.shuffle(t, i32x4.shr_u(t, 4), 0, 1, 2, 7), i32x4(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const hi = v128.and(i32x4.shr_u(i32x4.shuffle(v, v, 0, 0, 1, 1), 2), i32x4(0, 0x30303030, 0, 0x30303030));
  return v128.or(lo, hi);
}

/**
 * nRows (multiple of 4) Q4_K rows at src → Q4_Kx4 records at dst. src may lie inside the destination
 * region past the write position (the file bytes at its tail): each group of four rows is staged in
 * `scratch` (4 rows' bytes) first, and a group's output never reaches the next group's input.
 */
export function repackQ4_K(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void {
  const nb = n >> 8, rowBytes = <usize>(nb * 144), groupIn = rowBytes * 4;
  for (let g = 0; g < (nRows >> 2); g++) {
    memory.copy(scratch, src + <usize>g * groupIn, groupIn);
    const out = dst + <usize>g * <usize>nb * Q4K_REC;
    for (let b = 0; b < nb; b++) {
      const o = out + <usize>(b * Q4K_REC);
      for (let r = 0; r < 4; r++) {
        const p = scratch + <usize>r * rowBytes + <usize>(b * 144);
        store<f32>(o + <usize>(4 * r), f16ToF32(load<u16>(p)));
        store<f32>(o + 16 + <usize>(4 * r), f16ToF32(load<u16>(p + 2)));
        // u16 lane c of k = (sc_2c, sc_2c+1), lane 4 + c = (m_2c, m_2c+1) → [chunk c][row r][2]
        const k = kScales(p + 4), rr = <usize>(2 * r);
        store<u16>(o + 64 + rr, i16x8.extract_lane_u(k, 0)); store<u16>(o + 72 + rr, i16x8.extract_lane_u(k, 1));
        store<u16>(o + 80 + rr, i16x8.extract_lane_u(k, 2)); store<u16>(o + 88 + rr, i16x8.extract_lane_u(k, 3));
        store<u16>(o + 32 + rr, i16x8.extract_lane_u(k, 4)); store<u16>(o + 40 + rr, i16x8.extract_lane_u(k, 5));
        store<u16>(o + 48 + rr, i16x8.extract_lane_u(k, 6)); store<u16>(o + 56 + rr, i16x8.extract_lane_u(k, 7));
        for (let c = 0; c < 4; c++) {
          // file chunk c: byte i holds P_i (low nibble) and Q_i (high nibble), i = 0..31
          const f0 = v128.load(p + 16 + <usize>(32 * c)), f1 = v128.load(p + 32 + <usize>(32 * c));
          const P0 = loNib(f0), P1 = loNib(f1), Q0 = hiNib(f0), Q1 = hiNib(f1);
          const q = o + 96 + <usize>(128 * c + 32 * r);
          v128.store(q, v128.or(ilo(P0, Q0), i16x8.shl(ihi(P0, Q0), 4)));
          v128.store(q + 16, v128.or(ilo(P1, Q1), i16x8.shl(ihi(P1, Q1), 4)));
        }
      }
    }
  }
}

/** Row `row` of a Q4_Kx4 matrix → n floats at dst, bit-exact with ggml's dequantize_row_q4_K. */
export function dequantRowQ4_Kx4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 8, r = row & 3;
  const base = w + <usize>(row >> 2) * <usize>(nb * Q4K_REC);
  for (let b = 0; b < nb; b++) {
    const o = base + <usize>(b * Q4K_REC), out = dst + <usize>(b * 1024);
    const d = load<f32>(o + <usize>(4 * r)), dmin = load<f32>(o + 16 + <usize>(4 * r));
    for (let c = 0; c < 4; c++) {
      const q = o + 96 + <usize>(128 * c + 32 * r), q0 = v128.load(q), q1 = v128.load(q + 16);
      const u0 = loNib(q0), u1 = hiNib(q0), u2 = loNib(q1), u3 = hiNib(q1);
      const at = <usize>(8 * c + 2 * r);
      const sp = d * <f32>load<u8>(o + 64 + at), sq = d * <f32>load<u8>(o + 65 + at);
      const mp = -(dmin * <f32>load<u8>(o + 32 + at)), mq = -(dmin * <f32>load<u8>(o + 33 + at));
      const p0 = evenUnits(u0, u1), p1 = evenUnits(u2, u3), q0b = oddUnits(u0, u1), q1b = oddUnits(u2, u3);
      const op = out + <usize>(256 * c), oq = op + 128;
      storeAffine16(op, i16x8.extend_low_i8x16_u(p0), i16x8.extend_high_i8x16_u(p0), sp, mp);
      storeAffine16(op + 64, i16x8.extend_low_i8x16_u(p1), i16x8.extend_high_i8x16_u(p1), sp, mp);
      storeAffine16(oq, i16x8.extend_low_i8x16_u(q0b), i16x8.extend_high_i8x16_u(q0b), sq, mq);
      storeAffine16(oq + 64, i16x8.extend_low_i8x16_u(q1b), i16x8.extend_high_i8x16_u(q1b), sq, mq);
    }
  }
}

/** Σ_j m_j·pair_j for the four rows (i32x4, lane r) from the mins at mp ([chunk][row][2] bytes). */
// @ts-ignore: decorator
@inline export function minsQ4K(mp: usize, pairs: v128): v128 {
  const m01 = v128.load(mp), m23 = v128.load(mp + 16);
  const a = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m01), i32x4.shuffle(pairs, pairs, 0, 0, 0, 0)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m01), i32x4.shuffle(pairs, pairs, 1, 1, 1, 1)));
  const b = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(m23), i32x4.shuffle(pairs, pairs, 2, 2, 2, 2)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(m23), i32x4.shuffle(pairs, pairs, 3, 3, 3, 3)));
  return i32x4.add(a, b);
}

/** acc + the paired, scaled dot of one row's 64 weights (u0..u3) with interleaved activations v0..v3.
 *  i16 lanes sum four products: ≤ 4·15·127 < 2^15. */
// @ts-ignore: decorator
@inline export function dot4(acc: v128, v0: v128, v1: v128, v2: v128, v3: v128, u0: v128, u1: v128, u2: v128, u3: v128, s: v128): v128 {
  const p = i16x8.add(i16x8.add(dot16(v0, u0), dot16(v1, u1)), i16x8.add(dot16(v2, u2), dot16(v3, u3)));
  return i32x4.add(acc, i32x4.dot_i16x8_s(p, s));
}

// @ts-ignore: decorator
@inline function rowQ4K(acc: v128, q: usize, v0: v128, v1: v128, v2: v128, v3: v128, s: v128): v128 {
  const q0 = v128.load(q), q1 = v128.load(q + 16);
  return dot4(acc, v0, v1, v2, v3, loNib(q0), hiNib(q0), loNib(q1), hiNib(q1), s);
}

/** One token's float contribution of a record: dx·(d·sums − dmin·mins) for the four rows. */
// @ts-ignore: decorator
@inline export function finishQ4K(o: usize, sums: v128, mins: v128, dx: f32): v128 {
  return f32x4.mul(f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(sums), v128.load(o)), f32x4.mul(f32x4.convert_i32x4_s(mins), v128.load(o + 16))), f32x4.splat(dx));
}

// The plain build (no i8 dot instruction) widens the interleaved activations to i16 once per 64 weights
// (e_k = low 8 bytes of v_k, f_k = high 8, shared by the four rows and, in prefill, the row's unpacked
// weights shared by four tokens) and multiplies in i16 (pmullw): lane k then sums bytes k and k + 8 of each
// v_k, which is why its scale vectors are [P P Q Q …]. Products ≤ 127·63, eight of them ≤ 2^15 − 1 (Q4_K)
// and four (Q6_K).

/** Σ_k e_k·w_2k + f_k·w_2k+1 (i16), scaled by s into acc: the plain build's dot4. */
// @ts-ignore: decorator
@inline export function dot8(acc: v128, e0: v128, f0: v128, e1: v128, f1: v128, e2: v128, f2: v128, e3: v128, f3: v128,
  w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, s: v128): v128 {
  const p = i16x8.add(i16x8.add(i16x8.mul(e0, w0), i16x8.mul(f0, w1)), i16x8.add(i16x8.mul(e1, w2), i16x8.mul(f1, w3)));
  const q = i16x8.add(i16x8.add(i16x8.mul(e2, w4), i16x8.mul(f2, w5)), i16x8.add(i16x8.mul(e3, w6), i16x8.mul(f3, w7)));
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.add(p, q), s));
}

// Plain build, one row-chunk of Q4_K quants at q → the eight i16 weight vectors of dot8, in this order:
// u'_0 = low nibbles of bytes 0..15 (lo 8, hi 8), u'_1 = their high nibbles, u'_2, u'_3 likewise of 16..31.
// (Widening first makes the high nibble a plain shift: the upper byte of each lane is zero.)
// @ts-ignore: decorator
@inline function rowQ4KPlain(acc: v128, q: usize, e0: v128, f0: v128, e1: v128, f1: v128, e2: v128, f2: v128, e3: v128, f3: v128, s: v128): v128 {
  const q0 = v128.load(q), q1 = v128.load(q + 16), m = i16x8.splat(15);
  const a = i16x8.extend_low_i8x16_u(q0), b = i16x8.extend_high_i8x16_u(q0);
  const c = i16x8.extend_low_i8x16_u(q1), d = i16x8.extend_high_i8x16_u(q1);
  return dot8(acc, e0, f0, e1, f1, e2, f2, e3, f3, v128.and(a, m), v128.and(b, m), i16x8.shr_u(a, 4), i16x8.shr_u(b, 4),
    v128.and(c, m), v128.and(d, m), i16x8.shr_u(c, 4), i16x8.shr_u(d, 4), s);
}

export function matmulQ4_Kx4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 8, gs = <usize>(nb * Q4K_REC), xs = q8kStride(n), ys = <usize>yStride * 4;
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    let t = 0;
    // prefill: four tokens per pass (activations interleaved once per chunk, quants unpacked once per row)
    for (; t + 4 <= nTok; t += 4) {
      const x0 = xq + <usize>(t * xs), x1 = x0 + <usize>xs, x2 = x1 + <usize>xs, x3 = x2 + <usize>xs;
      let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q4K_REC);
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
          const q = o + 96 + <usize>(128 * c);
          if (ASC_FEATURE_RELAXED_SIMD) {
            let q0 = v128.load(q), q1 = v128.load(q + 16), S = pair0(s);
            let u0 = loNib(q0), u1 = hiNib(q0), u2 = loNib(q1), u3 = hiNib(q1);
            a00 = dot4(a00, v00, v01, v02, v03, u0, u1, u2, u3, S); a01 = dot4(a01, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a02 = dot4(a02, v20, v21, v22, v23, u0, u1, u2, u3, S); a03 = dot4(a03, v30, v31, v32, v33, u0, u1, u2, u3, S);
            q0 = v128.load(q + 32); q1 = v128.load(q + 48); S = pair1(s);
            u0 = loNib(q0); u1 = hiNib(q0); u2 = loNib(q1); u3 = hiNib(q1);
            a10 = dot4(a10, v00, v01, v02, v03, u0, u1, u2, u3, S); a11 = dot4(a11, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a12 = dot4(a12, v20, v21, v22, v23, u0, u1, u2, u3, S); a13 = dot4(a13, v30, v31, v32, v33, u0, u1, u2, u3, S);
            q0 = v128.load(q + 64); q1 = v128.load(q + 80); S = pair2(s);
            u0 = loNib(q0); u1 = hiNib(q0); u2 = loNib(q1); u3 = hiNib(q1);
            a20 = dot4(a20, v00, v01, v02, v03, u0, u1, u2, u3, S); a21 = dot4(a21, v10, v11, v12, v13, u0, u1, u2, u3, S);
            a22 = dot4(a22, v20, v21, v22, v23, u0, u1, u2, u3, S); a23 = dot4(a23, v30, v31, v32, v33, u0, u1, u2, u3, S);
            q0 = v128.load(q + 96); q1 = v128.load(q + 112); S = pair3(s);
            u0 = loNib(q0); u1 = hiNib(q0); u2 = loNib(q1); u3 = hiNib(q1);
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
            const m = i16x8.splat(15);
            let q0 = v128.load(q), q1 = v128.load(q + 16), S = pair0(s);
            let wa = i16x8.extend_low_i8x16_u(q0), wb = i16x8.extend_high_i8x16_u(q0), wc = i16x8.extend_low_i8x16_u(q1), wd = i16x8.extend_high_i8x16_u(q1);
            let w0 = v128.and(wa, m), w1 = v128.and(wb, m), w2 = i16x8.shr_u(wa, 4), w3 = i16x8.shr_u(wb, 4);
            let w4 = v128.and(wc, m), w5 = v128.and(wd, m), w6 = i16x8.shr_u(wc, 4), w7 = i16x8.shr_u(wd, 4);
            a00 = dot8(a00, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a01 = dot8(a01, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a02 = dot8(a02, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a03 = dot8(a03, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            q0 = v128.load(q + 32); q1 = v128.load(q + 48); S = pair1(s);
            wa = i16x8.extend_low_i8x16_u(q0); wb = i16x8.extend_high_i8x16_u(q0); wc = i16x8.extend_low_i8x16_u(q1); wd = i16x8.extend_high_i8x16_u(q1);
            w0 = v128.and(wa, m); w1 = v128.and(wb, m); w2 = i16x8.shr_u(wa, 4); w3 = i16x8.shr_u(wb, 4);
            w4 = v128.and(wc, m); w5 = v128.and(wd, m); w6 = i16x8.shr_u(wc, 4); w7 = i16x8.shr_u(wd, 4);
            a10 = dot8(a10, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a11 = dot8(a11, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a12 = dot8(a12, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a13 = dot8(a13, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            q0 = v128.load(q + 64); q1 = v128.load(q + 80); S = pair2(s);
            wa = i16x8.extend_low_i8x16_u(q0); wb = i16x8.extend_high_i8x16_u(q0); wc = i16x8.extend_low_i8x16_u(q1); wd = i16x8.extend_high_i8x16_u(q1);
            w0 = v128.and(wa, m); w1 = v128.and(wb, m); w2 = i16x8.shr_u(wa, 4); w3 = i16x8.shr_u(wb, 4);
            w4 = v128.and(wc, m); w5 = v128.and(wd, m); w6 = i16x8.shr_u(wc, 4); w7 = i16x8.shr_u(wd, 4);
            a20 = dot8(a20, e00, f00, e01, f01, e02, f02, e03, f03, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a21 = dot8(a21, e10, f10, e11, f11, e12, f12, e13, f13, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a22 = dot8(a22, e20, f20, e21, f21, e22, f22, e23, f23, w0, w1, w2, w3, w4, w5, w6, w7, S);
            a23 = dot8(a23, e30, f30, e31, f31, e32, f32, e33, f33, w0, w1, w2, w3, w4, w5, w6, w7, S);
            q0 = v128.load(q + 96); q1 = v128.load(q + 112); S = pair3(s);
            wa = i16x8.extend_low_i8x16_u(q0); wb = i16x8.extend_high_i8x16_u(q0); wc = i16x8.extend_low_i8x16_u(q1); wd = i16x8.extend_high_i8x16_u(q1);
            w0 = v128.and(wa, m); w1 = v128.and(wb, m); w2 = i16x8.shr_u(wa, 4); w3 = i16x8.shr_u(wb, 4);
            w4 = v128.and(wc, m); w5 = v128.and(wd, m); w6 = i16x8.shr_u(wc, 4); w7 = i16x8.shr_u(wd, 4);
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
        const o = wg + <usize>(b * Q4K_REC), xb = xqs + <usize>(b * 256);
        const mins = minsQ4K(o + 32, bsumPairs(xbs + <usize>(b * 64)));
        let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let c = 0; c < 4; c++) {
          const x = xb + <usize>(64 * c);
          const l0 = v128.load(x), h0 = v128.load(x + 32), l1 = v128.load(x + 16), h1 = v128.load(x + 48);
          const v0 = ilo(l0, h0), v1 = ihi(l0, h0), v2 = ilo(l1, h1), v3 = ihi(l1, h1);
          const s = i16x8.extend_low_i8x16_u(v128.load64_zero(o + 64 + <usize>(8 * c)));
          const q = o + 96 + <usize>(128 * c);
          if (ASC_FEATURE_RELAXED_SIMD) {
            a0 = rowQ4K(a0, q, v0, v1, v2, v3, pair0(s));
            a1 = rowQ4K(a1, q + 32, v0, v1, v2, v3, pair1(s));
            a2 = rowQ4K(a2, q + 64, v0, v1, v2, v3, pair2(s));
            a3 = rowQ4K(a3, q + 96, v0, v1, v2, v3, pair3(s));
          } else {
            const e0 = i16x8.extend_low_i8x16_s(v0), f0 = i16x8.extend_high_i8x16_s(v0), e1 = i16x8.extend_low_i8x16_s(v1), f1 = i16x8.extend_high_i8x16_s(v1);
            const e2 = i16x8.extend_low_i8x16_s(v2), f2 = i16x8.extend_high_i8x16_s(v2), e3 = i16x8.extend_low_i8x16_s(v3), f3 = i16x8.extend_high_i8x16_s(v3);
            a0 = rowQ4KPlain(a0, q, e0, f0, e1, f1, e2, f2, e3, f3, pair0(s));
            a1 = rowQ4KPlain(a1, q + 32, e0, f0, e1, f1, e2, f2, e3, f3, pair1(s));
            a2 = rowQ4KPlain(a2, q + 64, e0, f0, e1, f1, e2, f2, e3, f3, pair2(s));
            a3 = rowQ4KPlain(a3, q + 96, e0, f0, e1, f1, e2, f2, e3, f3, pair3(s));
          }
        }
        acc = f32x4.add(acc, finishQ4K(o, reduce4(a0, a1, a2, a3), mins, load<f32>(xd + <usize>(b * 4))));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}

// ---- Q6_K x4 -----------------------------------------------------------------------------------------

export const Q6K_REC: i32 = 848;

/** u = q + 32 ∈ [0, 63] of the 16 weights of sub-block g (0..15) of the Q6_K block at p: weights
 *  128h + 32·part + l (l = l0..l0+15) take nibble part >> 1 of ql[64h + 32·(part & 1) + l] and bits
 *  2·part of qh[32h + l]. */
// @ts-ignore: decorator
@inline function q6Sub(p: usize, g: i32): v128 {
  const h = g >> 3, part = (g >> 1) & 3, l0 = 16 * (g & 1);
  const lb = v128.load(p + <usize>(64 * h + 32 * (part & 1) + l0));
  const nib = part >= 2 ? hiNib(lb) : loNib(lb);
  const hb = v128.and(i16x8.shr_u(v128.load(p + 128 + <usize>(32 * h + l0)), 2 * part), i8x16.splat(3));
  return v128.or(nib, i16x8.shl(hb, 4));
}

/** nRows (multiple of 4) Q6_K rows at src → Q6_Kx4 records at dst (in place, as repackQ4_K). */
export function repackQ6_K(dst: usize, src: usize, nRows: i32, n: i32, scratch: usize): void {
  const nb = n >> 8, rowBytes = <usize>(nb * 210), groupIn = rowBytes * 4;
  for (let g = 0; g < (nRows >> 2); g++) {
    memory.copy(scratch, src + <usize>g * groupIn, groupIn);
    const out = dst + <usize>g * <usize>nb * Q6K_REC;
    for (let b = 0; b < nb; b++) {
      const o = out + <usize>(b * Q6K_REC);
      for (let r = 0; r < 4; r++) {
        const p = scratch + <usize>r * rowBytes + <usize>(b * 210);
        store<f32>(o + <usize>(4 * r), f16ToF32(load<u16>(p + 208)));
        for (let k = 0; k < 4; k++) {
          store<u32>(o + 16 + <usize>(16 * k + 4 * r), load<u32>(p + 192 + <usize>(4 * k)));
          const G0 = q6Sub(p, 4 * k), G1 = q6Sub(p, 4 * k + 1), G2 = q6Sub(p, 4 * k + 2), G3 = q6Sub(p, 4 * k + 3);
          const u0 = ilo(G0, G1), u1 = ihi(G0, G1), u2 = ilo(G2, G3), u3 = ihi(G2, G3);
          const q = o + 80 + <usize>(192 * k + 48 * r);
          // masked before shifting left, so no bit leaves its byte
          v128.store(q, v128.or(u0, i16x8.shl(v128.and(u3, i8x16.splat(0x30)), 2)));
          v128.store(q + 16, v128.or(u1, i16x8.shl(v128.and(u3, i8x16.splat(0x0c)), 4)));
          v128.store(q + 32, v128.or(u2, i16x8.shl(v128.and(u3, i8x16.splat(0x03)), 6)));
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline function low6(A: v128): v128 { return v128.and(A, i8x16.splat(0x3f)); }
/** u'_3 from the top two bits of A (→ bits 5:4), B (→ 3:2), C (→ 1:0); masked first, so the 16-bit shifts
 *  never carry bits across bytes. */
// @ts-ignore: decorator
@inline function top6(A: v128, B: v128, C: v128): v128 {
  const m = i8x16.splat(<i8>0xc0);
  const t = v128.or(v128.and(A, m), i16x8.shr_u(v128.and(B, m), 2));
  return i16x8.shr_u(v128.or(t, i16x8.shr_u(v128.and(C, m), 4)), 2);
}

/** Row `row` of a Q6_Kx4 matrix → n floats at dst, bit-exact with ggml's dequantize_row_q6_K. */
export function dequantRowQ6_Kx4(w: usize, row: i32, n: i32, dst: usize): void {
  const nb = n >> 8, r = row & 3;
  const base = w + <usize>(row >> 2) * <usize>(nb * Q6K_REC);
  const c32 = i8x16.splat(32);
  for (let b = 0; b < nb; b++) {
    const o = base + <usize>(b * Q6K_REC), out = dst + <usize>(b * 1024);
    const d = load<f32>(o + <usize>(4 * r));
    for (let k = 0; k < 4; k++) {
      const q = o + 80 + <usize>(192 * k + 48 * r), sc = o + 16 + <usize>(16 * k + 4 * r);
      const A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
      const u0 = low6(A), u1 = low6(B), u2 = low6(C), u3 = top6(A, B, C);
      const g0 = i8x16.sub(evenUnits(u0, u1), c32), g1 = i8x16.sub(oddUnits(u0, u1), c32);
      const g2 = i8x16.sub(evenUnits(u2, u3), c32), g3 = i8x16.sub(oddUnits(u2, u3), c32);
      const ok = out + <usize>(256 * k);
      storeAffine16(ok, i16x8.extend_low_i8x16_s(g0), i16x8.extend_high_i8x16_s(g0), d * <f32>load<i8>(sc), 0);
      storeAffine16(ok + 64, i16x8.extend_low_i8x16_s(g1), i16x8.extend_high_i8x16_s(g1), d * <f32>load<i8>(sc + 1), 0);
      storeAffine16(ok + 128, i16x8.extend_low_i8x16_s(g2), i16x8.extend_high_i8x16_s(g2), d * <f32>load<i8>(sc + 2), 0);
      storeAffine16(ok + 192, i16x8.extend_low_i8x16_s(g3), i16x8.extend_high_i8x16_s(g3), d * <f32>load<i8>(sc + 3), 0);
    }
  }
}

/** acc + one row's quad: two paired, scaled dots (sub-blocks 0/1 with s01, 2/3 with s23).
 *  i16 lanes sum four products: ≤ 4·63·127 = 32004 < 2^15. */
// @ts-ignore: decorator
@inline function dotQ6K(acc: v128, v0: v128, v1: v128, v2: v128, v3: v128, u0: v128, u1: v128, u2: v128, u3: v128, s01: v128, s23: v128): v128 {
  const p = i16x8.add(dot16(v0, u0), dot16(v1, u1)), q = i16x8.add(dot16(v2, u2), dot16(v3, u3));
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(p, s01), i32x4.dot_i16x8_s(q, s23)));
}

// @ts-ignore: decorator
@inline function rowQ6K(acc: v128, q: usize, v0: v128, v1: v128, v2: v128, v3: v128, s01: v128, s23: v128): v128 {
  const A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
  return dotQ6K(acc, v0, v1, v2, v3, low6(A), low6(B), low6(C), top6(A, B, C), s01, s23);
}

/** 32·Σ_g sc_g·bsum_g for the four rows (i32x4, lane r): scales of record o, the token's bsums at bs. */
// @ts-ignore: decorator
@inline function centreQ6K(o: usize, bs: usize): v128 {
  let c01 = i32x4.splat(0), c23 = c01;
  for (let k = 0; k < 4; k++) {
    const v = v128.load(bs + <usize>(16 * k));
    const b = i16x8.narrow_i32x4_s(v, v);                                     // bsums 4k..4k+3, twice
    const s = v128.load(o + 16 + <usize>(16 * k));                            // [row][4] i8
    c01 = i32x4.add(c01, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(s), b));  // lanes r0, r0, r1, r1
    c23 = i32x4.add(c23, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(s), b));
  }
  return i32x4.shl(i32x4.add(i32x4.shuffle(c01, c23, 0, 2, 4, 6), i32x4.shuffle(c01, c23, 1, 3, 5, 7)), 5);
}

/** One token's float contribution of a record: dx·d·(sums − centre). */
// @ts-ignore: decorator
@inline function finishQ6K(o: usize, sums: v128, x: usize, bso: usize, dxo: usize): v128 {
  const dd = f32x4.mul(v128.load(o), f32x4.splat(load<f32>(x + dxo)));
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(sums, centreQ6K(o, x + bso))), dd);
}

/** Plain build: one row-quad's 16-byte vectors u0..u3 (∈ [0, 63]) against widened activations. */
// @ts-ignore: decorator
@inline function dotQ6KPlain(acc: v128, e0: v128, f0: v128, e1: v128, f1: v128, e2: v128, f2: v128, e3: v128, f3: v128,
  u0: v128, u1: v128, u2: v128, u3: v128, s01: v128, s23: v128): v128 {
  const p = i16x8.add(i16x8.add(i16x8.mul(e0, i16x8.extend_low_i8x16_u(u0)), i16x8.mul(f0, i16x8.extend_high_i8x16_u(u0))),
    i16x8.add(i16x8.mul(e1, i16x8.extend_low_i8x16_u(u1)), i16x8.mul(f1, i16x8.extend_high_i8x16_u(u1))));
  const q = i16x8.add(i16x8.add(i16x8.mul(e2, i16x8.extend_low_i8x16_u(u2)), i16x8.mul(f2, i16x8.extend_high_i8x16_u(u2))),
    i16x8.add(i16x8.mul(e3, i16x8.extend_low_i8x16_u(u3)), i16x8.mul(f3, i16x8.extend_high_i8x16_u(u3))));
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(p, s01), i32x4.dot_i16x8_s(q, s23)));
}

// @ts-ignore: decorator
@inline function rowQ6KPlain(acc: v128, q: usize, e0: v128, f0: v128, e1: v128, f1: v128, e2: v128, f2: v128, e3: v128, f3: v128, s01: v128, s23: v128): v128 {
  const A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
  return dotQ6KPlain(acc, e0, f0, e1, f1, e2, f2, e3, f3, low6(A), low6(B), low6(C), top6(A, B, C), s01, s23);
}

export function matmulQ6_Kx4(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 8, gs = <usize>(nb * Q6K_REC), xs = q8kStride(n), ys = <usize>yStride * 4;
  for (let g = r0 >> 2; g < (r1 >> 2); g++) {
    const wg = w + <usize>g * gs;
    let t = 0;
    for (; t + 4 <= nTok; t += 4) {
      const x0 = xq + <usize>(t * xs), x1 = x0 + <usize>xs, x2 = x1 + <usize>xs, x3 = x2 + <usize>xs;
      let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q6K_REC);
        let a00 = i32x4.splat(0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        let a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (let k = 0; k < 4; k++) {
          const xo = <usize>(b * 256 + 64 * k);
          let p = x0 + xo, l = v128.load(p), h = v128.load(p + 16);
          const v00 = ilo(l, h), v01 = ihi(l, h);
          l = v128.load(p + 32); h = v128.load(p + 48);
          const v02 = ilo(l, h), v03 = ihi(l, h);
          p = x1 + xo; l = v128.load(p); h = v128.load(p + 16);
          const v10 = ilo(l, h), v11 = ihi(l, h);
          l = v128.load(p + 32); h = v128.load(p + 48);
          const v12 = ilo(l, h), v13 = ihi(l, h);
          p = x2 + xo; l = v128.load(p); h = v128.load(p + 16);
          const v20 = ilo(l, h), v21 = ihi(l, h);
          l = v128.load(p + 32); h = v128.load(p + 48);
          const v22 = ilo(l, h), v23 = ihi(l, h);
          p = x3 + xo; l = v128.load(p); h = v128.load(p + 16);
          const v30 = ilo(l, h), v31 = ihi(l, h);
          l = v128.load(p + 32); h = v128.load(p + 48);
          const v32 = ilo(l, h), v33 = ihi(l, h);
          const sv = v128.load(o + 16 + <usize>(16 * k));
          const s01 = i16x8.extend_low_i8x16_s(sv), s23 = i16x8.extend_high_i8x16_s(sv);
          const q = o + 80 + <usize>(192 * k);
          if (ASC_FEATURE_RELAXED_SIMD) {
            let A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
            let u0 = low6(A), u1 = low6(B), u2 = low6(C), u3 = top6(A, B, C), Sa = pair0(s01), Sb = pair1(s01);
            a00 = dotQ6K(a00, v00, v01, v02, v03, u0, u1, u2, u3, Sa, Sb);
            a01 = dotQ6K(a01, v10, v11, v12, v13, u0, u1, u2, u3, Sa, Sb);
            a02 = dotQ6K(a02, v20, v21, v22, v23, u0, u1, u2, u3, Sa, Sb);
            a03 = dotQ6K(a03, v30, v31, v32, v33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 48); B = v128.load(q + 64); C = v128.load(q + 80);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair2(s01); Sb = pair3(s01);
            a10 = dotQ6K(a10, v00, v01, v02, v03, u0, u1, u2, u3, Sa, Sb);
            a11 = dotQ6K(a11, v10, v11, v12, v13, u0, u1, u2, u3, Sa, Sb);
            a12 = dotQ6K(a12, v20, v21, v22, v23, u0, u1, u2, u3, Sa, Sb);
            a13 = dotQ6K(a13, v30, v31, v32, v33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 96); B = v128.load(q + 112); C = v128.load(q + 128);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair0(s23); Sb = pair1(s23);
            a20 = dotQ6K(a20, v00, v01, v02, v03, u0, u1, u2, u3, Sa, Sb);
            a21 = dotQ6K(a21, v10, v11, v12, v13, u0, u1, u2, u3, Sa, Sb);
            a22 = dotQ6K(a22, v20, v21, v22, v23, u0, u1, u2, u3, Sa, Sb);
            a23 = dotQ6K(a23, v30, v31, v32, v33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 144); B = v128.load(q + 160); C = v128.load(q + 176);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair2(s23); Sb = pair3(s23);
            a30 = dotQ6K(a30, v00, v01, v02, v03, u0, u1, u2, u3, Sa, Sb);
            a31 = dotQ6K(a31, v10, v11, v12, v13, u0, u1, u2, u3, Sa, Sb);
            a32 = dotQ6K(a32, v20, v21, v22, v23, u0, u1, u2, u3, Sa, Sb);
            a33 = dotQ6K(a33, v30, v31, v32, v33, u0, u1, u2, u3, Sa, Sb);
          } else {
            const e00 = i16x8.extend_low_i8x16_s(v00), f00 = i16x8.extend_high_i8x16_s(v00), e01 = i16x8.extend_low_i8x16_s(v01), f01 = i16x8.extend_high_i8x16_s(v01);
            const e02 = i16x8.extend_low_i8x16_s(v02), f02 = i16x8.extend_high_i8x16_s(v02), e03 = i16x8.extend_low_i8x16_s(v03), f03 = i16x8.extend_high_i8x16_s(v03);
            const e10 = i16x8.extend_low_i8x16_s(v10), f10 = i16x8.extend_high_i8x16_s(v10), e11 = i16x8.extend_low_i8x16_s(v11), f11 = i16x8.extend_high_i8x16_s(v11);
            const e12 = i16x8.extend_low_i8x16_s(v12), f12 = i16x8.extend_high_i8x16_s(v12), e13 = i16x8.extend_low_i8x16_s(v13), f13 = i16x8.extend_high_i8x16_s(v13);
            const e20 = i16x8.extend_low_i8x16_s(v20), f20 = i16x8.extend_high_i8x16_s(v20), e21 = i16x8.extend_low_i8x16_s(v21), f21 = i16x8.extend_high_i8x16_s(v21);
            const e22 = i16x8.extend_low_i8x16_s(v22), f22 = i16x8.extend_high_i8x16_s(v22), e23 = i16x8.extend_low_i8x16_s(v23), f23 = i16x8.extend_high_i8x16_s(v23);
            const e30 = i16x8.extend_low_i8x16_s(v30), f30 = i16x8.extend_high_i8x16_s(v30), e31 = i16x8.extend_low_i8x16_s(v31), f31 = i16x8.extend_high_i8x16_s(v31);
            const e32 = i16x8.extend_low_i8x16_s(v32), f32 = i16x8.extend_high_i8x16_s(v32), e33 = i16x8.extend_low_i8x16_s(v33), f33 = i16x8.extend_high_i8x16_s(v33);
            let A = v128.load(q), B = v128.load(q + 16), C = v128.load(q + 32);
            let u0 = low6(A), u1 = low6(B), u2 = low6(C), u3 = top6(A, B, C), Sa = pair0(s01), Sb = pair1(s01);
            a00 = dotQ6KPlain(a00, e00, f00, e01, f01, e02, f02, e03, f03, u0, u1, u2, u3, Sa, Sb);
            a01 = dotQ6KPlain(a01, e10, f10, e11, f11, e12, f12, e13, f13, u0, u1, u2, u3, Sa, Sb);
            a02 = dotQ6KPlain(a02, e20, f20, e21, f21, e22, f22, e23, f23, u0, u1, u2, u3, Sa, Sb);
            a03 = dotQ6KPlain(a03, e30, f30, e31, f31, e32, f32, e33, f33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 48); B = v128.load(q + 64); C = v128.load(q + 80);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair2(s01); Sb = pair3(s01);
            a10 = dotQ6KPlain(a10, e00, f00, e01, f01, e02, f02, e03, f03, u0, u1, u2, u3, Sa, Sb);
            a11 = dotQ6KPlain(a11, e10, f10, e11, f11, e12, f12, e13, f13, u0, u1, u2, u3, Sa, Sb);
            a12 = dotQ6KPlain(a12, e20, f20, e21, f21, e22, f22, e23, f23, u0, u1, u2, u3, Sa, Sb);
            a13 = dotQ6KPlain(a13, e30, f30, e31, f31, e32, f32, e33, f33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 96); B = v128.load(q + 112); C = v128.load(q + 128);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair0(s23); Sb = pair1(s23);
            a20 = dotQ6KPlain(a20, e00, f00, e01, f01, e02, f02, e03, f03, u0, u1, u2, u3, Sa, Sb);
            a21 = dotQ6KPlain(a21, e10, f10, e11, f11, e12, f12, e13, f13, u0, u1, u2, u3, Sa, Sb);
            a22 = dotQ6KPlain(a22, e20, f20, e21, f21, e22, f22, e23, f23, u0, u1, u2, u3, Sa, Sb);
            a23 = dotQ6KPlain(a23, e30, f30, e31, f31, e32, f32, e33, f33, u0, u1, u2, u3, Sa, Sb);
            A = v128.load(q + 144); B = v128.load(q + 160); C = v128.load(q + 176);
            u0 = low6(A); u1 = low6(B); u2 = low6(C); u3 = top6(A, B, C); Sa = pair2(s23); Sb = pair3(s23);
            a30 = dotQ6KPlain(a30, e00, f00, e01, f01, e02, f02, e03, f03, u0, u1, u2, u3, Sa, Sb);
            a31 = dotQ6KPlain(a31, e10, f10, e11, f11, e12, f12, e13, f13, u0, u1, u2, u3, Sa, Sb);
            a32 = dotQ6KPlain(a32, e20, f20, e21, f21, e22, f22, e23, f23, u0, u1, u2, u3, Sa, Sb);
            a33 = dotQ6KPlain(a33, e30, f30, e31, f31, e32, f32, e33, f33, u0, u1, u2, u3, Sa, Sb);
          }
        }
        const dxo = <usize>(n + 4 * b), bso = <usize>(n + 4 * nb + 64 * b);
        f0 = f32x4.add(f0, finishQ6K(o, reduce4(a00, a10, a20, a30), x0, bso, dxo));
        f1 = f32x4.add(f1, finishQ6K(o, reduce4(a01, a11, a21, a31), x1, bso, dxo));
        f2 = f32x4.add(f2, finishQ6K(o, reduce4(a02, a12, a22, a32), x2, bso, dxo));
        f3 = f32x4.add(f3, finishQ6K(o, reduce4(a03, a13, a23, a33), x3, bso, dxo));
      }
      const yp = y + <usize>(t * yStride + (g << 2)) * 4;
      v128.store(yp, f0); v128.store(yp + ys, f1); v128.store(yp + 2 * ys, f2); v128.store(yp + 3 * ys, f3);
    }
    for (; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = wg + <usize>(b * Q6K_REC), xb = xqs + <usize>(b * 256);
        let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (let k = 0; k < 4; k++) {
          const x = xb + <usize>(64 * k);
          const g0 = v128.load(x), g1 = v128.load(x + 16), g2 = v128.load(x + 32), g3 = v128.load(x + 48);
          const v0 = ilo(g0, g1), v1 = ihi(g0, g1), v2 = ilo(g2, g3), v3 = ihi(g2, g3);
          const sv = v128.load(o + 16 + <usize>(16 * k));
          const s01 = i16x8.extend_low_i8x16_s(sv), s23 = i16x8.extend_high_i8x16_s(sv);
          const q = o + 80 + <usize>(192 * k);
          if (ASC_FEATURE_RELAXED_SIMD) {
            a0 = rowQ6K(a0, q, v0, v1, v2, v3, pair0(s01), pair1(s01));
            a1 = rowQ6K(a1, q + 48, v0, v1, v2, v3, pair2(s01), pair3(s01));
            a2 = rowQ6K(a2, q + 96, v0, v1, v2, v3, pair0(s23), pair1(s23));
            a3 = rowQ6K(a3, q + 144, v0, v1, v2, v3, pair2(s23), pair3(s23));
          } else {
            const e0 = i16x8.extend_low_i8x16_s(v0), f0 = i16x8.extend_high_i8x16_s(v0), e1 = i16x8.extend_low_i8x16_s(v1), f1 = i16x8.extend_high_i8x16_s(v1);
            const e2 = i16x8.extend_low_i8x16_s(v2), f2 = i16x8.extend_high_i8x16_s(v2), e3 = i16x8.extend_low_i8x16_s(v3), f3 = i16x8.extend_high_i8x16_s(v3);
            a0 = rowQ6KPlain(a0, q, e0, f0, e1, f1, e2, f2, e3, f3, pair0(s01), pair1(s01));
            a1 = rowQ6KPlain(a1, q + 48, e0, f0, e1, f1, e2, f2, e3, f3, pair2(s01), pair3(s01));
            a2 = rowQ6KPlain(a2, q + 96, e0, f0, e1, f1, e2, f2, e3, f3, pair0(s23), pair1(s23));
            a3 = rowQ6KPlain(a3, q + 144, e0, f0, e1, f1, e2, f2, e3, f3, pair2(s23), pair3(s23));
          }
        }
        acc = f32x4.add(acc, finishQ6K(o, reduce4(a0, a1, a2, a3), xqs, <usize>(n + 4 * nb + 64 * b), <usize>(n + 4 * b)));
      }
      v128.store(y + <usize>(t * yStride + (g << 2)) * 4, acc);
    }
  }
}
