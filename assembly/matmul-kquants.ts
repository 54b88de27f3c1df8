// Q4_K, Q5_K and Q6_K weights (256-weight super-blocks, spec §3.5) × Q8_K activations, plus their row
// dequantizers. Same contract as matmul.ts: y[t·yStride + r] = Σ_i W[r, i]·x[t, i] for r ∈ [r0, r1).
//
// Per super-block, with dx the activation's d and bsums its sums of 16 consecutive quants:
//   Q4_K / Q5_K: dx·(d·Σ_j sc_j·Σ_32 u·xq − dmin·Σ_j m_j·(bsum_2j + bsum_2j+1)),  u ∈ [0, 15] / [0, 31]
//   Q6_K:        dx·d·(Σ_g sc_g·Σ_16 u·xq − 32·Σ_g sc_g·bsum_g),                  u = q + 32 ∈ [0, 63]
// The weights' quants stay unsigned so they fit the i7 side of the int8 dot: the relaxed build uses
// i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw), the plain build two extending multiplies. The i16 pair sums
// then meet their sub-block scale in one i32x4.dot_i16x8_s (pmaddwd), so scaling costs no extra multiply.
// The min/centre corrections use the precomputed bsums: one i16 dot per row and super-block.
// Four rows are processed together (activation loads shared; the four rows' integer totals reduced into
// one i32x4 whose lane k is row k, and their fp16 d/dmin gathered into one vector), so all float work is
// per super-block and four rows. A tail of fewer than four rows repeats the last row.
import { q8kStride } from "./common";
import { dot16, gather32, halfHi, halfLo, hiNib, loNib, reduce4, storeAffine16, storeRows } from "./matmul-legacy";

// ---- helpers -----------------------------------------------------------------------------------------

// Broadcast i16 lane k of v to all eight lanes (lane indices must be literal constants).
// @ts-ignore: decorator
@inline function bc0(v: v128): v128 { return i8x16.shuffle(v, v, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1); }
// @ts-ignore: decorator
@inline function bc1(v: v128): v128 { return i8x16.shuffle(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3); }
// @ts-ignore: decorator
@inline function bc2(v: v128): v128 { return i8x16.shuffle(v, v, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5); }
// @ts-ignore: decorator
@inline function bc3(v: v128): v128 { return i8x16.shuffle(v, v, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7); }
// @ts-ignore: decorator
@inline function bc4(v: v128): v128 { return i8x16.shuffle(v, v, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9); }
// @ts-ignore: decorator
@inline function bc5(v: v128): v128 { return i8x16.shuffle(v, v, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11); }
// @ts-ignore: decorator
@inline function bc6(v: v128): v128 { return i8x16.shuffle(v, v, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13); }
// @ts-ignore: decorator
@inline function bc7(v: v128): v128 { return i8x16.shuffle(v, v, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15); }

/**
 * The 12 packed scale bytes of a Q4_K/Q5_K super-block (at p) → 16 bytes: sc_0..sc_7 then m_0..m_7
 * (get_scale_min_k4 for all j at once, on 32-bit words). Reads 16 bytes; the last 4 are ignored.
 * Words u0,u1,u2 → [u0 & 0x3f.., (u2 & 0x0f..) | ((u0 >> 2) & 0x30..), u1 & 0x3f.., ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)].
 */
