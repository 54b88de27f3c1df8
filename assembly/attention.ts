// Grouped-query attention over an fp16 KV cache laid out [position][kvHead][dh].
// Numerics follow llama.cpp's CPU path: q is rounded to fp16 before q·k (its F16 vec_dot), scores
// are scaled then softmaxed in f32, and probabilities are rounded to fp16 before the weighted sum of v.
import { f16ToF32, f16x4ToF32, f32ToF16, hsumF32 } from "./common";
import { expF32x4 } from "./activations";

/** Store nTok rows of `width` floats as fp16 into the cache at row `pos0` (row stride = width). */
export function kvStore(src: usize, cache: usize, width: i32, pos0: i32, nTok: i32): void {
  const dst = cache + <usize>(pos0 * width) * 2;
  for (let i = 0; i < nTok * width; i++) store<u16>(dst + <usize>(i * 2), <u16>f32ToF16(load<f32>(src + <usize>(i * 4))));
}

/**
 * q: [nTok][nHeads][dh] f32, out: same shape. Token t sits at position pos0 + t and attends to
 * positions [0, pos0 + t] (causal) or [0, kvLen) (bidirectional). scratch: kvLen + dh floats.
 */
export function attention(q: usize, kCache: usize, vCache: usize, out: usize, nHeads: i32, nKv: i32, dh: i32,
  nTok: i32, pos0: i32, kvLen: i32, causal: i32, scale: f32, scratch: usize): void {
  const group = nHeads / nKv, kvw = nKv * dh;
  const qh = scratch, sc = scratch + <usize>dh * 4;
  for (let t = 0; t < nTok; t++) {
    const len = causal ? pos0 + t + 1 : kvLen;
    for (let h = 0; h < nHeads; h++) {
      const qp = q + <usize>((t * nHeads + h) * dh) * 4;
      for (let i = 0; i < dh; i++) store<f32>(qh + <usize>(i * 4), f16ToF32(f32ToF16(load<f32>(qp + <usize>(i * 4)))));
      const koff = <usize>((h / group) * dh) * 2;
      let mx: f32 = -Infinity;
      for (let j = 0; j < len; j++) {
        const kp = kCache + <usize>(j * kvw) * 2 + koff;
        let acc = f32x4.splat(0);
        for (let i = 0; i < dh; i += 4) acc = f32x4.add(acc, f32x4.mul(f16x4ToF32(v128.load16x4_u(kp + <usize>(i * 2))), v128.load(qh + <usize>(i * 4))));
        const s = hsumF32(acc) * scale;
        store<f32>(sc + <usize>(j * 4), s);
        if (s > mx) mx = s;
      }
      let sum: f64 = 0;
      const vmx = f32x4.splat(mx);
      let j = 0;
      for (; j + 4 <= len; j += 4) {
        const e = expF32x4(f32x4.sub(v128.load(sc + <usize>(j * 4)), vmx));
        v128.store(sc + <usize>(j * 4), e);
        sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
      }
      for (; j < len; j++) {
        const e = f32x4.extract_lane(expF32x4(f32x4.splat(load<f32>(sc + <usize>(j * 4)) - mx)), 0);
        store<f32>(sc + <usize>(j * 4), e);
        sum += e;
      }
      const inv = <f32>(1.0 / sum);
      const op = out + <usize>((t * nHeads + h) * dh) * 4;
      memory.fill(op, 0, <usize>dh * 4);
      for (let j = 0; j < len; j++) {
        const p = f32x4.splat(f16ToF32(f32ToF16(load<f32>(sc + <usize>(j * 4)) * inv)));
        const vp = vCache + <usize>(j * kvw) * 2 + koff;
        for (let i = 0; i < dh; i += 4) {
          const o = op + <usize>(i * 4);
          v128.store(o, f32x4.add(v128.load(o), f32x4.mul(p, f16x4ToF32(v128.load16x4_u(vp + <usize>(i * 2))))));
        }
      }
    }
  }
}

// ---- tiled attention (many query rows per K/V read) -----------------------------------------------
// Work unit = (tile of `tileTok` query tokens, one KV head): its rows are every (token, head) pair of the
// tile whose head reads that KV head, so each K/V row is fp16-decoded once per unit instead of once per
// query row, in blocks of ATT_KB keys held as f32. Each row's arithmetic is the per-head kernel's above,
// in the same order (q·k lanes reduced as hsumF32, exp/sum over the whole row, then Σ p·v in key order),
// so results are bit-identical to `attention` for any tiling, thread split or chunking of the prompt.

const ATT_KB = 64;

/** Scratch bytes one caller of attentionTiles needs (rounded q rows, a decoded K/V block, score rows). */
export function attentionTileScratch(group: i32, dh: i32, tileTok: i32, kvLen: i32): i32 {
  const rows = group * tileTok;
  return (rows * dh + ATT_KB * dh + rows * ((kvLen + 3) & ~3)) * 4;
}

