// FastConformer kernels for the LFM2-Audio encoder (src/models/lfm2audio/encoder.ts), all f32 with
// channels in the vector lanes: the stride-2 3×3 convolutions of the ×8 subsampling, the conv module's
// GLU and depthwise time convolution (+ folded batch-norm + SiLU), and Transformer-XL relative-position
// attention. Channel counts are multiples of 4.
import { expF32x4 } from "./activations";
import { hsumF32 } from "./common";

/**
 * Stride-2, padding-1, 3×3 convolution over a [Ti][Fi] plane (time × frequency) into [To][Fo][C]:
 * y[t][f][c] = b[c] + Σ x[2t+kh−1][2f+kw−1]·w[kh·3+kw][c] — one input channel (the subsampling's first
 * conv) when `depthwise` is 0 (x is [Ti][Fi]), else per channel (x is [Ti][Fi][C]). `relu` clamps at 0.
 */
export function conv2dS2(x: usize, w: usize, b: usize, y: usize, Ti: i32, Fi: i32, C: i32, To: i32, Fo: i32,
  depthwise: i32, relu: i32, t0: i32, t1: i32): void {
  const zero = f32x4.splat(0);
  for (let t = t0; t < t1; t++) {
    for (let f = 0; f < Fo; f++) {
      const o = y + (<usize>((t * Fo + f) * C) << 2);
      for (let c = 0; c < C; c += 4) v128.store(o + (<usize>c << 2), v128.load(b + (<usize>c << 2)));
      for (let kh = 0; kh < 3; kh++) {
        const ti = 2 * t + kh - 1;
        if (ti < 0 || ti >= Ti) continue;
        for (let kw = 0; kw < 3; kw++) {
          const fi = 2 * f + kw - 1;
          if (fi < 0 || fi >= Fi) continue;
          const wr = w + (<usize>((kh * 3 + kw) * C) << 2);
          if (depthwise) {
            const xr = x + (<usize>((ti * Fi + fi) * C) << 2);
            for (let c = 0; c < C; c += 4) {
              const q = <usize>c << 2;
              v128.store(o + q, f32x4.add(v128.load(o + q), f32x4.mul(v128.load(xr + q), v128.load(wr + q))));
            }
          } else {
            const xv = f32x4.splat(load<f32>(x + (<usize>(ti * Fi + fi) << 2)));
            for (let c = 0; c < C; c += 4) {
              const q = <usize>c << 2;
              v128.store(o + q, f32x4.add(v128.load(o + q), f32x4.mul(xv, v128.load(wr + q))));
            }
          }
        }
      }
      if (relu) for (let c = 0; c < C; c += 4) v128.store(o + (<usize>c << 2), f32x4.max(v128.load(o + (<usize>c << 2)), zero));
    }
  }
}

/** y[t][c] = x[t][c] · σ(x[t][D + c]) for x [T][2D] (GLU with a sigmoid gate). */
export function gluSigmoid(x: usize, y: usize, T: i32, D: i32): void {
  const one = f32x4.splat(1);
  for (let t = 0; t < T; t++) {
    const xr = x + (<usize>(t * 2 * D) << 2), yr = y + (<usize>(t * D) << 2);
    for (let c = 0; c < D; c += 4) {
      const q = <usize>c << 2, g = v128.load(xr + (<usize>D << 2) + q);
      v128.store(yr + q, f32x4.div(v128.load(xr + q), f32x4.add(one, expF32x4(f32x4.neg(g)))));
    }
  }
}

/**
 * The conv module's middle: depthwise convolution over time with "same" zero padding (w [K][D], K odd),
 * bias, folded batch-norm (z·bnW + bnB) and SiLU, x and y [T][D].
 */
export function depthwiseConv1dBnSilu(x: usize, w: usize, b: usize, bnW: usize, bnB: usize, y: usize, T: i32, D: i32, K: i32): void {
  const pad = (K - 1) >> 1, one = f32x4.splat(1);
  for (let t = 0; t < T; t++) {
    const yr = y + (<usize>(t * D) << 2);
    for (let c = 0; c < D; c += 4) {
      const q = <usize>c << 2;
      let acc = v128.load(b + q);
      for (let k = 0; k < K; k++) {
        const ti = t + k - pad;
        if (ti < 0 || ti >= T) continue;
        acc = f32x4.add(acc, f32x4.mul(v128.load(x + (<usize>(ti * D) << 2) + q), v128.load(w + (<usize>(k * D) << 2) + q)));
      }
      const z = f32x4.add(f32x4.mul(acc, v128.load(bnW + q)), v128.load(bnB + q));
      v128.store(yr + q, f32x4.div(z, f32x4.add(one, expF32x4(f32x4.neg(z)))));
    }
  }
}

