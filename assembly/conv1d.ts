// F32 matmul with a free activation row stride, for Mimi's causal convolutions (src/models/lfm2audio/mimi.ts):
// with time-major activations [T][Cin] and weights laid out [Cout][K·Cin] (tap-major), the K·Cin inputs of a
// dilation-1 causal conv at output t are the contiguous rows t..t+K−1 of the history-padded input, so the conv is
// this matmul with x rows of n = K·Cin floats starting Cin floats apart — no im2col copy. Transposed convs and
// linear layers use it with xStride = n.
//   y[t·yStride + r] = bias[r] + Σ_i W[r·n + i] · x[t·xStride + i]   for r ∈ [r0, r1), t ∈ [0, nTok)
// (bias 0: none).
// Blocks: 64 tokens (their x rows stay in L2 while every weight row passes), 2 rows × 4 tokens in registers.
// Every output is one 4-lane accumulation over i in the same order whatever its tile, so a token's result does
// not depend on how many tokens a call holds (chunked decoding reproduces whole decoding bit for bit).
import { hsumF32 } from "./common";

const TOKEN_BLOCK = 64;

// @ts-ignore: decorator
@inline function dotTail(w: usize, x: usize, n: i32, n4: i32): f32 {
  let s: f32 = 0;
  for (let i = n4; i < n; i++) s += load<f32>(w + <usize>i * 4) * load<f32>(x + <usize>i * 4);
  return s;
}

