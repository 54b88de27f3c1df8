// Synthetic LFM2 GGUF files with seeded random weights in real shapes: the built-in demo model,
// test fixtures, and benchmark inputs. Weight scales are chosen so activations stay O(1) and greedy
// logit margins are realistic (logit std ≈ 3).
import { encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../formats/gguf-writer.js";
import { GGML, ggmlTypeByName, type GgmlType, type GgmlTypeName } from "../core/quant-types.js";
import { quantizeTensor } from "../formats/quantize.js";
import { buildSyntheticVocab } from "../text/synthetic-vocab.js";
import { LFM2_SHAPES, type Lfm2ShapeName } from "./lfm2/config.js";

/** A model shape: the published ones (LFM2_SHAPES) or any other with the same fields. */
export interface SyntheticShape {
  hiddenSize: number; nLayers: number; nHeads: number; nKv: number; ffDim: number; attn: readonly number[]; vocabSize: number;
}

/** LFM2-MoE (arch lfm2moe): layers ≥ leadingDense get nExperts SwiGLU experts of expertFfDim, nUsed per token. */
export interface SyntheticMoe { nExperts: number; nUsed: number; expertFfDim: number; leadingDense: number }

export interface SyntheticOptions {
  shape?: Lfm2ShapeName | SyntheticShape;
  /** Write an LFM2-MoE file (router and expert-bias tensors in F32, as llama.cpp's quantizer keeps them). */
  moe?: SyntheticMoe;
  /** Type of the 2-D weight matrices (norms and conv kernels stay F32, as in published files). */
  weightType?: GgmlTypeName;
  /** Type of token_embd (defaults to weightType). */
  embedType?: GgmlTypeName;
  /** Write an untied `output.weight` too. */
  untiedOutput?: boolean;
  /** Name the final norm `output_norm` (Ollama's converter) instead of `token_embd_norm`. */
  finalNormName?: "token_embd_norm" | "output_norm";
  seed?: number;
  /** A retrieval encoder (LFM2-ColBERT / LFM2.5-Embedding style): dense_2 projection and pooling keys. */
  embedding?: SyntheticEmbeddingOptions;
  chatTemplate?: string;
  name?: string;
}

export interface SyntheticEmbeddingOptions {
  /** Width of `dense_2.weight` {n_embd, outDim} (`lfm2.embedding_length_out`). */
  outDim: number;
  /** Write `dense_2.bias` too. */
  bias?: boolean;
  /** `lfm2.pooling_type` (0 none, 1 mean, 2 cls, 3 last); omitted: not written. */
  pooling?: number;
  /** false: `lfm2.attention.causal = false` (bidirectional encoder). */
  causal?: boolean;
}

/** Deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values with standard deviation `std` around `mean`. */
export function randomTensor(rand: () => number, n: number, std: number, mean = 0): Float32Array {
  const a = std * Math.sqrt(3) * 2;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = mean + (rand() - 0.5) * a;
  return x;
}

export interface SyntheticTensor { name: string; shape: number[]; type: GgmlType; values: Float32Array }

/** One tensor of a synthetic model before its values exist: uniform values of `std` around `mean`. */
export interface SyntheticTensorPlan { name: string; shape: number[]; type: GgmlType; std: number; mean: number }

const shapeOf = (opts: SyntheticOptions): SyntheticShape => (typeof opts.shape === "object" ? opts.shape : LFM2_SHAPES[opts.shape ?? "tiny"]);

/** Every tensor of a synthetic model in file order (names, ggml shapes, types, value scales). */
export function syntheticPlan(opts: SyntheticOptions = {}): { plan: SyntheticTensorPlan[]; shape: SyntheticShape } {
  const shape = shapeOf(opts);
  const wType = ggmlTypeByName(opts.weightType ?? "F32");
  const eType = ggmlTypeByName(opts.embedType ?? opts.weightType ?? "F32");
  const D = shape.hiddenSize, ff = shape.ffDim, dh = D / shape.nHeads, V = shape.vocabSize;
  const plan: SyntheticTensorPlan[] = [];
  const mat = (name: string, nIn: number, nOut: number, gain = 0.7, type = wType) =>
    plan.push({ name, shape: [nIn, nOut], type, std: gain / Math.sqrt(nIn), mean: 0 });
  const vec = (name: string, n: number, std = 0.1, mean = 1) => plan.push({ name, shape: [n], type: GGML.F32, std, mean });
  mat("token_embd.weight", D, V, 3, eType);
  for (let l = 0; l < shape.nLayers; l++) {
    const p = `blk.${l}.`;
    vec(p + "attn_norm.weight", D);
    if (shape.attn.includes(l)) {
      mat(p + "attn_q.weight", D, D);
      mat(p + "attn_k.weight", D, shape.nKv * dh);
      mat(p + "attn_v.weight", D, shape.nKv * dh);
      mat(p + "attn_output.weight", D, D);
      vec(p + "attn_q_norm.weight", dh);
      vec(p + "attn_k_norm.weight", dh);
    } else {
      mat(p + "shortconv.in_proj.weight", D, 3 * D, 1.2);
      plan.push({ name: p + "shortconv.conv.weight", shape: [3, D], type: GGML.F32, std: 0.6, mean: 0 });
      mat(p + "shortconv.out_proj.weight", D, D);
    }
    vec(p + "ffn_norm.weight", D);
    const moe = opts.moe;
    if (moe && l >= moe.leadingDense) {
      const E = moe.nExperts, F = moe.expertFfDim;
      // router logits of std ≈ 1 and a selection bias of comparable size, so the bias changes choices
      mat(p + "ffn_gate_inp.weight", D, E, 1, GGML.F32);
      vec(p + "exp_probs_b.bias", E, 0.5, 0);
      const experts = (name: string, nIn: number, nOut: number) => plan.push({ name, shape: [nIn, nOut, E], type: wType, std: 0.7 / Math.sqrt(nIn), mean: 0 });
      experts(p + "ffn_gate_exps.weight", D, F);
      experts(p + "ffn_up_exps.weight", D, F);
      experts(p + "ffn_down_exps.weight", F, D);
    } else {
      mat(p + "ffn_gate.weight", D, ff);
      mat(p + "ffn_up.weight", D, ff);
      mat(p + "ffn_down.weight", ff, D);
    }
  }
  vec((opts.finalNormName ?? "token_embd_norm") + ".weight", D);
  if (opts.untiedOutput) mat("output.weight", D, V, 3, eType);
  // drawn last so a file without it keeps every other tensor's values
  if (opts.embedding) {
    mat("dense_2.weight", D, opts.embedding.outDim, 1);
    if (opts.embedding.bias) vec("dense_2.bias", opts.embedding.outDim, 0.1, 0);
  }
  return { plan, shape };
}

/** The f32 weights of a synthetic model (before encoding): shared by the GGUF and safetensors writers. */
export function syntheticWeights(opts: SyntheticOptions = {}): { tensors: SyntheticTensor[]; shape: SyntheticShape } {
  const { plan, shape } = syntheticPlan(opts);
  const rand = mulberry32(opts.seed ?? 1234);
  const tensors = plan.map((t) => ({ name: t.name, shape: t.shape, type: t.type,
    values: randomTensor(rand, t.shape.reduce((a, b) => a * b, 1), t.std, t.mean) }));
  return { tensors, shape };
}

/** A complete LFM2 GGUF file (chunks) with a synthetic LFM2-style vocabulary. */
export function syntheticGguf(opts: SyntheticOptions = {}): Uint8Array[] {
  const { tensors, shape } = syntheticWeights(opts);
  const meta = syntheticMetadata(shape, opts);
  const out: GgufWriteTensor[] = tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: quantizeTensor(t.type, t.values, t.shape[0]) }));
  return encodeGguf(meta, out);
}