/** Four halves → f32 → nearest fp16 → f32 (values in [0, 1]: the rounding of probabilities). */
// @ts-ignore: decorator
@inline function roundProbF16x4(p: v128): v128 {
  // normal halves: round the mantissa to 10 bits, nearest-even; below 2^-14 round to a multiple of 2^-24
  const odd = v128.and(i32x4.shr_u(p, 13), i32x4.splat(1));
  const normal = v128.and(i32x4.add(i32x4.add(p, i32x4.splat(0xfff)), odd), i32x4.splat(0xffffe000));
  const sub = f32x4.sub(f32x4.add(p, f32x4.splat(0.5)), f32x4.splat(0.5));
  return v128.bitselect(normal, sub, f32x4.ge(p, f32x4.splat(6.103515625e-5)));
}

/**
 * Eight halves at p → f32 (lo, hi). Sign-extending the halves puts their sign in bit 31 after the
 * shift; the mask clears the half's own sign bit (now at 28), and ×2^112 rebiases (subnormals exact).
 */
// @ts-ignore: decorator
@inline function f16x8Lo(h: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e+33));
}
// @ts-ignore: decorator
@inline function f16x8Hi(h: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), i32x4.splat(0x8fffe000)), f32x4.splat(5.192296858534828e+33));
}

/** Decode `n` fp16 rows of `dh` values (cache row stride kvw halves) to f32 rows at dst. */
// @ts-ignore: decorator
@inline function decodeBlock(src: usize, kvw: i32, dh: i32, n: i32, dst: usize): void {
  for (let j = 0; j < n; j++) {
    const s = src + <usize>(j * kvw) * 2, d = dst + <usize>(j * dh) * 4;
    let i = 0;
    for (; i + 8 <= dh; i += 8) {
      const h = v128.load(s + <usize>(i * 2));
      v128.store(d + <usize>(i * 4), f16x8Lo(h)); v128.store(d + <usize>(i * 4), f16x8Hi(h), 16);
    }
    if (i < dh) v128.store(d + <usize>(i * 4), f16x4ToF32(v128.load16x4_u(s + <usize>(i * 2))));
  }
}

/**
 * Attention for work units [u0, u1) (see above; unit u = tile u / nKv, KV head u % nKv), arguments as
 * `attention`. scratch: attentionTileScratch(nHeads / nKv, dh, tileTok, kvLen) bytes, private to the caller.
 */