// @ts-ignore: decorator
@inline function kScales(p: usize): v128 {
  const v = v128.load(p);
  const t = i32x4.shuffle(v, v, 0, 2, 1, 2);
  const lo = v128.and(i32x4.shuffle(t, i32x4.shr_u(t, 4), 0, 1, 2, 7), i32x4(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const hi = v128.and(i32x4.shr_u(i32x4.shuffle(v, v, 0, 0, 1, 1), 2), i32x4(0, 0x30303030, 0, 0x30303030));
  return v128.or(lo, hi);
}

/** Bit k (constant) of every byte of h moved to 0x10, other bits cleared (16-bit shifts never carry
 *  the wanted bit across a byte boundary). */
// @ts-ignore: decorator
@inline function bitTo16(h: v128, k: i32): v128 {
  if (k < 4) return v128.and(i16x8.shl(h, 4 - k), i8x16.splat(16));
  if (k == 4) return v128.and(h, i8x16.splat(16));
  return v128.and(i16x8.shr_u(h, k - 4), i8x16.splat(16));
}

/** Sums of adjacent pairs of the 16 bsums at bs (i32) as i16x8: lane j = bsum_2j + bsum_2j+1. */
// @ts-ignore: decorator
@inline function bsumPairs(bs: usize): v128 {
  const v0 = v128.load(bs), v1 = v128.load(bs + 16), v2 = v128.load(bs + 32), v3 = v128.load(bs + 48);
  const a = i32x4.add(i32x4.shuffle(v0, v1, 0, 2, 4, 6), i32x4.shuffle(v0, v1, 1, 3, 5, 7));
  const b = i32x4.add(i32x4.shuffle(v2, v3, 0, 2, 4, 6), i32x4.shuffle(v2, v3, 1, 3, 5, 7));
  return i16x8.narrow_i32x4_s(a, b);
}

// ---- Q4_K / Q5_K ---------------------------------------------------------------------------------------

/**
 * Chunk c (64 weights) of one row: sub-block 2c = low nibbles of qs[32c..32c+31] against x[64c..64c+31]
 * (xa, xb), sub-block 2c+1 = high nibbles against x[64c+32..64c+63] (xc, xd); for Q5_K plus bits 2c / 2c+1
 * of qh (hs = qh[0..15], ht = qh[16..31], already shifted right by 2c). s holds the scales of sub-blocks
 * 2c and 2c+1 in i16 lanes 0 and 1. Bounds: dot16 lanes ≤ 2·31·127, two summed ≤ 15748 < 2^15.
 */
// @ts-ignore: decorator
@inline function chunk45(five: bool, acc: v128, qs: usize, hs: v128, ht: v128, xa: v128, xb: v128, xc: v128, xd: v128, s: v128): v128 {
  const q0 = v128.load(qs), q1 = v128.load(qs + 16);
  let l0 = loNib(q0), l1 = loNib(q1), h0 = hiNib(q0), h1 = hiNib(q1);
  if (five) {
    l0 = v128.or(l0, bitTo16(hs, 0)); l1 = v128.or(l1, bitTo16(ht, 0));
    h0 = v128.or(h0, bitTo16(hs, 1)); h1 = v128.or(h1, bitTo16(ht, 1));
  }
  const lo = i32x4.dot_i16x8_s(i16x8.add(dot16(xa, l0), dot16(xb, l1)), bc0(s));
  const hi = i32x4.dot_i16x8_s(i16x8.add(dot16(xc, h0), dot16(xd, h1)), bc1(s));
  return i32x4.add(acc, i32x4.add(lo, hi));
}

// @ts-ignore: decorator
@inline function matmulK45(five: bool, w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const bb = five ? 176 : 144, qsOff: usize = five ? 48 : 16;
  const nb = n >> 8, rb = <usize>(nb * bb), xs = q8kStride(n);
  for (let r = r0; r < r1; r += 4) {
    const cnt = min(4, r1 - r), last = r1 - 1;
    const w0 = w + <usize>r * rb;
    const w1 = w + <usize>min(r + 1, last) * rb, w2 = w + <usize>min(r + 2, last) * rb, w3 = w + <usize>min(r + 3, last) * rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xbs = xd + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * bb), xb = xqs + <usize>(b * 256);
        const p0 = w0 + o, p1 = w1 + o, p2 = w2 + o, p3 = w3 + o;
        const dx = f32x4.splat(load<f32>(xd + <usize>(b * 4)));
        const k0 = kScales(p0 + 4), k1 = kScales(p1 + 4), k2 = kScales(p2 + 4), k3 = kScales(p3 + 4);
        // the mins' part first, so only the four scale vectors stay live through the dot products
        const pairs = bsumPairs(xbs + <usize>(b * 64));
        const mins = reduce4(
          i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(k0), pairs), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(k1), pairs),
          i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(k2), pairs), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(k3), pairs));
        acc = f32x4.sub(acc, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(mins), halfHi(gather32(p0, p1, p2, p3))), dx));
        let s0 = i16x8.extend_low_i8x16_u(k0), s1 = i16x8.extend_low_i8x16_u(k1);
        let s2 = i16x8.extend_low_i8x16_u(k2), s3 = i16x8.extend_low_i8x16_u(k3);
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        // a real loop (not unrolled) keeps the engine from hoisting every load of the super-block
        for (let c = 0; c < 4; c++) {
          const xc = xb + <usize>(64 * c), qo = qsOff + <usize>(32 * c);
          const xa = v128.load(xc), xb2 = v128.load(xc + 16), xc2 = v128.load(xc + 32), xd2 = v128.load(xc + 48);
          const sh = 2 * c;
          const zero = i32x4.splat(0);
          a0 = chunk45(five, a0, p0 + qo, five ? i16x8.shr_u(v128.load(p0 + 16), sh) : zero, five ? i16x8.shr_u(v128.load(p0 + 32), sh) : zero, xa, xb2, xc2, xd2, s0);
          a1 = chunk45(five, a1, p1 + qo, five ? i16x8.shr_u(v128.load(p1 + 16), sh) : zero, five ? i16x8.shr_u(v128.load(p1 + 32), sh) : zero, xa, xb2, xc2, xd2, s1);
          a2 = chunk45(five, a2, p2 + qo, five ? i16x8.shr_u(v128.load(p2 + 16), sh) : zero, five ? i16x8.shr_u(v128.load(p2 + 32), sh) : zero, xa, xb2, xc2, xd2, s2);
          a3 = chunk45(five, a3, p3 + qo, five ? i16x8.shr_u(v128.load(p3 + 16), sh) : zero, five ? i16x8.shr_u(v128.load(p3 + 32), sh) : zero, xa, xb2, xc2, xd2, s3);
          // next chunk's two scales into i16 lanes 0, 1
          s0 = i32x4.shuffle(s0, s0, 1, 2, 3, 0); s1 = i32x4.shuffle(s1, s1, 1, 2, 3, 0);
          s2 = i32x4.shuffle(s2, s2, 1, 2, 3, 0); s3 = i32x4.shuffle(s3, s3, 1, 2, 3, 0);
        }
        const d = halfLo(gather32(p0, p1, p2, p3));
        acc = f32x4.add(acc, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(reduce4(a0, a1, a2, a3)), d), dx));
      }
      storeRows(y + <usize>(t * yStride + r) * 4, acc, cnt);
    }
  }
}

