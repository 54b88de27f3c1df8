// Synthetic LFM2-MoE GGUF files in the published MoE shapes (spec §2.1–2.2), written straight to disk:
// quantized matrices are random Q4_0 blocks (random nibbles, a random-sign fp16 scale per block giving
// the generator's usual value spread) streamed in 64 MiB pieces, so a 4.7 GB file never sits in JS memory.
// Norms, conv kernels, the router and the expert bias are F32 from the seeded float generator.
import { closeSync, openSync, writeSync } from "node:fs";
import { encodeGgufHeader } from "../src/formats/gguf-writer.js";
import { quantizeTensor } from "../src/formats/quantize.js";
import { f32ToF16 } from "../src/formats/fp16.js";
import { GGML } from "../src/core/quant-types.js";
import { mulberry32, randomTensor, syntheticMetadata, syntheticPlan, type SyntheticOptions } from "../src/models/synthetic.js";

export const MOE_SHAPES = {
  // LFM2-8B-A1B: attention at 2, 6, 10, 14, 18, 21; dense layers 0–1 of 7168; 32 experts × 1792, top-4
  "8B-A1B": { shape: { hiddenSize: 2048, nLayers: 24, nHeads: 32, nKv: 8, ffDim: 7168, attn: [2, 6, 10, 14, 18, 21], vocabSize: 65536 },
    moe: { nExperts: 32, nUsed: 4, expertFfDim: 1792, leadingDense: 2 } },
  // LFM2-24B-A2B: 40 layers (30 conv + 10 attention), 64 experts × 1536, top-4. The attention placement and the
  // dense layers' width are UNCONFIRMED (spec §2.1): attention every 4th layer from 2 (2, 6, …, 38) and 7168 are guesses.
  "24B-A2B": { shape: { hiddenSize: 2048, nLayers: 40, nHeads: 32, nKv: 8, ffDim: 7168, attn: [2, 6, 10, 14, 18, 22, 26, 30, 34, 38], vocabSize: 65536 },
    moe: { nExperts: 64, nUsed: 4, expertFfDim: 1536, leadingDense: 2 } },
} as const;
export type MoeShapeName = keyof typeof MOE_SHAPES;

const Q4_0_BLOCK = 18, PIECE_BLOCKS = (64 << 20) / Q4_0_BLOCK | 0;
/** std of (q − 8) for q uniform in 0..15 */
const NIBBLE_STD = Math.sqrt((16 * 16 - 1) / 12);

/** Write `name`'s file to `path` with Q4_0 matrices; returns its size in bytes. */
export function writeMoeGguf(path: string, name: MoeShapeName, seed = 1): number {
  const { shape, moe } = MOE_SHAPES[name];
  const opts: SyntheticOptions = { shape: { ...shape, attn: [...shape.attn] }, moe: { ...moe }, weightType: "Q4_0", seed, name: `LFM2-${name} shape (random Q4_0 weights)` };
  const { plan } = syntheticPlan(opts);
  const bytesOf = (t: (typeof plan)[number]) => t.type === GGML.Q4_0 ? (t.shape.reduce((a, b) => a * b, 1) / 32) * Q4_0_BLOCK : t.shape.reduce((a, b) => a * b, 1) * 4;
  const header = encodeGgufHeader(syntheticMetadata(opts.shape as any, opts), plan.map((t) => ({ ...t, byteLength: bytesOf(t) })));
  const fd = openSync(path, "w");
  let written = 0;
  const put = (b: Uint8Array) => { let o = 0; while (o < b.length) o += writeSync(fd, b, o); written += b.length; };
  try {
    for (const h of header) put(h);
    const piece = new Uint8Array(PIECE_BLOCKS * Q4_0_BLOCK + 4);
    const words = new Uint32Array(piece.buffer, 0, piece.length >> 2);
    const view = new DataView(piece.buffer);
    let x = (seed * 2654435761) >>> 0 || 1;
    const rand = mulberry32(seed);
    for (const t of plan) {
      const n = bytesOf(t);
      if (t.type === GGML.Q4_0) {
        // 256 scales around std / NIBBLE_STD (×0.75…1.25), half of them negative so the mean weight is 0
        const scales = new Uint16Array(256);
        for (let i = 0; i < 256; i++) scales[i] = f32ToF16((i & 1 ? -1 : 1) * (t.std / NIBBLE_STD) * (0.75 + rand() * 0.5));
        for (let left = n / Q4_0_BLOCK; left > 0;) {
          const blocks = Math.min(left, PIECE_BLOCKS);
          for (let i = 0, end = Math.ceil((blocks * Q4_0_BLOCK) / 4); i < end; i++) { // xorshift32
            x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; words[i] = x;
          }
          for (let b = 0; b < blocks; b++) view.setUint16(b * Q4_0_BLOCK, scales[piece[b * Q4_0_BLOCK + 2] ^ piece[b * Q4_0_BLOCK + 9]], true);
          put(piece.subarray(0, blocks * Q4_0_BLOCK));
          left -= blocks;
        }
      } else {
        const count = t.shape.reduce((a, b) => a * b, 1);
        put(quantizeTensor(t.type, randomTensor(rand, count, t.std, t.mean), t.shape[0]));
      }
      const pad = (32 - (n % 32)) % 32;
      if (pad) put(new Uint8Array(pad));
    }
  } finally { closeSync(fd); }
  return written;
}
