// Test inputs for the matmul kernels: weight rows that exercise every block bit pattern, and
// activations with varied block scales, zero blocks and an all-zero Q8_K super-block.
import { f32ToF16 } from "../../src/formats/fp16.js";
import type { GgmlType } from "../../src/core/quant-types.js";
import { quantizeTensor } from "../../src/formats/quantize.js";

/** Offsets of the fp16 scale fields inside one block, per type. */
export const HALF_FIELDS: Record<string, number[]> = {
  Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

/** Even rows: values through the reference quantizer (various scales, offsets, outliers). Odd rows
 *  (quantized types): random block bytes with random finite fp16 scales (subnormals included), so every
 *  bit pattern of quants, packed 6-bit scales/mins and high bits occurs. */
export function randomMatrix(t: GgmlType, rows: number, n: number, rand: () => number): Uint8Array {
  const vals = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const scale = [1, 0.02, 30, 1e-3][(r >> 1) % 4], shift = r % 3 === 1 ? 0.5 * scale : 0;
    for (let i = 0; i < n; i++) vals[r * n + i] = (rand() - 0.5) * 2 * scale + shift + (rand() < 0.005 ? 8 * scale : 0);
  }
  const bytes = quantizeTensor(t, vals, n);
  const halves = HALF_FIELDS[t.name];
  if (halves) {
    const rb = (n / t.blockSize) * t.blockBytes;
    for (let r = 1; r < rows; r += 2) {
      for (let i = r * rb; i < (r + 1) * rb; i++) bytes[i] = (rand() * 256) | 0;
      for (let b = r * rb; b < (r + 1) * rb; b += t.blockBytes) {
        for (const off of halves) {
          const mag = rand() < 0.05 ? 3e-6 * rand() /* fp16 subnormal */ : 10 ** (-3 + 3 * rand());
          const h = f32ToF16((rand() < 0.3 ? -1 : 1) * mag);
          bytes[b + off] = h & 0xff; bytes[b + off + 1] = h >> 8;
        }
      }
    }
  }
  return bytes;
}

export function randomActivations(nTok: number, n: number, rand: () => number): Float32Array {
  const x = new Float32Array(nTok * n);
  for (let t = 0; t < nTok; t++) {
    for (let i = 0; i < n; i++) {
      const blk = (i >> 5) % 7;
      x[t * n + i] = blk === 6 && t % 2 === 1 ? 0 : (rand() - 0.5) * (blk + 1) * (1 + t % 5) + (blk === 5 ? 0.7 : 0);
    }
    if (t % 3 === 2 && n >= 512) x.fill(0, t * n + 256, t * n + 512); // an all-zero super-block (Q8_K d = 0)
  }
  return x;
}