export function matmulQ4_K(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulK45(false, w, xq, y, n, nTok, yStride, r0, r1);
}

export function matmulQ5_K(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulK45(true, w, xq, y, n, nTok, yStride, r0, r1);
}

// ---- Q6_K ----------------------------------------------------------------------------------------------

/**
 * One quarter of a half of a Q6_K super-block for one row: the 16 l-values starting at ql, qh (already
 * offset by the half n and quarter q) give four 16-groups at output offsets 0, 32, 64, 96 (x0..x3), whose
 * scales are lanes 0, 2, 4, 6 of the 8 sign-extended scale bytes at sc. Bounds: dot16 lanes ≤ 2·63·127.
 */
// @ts-ignore: decorator
@inline function quarterQ6(acc: v128, ql: usize, qh: usize, sc: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const la = v128.load(ql), lb = v128.load(ql + 32), h = v128.load(qh);
  const s = v128.load8x8_s(sc);
  const m = i8x16.splat(0x30);
  const u0 = v128.or(loNib(la), v128.and(i16x8.shl(h, 4), m));
  const u1 = v128.or(loNib(lb), v128.and(i16x8.shl(h, 2), m));
  const u2 = v128.or(hiNib(la), v128.and(h, m));
  const u3 = v128.or(hiNib(lb), v128.and(i16x8.shr_u(h, 2), m));
  const d01 = i32x4.add(i32x4.dot_i16x8_s(dot16(x0, u0), bc0(s)), i32x4.dot_i16x8_s(dot16(x1, u1), bc2(s)));
  const d23 = i32x4.add(i32x4.dot_i16x8_s(dot16(x2, u2), bc4(s)), i32x4.dot_i16x8_s(dot16(x3, u3), bc6(s)));
  return i32x4.add(acc, i32x4.add(d01, d23));
}

