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
