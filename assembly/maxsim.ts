// MaxSim (ColBERT late interaction) over an index's documents: score[d] = Σ_i max_r q_i · v_r over the
// rows r of document d. One call scores a range of documents; the query block (a few KiB) stays in cache
// while every document row is read once and dotted against four query rows at a time.
// Plain SIMD only (no relaxed ops): the int8 path multiplies an i16 query by sign-extended i8 rows with
// i32x4.dot_i16x8_s (pmaddwd), exact integer sums, correct in every tier of every engine.
// offsets: i32 [d1 + 1] row offsets (document d = rows [offsets[d], offsets[d + 1])); best: f32 [nq] scratch;
// out: f32 per document (empty documents score 0).
import { hsumF32, hsumI32 } from "./common";

/** f32 query [nq][dim] against f32 rows [rows][dim]. */
export function maxSimF32(q: usize, nq: i32, dim: i32, vecs: usize, offsets: usize, d0: i32, d1: i32,
  best: usize, out: usize): void {
  const rowBytes = <usize>dim * 4, dim4 = dim & ~3, nq4 = nq & ~3;
  for (let d = d0; d < d1; d++) {
    const r0 = load<i32>(offsets + (<usize>d << 2)), r1 = load<i32>(offsets + (<usize>(d + 1) << 2));
    for (let i = 0; i < nq; i++) store<f32>(best + (<usize>i << 2), -Infinity);
    for (let r = r0; r < r1; r++) {
      const v = vecs + <usize>r * rowBytes;
      let i = 0;
      for (; i < nq4; i += 4) {
        const qa = q + <usize>i * rowBytes, qb = qa + rowBytes, qc = qb + rowBytes, qd = qc + rowBytes;
        let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), e = f32x4.splat(0);
        for (let j = 0; j < dim4; j += 4) {
          const o = <usize>j << 2, x = v128.load(v + o);
          a = f32x4.add(a, f32x4.mul(v128.load(qa + o), x));
          b = f32x4.add(b, f32x4.mul(v128.load(qb + o), x));
          c = f32x4.add(c, f32x4.mul(v128.load(qc + o), x));
          e = f32x4.add(e, f32x4.mul(v128.load(qd + o), x));
        }
        let sa = hsumF32(a), sb = hsumF32(b), sc = hsumF32(c), se = hsumF32(e);
        for (let j = dim4; j < dim; j++) {
          const o = <usize>j << 2, x = load<f32>(v + o);
          sa += load<f32>(qa + o) * x; sb += load<f32>(qb + o) * x; sc += load<f32>(qc + o) * x; se += load<f32>(qd + o) * x;
        }
        updateMax(best, i, sa); updateMax(best, i + 1, sb); updateMax(best, i + 2, sc); updateMax(best, i + 3, se);
      }
      for (; i < nq; i++) {
        const qa = q + <usize>i * rowBytes;
        let a = f32x4.splat(0);
        for (let j = 0; j < dim4; j += 4) { const o = <usize>j << 2; a = f32x4.add(a, f32x4.mul(v128.load(qa + o), v128.load(v + o))); }
        let s = hsumF32(a);
        for (let j = dim4; j < dim; j++) s += load<f32>(qa + (<usize>j << 2)) * load<f32>(v + (<usize>j << 2));
        updateMax(best, i, s);
      }
    }
    store<f32>(out + (<usize>d << 2), sumBest(best, nq, r1 > r0));
  }
}

/**
 * int8 rows [rows][dim] with one f32 scale per row, against a query quantised to i16 [nq][dim] with one
 * f32 scale per query row: dot = qScale_i · scale_r · Σ q16·v8. The integer sum must fit i32: each lane
 * adds dim/4 products of |q| ≤ qMax and |v| ≤ 127 (the caller bounds qMax · 127 · dim / 4 < 2³¹).
 */
