// Q4_1, Q5_0 and Q5_1 weights (32-weight blocks) × Q8_0/Q8_1 activations, plus their row
// dequantizers. Same contract as matmul.ts: y[t·yStride + r] = Σ_i W[r, i]·x[t, i] for r ∈ [r0, r1).
//
// Per block the weights' integer quants u (4 or 5 bits, not re-centred: u ∈ [0, 31]) enter the
// unsigned side of an int8 dot, so the relaxed build gets the single-instruction i8×i7 dot:
//   Q4_1 / Q5_1: Σ w·x = d·dx·Σ u·xq + m·s            (s = block_q8_1's fp16(dx·Σxq))
//   Q5_0:        Σ w·x = d·dx·(Σ u·xq − 16·Σxq)        (Σxq comes with the activations)
// Four rows are processed together: the activation block is loaded once, the four rows' integer dots
// are reduced into one i32x4 (lane k = row k), and the four rows' fp16 d (and m) are gathered into
// one vector, so all per-block float work is done once for four rows, with no per-row horizontal sums.
// A tail of fewer than four rows reuses the same code with the last row repeated.
import { q8Stride } from "./common";

// ---- helpers shared with matmul-kquants.ts --------------------------------------------------------

/** [Σa, Σb, Σc, Σd]: the lane sums of four i32x4 vectors. */
// @ts-ignore: decorator
@inline export function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** i16x8 partial sums of x·u over 16 lanes (x signed int8, u ∈ [0, 127]); each lane sums two products. */
// @ts-ignore: decorator
@inline export function dot16(x: v128, u: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, u);
  return i16x8.add(i16x8.extmul_low_i8x16_s(x, u), i16x8.extmul_high_i8x16_s(x, u));
}

/** Low nibbles of 16 bytes. */
// @ts-ignore: decorator
@inline export function loNib(q: v128): v128 { return v128.and(q, i8x16.splat(15)); }
/** High nibbles of 16 bytes (a 16-bit shift plus mask: cheaper than i8x16.shr_u on x86). */
// @ts-ignore: decorator
@inline export function hiNib(q: v128): v128 { return v128.and(i16x8.shr_u(q, 4), i8x16.splat(15)); }

/** The 32-bit words at four addresses, one per lane. */
// @ts-ignore: decorator
@inline export function gather32(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let v = v128.load32_zero(p0);
  v = v128.load32_lane(p1, v, 1);
  v = v128.load32_lane(p2, v, 2);
  return v128.load32_lane(p3, v, 3);
}

/** IEEE halves in the low 16 bits of each lane → f32 (finite values, subnormals exact). The sign lands
 *  on bit 31 and the exponent/mantissa on bits 13..27 through one arithmetic shift; ×2^112 rebiases. */
// @ts-ignore: decorator
@inline export function halfLo(g: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(i32x4.shl(g, 16), 3), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e+33));
}
/** IEEE halves in the high 16 bits of each lane → f32. */
// @ts-ignore: decorator
@inline export function halfHi(g: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(g, 3), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e+33));
}

/** Store the first `cnt` (1..4) lanes of v at p. */
// @ts-ignore: decorator
@inline export function storeRows(p: usize, v: v128, cnt: i32): void {
  if (cnt >= 4) { v128.store(p, v); return; }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (cnt > 1) store<f32>(p + 4, f32x4.extract_lane(v, 1));
  if (cnt > 2) store<f32>(p + 8, f32x4.extract_lane(v, 2));
}

/** Four f32x4 stores of scale·f32(v) + offset for 16 integers given as i16x8 halves lo, hi. */
// @ts-ignore: decorator
@inline export function storeAffine16(dst: usize, lo: v128, hi: v128, scale: f32, offset: f32): void {
  const s = f32x4.splat(scale), o = f32x4.splat(offset);
  v128.store(dst, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), s), o));
  v128.store(dst + 16, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), s), o));
  v128.store(dst + 32, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), s), o));
  v128.store(dst + 48, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), s), o));
}

// ---- block decoding --------------------------------------------------------------------------------

const KIND_Q4_1 = 0, KIND_Q5_0 = 1, KIND_Q5_1 = 2;

// @ts-ignore: decorator
@inline function blockBytes(kind: i32): i32 { return kind == KIND_Q4_1 ? 20 : kind == KIND_Q5_0 ? 22 : 24; }
// @ts-ignore: decorator
@inline function qsOffset(kind: i32): i32 { return kind == KIND_Q4_1 ? 4 : kind == KIND_Q5_0 ? 6 : 8; }
// @ts-ignore: decorator
@inline function qhOffset(kind: i32): i32 { return kind == KIND_Q5_0 ? 2 : 4; }

/** 0x10 in the lanes whose bit is set, for 16 bits of qh: lane j ← bit j of the two bytes picked by `sel`. */
// @ts-ignore: decorator
@inline function fifthBit(sel: v128): v128 {
  const bits = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return v128.and(i8x16.eq(v128.and(sel, bits), bits), i8x16.splat(16));
}

/** 0x10 where weight j (0..15) has its 5th bit set; h holds qh in every 32-bit lane. */
// @ts-ignore: decorator
@inline function fifthLo(h: v128): v128 { return fifthBit(i8x16.shuffle(h, h, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)); }
/** 0x10 where weight 16 + j has its 5th bit set. */
// @ts-ignore: decorator
@inline function fifthHi(h: v128): v128 { return fifthBit(i8x16.shuffle(h, h, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)); }

