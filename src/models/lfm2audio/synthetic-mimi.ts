// Synthetic Mimi decoder weights (seeded, the real shapes by default, scaled so activations stay near unit size)
// in moshi's `tokenizer-*.safetensors` naming — the layout LFM2-Audio-1.5B ships — or in transformers' naming
// (q/k rows permuted for its rotate-half RoPE, as its conversion script does). Decoder tensors only: the encoder
// half of a real checkpoint is never read.
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../formats/safetensors-writer.js";
import { mulberry32, randomTensor } from "../synthetic.js";
import { permuteRopeForHf, type MimiLayout } from "./mimi.js";

export interface SyntheticMimiShape {
  dim: number; codebookDim: number; codebookSize: number; acousticCodebooks: number;
  layers: number; heads: number; ffDim: number; nFilters: number; ratios: number[]; upsampleStride: number;
  /** Residual blocks per SEANet stage (block j dilated 2^j; moshi's Mimi has 1). */
  residualLayers?: number;
}

/** moshi's _mimi_config decoder (loaders.py); the checkpoint holds 31 acoustic codebooks, LFM2-Audio reads 7. */
export const MIMI_SHAPE: SyntheticMimiShape = {
  dim: 512, codebookDim: 256, codebookSize: 2048, acousticCodebooks: 7, layers: 8, heads: 8, ffDim: 2048,
  nFilters: 64, ratios: [8, 6, 5, 4], upsampleStride: 2,
};
/** A small one with the same structure (for the end-to-end speech test). */
export const TINY_MIMI_SHAPE: SyntheticMimiShape = {
  dim: 64, codebookDim: 32, codebookSize: 2048, acousticCodebooks: 7, layers: 2, heads: 4, ffDim: 128,
  nFilters: 8, ratios: [8, 6, 5, 4], upsampleStride: 2,
};

export function syntheticMimiSafetensors(o: { shape?: SyntheticMimiShape; seed?: number; layout?: MimiLayout } = {}):
  Uint8Array[] {
  const s = o.shape ?? MIMI_SHAPE, rand = mulberry32(o.seed ?? 1234), hf = o.layout === "hf", D = s.dim;
  const out: SafetensorsWriteTensor[] = [];
  const put = (name: string, shape: number[], v: Float32Array) =>
    out.push({ name, dtype: "F32", shape, data: new Uint8Array(v.buffer) });
  const rnd = (shape: number[], std: number, mean = 0) => randomTensor(rand, shape.reduce((a, b) => a * b, 1), std, mean);
  // quantizer: EMA sums and usages (codebook = sum / usage), 1×1 output projections
  for (const [first, count] of [[true, 1], [false, s.acousticCodebooks]] as const) {
    const q = hf ? `quantizer.${first ? "semantic" : "acoustic"}_residual_vector_quantizer.`
      : `quantizer.${first ? "rvq_first" : "rvq_rest"}.`;
    for (let k = 0; k < count; k++) {
      const p = hf ? `${q}layers.${k}.codebook.` : `${q}vq.layers.${k}._codebook.`;
      const usage = rnd([s.codebookSize], 0.4, 1);
      const sum = rnd([s.codebookSize, s.codebookDim], 1);
      for (let r = 0; r < s.codebookSize; r++) {
        for (let j = 0; j < s.codebookDim; j++) sum[r * s.codebookDim + j] *= usage[r];
      }
      put(p + (hf ? "embed_sum" : "embedding_sum"), [s.codebookSize, s.codebookDim], sum);
      put(p + "cluster_usage", [s.codebookSize], usage);
      put(p + (hf ? "initialized" : "_initialized"), [1], new Float32Array([1]));
    }
    const fanIn = s.codebookDim * (first ? 1 : s.acousticCodebooks);
    put(q + "output_proj.weight", [D, s.codebookDim, 1], rnd([D, s.codebookDim, 1], 1 / Math.sqrt(fanIn)));
  }
  const upShape = [D, 1, 2 * s.upsampleStride];
  put(hf ? "upsample.conv.weight" : "upsample.convtr.convtr.convtr.weight", upShape, rnd(upShape, 0.5, 0.5));
  for (let l = 0; l < s.layers; l++) {
    const p = hf ? `decoder_transformer.layers.${l}.` : `decoder_transformer.transformer.layers.${l}.`;
    const inProj = rnd([3 * D, D], 1 / Math.sqrt(D));
    if (hf) {
      put(p + "self_attn.q_proj.weight", [D, D], permuteRopeForHf(inProj.slice(0, D * D), s.heads, D));
      put(p + "self_attn.k_proj.weight", [D, D], permuteRopeForHf(inProj.slice(D * D, 2 * D * D), s.heads, D));
      put(p + "self_attn.v_proj.weight", [D, D], inProj.slice(2 * D * D));
    } else put(p + "self_attn.in_proj_weight", [3 * D, D], inProj);
    put(p + (hf ? "self_attn.o_proj.weight" : "self_attn.out_proj.weight"), [D, D], rnd([D, D], 1 / Math.sqrt(D)));
    for (const n of hf ? ["input_layernorm", "post_attention_layernorm"] : ["norm1", "norm2"]) {
      put(`${p}${n}.weight`, [D], rnd([D], 0.1, 1)); put(`${p}${n}.bias`, [D], rnd([D], 0.1));
    }
    put(p + (hf ? "mlp.fc1.weight" : "linear1.weight"), [s.ffDim, D], rnd([s.ffDim, D], 1 / Math.sqrt(D)));
    put(p + (hf ? "mlp.fc2.weight" : "linear2.weight"), [D, s.ffDim], rnd([D, s.ffDim], 1 / Math.sqrt(s.ffDim)));
    put(p + (hf ? "self_attn_layer_scale.scale" : "layer_scale_1.scale"), [D], rnd([D], 0.1, 0.2));
    put(p + (hf ? "mlp_layer_scale.scale" : "layer_scale_2.scale"), [D], rnd([D], 0.1, 0.2));
  }
  // SEANet decoder: model.0 conv, per stage [ELU, ConvTranspose, residual block], then ELU and the last conv
  const conv = (idx: string, cout: number, cin: number, k: number, tr = false) => {
    const base = hf ? `decoder.layers.${idx}.conv` : `decoder.model.${idx}.${tr ? "convtr.convtr" : "conv.conv"}`;
    const shape = tr ? [cin, cout, k] : [cout, cin, k];
    put(base + ".weight", shape, rnd(shape, 1 / Math.sqrt(tr ? 2 * cin : cin * k)));
    put(base + ".bias", [cout], rnd([cout], 0.05));
  };
  let mult = 1 << s.ratios.length, idx = 0;
  conv(String(idx++), mult * s.nFilters, D, 7);
  for (const r of s.ratios) {
    const ch = mult * s.nFilters;
    conv(String(idx + 1), ch / 2, ch, 2 * r, true);
    const blocks = s.residualLayers ?? 1;
    for (let j = 0; j < blocks; j++) {
      conv(`${idx + 2 + j}.block.1`, ch / 4, ch / 2, 3);
      conv(`${idx + 2 + j}.block.3`, ch / 2, ch / 4, 1);
    }
    idx += 2 + blocks; mult >>= 1;
  }
  conv(String(idx + 1), 1, s.nFilters, 3);
  return encodeSafetensors(out, { format: "pt" });
}