export function attentionTiles(q: usize, kCache: usize, vCache: usize, out: usize, nHeads: i32, nKv: i32, dh: i32,
  nTok: i32, pos0: i32, kvLen: i32, causal: i32, scale: f32, tileTok: i32, u0: i32, u1: i32, scratch: usize): void {
  const group = nHeads / nKv, kvw = nKv * dh, rowsMax = group * tileTok;
  const qh = scratch, kb = qh + <usize>(rowsMax * dh) * 4, sc = kb + <usize>(ATT_KB * dh) * 4;
  const vscale = f32x4.splat(scale);
  for (let u = u0; u < u1; u++) {
    const kvh = u % nKv, t0 = (u / nKv) * tileTok;
    const t1 = min(nTok, t0 + tileTok), rows = (t1 - t0) * group;
    const maxLen = causal ? pos0 + t1 : kvLen, stride = (maxLen + 3) & ~3; // whole f32x4 per score row
    const koff = <usize>(kvh * dh) * 2;
    // rows r = (t - t0) · group + g  ↔  head kvh · group + g of token t; q rounded to fp16 as llama.cpp does
    for (let r = 0; r < rows; r++) {
      const t = t0 + r / group, h = kvh * group + r % group;
      const qp = q + <usize>((t * nHeads + h) * dh) * 4, qd = qh + <usize>(r * dh) * 4;
      for (let i = 0; i < dh; i++) store<f32>(qd + <usize>(i * 4), f16ToF32(f32ToF16(load<f32>(qp + <usize>(i * 4)))));
    }
    // scores, one block of keys at a time
    for (let b = 0; b < maxLen; b += ATT_KB) {
      const n = min(ATT_KB, maxLen - b);
      decodeBlock(kCache + <usize>(b * kvw) * 2 + koff, kvw, dh, n, kb);
      for (let r = 0; r < rows; r++) {
        const len = causal ? pos0 + t0 + r / group + 1 : kvLen;
        if (len <= b) continue;
        const m = min(n, len - b);
        const qd = qh + <usize>(r * dh) * 4, srow = sc + <usize>(r * stride + b) * 4;
        let j = 0;
        for (; j + 4 <= m; j += 4) {
          const k0 = kb + <usize>(j * dh) * 4, k1 = k0 + <usize>dh * 4, k2 = k1 + <usize>dh * 4, k3 = k2 + <usize>dh * 4;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          for (let i = 0; i < dh; i += 4) {
            const o = <usize>(i * 4), qv = v128.load(qd + o);
            a0 = f32x4.add(a0, f32x4.mul(v128.load(k0 + o), qv));
            a1 = f32x4.add(a1, f32x4.mul(v128.load(k1 + o), qv));
            a2 = f32x4.add(a2, f32x4.mul(v128.load(k2 + o), qv));
            a3 = f32x4.add(a3, f32x4.mul(v128.load(k3 + o), qv));
          }
          // four hsumF32 at once, same association: (x0 + x2) + (x1 + x3)
          const s01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 1, 4, 5), i32x4.shuffle(a0, a1, 2, 3, 6, 7));
          const s23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 1, 4, 5), i32x4.shuffle(a2, a3, 2, 3, 6, 7));
          const s = f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7));
          v128.store(srow + <usize>(j * 4), f32x4.mul(s, vscale));
        }
        for (; j < m; j++) {
          const kp = kb + <usize>(j * dh) * 4;
          let acc = f32x4.splat(0);
          for (let i = 0; i < dh; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(kp + <usize>(i * 4)), v128.load(qd + <usize>(i * 4))));
          store<f32>(srow + <usize>(j * 4), hsumF32(acc) * scale);
        }
      }
    }
    // softmax per row, probabilities rounded to fp16 in place
    for (let r = 0; r < rows; r++) {
      const len = causal ? pos0 + t0 + r / group + 1 : kvLen;
      const srow = sc + <usize>(r * stride) * 4;
      let vmx = f32x4.splat(-Infinity);
      let j = 0;
      for (; j + 4 <= len; j += 4) vmx = f32x4.max(vmx, v128.load(srow + <usize>(j * 4)));
      let mx = max(max(f32x4.extract_lane(vmx, 0), f32x4.extract_lane(vmx, 1)), max(f32x4.extract_lane(vmx, 2), f32x4.extract_lane(vmx, 3)));
      for (; j < len; j++) mx = max(mx, load<f32>(srow + <usize>(j * 4)));
      let sum: f64 = 0;
      const vm = f32x4.splat(mx);
      j = 0;
      for (; j + 4 <= len; j += 4) {
        const e = expF32x4(f32x4.sub(v128.load(srow + <usize>(j * 4)), vm));
        v128.store(srow + <usize>(j * 4), e);
        sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
      }
      for (; j < len; j++) {
        const e = f32x4.extract_lane(expF32x4(f32x4.splat(load<f32>(srow + <usize>(j * 4)) - mx)), 0);
        store<f32>(srow + <usize>(j * 4), e);
        sum += e;
      }
      const inv = f32x4.splat(<f32>(1.0 / sum));
      // whole vectors: lanes past len (inside the row's padded stride) are never read
      for (j = 0; j < len; j += 4) v128.store(srow + <usize>(j * 4), roundProbF16x4(f32x4.mul(v128.load(srow + <usize>(j * 4)), inv)));
    }
    // out = Σ_j p_j · v_j in key order; 16 output floats stay in registers across a block
    for (let r = 0; r < rows; r++) {
      const t = t0 + r / group, h = kvh * group + r % group;
      memory.fill(out + <usize>((t * nHeads + h) * dh) * 4, 0, <usize>dh * 4);
    }
    for (let b = 0; b < maxLen; b += ATT_KB) {
      const n = min(ATT_KB, maxLen - b);
      decodeBlock(vCache + <usize>(b * kvw) * 2 + koff, kvw, dh, n, kb);
      for (let r = 0; r < rows; r++) {
        const t = t0 + r / group, h = kvh * group + r % group;
        const len = causal ? pos0 + t + 1 : kvLen;
        if (len <= b) continue;
        const m = min(n, len - b);
        const op = out + <usize>((t * nHeads + h) * dh) * 4, prow = sc + <usize>(r * stride + b) * 4;
        let i = 0;
        for (; i + 16 <= dh; i += 16) {
          const oo = op + <usize>(i * 4);
          let o0 = v128.load(oo), o1 = v128.load(oo, 16), o2 = v128.load(oo, 32), o3 = v128.load(oo, 48);
          for (let j = 0; j < m; j++) {
            const p = v128.load32_splat(prow + <usize>(j * 4)), vp = kb + <usize>(j * dh + i) * 4;
            o0 = f32x4.add(o0, f32x4.mul(p, v128.load(vp)));
            o1 = f32x4.add(o1, f32x4.mul(p, v128.load(vp, 16)));
            o2 = f32x4.add(o2, f32x4.mul(p, v128.load(vp, 32)));
            o3 = f32x4.add(o3, f32x4.mul(p, v128.load(vp, 48)));
          }
          v128.store(oo, o0); v128.store(oo, o1, 16); v128.store(oo, o2, 32); v128.store(oo, o3, 48);
        }
        for (; i < dh; i += 4) {
          const oo = op + <usize>(i * 4);
          let o0 = v128.load(oo);
          for (let j = 0; j < m; j++) o0 = f32x4.add(o0, f32x4.mul(v128.load32_splat(prow + <usize>(j * 4)), v128.load(kb + <usize>(j * dh + i) * 4)));
          v128.store(oo, o0);
        }
      }
    }
  }
}
