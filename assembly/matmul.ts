// Matrix × activations for each weight type: y[t·yStride + r] = Σ_i W[r, i] · x[t, i] for rows
// r ∈ [r0, r1) and tokens t ∈ [0, nTok). Rows are processed four at a time so every activation
// load serves four weight rows; the token loop sits inside the row group so the group's weights stay
// in L1 while all tokens of a prefill chunk pass over them. Quantized types take int8 activations
// (see quant.ts) and sum integer block dots scaled by d_w·d_x, as llama.cpp does.
import { f16ToF32, f16x4ToF32, hsumF32, q8Stride } from "./common";

// ---- float weights ------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function dotF32(w: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let i = 0; i < n; i += 8) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load(w + <usize>(i * 4)), v128.load(x + <usize>(i * 4))));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(w + <usize>(i * 4 + 16)), v128.load(x + <usize>(i * 4 + 16))));
  }
  return hsumF32(f32x4.add(a0, a1));
}

export function matmulF32(w: usize, x: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * <usize>n * 4;
    for (let t = 0; t < nTok; t++) store<f32>(y + <usize>(t * yStride + r) * 4, dotF32(wr, x + <usize>(t * n) * 4, n));
  }
}

/** Half-precision weights (IEEE fp16 or bfloat16) times f32 x already rounded to the same precision. */
// @ts-ignore: decorator
@inline function matmulHalf(w: usize, x: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32, bf16: bool): void {
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * <usize>n * 2;
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>(t * n) * 4;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      for (let i = 0; i < n; i += 8) {
        const h0 = v128.load16x4_u(wr + <usize>(i * 2)), h1 = v128.load16x4_u(wr + <usize>(i * 2 + 8));
        a0 = f32x4.add(a0, f32x4.mul(bf16 ? i32x4.shl(h0, 16) : f16x4ToF32(h0), v128.load(xt + <usize>(i * 4))));
        a1 = f32x4.add(a1, f32x4.mul(bf16 ? i32x4.shl(h1, 16) : f16x4ToF32(h1), v128.load(xt + <usize>(i * 4 + 16))));
      }
      store<f32>(y + <usize>(t * yStride + r) * 4, hsumF32(f32x4.add(a0, a1)));
    }
  }
}

/** F16 weights; x must already be rounded to fp16 precision (llama.cpp's F16 vec_dot type). */
export function matmulF16(w: usize, x: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulHalf(w, x, y, n, nTok, yStride, r0, r1, false);
}

/** BF16 weights; x must already be rounded to bf16 precision. */
export function matmulBf16(w: usize, x: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  matmulHalf(w, x, y, n, nTok, yStride, r0, r1, true);
}

// ---- integer dot helpers ------------------------------------------------------------------------

/** Σ a·b over 16 signed int8 pairs, as i32x4 partial sums (products fit i16; pair sums fit i16). */
// @ts-ignore: decorator
@inline function dotI8(a: v128, b: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extmul_low_i8x16_s(a, b), i16x8.extmul_high_i8x16_s(a, b)));
}

/** acc + Σ x·u where u ∈ [0, 127] (unsigned nibbles/6-bit values) and x is signed int8. */
// @ts-ignore: decorator
@inline function dotI8U7(x: v128, u: v128, acc: v128): v128 {
  // the i16x8 form: Node 20's baseline tier miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(x, u)));
  return i32x4.add(acc, dotI8(x, u));
}

// ---- Q8_0 ---------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function blockQ8_0(w: usize, xqs: usize): v128 {
  return i32x4.add(dotI8(v128.load(w + 2), v128.load(xqs)), dotI8(v128.load(w + 18), v128.load(xqs + 16)));
}

