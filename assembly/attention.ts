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
      // two query rows at a time share each key load (rows of one token, or the next token's: lenA ≤ lenB)
      let r = 0;
      for (; r + 2 <= rows; r += 2) {
        const lenA = causal ? pos0 + t0 + r / group + 1 : kvLen, lenB = causal ? pos0 + t0 + (r + 1) / group + 1 : kvLen;
        if (lenB <= b) continue;
        const mA = max(0, min(n, lenA - b)), mB = min(n, lenB - b);
        const qa = qh + <usize>(r * dh) * 4, qb = qa + <usize>dh * 4;
        const srowA = sc + <usize>(r * stride + b) * 4, srowB = srowA + <usize>stride * 4;
        let j = 0;
        for (; j + 4 <= mA; j += 4) scoreKeys4x2(kb + <usize>(j * dh) * 4, qa, qb, dh, vscale, srowA + <usize>(j * 4), srowB + <usize>(j * 4));
        scoreRowTail(kb, qa, dh, j, mA, scale, vscale, srowA);
        scoreRowTail(kb, qb, dh, j, mB, scale, vscale, srowB);
      }
      if (r < rows) {
        const len = causal ? pos0 + t0 + r / group + 1 : kvLen;
        if (len > b) scoreRowTail(kb, qh + <usize>(r * dh) * 4, dh, 0, min(n, len - b), scale, vscale, sc + <usize>(r * stride + b) * 4);
      }
    }
    // softmax per row, probabilities rounded to fp16 in place
    for (let r = 0; r < rows; r++) {
      softmaxRowF16(sc + <usize>(r * stride) * 4, causal ? pos0 + t0 + r / group + 1 : kvLen, 1.0);
    }
    // out = Σ_j p_j · v_j in key order; 16 output floats stay in registers across a block
    for (let r = 0; r < rows; r++) {
      const t = t0 + r / group, h = kvh * group + r % group;
      memory.fill(out + <usize>((t * nHeads + h) * dh) * 4, 0, <usize>dh * 4);
    }
    for (let b = 0; b < maxLen; b += ATT_KB) {
      const n = min(ATT_KB, maxLen - b);
      decodeBlock(vCache + <usize>(b * kvw) * 2 + koff, kvw, dh, n, kb);
      // two rows at a time share each v load; the longer row then finishes alone (each sum stays in key order)
      let r = 0;
      for (; r + 2 <= rows; r += 2) {
        const tA = t0 + r / group, hA = kvh * group + r % group, tB = t0 + (r + 1) / group, hB = kvh * group + (r + 1) % group;
        const lenA = causal ? pos0 + tA + 1 : kvLen, lenB = causal ? pos0 + tB + 1 : kvLen;
        if (lenB <= b) continue;
        const mA = max(0, min(n, lenA - b)), mB = min(n, lenB - b);
        const opA = out + <usize>((tA * nHeads + hA) * dh) * 4, opB = out + <usize>((tB * nHeads + hB) * dh) * 4;
        const prowA = sc + <usize>(r * stride + b) * 4, prowB = prowA + <usize>stride * 4;
        let i = 0;
        for (; i + 16 <= dh; i += 16) {
          const ooA = opA + <usize>(i * 4), ooB = opB + <usize>(i * 4);
          let a0 = v128.load(ooA), a1 = v128.load(ooA, 16), a2 = v128.load(ooA, 32), a3 = v128.load(ooA, 48);
          let b0 = v128.load(ooB), b1 = v128.load(ooB, 16), b2 = v128.load(ooB, 32), b3 = v128.load(ooB, 48);
          let j = 0;
          for (; j < mA; j++) {
            const pa = v128.load32_splat(prowA + <usize>(j * 4)), pb = v128.load32_splat(prowB + <usize>(j * 4));
            const vp = kb + <usize>(j * dh + i) * 4;
            const v0 = v128.load(vp), v1 = v128.load(vp, 16), v2 = v128.load(vp, 32), v3 = v128.load(vp, 48);
            a0 = f32x4.add(a0, f32x4.mul(pa, v0)); b0 = f32x4.add(b0, f32x4.mul(pb, v0));
            a1 = f32x4.add(a1, f32x4.mul(pa, v1)); b1 = f32x4.add(b1, f32x4.mul(pb, v1));
            a2 = f32x4.add(a2, f32x4.mul(pa, v2)); b2 = f32x4.add(b2, f32x4.mul(pb, v2));
            a3 = f32x4.add(a3, f32x4.mul(pa, v3)); b3 = f32x4.add(b3, f32x4.mul(pb, v3));
          }
          for (; j < mB; j++) {
            const pb = v128.load32_splat(prowB + <usize>(j * 4)), vp = kb + <usize>(j * dh + i) * 4;
            b0 = f32x4.add(b0, f32x4.mul(pb, v128.load(vp)));
            b1 = f32x4.add(b1, f32x4.mul(pb, v128.load(vp, 16)));
            b2 = f32x4.add(b2, f32x4.mul(pb, v128.load(vp, 32)));
            b3 = f32x4.add(b3, f32x4.mul(pb, v128.load(vp, 48)));
          }
          v128.store(ooA, a0); v128.store(ooA, a1, 16); v128.store(ooA, a2, 32); v128.store(ooA, a3, 48);
          v128.store(ooB, b0); v128.store(ooB, b1, 16); v128.store(ooB, b2, 32); v128.store(ooB, b3, 48);
        }
        if (i < dh) {
          weightedSumTail(kb, prowA, opA, dh, i, mA);
          weightedSumTail(kb, prowB, opB, dh, i, mB);
        }
      }
      if (r < rows) {
        const t = t0 + r / group, h = kvh * group + r % group;
        const len = causal ? pos0 + t + 1 : kvLen;
        if (len > b) weightedSumTail(kb, sc + <usize>(r * stride + b) * 4, out + <usize>((t * nHeads + h) * dh) * 4, dh, 0, min(n, len - b));
      }
    }
  }
}

