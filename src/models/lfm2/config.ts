// One typed LFM2 configuration, from GGUF metadata or a Hugging Face config.json (spec §2, §3.2).
import { Lfm2Error } from "../../errors.js";
import { metaNumber, metaNumbers, type GgufValue } from "../../formats/gguf.js";

/** Mixture-of-experts FFN (LFM2-8B-A1B, LFM2-24B-A2B; spec §1.6): layers ≥ leadingDense use experts. */
export interface MoeConfig { nExperts: number; nUsed: number; expertFfDim: number; leadingDense: number }

export interface Lfm2Config {
  /** The registry's name for the architecture: "lfm2", "lfm2moe". */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;        // D
  nLayers: number;
  nHeads: number;            // H
  /** Per layer: KV heads of an attention layer, 0 for a conv layer. */
  kvHeads: number[];
  headDim: number;           // dh
  ffDim: number;
  convL: number;             // short-conv kernel length (3)
  ropeTheta: number;
  normEps: number;
  contextLength: number;     // trained maximum
  /** false: bidirectional encoder (non-causal attention). */
  causal: boolean;
  /**
   * Causal sliding-window attention: a token sees itself and the `slidingWindow − 1` before it (LFM2.5-Audio's
   * detokenizer, window 30). The KV cache then keeps only a ring of recent rows, whatever the sequence length.
   */
  slidingWindow?: number;
  moe?: MoeConfig;
  /** Retrieval encoders: width of the `dense_2` projection (`embedding_length_out`). */
  embeddingOut?: number;
  /** `pooling_type` as llama.cpp numbers it: 0 none (one vector per token), 1 mean, 2 cls (first), 3 last. */
  pooling?: number;
}

export const isAttention = (c: Lfm2Config, l: number) => c.kvHeads[l] > 0;

function must(v: number | undefined, key: string): number {
  if (v === undefined || !Number.isFinite(v)) throw new Lfm2Error("BAD_METADATA", `missing metadata ${key}`);
  return v;
}

const MAX_LAYERS = 1024;

/** The layer count sizes per-layer arrays, so it is checked before any is built (a hostile 2^31 must not allocate). */
function layerCount(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_LAYERS) throw new Lfm2Error("BAD_METADATA", `layer count ${String(v)} is out of range`);
  return v;
}

/** The LFM2 trunk's configuration from GGUF keys `<arch>.*` (the registry has checked the architecture). */
export function configFromGguf(meta: Map<string, GgufValue>, arch = "lfm2"): Lfm2Config {
  const k = (s: string) => `${arch}.${s}`;
  const hiddenSize = must(metaNumber(meta, k("embedding_length")), k("embedding_length"));
  const nLayers = layerCount(must(metaNumber(meta, k("block_count")), k("block_count")));
  const nHeads = must(metaNumber(meta, k("attention.head_count")), k("attention.head_count"));
  let kvHeads = metaNumbers(meta, k("attention.head_count_kv"));
  if (!kvHeads) throw new Lfm2Error("BAD_METADATA", `missing metadata ${k("attention.head_count_kv")}`);
  if (kvHeads.length === 1) kvHeads = new Array(nLayers).fill(kvHeads[0]);
  const tokens = meta.get("tokenizer.ggml.tokens");
  const vocabSize = metaNumber(meta, k("vocab_size")) ?? (Array.isArray(tokens) ? tokens.length : undefined);
  const causal = meta.get(k("attention.causal"));
  const cfg: Lfm2Config = {
    architecture: arch,
    vocabSize: must(vocabSize, k("vocab_size")),
    hiddenSize,
    nLayers,
    nHeads,
    kvHeads,
    headDim: metaNumber(meta, k("attention.key_length")) ?? hiddenSize / nHeads,
    ffDim: must(metaNumber(meta, k("feed_forward_length")), k("feed_forward_length")),
    convL: metaNumber(meta, k("shortconv.l_cache")) ?? 3,
    ropeTheta: metaNumber(meta, k("rope.freq_base")) ?? 1e6,
    normEps: metaNumber(meta, k("attention.layer_norm_rms_epsilon")) ?? 1e-5,
    contextLength: metaNumber(meta, k("context_length")) ?? 128000,
    causal: causal === undefined ? true : causal === true,
  };
  const out = metaNumber(meta, k("embedding_length_out")), pooling = metaNumber(meta, k("pooling_type"));
  if (out !== undefined) cfg.embeddingOut = out;
  if (pooling !== undefined) cfg.pooling = pooling;
  const window = metaNumber(meta, k("attention.sliding_window"));
  if (window !== undefined) cfg.slidingWindow = window;
  validateConfig(cfg);
  return cfg;
}