export function matmulQ8_0(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, rb = <usize>(nb * 34), xs = q8Stride(n);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * 34), xb = xqs + <usize>(b * 32);
        const dx = load<f32>(xd + <usize>(b * 4));
        s0 = f32x4.add(s0, f32x4.mul(f32x4.convert_i32x4_s(blockQ8_0(w0 + o, xb)), f32x4.splat(dx * f16ToF32(load<u16>(w0 + o)))));
        s1 = f32x4.add(s1, f32x4.mul(f32x4.convert_i32x4_s(blockQ8_0(w1 + o, xb)), f32x4.splat(dx * f16ToF32(load<u16>(w1 + o)))));
        s2 = f32x4.add(s2, f32x4.mul(f32x4.convert_i32x4_s(blockQ8_0(w2 + o, xb)), f32x4.splat(dx * f16ToF32(load<u16>(w2 + o)))));
        s3 = f32x4.add(s3, f32x4.mul(f32x4.convert_i32x4_s(blockQ8_0(w3 + o, xb)), f32x4.splat(dx * f16ToF32(load<u16>(w3 + o)))));
      }
      const yp = y + <usize>(t * yStride + r) * 4;
      store<f32>(yp, hsumF32(s0)); store<f32>(yp + 4, hsumF32(s1)); store<f32>(yp + 8, hsumF32(s2)); store<f32>(yp + 12, hsumF32(s3));
    }
  }
  for (; r < r1; r++) {
    const w0 = w + <usize>r * rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n;
      let s0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * 34);
        s0 = f32x4.add(s0, f32x4.mul(f32x4.convert_i32x4_s(blockQ8_0(w0 + o, xqs + <usize>(b * 32))), f32x4.splat(load<f32>(xd + <usize>(b * 4)) * f16ToF32(load<u16>(w0 + o)))));
      }
      store<f32>(y + <usize>(t * yStride + r) * 4, hsumF32(s0));
    }
  }
}

// ---- Q4_0 ---------------------------------------------------------------------------------------
// w = d·(q − 8): Σ w·x = d·dx·(Σ q·xq − 8·Σ xq); the nibbles q ∈ [0, 15] go straight into the
// unsigned side of the (relaxed) int8 dot, and Σ xq comes precomputed with the activations.

// @ts-ignore: decorator
@inline function blockQ4_0(w: usize, xlo: v128, xhi: v128): v128 {
  const q = v128.load(w + 2);
  const lo = v128.and(q, i8x16.splat(15));
  const hi = i8x16.shr_u(q, 4);
  return dotI8U7(xhi, hi, dotI8U7(xlo, lo, i32x4.splat(0)));
}

export function matmulQ4_0(w: usize, xq: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const nb = n >> 5, rb = <usize>(nb * 18), xs = q8Stride(n);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xsum = xd + <usize>(nb * 4);
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * 18), xb = xqs + <usize>(b * 32);
        const xlo = v128.load(xb), xhi = v128.load(xb + 16);
        const dx = load<f32>(xd + <usize>(b * 4));
        const corr = i32x4.splat(load<i32>(xsum + <usize>(b * 4)) * 2); // 8·Σxq spread over 4 lanes
        s0 = f32x4.add(s0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(blockQ4_0(w0 + o, xlo, xhi), corr)), f32x4.splat(dx * f16ToF32(load<u16>(w0 + o)))));
        s1 = f32x4.add(s1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(blockQ4_0(w1 + o, xlo, xhi), corr)), f32x4.splat(dx * f16ToF32(load<u16>(w1 + o)))));
        s2 = f32x4.add(s2, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(blockQ4_0(w2 + o, xlo, xhi), corr)), f32x4.splat(dx * f16ToF32(load<u16>(w2 + o)))));
        s3 = f32x4.add(s3, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(blockQ4_0(w3 + o, xlo, xhi), corr)), f32x4.splat(dx * f16ToF32(load<u16>(w3 + o)))));
      }
      const yp = y + <usize>(t * yStride + r) * 4;
      store<f32>(yp, hsumF32(s0)); store<f32>(yp + 4, hsumF32(s1)); store<f32>(yp + 8, hsumF32(s2)); store<f32>(yp + 12, hsumF32(s3));
    }
  }
  for (; r < r1; r++) {
    const w0 = w + <usize>r * rb;
    for (let t = 0; t < nTok; t++) {
      const xqs = xq + <usize>(t * xs), xd = xqs + <usize>n, xsum = xd + <usize>(nb * 4);
      let s0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>(b * 18), xb = xqs + <usize>(b * 32);
        const corr = i32x4.splat(load<i32>(xsum + <usize>(b * 4)) * 2);
        s0 = f32x4.add(s0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(blockQ4_0(w0 + o, v128.load(xb), v128.load(xb + 16)), corr)), f32x4.splat(load<f32>(xd + <usize>(b * 4)) * f16ToF32(load<u16>(w0 + o)))));
      }
      store<f32>(y + <usize>(t * yStride + r) * 4, hsumF32(s0));
    }
  }
}