/** Scores of four f32 keys (rows of dh at k0) for two q rows: ×scale to sA, sB; per-score sums as scoreRowTail's. */
// @ts-ignore: decorator
@inline function scoreKeys4x2(k0: usize, qa: usize, qb: usize, dh: i32, vscale: v128, sA: usize, sB: usize): void {
  const k1 = k0 + <usize>dh * 4, k2 = k1 + <usize>dh * 4, k3 = k2 + <usize>dh * 4;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let i = 0; i < dh; i += 4) {
    const o = <usize>(i * 4), qva = v128.load(qa + o), qvb = v128.load(qb + o);
    let kv = v128.load(k0 + o); a0 = f32x4.add(a0, f32x4.mul(kv, qva)); b0 = f32x4.add(b0, f32x4.mul(kv, qvb));
    kv = v128.load(k1 + o); a1 = f32x4.add(a1, f32x4.mul(kv, qva)); b1 = f32x4.add(b1, f32x4.mul(kv, qvb));
    kv = v128.load(k2 + o); a2 = f32x4.add(a2, f32x4.mul(kv, qva)); b2 = f32x4.add(b2, f32x4.mul(kv, qvb));
    kv = v128.load(k3 + o); a3 = f32x4.add(a3, f32x4.mul(kv, qva)); b3 = f32x4.add(b3, f32x4.mul(kv, qvb));
  }
  // four hsumF32 at once, same association: (x0 + x2) + (x1 + x3)
  let s01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 1, 4, 5), i32x4.shuffle(a0, a1, 2, 3, 6, 7));
  let s23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 1, 4, 5), i32x4.shuffle(a2, a3, 2, 3, 6, 7));
  v128.store(sA, f32x4.mul(f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7)), vscale));
  s01 = f32x4.add(i32x4.shuffle(b0, b1, 0, 1, 4, 5), i32x4.shuffle(b0, b1, 2, 3, 6, 7));
  s23 = f32x4.add(i32x4.shuffle(b2, b3, 0, 1, 4, 5), i32x4.shuffle(b2, b3, 2, 3, 6, 7));
  v128.store(sB, f32x4.mul(f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7)), vscale));
}