/** HF config.json (both the original block_* keys and the newer transformers names; spec §2.1). */
export function configFromHf(j: Record<string, any>): Lfm2Config {
  const mt = j.model_type ?? j.architectures?.[0];
  if (mt !== "lfm2" && mt !== "Lfm2ForCausalLM") {
    throw new Lfm2Error("UNSUPPORTED_ARCH", `model_type "${mt}" is not supported by this runtime (expected "lfm2")`);
  }
  const D = j.hidden_size ?? j.block_dim;
  const nLayers = layerCount(j.num_hidden_layers);
  const nHeads = j.num_attention_heads ?? j.num_heads;
  const nKv = j.num_key_value_heads;
  let attn: boolean[];
  if (Array.isArray(j.layer_types)) attn = j.layer_types.map((t: string) => t === "full_attention");
  else if (Array.isArray(j.full_attn_idxs)) attn = Array.from({ length: nLayers }, (_, i) => j.full_attn_idxs.includes(i));
  else throw new Lfm2Error("BAD_METADATA", "config.json has neither layer_types nor full_attn_idxs");
  let ff: number = j.block_ff_dim ?? j.intermediate_size;
  if (j.block_auto_adjust_ff_dim) {
    ff = Math.trunc((2 * ff) / 3);
    if (j.block_ffn_dim_multiplier != null) ff = Math.trunc(j.block_ffn_dim_multiplier * ff);
    const m = j.block_multiple_of ?? 256;
    ff = m * Math.ceil(ff / m);
  }
  const cfg: Lfm2Config = {
    architecture: "lfm2",
    vocabSize: j.vocab_size,
    hiddenSize: D,
    nLayers,
    nHeads,
    kvHeads: attn.map((a) => (a ? nKv : 0)),
    headDim: j.head_dim ?? D / nHeads,
    ffDim: ff,
    convL: j.conv_L_cache ?? 3,
    ropeTheta: j.rope_theta ?? j.rope_parameters?.rope_theta ?? j.theta ?? 1e6,
    normEps: j.norm_eps ?? j.block_norm_eps ?? 1e-5,
    contextLength: j.max_position_embeddings ?? 128000,
    causal: true,
  };
  validateConfig(cfg);
  return cfg;
}

export function validateConfig(c: Lfm2Config) {
  const ints: [string, number, number][] = [["vocab size", c.vocabSize, 1 << 22], ["hidden size", c.hiddenSize, 1 << 16],
    ["layer count", c.nLayers, MAX_LAYERS], ["head count", c.nHeads, 1024], ["head dim", c.headDim, 1024],
    ["feed-forward size", c.ffDim, 1 << 18], ["conv length", c.convL, 16], ["context length", c.contextLength, 1 << 24]];
  for (const [what, v, max] of ints) {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Lfm2Error("BAD_METADATA", `${what} ${v} is out of range`);
  }
  if (c.kvHeads.length !== c.nLayers) throw new Lfm2Error("BAD_METADATA", `head_count_kv has ${c.kvHeads.length} entries for ${c.nLayers} layers`);
  for (const h of c.kvHeads) if (!Number.isInteger(h) || h < 0 || h > c.nHeads || (h > 0 && c.nHeads % h !== 0)) {
    throw new Lfm2Error("BAD_METADATA", `KV head count ${h} does not divide head count ${c.nHeads}`);
  }
  // the SIMD kernels step 8 floats through a row (4 through half a head in RoPE) and have no scalar
  // tails there: other sizes would read and write past rows and give wrong logits without an error
  for (const [what, v] of [["hidden size", c.hiddenSize], ["feed-forward size", c.ffDim], ["head dim", c.headDim]] as const) {
    if (v % 8 !== 0) throw new Lfm2Error("BAD_METADATA", `${what} ${v} is not a multiple of 8, which this runtime's kernels require`);
  }
  if (c.convL < 2) throw new Lfm2Error("BAD_METADATA", `conv length ${c.convL} is out of range (the short conv keeps L-1 >= 1 past inputs)`);
  if (!(c.normEps > 0 && c.normEps < 1)) throw new Lfm2Error("BAD_METADATA", `rms epsilon ${c.normEps} is out of range`);
  if (!(c.ropeTheta > 0)) throw new Lfm2Error("BAD_METADATA", `rope base ${c.ropeTheta} is out of range`);
  if (c.embeddingOut !== undefined && (!Number.isInteger(c.embeddingOut) || c.embeddingOut < 1 || c.embeddingOut > 1 << 16)) {
    throw new Lfm2Error("BAD_METADATA", `embedding_length_out ${c.embeddingOut} is out of range`);
  }
  if (c.pooling !== undefined && ![0, 1, 2, 3].includes(c.pooling)) {
    throw new Lfm2Error("BAD_METADATA", `pooling_type ${c.pooling} is not supported (0 none, 1 mean, 2 cls, 3 last)`);
  }
  if (c.slidingWindow !== undefined && (!Number.isInteger(c.slidingWindow) || c.slidingWindow < 1 || c.slidingWindow > 1 << 16 || !c.causal)) {
    throw new Lfm2Error("BAD_METADATA", `sliding window ${c.slidingWindow} is out of range (1..65536, causal models only)`);
  }
  // the centred window needs as many taps after the token as before it
  if (!c.causal && c.convL % 2 === 0) throw new Lfm2Error("BAD_METADATA", `a bidirectional model needs an odd conv length, got ${c.convL}`);
}

/** Shapes of the published dense sizes (spec §2.1), used by the synthetic-model generator. */
export const LFM2_SHAPES = {
  "350M": { hiddenSize: 1024, nLayers: 16, nHeads: 16, nKv: 8, ffDim: 4608, attn: [2, 5, 8, 10, 12, 14], vocabSize: 65536 },
  "700M": { hiddenSize: 1536, nLayers: 16, nHeads: 24, nKv: 8, ffDim: 6912, attn: [2, 5, 8, 10, 12, 14], vocabSize: 65536 },
  "1.2B": { hiddenSize: 2048, nLayers: 16, nHeads: 32, nKv: 8, ffDim: 8192, attn: [2, 5, 8, 10, 12, 14], vocabSize: 65536 },
  "2.6B": { hiddenSize: 2048, nLayers: 30, nHeads: 32, nKv: 8, ffDim: 10752, attn: [2, 5, 9, 13, 17, 21, 24, 27], vocabSize: 65536 },
  tiny: { hiddenSize: 256, nLayers: 6, nHeads: 4, nKv: 2, ffDim: 512, attn: [2, 4], vocabSize: 2048 },
} as const;
export type Lfm2ShapeName = keyof typeof LFM2_SHAPES;