/** Floats of scratch relPosAttention needs per thread. */
export function relPosAttentionScratch(T: i32, dh: i32): i32 { return 2 * dh + ((T + 3) & ~3); }

/**
 * Heads [h0, h1) of Transformer-XL attention over the whole clip (no mask), q/k/v/out [T][H·dh]:
 * s(i, j) = ((q_i + u)·k_j + (q_i + v)·p[T−1−i+j]) · scale, softmax over j, out_i = Σ_j a_ij v_j, where
 * p [2T−1][H·dh] holds the projected relative positions (row r = distance T−1−r) and u, v are [H·dh].
 */
export function relPosAttention(q: usize, k: usize, v: usize, p: usize, bu: usize, bv: usize, out: usize,
  T: i32, H: i32, dh: i32, scale: f32, h0: i32, h1: i32, scratch: usize): void {
  const D = H * dh, qu = scratch, qv = scratch + (<usize>dh << 2), s = scratch + (<usize>(2 * dh) << 2);
  const Tp = (T + 3) & ~3;
  for (let h = h0; h < h1; h++) {
    const ho = <usize>(h * dh) << 2;
    for (let i = 0; i < T; i++) {
      const qi = q + (<usize>(i * D) << 2) + ho;
      for (let d = 0; d < dh; d += 4) {
        const o = <usize>d << 2, x = v128.load(qi + o);
        v128.store(qu + o, f32x4.add(x, v128.load(bu + ho + o)));
        v128.store(qv + o, f32x4.add(x, v128.load(bv + ho + o)));
      }
      let max: f32 = -Infinity;
      for (let j = 0; j < T; j++) {
        const kr = k + (<usize>(j * D) << 2) + ho, pr = p + (<usize>((T - 1 - i + j) * D) << 2) + ho;
        let acc = f32x4.splat(0);
        for (let d = 0; d < dh; d += 4) {
          const o = <usize>d << 2;
          acc = f32x4.add(acc, f32x4.add(f32x4.mul(v128.load(qu + o), v128.load(kr + o)), f32x4.mul(v128.load(qv + o), v128.load(pr + o))));
        }
        const sc = hsumF32(acc) * scale;
        store<f32>(s + (<usize>j << 2), sc);
        if (sc > max) max = sc;
      }
      for (let j = T; j < Tp; j++) store<f32>(s + (<usize>j << 2), -Infinity);
      let sumV = f32x4.splat(0);
      const mv = f32x4.splat(max);
      for (let j = 0; j < Tp; j += 4) {
        const o = <usize>j << 2, e = expF32x4(f32x4.sub(v128.load(s + o), mv));
        v128.store(s + o, e);
        sumV = f32x4.add(sumV, e);
      }
      const inv = f32x4.splat(1 / hsumF32(sumV));
      const oi = out + (<usize>(i * D) << 2) + ho;
      for (let d = 0; d < dh; d += 4) v128.store(oi + (<usize>d << 2), f32x4.splat(0));
      for (let j = 0; j < T; j++) {
        const a = f32x4.splat(load<f32>(s + (<usize>j << 2))), vr = v + (<usize>(j * D) << 2) + ho;
        for (let d = 0; d < dh; d += 4) {
          const o = <usize>d << 2;
          v128.store(oi + o, f32x4.add(v128.load(oi + o), f32x4.mul(a, v128.load(vr + o))));
        }
      }
      for (let d = 0; d < dh; d += 4) v128.store(oi + (<usize>d << 2), f32x4.mul(v128.load(oi + (<usize>d << 2)), inv));
    }
  }
}

/** x = x · σ(x) in place (the conformer FFNs' SiLU). n is a multiple of 4. */
export function siluInPlace(x: usize, n: i32): void {
  const one = f32x4.splat(1);
  for (let i = 0; i < n; i += 4) {
    const p = x + (<usize>i << 2), z = v128.load(p);
    v128.store(p, f32x4.div(z, f32x4.add(one, expF32x4(f32x4.neg(z)))));
  }
}