/** 32·Σ_g sc_g·bsum_g for one row (bs16a/b: the 16 bsums as i16x8), as i32x4 partial sums. */
// @ts-ignore: decorator
@inline function centreQ6(p: usize, bs16a: v128, bs16b: v128): v128 {
  return i32x4.shl(i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(p + 192), bs16a), i32x4.dot_i16x8_s(v128.load8x8_s(p + 200), bs16b)), 5);
}

export function matmulQ6_K(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 8, rb = <usize>(nb * 210), xs = q8kStride(n);
  for (let r = r0; r < r1; r += 4) {
    const cnt = min(4, r1 - r), last = r1 - 1;
    const w0 = w + <usize>r * rb;
    const w1 = w + <usize>min(r + 1, last) * rb, w2 = w + <usize>min(r + 2, last) * rb, w3 = w + <usize>min(r + 3, last) * rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xbs = xd + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * 210), xb = xqs + <usize>(b * 256), bs = xbs + <usize>(b * 64);
        const p0 = w0 + o, p1 = w1 + o, p2 = w2 + o, p3 = w3 + o;
        const bs16a = i16x8.narrow_i32x4_s(v128.load(bs), v128.load(bs + 16));
        const bs16b = i16x8.narrow_i32x4_s(v128.load(bs + 32), v128.load(bs + 48));
        const zero = i32x4.splat(0);
        let a0 = i32x4.sub(zero, centreQ6(p0, bs16a, bs16b)), a1 = i32x4.sub(zero, centreQ6(p1, bs16a, bs16b));
        let a2 = i32x4.sub(zero, centreQ6(p2, bs16a, bs16b)), a3 = i32x4.sub(zero, centreQ6(p3, bs16a, bs16b));
        for (let k = 0; k < 4; k++) {
          const half = k >> 1, q = k & 1;
          const lo = <usize>(64 * half + 16 * q), ho = <usize>(128 + 32 * half + 16 * q), so = <usize>(192 + 8 * half + q);
          const xo = xb + <usize>(128 * half + 16 * q);
          const x0 = v128.load(xo), x1 = v128.load(xo + 32), x2 = v128.load(xo + 64), x3 = v128.load(xo + 96);
          a0 = quarterQ6(a0, p0 + lo, p0 + ho, p0 + so, x0, x1, x2, x3);
          a1 = quarterQ6(a1, p1 + lo, p1 + ho, p1 + so, x0, x1, x2, x3);
          a2 = quarterQ6(a2, p2 + lo, p2 + ho, p2 + so, x0, x1, x2, x3);
          a3 = quarterQ6(a3, p3 + lo, p3 + ho, p3 + so, x0, x1, x2, x3);
        }
        let g = v128.load16_lane(p0 + 208, i32x4.splat(0), 0);
        g = v128.load16_lane(p1 + 208, g, 2);
        g = v128.load16_lane(p2 + 208, g, 4);
        g = v128.load16_lane(p3 + 208, g, 6);
        const dd = f32x4.mul(halfLo(g), f32x4.splat(load<f32>(xd + <usize>(b * 4))));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(reduce4(a0, a1, a2, a3)), dd));
      }
      storeRows(y + <usize>(t * yStride + r) * 4, acc, cnt);
    }
  }
}

// ---- row dequantizers (embedding lookup), bit-exact with ggml's dequantize_row_* -------------------------
// Every d·sc·q (and dmin·m) is exact in f32, so one rounding of the sum matches ggml.

/** get_scale_min_k4 for sub-block j: sc | m << 8. */
function scaleMinK4(s: usize, j: i32): i32 {
  if (j < 4) return (<i32>load<u8>(s + <usize>j) & 63) | ((<i32>load<u8>(s + <usize>(j + 4)) & 63) << 8);
  const sc = (<i32>load<u8>(s + <usize>(j + 4)) & 0xf) | ((<i32>load<u8>(s + <usize>(j - 4)) >> 6) << 4);
  const m = (<i32>load<u8>(s + <usize>(j + 4)) >> 4) | ((<i32>load<u8>(s + <usize>j) >> 6) << 4);
  return sc | (m << 8);
}

/** 32 unsigned quants (two u8x16) → dst as d·sc·u − dmin·m. */
// @ts-ignore: decorator
@inline function storeSub32(dst: usize, u0: v128, u1: v128, scale: f32, offset: f32): void {
  storeAffine16(dst, i16x8.extend_low_i8x16_u(u0), i16x8.extend_high_i8x16_u(u0), scale, offset);
  storeAffine16(dst + 64, i16x8.extend_low_i8x16_u(u1), i16x8.extend_high_i8x16_u(u1), scale, offset);
}