/** i32x4 partial sums of Σ u·xq over one block (u ∈ [0, 31]: the quants before re-centring). */
// @ts-ignore: decorator
@inline function blockDot(kind: i32, p: usize, xlo: v128, xhi: v128): v128 {
  const q = v128.load(p + <usize>qsOffset(kind));
  let lo = loNib(q), hi = hiNib(q);
  if (kind != KIND_Q4_1) {
    const h = v128.load32_splat(p + <usize>qhOffset(kind));
    lo = v128.or(lo, fifthLo(h));
    hi = v128.or(hi, fifthHi(h));
  }
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(dot16(xlo, lo), dot16(xhi, hi)));
}

// ---- matmul ----------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function matmulLegacy(kind: i32, w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, bb = blockBytes(kind), rb = <usize>(nb * bb), xs = q8Stride(n);
  for (let r = r0; r < r1; r += 4) {
    const cnt = min(4, r1 - r), last = r1 - 1;
    const w0 = w + <usize>r * rb;
    const w1 = w + <usize>min(r + 1, last) * rb, w2 = w + <usize>min(r + 2, last) * rb, w3 = w + <usize>min(r + 3, last) * rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xsum = xd + <usize>(nb * 4), xsv = xsum + <usize>(nb * 4);
      let acc = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * bb), xb = xqs + <usize>(b * 32);
        const xlo = v128.load(xb), xhi = v128.load(xb + 16);
        const p0 = w0 + o, p1 = w1 + o, p2 = w2 + o, p3 = w3 + o;
        let isum = reduce4(blockDot(kind, p0, xlo, xhi), blockDot(kind, p1, xlo, xhi), blockDot(kind, p2, xlo, xhi), blockDot(kind, p3, xlo, xhi));
        const g = gather32(p0, p1, p2, p3);
        const ddx = f32x4.mul(halfLo(g), f32x4.splat(load<f32>(xd + <usize>(b * 4))));
        if (kind == KIND_Q5_0) {
          isum = i32x4.sub(isum, i32x4.splat(load<i32>(xsum + <usize>(b * 4)) << 4));
          acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), ddx));
        } else {
          const ms = f32x4.mul(halfHi(g), f32x4.splat(load<f32>(xsv + <usize>(b * 4))));
          acc = f32x4.add(acc, f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(isum), ddx), ms));
        }
      }
      storeRows(y + <usize>(t * yStride + r) * 4, acc, cnt);
    }
  }
}

/** Q4_1 weights × Q8_1 activations (the q8_0 buffer's d and s fields). */
export function matmulQ4_1(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulLegacy(KIND_Q4_1, w, xq, y, n, nTok, yStride, r0, r1);
}

/** Q5_0 weights × Q8_0 activations. */
export function matmulQ5_0(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulLegacy(KIND_Q5_0, w, xq, y, n, nTok, yStride, r0, r1);
}

/** Q5_1 weights × Q8_1 activations. */
export function matmulQ5_1(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulLegacy(KIND_Q5_1, w, xq, y, n, nTok, yStride, r0, r1);
}

// ---- row dequantizers (embedding lookup): w = d·q + m (Q4_1/Q5_1), d·(q − 16) (Q5_0) ----------------
// d·q is exact in f32, so one rounding of the sum gives ggml's dequantize_row_* bit for bit.

// @ts-ignore: decorator
@inline function dequantLegacy(kind: i32, src: usize, dst: usize, n: i32): void {
  const bb = blockBytes(kind);
  for (let b = 0; b < (n >> 5); b++) {
    const p = src + <usize>(b * bb), out = dst + <usize>(b * 128);
    const g = v128.load32_splat(p);
    const d = f32x4.extract_lane(halfLo(g), 0);
    const m: f32 = kind == KIND_Q5_0 ? 0 : f32x4.extract_lane(halfHi(g), 0);
    const q = v128.load(p + <usize>qsOffset(kind));
    let lo = loNib(q), hi = hiNib(q);
    if (kind != KIND_Q4_1) {
      const h = v128.load32_splat(p + <usize>qhOffset(kind));
      lo = v128.or(lo, fifthLo(h));
      hi = v128.or(hi, fifthHi(h));
    }
    if (kind == KIND_Q5_0) { lo = i8x16.sub(lo, i8x16.splat(16)); hi = i8x16.sub(hi, i8x16.splat(16)); }
    storeAffine16(out, i16x8.extend_low_i8x16_s(lo), i16x8.extend_high_i8x16_s(lo), d, m);
    storeAffine16(out + 64, i16x8.extend_low_i8x16_s(hi), i16x8.extend_high_i8x16_s(hi), d, m);
  }
}

export function dequantRowQ4_1(src: usize, dst: usize, n: i32): void { dequantLegacy(KIND_Q4_1, src, dst, n); }
export function dequantRowQ5_0(src: usize, dst: usize, n: i32): void { dequantLegacy(KIND_Q5_0, src, dst, n); }
export function dequantRowQ5_1(src: usize, dst: usize, n: i32): void { dequantLegacy(KIND_Q5_1, src, dst, n); }