/** The GGUF metadata of a synthetic model (architecture keys + the synthetic vocabulary). */
export function syntheticMetadata(shape: SyntheticShape, opts: SyntheticOptions = {}): Record<string, GgufWriteValue> {
  const vocab = buildSyntheticVocab(shape.vocabSize);
  const arch = opts.moe ? "lfm2moe" : "lfm2";
  const meta: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: arch },
    "general.name": { type: "string", value: opts.name ?? "LFM2 synthetic (random weights)" },
    "general.alignment": { type: "u32", value: 32 },
    [`${arch}.context_length`]: { type: "u32", value: 128000 },
    [`${arch}.embedding_length`]: { type: "u32", value: shape.hiddenSize },
    [`${arch}.block_count`]: { type: "u32", value: shape.nLayers },
    [`${arch}.feed_forward_length`]: { type: "u32", value: shape.ffDim },
    [`${arch}.attention.head_count`]: { type: "u32", value: shape.nHeads },
    [`${arch}.attention.head_count_kv`]: { type: "i32[]", value: Array.from({ length: shape.nLayers }, (_, l) => ((shape.attn as readonly number[]).includes(l) ? shape.nKv : 0)) },
    [`${arch}.rope.freq_base`]: { type: "f32", value: 1e6 },
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-5 },
    [`${arch}.vocab_size`]: { type: "u32", value: shape.vocabSize },
    [`${arch}.shortconv.l_cache`]: { type: "u32", value: 3 },
    "tokenizer.ggml.model": { type: "string", value: "gpt2" },
    "tokenizer.ggml.pre": { type: "string", value: "lfm2" },
    "tokenizer.ggml.tokens": { type: "string[]", value: vocab.tokens },
    "tokenizer.ggml.token_type": { type: "i32[]", value: vocab.types },
    "tokenizer.ggml.merges": { type: "string[]", value: vocab.merges },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: 7 },
    "tokenizer.ggml.eot_token_id": { type: "u32", value: 2 },
    "tokenizer.ggml.padding_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
  };
  if (opts.embedding) {
    meta[`${arch}.embedding_length_out`] = { type: "u32", value: opts.embedding.outDim };
    if (opts.embedding.pooling !== undefined) meta[`${arch}.pooling_type`] = { type: "u32", value: opts.embedding.pooling };
    if (opts.embedding.causal === false) meta[`${arch}.attention.causal`] = { type: "bool", value: false };
  }
  if (opts.chatTemplate) meta["tokenizer.chat_template"] = { type: "string", value: opts.chatTemplate };
  if (opts.moe) {
    const m = opts.moe;
    meta["lfm2moe.expert_count"] = { type: "u32", value: m.nExperts };
    meta["lfm2moe.expert_used_count"] = { type: "u32", value: m.nUsed };
    meta["lfm2moe.expert_feed_forward_length"] = { type: "u32", value: m.expertFfDim };
    meta["lfm2moe.leading_dense_block_count"] = { type: "u32", value: m.leadingDense };
    meta["lfm2moe.expert_gating_func"] = { type: "u32", value: 2 }; // sigmoid
  }
  return meta;
}