/** Scores of keys [j0, m) of the f32 block kb for one q row (four at a time, then one by one) into srow. */
// @ts-ignore: decorator
@inline function scoreRowTail(kb: usize, qd: usize, dh: i32, j0: i32, m: i32, scale: f32, vscale: v128, srow: usize): void {
  let j = j0;
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
    const s01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 1, 4, 5), i32x4.shuffle(a0, a1, 2, 3, 6, 7));
    const s23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 1, 4, 5), i32x4.shuffle(a2, a3, 2, 3, 6, 7));
    v128.store(srow + <usize>(j * 4), f32x4.mul(f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7)), vscale));
  }
  for (; j < m; j++) {
    const kp = kb + <usize>(j * dh) * 4;
    let acc = f32x4.splat(0);
    for (let i = 0; i < dh; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(kp + <usize>(i * 4)), v128.load(qd + <usize>(i * 4))));
    store<f32>(srow + <usize>(j * 4), hsumF32(acc) * scale);
  }
}

/** out[i0..dh) += Σ_{j<m} p_j · v_j (one row; sixteen floats in registers, then fours), in key order. */
// @ts-ignore: decorator
@inline function weightedSumTail(kb: usize, prow: usize, op: usize, dh: i32, i0: i32, m: i32): void {
  let i = i0;
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

// ---- decode attention (few query tokens, fp16 K/V converted in registers) -----------------------
// Work unit = (query token, KV head); rows = the group's query heads of that token. K and V halves are
// widened in registers and used at once by two query rows, with no f32 copy of the block. The widening
// skips the ×2^112 rebias of the exponent: q and the probabilities are multiplied by 2^112 instead
// (exact: powers of two, |q| ≤ 65504 and p ≤ 1 stay finite), so each product k·q and p·v is the same
// real number as before and rounds the same. Sums run in the per-head kernel's order: bit-identical.

const REBIAS: f32 = 5.192296858534828e+33; // 2^112
const DEC_VB = 16;
const AHEAD = 32;

/** Eight halves → f32 bit patterns ×2^-112 (exact): sign-extend, shift into place, clear the extra sign bits. */
// @ts-ignore: decorator
@inline function halvesLoScaled(h: v128): v128 {
  return v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(h), 13), i32x4.splat(0x8fffe000));
}
// @ts-ignore: decorator
@inline function halvesHiScaled(h: v128): v128 {
  return v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(h), 13), i32x4.splat(0x8fffe000));
}

/** Scratch bytes one caller of attentionDecode needs: the group's scaled q rows and score rows. */
export function attentionDecodeScratch(group: i32, dh: i32, kvLen: i32): i32 {
  return (group * dh + group * ((kvLen + 3) & ~3)) * 4;
}

/**
 * One row's softmax over scores [0, len) in place: max, exp, f64 sum in key order, probabilities rounded to
 * fp16, then multiplied by `post` (1 for attentionTiles, exact; 2^112 for attentionDecode's widened V rows).
 */
// @ts-ignore: decorator
@inline function softmaxRowF16(srow: usize, len: i32, post: f32): void {
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
  const inv = f32x4.splat(<f32>(1.0 / sum)), rb = f32x4.splat(post);
  for (j = 0; j < len; j += 4) v128.store(srow + <usize>(j * 4), f32x4.mul(roundProbF16x4(f32x4.mul(v128.load(srow + <usize>(j * 4)), inv)), rb));
}