export function matmulF32Strided(w: usize, x: usize, y: usize, n: i32, nTok: i32, xStride: i32, yStride: i32, bias: usize,
  r0: i32, r1: i32): void {
  const n4 = n & ~3, rowBytes = <usize>n * 4, xBytes = <usize>xStride * 4;
  for (let tb = 0; tb < nTok; tb += TOKEN_BLOCK) {
    const te = min(tb + TOKEN_BLOCK, nTok);
    let r = r0;
    for (; r + 2 <= r1; r += 2) {
      const w0 = w + <usize>r * rowBytes, w1 = w0 + rowBytes;
      let t = tb;
      for (; t + 4 <= te; t += 4) {
        const x0 = x + <usize>t * xBytes, x1 = x0 + xBytes, x2 = x1 + xBytes, x3 = x2 + xBytes;
        let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
        let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
        for (let i = 0; i < n4; i += 4) {
          const o = <usize>i * 4;
          const v0 = v128.load(w0 + o), v1 = v128.load(w1 + o);
          const b0 = v128.load(x0 + o), b1 = v128.load(x1 + o), b2 = v128.load(x2 + o), b3 = v128.load(x3 + o);
          a00 = f32x4.add(a00, f32x4.mul(v0, b0)); a01 = f32x4.add(a01, f32x4.mul(v0, b1));
          a02 = f32x4.add(a02, f32x4.mul(v0, b2)); a03 = f32x4.add(a03, f32x4.mul(v0, b3));
          a10 = f32x4.add(a10, f32x4.mul(v1, b0)); a11 = f32x4.add(a11, f32x4.mul(v1, b1));
          a12 = f32x4.add(a12, f32x4.mul(v1, b2)); a13 = f32x4.add(a13, f32x4.mul(v1, b3));
        }
        const y0 = y + <usize>(t * yStride + r) * 4, ys = <usize>yStride * 4;
        const c0 = biasOf(bias, r), c1 = biasOf(bias, r + 1);
        store<f32>(y0, hsumF32(a00) + dotTail(w0, x0, n, n4) + c0);
        store<f32>(y0 + ys, hsumF32(a01) + dotTail(w0, x1, n, n4) + c0);
        store<f32>(y0 + 2 * ys, hsumF32(a02) + dotTail(w0, x2, n, n4) + c0);
        store<f32>(y0 + 3 * ys, hsumF32(a03) + dotTail(w0, x3, n, n4) + c0);
        store<f32>(y0 + 4, hsumF32(a10) + dotTail(w1, x0, n, n4) + c1);
        store<f32>(y0 + 4 + ys, hsumF32(a11) + dotTail(w1, x1, n, n4) + c1);
        store<f32>(y0 + 4 + 2 * ys, hsumF32(a12) + dotTail(w1, x2, n, n4) + c1);
        store<f32>(y0 + 4 + 3 * ys, hsumF32(a13) + dotTail(w1, x3, n, n4) + c1);
      }
      // 2 × 2 and 2 × 1 tiles for the last tokens (a streamed frame has 2): independent sums keep the adds in flight
      for (; t + 2 <= te; t += 2) {
        const x0 = x + <usize>t * xBytes, x1 = x0 + xBytes;
        let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
        for (let i = 0; i < n4; i += 4) {
          const o = <usize>i * 4;
          const v0 = v128.load(w0 + o), v1 = v128.load(w1 + o), b0 = v128.load(x0 + o), b1 = v128.load(x1 + o);
          a00 = f32x4.add(a00, f32x4.mul(v0, b0)); a01 = f32x4.add(a01, f32x4.mul(v0, b1));
          a10 = f32x4.add(a10, f32x4.mul(v1, b0)); a11 = f32x4.add(a11, f32x4.mul(v1, b1));
        }
        const y0 = y + <usize>(t * yStride + r) * 4, ys = <usize>yStride * 4;
        const c0 = biasOf(bias, r), c1 = biasOf(bias, r + 1);
        store<f32>(y0, hsumF32(a00) + dotTail(w0, x0, n, n4) + c0);
        store<f32>(y0 + ys, hsumF32(a01) + dotTail(w0, x1, n, n4) + c0);
        store<f32>(y0 + 4, hsumF32(a10) + dotTail(w1, x0, n, n4) + c1);
        store<f32>(y0 + 4 + ys, hsumF32(a11) + dotTail(w1, x1, n, n4) + c1);
      }
      if (t < te) {
        const x0 = x + <usize>t * xBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        for (let i = 0; i < n4; i += 4) {
          const o = <usize>i * 4, b0 = v128.load(x0 + o);
          a0 = f32x4.add(a0, f32x4.mul(v128.load(w0 + o), b0)); a1 = f32x4.add(a1, f32x4.mul(v128.load(w1 + o), b0));
        }
        const y0 = y + <usize>(t * yStride + r) * 4;
        store<f32>(y0, hsumF32(a0) + dotTail(w0, x0, n, n4) + biasOf(bias, r));
        store<f32>(y0 + 4, hsumF32(a1) + dotTail(w1, x0, n, n4) + biasOf(bias, r + 1));
      }
    }
    for (; r < r1; r++) {
      for (let t = tb; t < te; t++) dotOne(w + <usize>r * rowBytes, x, y, n, n4, t, xStride, yStride, r, biasOf(bias, r));
    }
  }
}

// @ts-ignore: decorator
@inline function biasOf(bias: usize, r: i32): f32 { return bias ? load<f32>(bias + <usize>r * 4) : 0; }

function dotOne(wr: usize, x: usize, y: usize, n: i32, n4: i32, t: i32, xStride: i32, yStride: i32, r: i32, c: f32): void {
  const xt = x + <usize>t * <usize>xStride * 4;
  let a = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(wr + <usize>i * 4), v128.load(xt + <usize>i * 4)));
  store<f32>(y + <usize>(t * yStride + r) * 4, hsumF32(a) + dotTail(wr, xt, n, n4) + c);
}

