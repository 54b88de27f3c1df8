// Synthetic LFM2.5-Audio speech-out files with seeded weights, in the layouts the public sources define
// (docs/lfm2-audio-out.md): the detokenizer backbone as an `lfm2` GGUF whose `lin` is `dense_2` (1282 wide, with
// bias, `embedding_length_out`, pooling none) and optional `lfm2.attention.sliding_window`; and a vocoder GGUF in
// llama.cpp's convert_vocoder_to_gguf.py naming (`emb.emb.weight`, and the audio head when asked for).
import { encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../../formats/gguf-writer.js";
import { GGML } from "../../core/quant-types.js";
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
}

/** The detokenizer backbone GGUF (F32). */
export function syntheticDetokenizerGguf(o: SyntheticDetokenizerOptions = {}): Uint8Array[] {
  const shape = o.shape ?? TINY_DETOKENIZER_SHAPE;
  const embedding = { outDim: 2 * (DETOK_N_FFT / 2 + 1), pooling: 0, bias: true };
  const { tensors } = syntheticWeights({ shape, weightType: "F32", seed: o.seed ?? 77, embedding });
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