/** Four q·k dot products (keys kp … kp + 3·rowB) for two scaled q rows; scores ×scale to s0, s1. */
// @ts-ignore: decorator
@inline function dot4x2(kp: usize, rowB: usize, qa: usize, qb: usize, dh: i32, vscale: v128, s0: usize, s1: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= dh; i += 8) {
    const ko = kp + <usize>(i * 2), qo = <usize>(i * 4);
    const qa0 = v128.load(qa + qo), qa1 = v128.load(qa + qo, 16), qb0 = v128.load(qb + qo), qb1 = v128.load(qb + qo, 16);
    let h = v128.load(ko), lo = halvesLoScaled(h), hi = halvesHiScaled(h);
    a0 = f32x4.add(f32x4.add(a0, f32x4.mul(lo, qa0)), f32x4.mul(hi, qa1));
    b0 = f32x4.add(f32x4.add(b0, f32x4.mul(lo, qb0)), f32x4.mul(hi, qb1));
    h = v128.load(ko + rowB); lo = halvesLoScaled(h); hi = halvesHiScaled(h);
    a1 = f32x4.add(f32x4.add(a1, f32x4.mul(lo, qa0)), f32x4.mul(hi, qa1));
    b1 = f32x4.add(f32x4.add(b1, f32x4.mul(lo, qb0)), f32x4.mul(hi, qb1));
    h = v128.load(ko + 2 * rowB); lo = halvesLoScaled(h); hi = halvesHiScaled(h);
    a2 = f32x4.add(f32x4.add(a2, f32x4.mul(lo, qa0)), f32x4.mul(hi, qa1));
    b2 = f32x4.add(f32x4.add(b2, f32x4.mul(lo, qb0)), f32x4.mul(hi, qb1));
    h = v128.load(ko + 3 * rowB); lo = halvesLoScaled(h); hi = halvesHiScaled(h);
    a3 = f32x4.add(f32x4.add(a3, f32x4.mul(lo, qa0)), f32x4.mul(hi, qa1));
    b3 = f32x4.add(f32x4.add(b3, f32x4.mul(lo, qb0)), f32x4.mul(hi, qb1));
  }
  if (i < dh) { // dh ≡ 4 (mod 8): one last four
    const ko = kp + <usize>(i * 2), qo = <usize>(i * 4), qa0 = v128.load(qa + qo), qb0 = v128.load(qb + qo);
    let lo = halvesLoScaled(v128.load64_zero(ko));
    a0 = f32x4.add(a0, f32x4.mul(lo, qa0)); b0 = f32x4.add(b0, f32x4.mul(lo, qb0));
    lo = halvesLoScaled(v128.load64_zero(ko + rowB));
    a1 = f32x4.add(a1, f32x4.mul(lo, qa0)); b1 = f32x4.add(b1, f32x4.mul(lo, qb0));
    lo = halvesLoScaled(v128.load64_zero(ko + 2 * rowB));
    a2 = f32x4.add(a2, f32x4.mul(lo, qa0)); b2 = f32x4.add(b2, f32x4.mul(lo, qb0));
    lo = halvesLoScaled(v128.load64_zero(ko + 3 * rowB));
    a3 = f32x4.add(a3, f32x4.mul(lo, qa0)); b3 = f32x4.add(b3, f32x4.mul(lo, qb0));
  }
  // four hsumF32 at once, same association: (x0 + x2) + (x1 + x3)
  let s01 = f32x4.add(i32x4.shuffle(a0, a1, 0, 1, 4, 5), i32x4.shuffle(a0, a1, 2, 3, 6, 7));
  let s23 = f32x4.add(i32x4.shuffle(a2, a3, 0, 1, 4, 5), i32x4.shuffle(a2, a3, 2, 3, 6, 7));
  v128.store(s0, f32x4.mul(f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7)), vscale));
  s01 = f32x4.add(i32x4.shuffle(b0, b1, 0, 1, 4, 5), i32x4.shuffle(b0, b1, 2, 3, 6, 7));
  s23 = f32x4.add(i32x4.shuffle(b2, b3, 0, 1, 4, 5), i32x4.shuffle(b2, b3, 2, 3, 6, 7));
  v128.store(s1, f32x4.mul(f32x4.add(i32x4.shuffle(s01, s23, 0, 2, 4, 6), i32x4.shuffle(s01, s23, 1, 3, 5, 7)), vscale));
}