/** expm1 of four lanes ≤ 0: x = n·ln2 + r, expm1(x) = 2ⁿ·expm1(r) + (2ⁿ − 1), expm1(r) by its Taylor series. */
// @ts-ignore: decorator
@inline function expm1NonPositive(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-87.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.4426950408889634)));
  // ln 2 split in a high part exact in f32 and the rest
  const hi = f32x4.mul(n, f32x4.splat(0.693145751953125)), lo = f32x4.mul(n, f32x4.splat(1.428606765330187e-6));
  const r = f32x4.sub(f32x4.sub(x, hi), lo);
  let p = f32x4.splat(<f32>(1.0 / 5040.0));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 720.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 120.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 24.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(<f32>(1.0 / 6.0)));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  const q = f32x4.add(r, f32x4.mul(f32x4.mul(r, r), p));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.add(f32x4.mul(scale, q), f32x4.sub(scale, f32x4.splat(1.0)));
}

/** dst = ELU(src) (α = 1) over n floats (src and dst may be the same). */
export function eluF32(src: usize, dst: usize, n: i32): void {
  const n4 = n & ~3, zero = f32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const x = v128.load(src + <usize>i * 4);
    v128.store(dst + <usize>i * 4, v128.bitselect(x, expm1NonPositive(f32x4.min(x, zero)), f32x4.gt(x, zero)));
  }
  for (let i = n4; i < n; i++) {
    const x = load<f32>(src + <usize>i * 4);
    store<f32>(dst + <usize>i * 4, x > 0 ? x : f32x4.extract_lane(expm1NonPositive(f32x4.splat(x)), 0));
  }
}

/** dst[t·dstStride + j] += src[t·srcStride + j] for t < nRows, j < rowLen (overlap-add, residual adds). */
export function addRows(dst: usize, src: usize, nRows: i32, rowLen: i32, dstStride: i32, srcStride: i32): void {
  const l4 = rowLen & ~3;
  for (let t = 0; t < nRows; t++) {
    const d = dst + <usize>t * <usize>dstStride * 4, s = src + <usize>t * <usize>srcStride * 4;
    for (let j = 0; j < l4; j += 4) {
      const o = <usize>j * 4;
      v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
    }
    for (let j = l4; j < rowLen; j++) {
      const o = <usize>j * 4;
      store<f32>(d + o, load<f32>(d + o) + load<f32>(s + o));
    }
  }
}

/**
 * One query token's causal attention over a KV ring of `cap` rows (row p % cap holds position p, rows D = heads·dh
 * wide): positions first … first + n − 1, softmax(q·k·scale) · v per head into out. `scores` holds n floats.
 */
export function ringAttention(q: usize, keys: usize, values: usize, out: usize, heads: i32, dh: i32, cap: i32, first: i32,
  n: i32, scale: f32, scores: usize): void {
  const D = heads * dh;
  for (let h = 0; h < heads; h++) {
    const qh = q + <usize>(h * dh) * 4, oh = out + <usize>(h * dh) * 4;
    let mx: f32 = -Infinity;
    for (let j = 0; j < n; j++) {
      const kr = keys + <usize>(((first + j) % cap) * D + h * dh) * 4;
      let a = f32x4.splat(0);
      for (let i = 0; i < dh; i += 4) {
        a = f32x4.add(a, f32x4.mul(v128.load(qh + <usize>i * 4), v128.load(kr + <usize>i * 4)));
      }
      const s = hsumF32(a) * scale;
      store<f32>(scores + <usize>j * 4, s);
      if (s > mx) mx = s;
    }
    let sum: f32 = 0;
    for (let j = 0; j < n; j++) {
      const e = Mathf.exp(load<f32>(scores + <usize>j * 4) - mx);
      store<f32>(scores + <usize>j * 4, e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    for (let i = 0; i < dh; i += 4) v128.store(oh + <usize>i * 4, f32x4.splat(0));
    for (let j = 0; j < n; j++) {
      const p = f32x4.splat(load<f32>(scores + <usize>j * 4) * inv);
      const vr = values + <usize>(((first + j) % cap) * D + h * dh) * 4;
      for (let i = 0; i < dh; i += 4) {
        const o = <usize>i * 4;
        v128.store(oh + o, f32x4.add(v128.load(oh + o), f32x4.mul(p, v128.load(vr + o))));
      }
    }
  }
}
