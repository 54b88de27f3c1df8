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
 * positions [0, pos0 + t] (causal) or [0, kvLen) (bidirectional). kvLen is also the score-row stride
 * (the cache capacity may be passed for causal attention).
 * Work is grouped by KV head: each cached k/v row is converted from fp16 once and used by every
 * query head of its group and every token of the chunk (the conversion, not the FMAs, dominated).
 * scratch: rows·dh + rows·kvLen + dh floats, rows = nTok · nHeads/nKv.
 */
export function attention(q: usize, kCache: usize, vCache: usize, out: usize, nHeads: i32, nKv: i32, dh: i32,
  nTok: i32, pos0: i32, kvLen: i32, causal: i32, scale: f32, scratch: usize): void {
  const group = nHeads / nKv, kvw = nKv * dh, rows = nTok * group;
  const qr = scratch, sc = qr + <usize>(rows * dh) * 4, row = sc + <usize>(rows * kvLen) * 4;
  const span = causal ? pos0 + nTok : kvLen;
  const dhB = <usize>dh * 4;
  for (let g = 0; g < nKv; g++) {
    // queries of this group, rounded to fp16 as llama.cpp's F16 dot does; r = t·group + hh
    for (let t = 0; t < nTok; t++) for (let hh = 0; hh < group; hh++) {
      const src = q + <usize>((t * nHeads + g * group + hh) * dh) * 4, dst = qr + <usize>((t * group + hh) * dh) * 4;
      for (let i = 0; i < dh; i++) store<f32>(dst + <usize>(i * 4), f16ToF32(f32ToF16(load<f32>(src + <usize>(i * 4)))));
    }
    const koff = <usize>(g * dh) * 2;
    // scores: token t sees position j when j ≤ pos0 + t (causal)
    for (let j = 0; j < span; j++) {
      const kp = kCache + <usize>(j * kvw) * 2 + koff;
      for (let i = 0; i < dh; i += 4) v128.store(row + <usize>(i * 4), f16x4ToF32(v128.load16x4_u(kp + <usize>(i * 2))));
      const t0 = causal ? max(0, j - pos0) : 0;
      for (let r = t0 * group; r < rows; r++) {
        const qp = qr + <usize>(r * dh) * 4;
        let acc = f32x4.splat(0);
        for (let i = 0; i < dh; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(row + <usize>(i * 4)), v128.load(qp + <usize>(i * 4))));
        store<f32>(sc + <usize>(r * kvLen + j) * 4, hsumF32(acc) * scale);
      }
    }
    // softmax per row in f32, probabilities rounded to fp16 (llama.cpp converts them for the v product)
    for (let r = 0; r < rows; r++) {
      const len = causal ? pos0 + r / group + 1 : kvLen;
      const sr = sc + <usize>(r * kvLen) * 4;
      let mx: f32 = -Infinity;
      for (let j = 0; j < len; j++) mx = max(mx, load<f32>(sr + <usize>(j * 4)));
      let sum: f64 = 0;
      const vmx = f32x4.splat(mx);
      let j = 0;
      for (; j + 4 <= len; j += 4) {
        const e = expF32x4(f32x4.sub(v128.load(sr + <usize>(j * 4)), vmx));
        v128.store(sr + <usize>(j * 4), e);
        sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
      }
      for (; j < len; j++) {
        const e = f32x4.extract_lane(expF32x4(f32x4.splat(load<f32>(sr + <usize>(j * 4)) - mx)), 0);
        store<f32>(sr + <usize>(j * 4), e);
        sum += e;
      }
      const inv = <f32>(1.0 / sum);
      for (let j = 0; j < len; j++) store<f32>(sr + <usize>(j * 4), f16ToF32(f32ToF16(load<f32>(sr + <usize>(j * 4)) * inv)));
      const t = r / group, hh = r % group;
      memory.fill(out + <usize>((t * nHeads + g * group + hh) * dh) * 4, 0, dhB);
    }
    // out = Σ_j p_j · v_j, positions in increasing order
    for (let j = 0; j < span; j++) {
      const vp = vCache + <usize>(j * kvw) * 2 + koff;
      for (let i = 0; i < dh; i += 4) v128.store(row + <usize>(i * 4), f16x4ToF32(v128.load16x4_u(vp + <usize>(i * 2))));
      const t0 = causal ? max(0, j - pos0) : 0;
      for (let r = t0 * group; r < rows; r++) {
        const p = f32x4.splat(load<f32>(sc + <usize>(r * kvLen + j) * 4));
        const op = out + <usize>(((r / group) * nHeads + g * group + r % group) * dh) * 4;
        for (let i = 0; i < dh; i += 4) {
          const o = op + <usize>(i * 4);
          v128.store(o, f32x4.add(v128.load(o), f32x4.mul(p, v128.load(row + <usize>(i * 4)))));
        }
      }
    }
  }
}