/** One q·k dot product (one key) for one scaled q row, in hsumF32's association. */
// @ts-ignore: decorator
@inline function dot1(kp: usize, qa: usize, dh: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= dh; i += 8) {
    const h = v128.load(kp + <usize>(i * 2));
    acc = f32x4.add(acc, f32x4.mul(halvesLoScaled(h), v128.load(qa + <usize>(i * 4))));
    acc = f32x4.add(acc, f32x4.mul(halvesHiScaled(h), v128.load(qa + <usize>(i * 4), 16)));
  }
  if (i < dh) acc = f32x4.add(acc, f32x4.mul(halvesLoScaled(v128.load64_zero(kp + <usize>(i * 2))), v128.load(qa + <usize>(i * 4))));
  return hsumF32(acc);
}

/**
 * Attention for units [u0, u1) (unit u = query token u / nKv, KV head u % nKv), arguments as `attention`;
 * meant for decode (nTok = 1) and other short chunks. Bit-identical to `attention` and attentionTiles.
 * scratch: attentionDecodeScratch(nHeads / nKv, dh, kvLen) bytes, private to the caller.
 */
export function attentionDecode(q: usize, kCache: usize, vCache: usize, out: usize, nHeads: i32, nKv: i32, dh: i32,
  pos0: i32, kvLen: i32, causal: i32, scale: f32, u0: i32, u1: i32, scratch: usize): void {
  const group = nHeads / nKv, kvw = nKv * dh, rowB = <usize>kvw * 2;
  const vscale = f32x4.splat(scale);
  let touch = v128.splat<i32>(0);
  for (let u = u0; u < u1; u++) {
    const t = u / nKv, kvh = u % nKv, len = causal ? pos0 + t + 1 : kvLen, stride = (len + 3) & ~3;
    const qs = scratch, sc = qs + <usize>(group * dh) * 4;
    const kbase = kCache + <usize>(kvh * dh) * 2, vbase = vCache + <usize>(kvh * dh) * 2;
    const q0 = q + <usize>((t * nHeads + kvh * group) * dh) * 4, o0 = out + <usize>((t * nHeads + kvh * group) * dh) * 4;
    // q rounded to fp16 as llama.cpp does, ×2^112 for the widened keys
    for (let i = 0; i < group * dh; i++) store<f32>(qs + <usize>(i * 4), f16ToF32(f32ToF16(load<f32>(q0 + <usize>(i * 4)))) * REBIAS);
    // scores: two rows per pass over the keys, four keys at a time
    let g = 0;
    for (; g + 2 <= group; g += 2) {
      const qa = qs + <usize>(g * dh) * 4, qb = qa + <usize>dh * 4;
      const ra = sc + <usize>(g * stride) * 4, rb = ra + <usize>stride * 4;
      let j = 0;
      for (; j + 4 <= len; j += 4) {
        // touch the rows AHEAD keys on (one load per 64-byte line): long caches come from DRAM, and
        // the misses overlap with this block's arithmetic instead of stalling it
        if (j + AHEAD + 4 <= len) {
          const ap = kbase + <usize>(j + AHEAD) * rowB;
          touch = v128.or(touch, v128.or(v128.or(v128.load(ap), v128.load(ap + rowB)), v128.or(v128.load(ap + 2 * rowB), v128.load(ap + 3 * rowB))));
          if (dh > 32) touch = v128.or(touch, v128.or(v128.or(v128.load(ap, 64), v128.load(ap + rowB, 64)), v128.or(v128.load(ap + 2 * rowB, 64), v128.load(ap + 3 * rowB, 64))));
        }
        dot4x2(kbase + <usize>j * rowB, rowB, qa, qb, dh, vscale, ra + <usize>(j * 4), rb + <usize>(j * 4));
      }
      for (; j < len; j++) {
        const kp = kbase + <usize>j * rowB;
        store<f32>(ra + <usize>(j * 4), dot1(kp, qa, dh) * scale);
        store<f32>(rb + <usize>(j * 4), dot1(kp, qb, dh) * scale);
      }
    }
    if (g < group) {
      const qa = qs + <usize>(g * dh) * 4, ra = sc + <usize>(g * stride) * 4;
      for (let j = 0; j < len; j++) store<f32>(ra + <usize>(j * 4), dot1(kbase + <usize>j * rowB, qa, dh) * scale);
    }
    for (g = 0; g < group; g++) softmaxRowF16(sc + <usize>(g * stride) * 4, len, REBIAS);
    // out = Σ_j p_j · v_j in key order, 16 output floats of two rows at a time over a block of keys; the
    // block is short because rows kvw·2 bytes apart share few L1 sets and a long block would evict itself
    memory.fill(o0, 0, <usize>(group * dh) * 4);
    for (let b = 0; b < len; b += DEC_VB) {
      const n = min(DEC_VB, len - b);
      for (g = 0; g < group; g += 2) {
        const two = g + 1 < group;
        const pa = sc + <usize>(g * stride + b) * 4, pb = two ? pa + <usize>stride * 4 : pa;
        const oa = o0 + <usize>(g * dh) * 4, ob = two ? oa + <usize>dh * 4 : oa;
        let i = 0;
        for (; i + 16 <= dh; i += 16) {
          let x0 = v128.load(oa + <usize>(i * 4)), x1 = v128.load(oa + <usize>(i * 4), 16);
          let x2 = v128.load(oa + <usize>(i * 4), 32), x3 = v128.load(oa + <usize>(i * 4), 48);
          let y0 = v128.load(ob + <usize>(i * 4)), y1 = v128.load(ob + <usize>(i * 4), 16);
          let y2 = v128.load(ob + <usize>(i * 4), 32), y3 = v128.load(ob + <usize>(i * 4), 48);
          let vp = vbase + <usize>b * rowB + <usize>(i * 2);
          for (let j = 0; j < n; j++) {
            const h0 = v128.load(vp), h1 = v128.load(vp, 16);
            const v0 = halvesLoScaled(h0), v1 = halvesHiScaled(h0), v2 = halvesLoScaled(h1), v3 = halvesHiScaled(h1);
            const p = v128.load32_splat(pa + <usize>(j * 4)), r = v128.load32_splat(pb + <usize>(j * 4));
            x0 = f32x4.add(x0, f32x4.mul(p, v0)); x1 = f32x4.add(x1, f32x4.mul(p, v1));
            x2 = f32x4.add(x2, f32x4.mul(p, v2)); x3 = f32x4.add(x3, f32x4.mul(p, v3));
            y0 = f32x4.add(y0, f32x4.mul(r, v0)); y1 = f32x4.add(y1, f32x4.mul(r, v1));
            y2 = f32x4.add(y2, f32x4.mul(r, v2)); y3 = f32x4.add(y3, f32x4.mul(r, v3));
            vp += rowB;
          }
          v128.store(oa + <usize>(i * 4), x0); v128.store(oa + <usize>(i * 4), x1, 16);
          v128.store(oa + <usize>(i * 4), x2, 32); v128.store(oa + <usize>(i * 4), x3, 48);
          if (two) {
            v128.store(ob + <usize>(i * 4), y0); v128.store(ob + <usize>(i * 4), y1, 16);
            v128.store(ob + <usize>(i * 4), y2, 32); v128.store(ob + <usize>(i * 4), y3, 48);
          }
        }
        for (; i < dh; i += 4) {
          let x0 = v128.load(oa + <usize>(i * 4)), y0 = v128.load(ob + <usize>(i * 4));
          let vp = vbase + <usize>b * rowB + <usize>(i * 2);
          for (let j = 0; j < n; j++) {
            const v0 = halvesLoScaled(v128.load64_zero(vp));
            x0 = f32x4.add(x0, f32x4.mul(v128.load32_splat(pa + <usize>(j * 4)), v0));
            y0 = f32x4.add(y0, f32x4.mul(v128.load32_splat(pb + <usize>(j * 4)), v0));
            vp += rowB;
          }
          v128.store(oa + <usize>(i * 4), x0);
          if (two) v128.store(ob + <usize>(i * 4), y0);
        }
      }
    }
  }
  v128.store(scratch, touch); // keeps the touching loads (scratch's q rows are dead by now)
}