export function maxSimI8(q: usize, qScales: usize, nq: i32, dim: i32, vecs: usize, scales: usize, offsets: usize,
  d0: i32, d1: i32, best: usize, out: usize): void {
  const qRow = <usize>dim * 2, dim16 = dim & ~15, nq4 = nq & ~3;
  for (let d = d0; d < d1; d++) {
    const r0 = load<i32>(offsets + (<usize>d << 2)), r1 = load<i32>(offsets + (<usize>(d + 1) << 2));
    for (let i = 0; i < nq; i++) store<f32>(best + (<usize>i << 2), -Infinity);
    for (let r = r0; r < r1; r++) {
      const v = vecs + <usize>r * <usize>dim, scale = load<f32>(scales + (<usize>r << 2));
      let i = 0;
      for (; i < nq4; i += 4) {
        const qa = q + <usize>i * qRow, qb = qa + qRow, qc = qb + qRow, qd = qc + qRow;
        let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), e = i32x4.splat(0);
        for (let j = 0; j < dim16; j += 16) {
          const x = v128.load(v + <usize>j), lo = i16x8.extend_low_i8x16_s(x), hi = i16x8.extend_high_i8x16_s(x);
          const o = <usize>j << 1;
          a = i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(v128.load(qa + o), lo), i32x4.dot_i16x8_s(v128.load(qa + o + 16), hi)));
          b = i32x4.add(b, i32x4.add(i32x4.dot_i16x8_s(v128.load(qb + o), lo), i32x4.dot_i16x8_s(v128.load(qb + o + 16), hi)));
          c = i32x4.add(c, i32x4.add(i32x4.dot_i16x8_s(v128.load(qc + o), lo), i32x4.dot_i16x8_s(v128.load(qc + o + 16), hi)));
          e = i32x4.add(e, i32x4.add(i32x4.dot_i16x8_s(v128.load(qd + o), lo), i32x4.dot_i16x8_s(v128.load(qd + o + 16), hi)));
        }
        let sa = hsumI32(a), sb = hsumI32(b), sc = hsumI32(c), se = hsumI32(e);
        for (let j = dim16; j < dim; j++) {
          const x = <i32>load<i8>(v + <usize>j), o = <usize>j << 1;
          sa += <i32>load<i16>(qa + o) * x; sb += <i32>load<i16>(qb + o) * x;
          sc += <i32>load<i16>(qc + o) * x; se += <i32>load<i16>(qd + o) * x;
        }
        updateMax(best, i, <f32>sa * scale * load<f32>(qScales + (<usize>i << 2)));
        updateMax(best, i + 1, <f32>sb * scale * load<f32>(qScales + (<usize>(i + 1) << 2)));
        updateMax(best, i + 2, <f32>sc * scale * load<f32>(qScales + (<usize>(i + 2) << 2)));
        updateMax(best, i + 3, <f32>se * scale * load<f32>(qScales + (<usize>(i + 3) << 2)));
      }
      for (; i < nq; i++) {
        const qa = q + <usize>i * qRow;
        let a = i32x4.splat(0);
        for (let j = 0; j < dim16; j += 16) {
          const x = v128.load(v + <usize>j), o = <usize>j << 1;
          a = i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(v128.load(qa + o), i16x8.extend_low_i8x16_s(x)),
            i32x4.dot_i16x8_s(v128.load(qa + o + 16), i16x8.extend_high_i8x16_s(x))));
        }
        let s = hsumI32(a);
        for (let j = dim16; j < dim; j++) s += <i32>load<i16>(qa + (<usize>j << 1)) * <i32>load<i8>(v + <usize>j);
        updateMax(best, i, <f32>s * scale * load<f32>(qScales + (<usize>i << 2)));
      }
    }
    store<f32>(out + (<usize>d << 2), sumBest(best, nq, r1 > r0));
  }
}

// @ts-ignore: decorator
@inline function updateMax(best: usize, i: i32, s: f32): void {
  const p = best + (<usize>i << 2);
  if (s > load<f32>(p)) store<f32>(p, s);
}

// @ts-ignore: decorator
@inline function sumBest(best: usize, nq: i32, any: bool): f32 {
  if (!any) return 0;
  let total: f32 = 0;
  for (let i = 0; i < nq; i++) total += load<f32>(best + (<usize>i << 2));
  return total;
}
