// Synthetic LFM2.5-Audio speech-out files with seeded weights, in the layouts the public sources define
// (docs/lfm2-audio-out.md): the detokenizer backbone as an `lfm2` GGUF whose `lin` is `dense_2` (1282 wide, with
// bias, `embedding_length_out`, pooling none) and optional `lfm2.attention.sliding_window`; and a vocoder GGUF in
// llama.cpp's convert_vocoder_to_gguf.py naming (`emb.emb.weight`, and the audio head when asked for).
import { encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../../formats/gguf-writer.js";
import { GGML, type GgmlTypeName } from "../../core/quant-types.js";
import { mulberry32, randomTensor, syntheticMetadata, syntheticWeights, type SyntheticShape } from "../synthetic.js";
import { quantizeTensor } from "../../formats/quantize.js";
import { DETOK_CODEBOOKS, DETOK_CODES, DETOK_N_FFT } from "./detokenizer.js";

/** The published detokenizer's shape (3P inspection; docs §3): D 512, 8 layers, attention at 2, 4, 6. */
export const DETOKENIZER_SHAPE: SyntheticShape = { hiddenSize: 512, nLayers: 8, nHeads: 16, nKv: 8, ffDim: 2304, attn: [2, 4, 6], vocabSize: 65536 };
/** A small one with the same layer pattern, for tests. */
export const TINY_DETOKENIZER_SHAPE: SyntheticShape = { hiddenSize: 64, nLayers: 8, nHeads: 4, nKv: 2, ffDim: 128, attn: [2, 4, 6], vocabSize: 2048 };

export interface SyntheticDetokenizerOptions {
  shape?: SyntheticShape;
  seed?: number;
  /** `lfm2.attention.sliding_window` (30 in the published model); 0 leaves it out (full causal attention). */
  slidingWindow?: number;
  /** Type of the 2-D weights (default F32). */
  weightType?: GgmlTypeName;
}

/** The detokenizer backbone GGUF (norms, conv kernels and dense_2 in F32 unless weightType says otherwise). */
export function syntheticDetokenizerGguf(o: SyntheticDetokenizerOptions = {}): Uint8Array[] {
  const shape = o.shape ?? TINY_DETOKENIZER_SHAPE;
  const embedding = { outDim: 2 * (DETOK_N_FFT / 2 + 1), pooling: 0, bias: true };
  const { tensors } = syntheticWeights({ shape, weightType: o.weightType ?? "F32", seed: o.seed ?? 77, embedding });
  const meta: Record<string, GgufWriteValue> = syntheticMetadata(shape, { embedding, name: "LFM2.5-Audio detokenizer (synthetic)" });
  const window = o.slidingWindow ?? 30;
  if (window > 0) meta["lfm2.attention.sliding_window"] = { type: "u32", value: window };
  // keep log-magnitudes small (the head's exp must not overflow): scale the projection down
  const out: GgufWriteTensor[] = tensors.map((t) => {
    const v = t.name.startsWith("dense_2.") ? t.values.map((x) => x * 0.05) : t.values;
    return { name: t.name, shape: t.shape, type: t.type, data: quantizeTensor(t.type, v, t.shape[0]) };
  });
  return encodeGguf(meta, out);
}

/** A vocoder GGUF holding the detokenizer's code embeddings `emb.emb.weight` {D, 8·2048} (F32). */
export function syntheticVocoderGguf(dim: number, seed = 91, extra: GgufWriteTensor[] = [], meta: Record<string, GgufWriteValue> = {}): Uint8Array[] {
  const rand = mulberry32(seed);
  const table = randomTensor(rand, DETOK_CODEBOOKS * DETOK_CODES * dim, 1);
  const t: GgufWriteTensor = { name: "emb.emb.weight", shape: [dim, DETOK_CODEBOOKS * DETOK_CODES], type: GGML.F32, data: new Uint8Array(table.buffer) };
  return encodeGguf({ "general.architecture": { type: "string", value: "this model cannot be used as LLM, use it via --model-vocoder in TTS examples" },
    "general.alignment": { type: "u32", value: 32 }, ...meta }, [t, ...extra]);
}

/** Seeded audio-head tensors (llama.cpp vocoder names, F32) and the two keys llama.cpp reads. */
export function syntheticAudioHead(o: { backboneDim: number; dim: number; nLayers: number; ffDim: number; seed?: number }):
  { tensors: GgufWriteTensor[]; meta: Record<string, GgufWriteValue> } {
  const rand = mulberry32(o.seed ?? 2024), { backboneDim: D, dim: Dd, ffDim: F } = o, dh = Dd / 32, V = 2049;
  const t: GgufWriteTensor[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    const v = randomTensor(rand, shape.reduce((a, b) => a * b, 1), std, mean);
    t.push({ name, shape, type: GGML.F32, data: new Uint8Array(v.buffer) });
  };
  add("depth_linear.weight", [D, 8 * Dd], 1 / Math.sqrt(D)); add("depth_linear.bias", [8 * Dd], 0.1);
  for (let l = 0; l < o.nLayers; l++) {
    const p = `depthformer.layers.${l}.`;
    add(p + "operator_norm.weight", [Dd], 0.1, 1); add(p + "operator.qkv_proj.weight", [Dd, Dd + 16 * dh], 1 / Math.sqrt(Dd));
    add(p + "operator.attention.q_layernorm.weight", [dh], 0.1, 1); add(p + "operator.attention.k_layernorm.weight", [dh], 0.1, 1);
    add(p + "operator.out_proj.weight", [Dd, Dd], 0.5 / Math.sqrt(Dd)); add(p + "ffn_norm.weight", [Dd], 0.1, 1);
    add(p + "feed_forward.w1.weight", [Dd, F], 1 / Math.sqrt(Dd)); add(p + "feed_forward.w2.weight", [F, Dd], 0.5 / Math.sqrt(F));
    add(p + "feed_forward.w3.weight", [Dd, F], 1 / Math.sqrt(Dd));
  }
  for (let c = 0; c < 8; c++) {
    const p = `depth_embeddings.${c}.`;
    add(p + "embedding.weight", [Dd, V], 1); add(p + "embedding_norm.weight", [Dd], 0.1, 1); add(p + "to_logits.weight", [Dd, V], 0.1);
  }
  add("audio_embedding.embedding.weight", [D, 8 * V], 1 / Math.sqrt(8)); add("audio_embedding.embedding_norm.weight", [D], 0.1, 1);
  add("audio_embedding.to_logits.weight", [D, 8 * V], 0.01);
  return { tensors: t, meta: { depthformer_n_layer: { type: "u32", value: o.nLayers }, depthformer_n_embd: { type: "u32", value: Dd } } };
}