// @ts-ignore: decorator
@inline function dequantK45(five: bool, src: usize, dst: usize, n: i32): void {
  const bb = five ? 176 : 144;
  for (let b = 0; b < (n >> 8); b++) {
    const p = src + <usize>(b * bb), out = dst + <usize>(b * 1024);
    const g = v128.load32_splat(p);
    const d = f32x4.extract_lane(halfLo(g), 0), dmin = f32x4.extract_lane(halfHi(g), 0);
    const qs = p + <usize>(five ? 48 : 16);
    for (let c = 0; c < 4; c++) {
      const q0 = v128.load(qs + <usize>(32 * c)), q1 = v128.load(qs + <usize>(32 * c + 16));
      let l0 = loNib(q0), l1 = loNib(q1), h0 = hiNib(q0), h1 = hiNib(q1);
      if (five) {
        const e0 = i16x8.shr_u(v128.load(p + 16), 2 * c), e1 = i16x8.shr_u(v128.load(p + 32), 2 * c);
        l0 = v128.or(l0, bitTo16(e0, 0)); l1 = v128.or(l1, bitTo16(e1, 0));
        h0 = v128.or(h0, bitTo16(e0, 1)); h1 = v128.or(h1, bitTo16(e1, 1));
      }
      const sa = scaleMinK4(p + 4, 2 * c), sb = scaleMinK4(p + 4, 2 * c + 1);
      storeSub32(out + <usize>(256 * c), l0, l1, d * <f32>(sa & 0xff), -(dmin * <f32>(sa >> 8)));
      storeSub32(out + <usize>(256 * c + 128), h0, h1, d * <f32>(sb & 0xff), -(dmin * <f32>(sb >> 8)));
    }
  }
}

export function dequantRowQ4_K(src: usize, dst: usize, n: i32): void { dequantK45(false, src, dst, n); }
export function dequantRowQ5_K(src: usize, dst: usize, n: i32): void { dequantK45(true, src, dst, n); }

export function dequantRowQ6_K(src: usize, dst: usize, n: i32): void {
  for (let b = 0; b < (n >> 8); b++) {
    const p = src + <usize>(b * 210), out = dst + <usize>(b * 1024);
    const d = f32x4.extract_lane(halfLo(v128.load16_splat(p + 208)), 0);
    for (let k = 0; k < 4; k++) {
      const half = k >> 1, q = k & 1;
      const ql = p + <usize>(64 * half + 16 * q), h = v128.load(p + <usize>(128 + 32 * half + 16 * q));
      const la = v128.load(ql), lb = v128.load(ql + 32), m = i8x16.splat(0x30), c32 = i8x16.splat(32);
      const sc = p + <usize>(192 + 8 * half + q);
      const o = out + <usize>((128 * half + 16 * q) * 4);
      const u0 = i8x16.sub(v128.or(loNib(la), v128.and(i16x8.shl(h, 4), m)), c32);
      const u1 = i8x16.sub(v128.or(loNib(lb), v128.and(i16x8.shl(h, 2), m)), c32);
      const u2 = i8x16.sub(v128.or(hiNib(la), v128.and(h, m)), c32);
      const u3 = i8x16.sub(v128.or(hiNib(lb), v128.and(i16x8.shr_u(h, 2), m)), c32);
      storeAffine16(o, i16x8.extend_low_i8x16_s(u0), i16x8.extend_high_i8x16_s(u0), d * <f32>load<i8>(sc), 0);
      storeAffine16(o + 128, i16x8.extend_low_i8x16_s(u1), i16x8.extend_high_i8x16_s(u1), d * <f32>load<i8>(sc + 2), 0);
      storeAffine16(o + 256, i16x8.extend_low_i8x16_s(u2), i16x8.extend_high_i8x16_s(u2), d * <f32>load<i8>(sc + 4), 0);
      storeAffine16(o + 384, i16x8.extend_low_i8x16_s(u3), i16x8.extend_high_i8x16_s(u3), d * <f32>load<i8>(sc + 6), 0);
    }
  }
}
