// Retrieval encoders as Hugging Face / sentence-transformers / PyLate folders (issue 10): the trunk in
// model.safetensors (Lfm2Model names, no "model." prefix; config.json is_causal / Lfm2BidirectionalModel),
// the projection as a Dense module (1_Dense/config.json + 1_Dense/model.safetensors: linear.weight,
// linear.bias), a Pooling module for pooled models, config_sentence_transformers.json for prefixes and
// lengths. The same synthetic weights written as GGUF and as a folder give bit-identical F32 vectors.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { syntheticGguf, syntheticWeights, type SyntheticEmbeddingOptions } from "../src/models/synthetic.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { quantizeTensor } from "../src/formats/quantize.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { ggufToHfName } from "../src/formats/safetensors.js";
import { parseGguf } from "../src/formats/gguf.js";
import { Tokenizer, toHfTokenizerJson, toHfTokenizerConfig } from "../src/text/tokenizer.js";
import { LFM2_SHAPES } from "../src/models/lfm2/config.js";
import { tempDir } from "./helpers/models.js";

const TEXTS = ["hello world", "Le château de Versailles est magnifique, n'est-ce pas ?", "東京は日本の首都です。"];
const ST_CONFIG = {
  query_prefix: "[QQ] ", document_prefix: "[DD] ", query_length: 20, document_length: 40, do_query_expansion: true,
  attend_to_expansion_tokens: true, skiplist_words: ["!", ","], similarity_fn_name: "MaxSim",
};

interface FolderOptions {
  embedding: SyntheticEmbeddingOptions;
  /** How the folder says "bidirectional": is_causal false, or the Lfm2BidirectionalModel class alone. */
  bidirectionalBy?: "is_causal" | "architecture";
  pooling?: "mean" | "cls" | "lasttoken";
  denseConfig?: Record<string, unknown>;
  /** Drop this tensor from 1_Dense/model.safetensors. */
  dropDense?: string;
  noModules?: boolean;
}

let folders = 0;
function writeEncoderFolder(o: FolderOptions): { dir: string; gguf: Uint8Array } {
  const opts = { shape: "tiny" as const, weightType: "F32" as const, seed: 33, embedding: o.embedding };
  const { tensors } = syntheticWeights(opts);
  const trunk: SafetensorsWriteTensor[] = [], dense: SafetensorsWriteTensor[] = [];
  for (const t of tensors) {
    const data = quantizeTensor(t.type, t.values, t.shape[0]);
    if (t.name.startsWith("dense_2.")) {
      // ggml [in, out] → PyTorch nn.Linear [out, in]: the same bytes
      const name = t.name === "dense_2.weight" ? "linear.weight" : "linear.bias";
      if (name !== o.dropDense) dense.push({ name, dtype: "F32", shape: [...t.shape].reverse(), data });
      continue;
    }
    const isConv = t.name.endsWith("shortconv.conv.weight");
    const shape = t.shape.length === 1 ? t.shape : isConv ? [t.shape[1], 1, t.shape[0]] : [t.shape[1], t.shape[0]];
    // Lfm2Model (no LM head) checkpoints name the trunk without the "model." prefix
    trunk.push({ name: ggufToHfName(t.name)!.replace(/^model\./, ""), dtype: "F32", shape, data });
  }
  const gguf = concatChunks(syntheticGguf(opts));
  const dir = join(tempDir, `hf-encoder-${folders++}`);
  mkdirSync(join(dir, "1_Dense"), { recursive: true });
  writeFileSync(join(dir, "model.safetensors"), concatChunks(encodeSafetensors(trunk, { format: "pt" })));
  const s = LFM2_SHAPES.tiny, bidir = o.embedding.causal === false;
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: [bidir ? "Lfm2BidirectionalModel" : "Lfm2Model"],
    ...(o.bidirectionalBy === "architecture" ? {} : { model_type: "lfm2" }),
    ...(bidir && o.bidirectionalBy !== "architecture" ? { is_causal: false } : {}),
    hidden_size: s.hiddenSize, num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads, num_key_value_heads: s.nKv,
    block_ff_dim: s.ffDim, block_auto_adjust_ff_dim: false, full_attn_idxs: s.attn, vocab_size: s.vocabSize,
    norm_eps: 1e-5, rope_theta: 1e6, conv_L_cache: 3, max_position_embeddings: 128000, tie_embedding: true,
  }));
  const modules = [{ idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" },
    { idx: 1, name: "1", path: "1_Dense", type: "pylate.models.Dense.Dense" }];
  writeFileSync(join(dir, "1_Dense/model.safetensors"), concatChunks(encodeSafetensors(dense, { format: "pt" })));
  writeFileSync(join(dir, "1_Dense/config.json"), JSON.stringify(o.denseConfig ?? {
    in_features: s.hiddenSize, out_features: o.embedding.outDim, bias: !!o.embedding.bias,
    activation_function: "torch.nn.modules.linear.Identity",
  }));
  if (o.pooling) {
    mkdirSync(join(dir, "2_Pooling"), { recursive: true });
    modules.push({ idx: 2, name: "2", path: "2_Pooling", type: "sentence_transformers.models.Pooling" });
    writeFileSync(join(dir, "2_Pooling/config.json"), JSON.stringify({
      word_embedding_dimension: o.embedding.outDim, pooling_mode_cls_token: o.pooling === "cls",
      pooling_mode_mean_tokens: o.pooling === "mean", pooling_mode_max_tokens: false, pooling_mode_lasttoken: o.pooling === "lasttoken",
    }));
  } else writeFileSync(join(dir, "config_sentence_transformers.json"), JSON.stringify(ST_CONFIG));
  if (!o.noModules) writeFileSync(join(dir, "modules.json"), JSON.stringify(modules));
  const tok = Tokenizer.fromGguf(parseGguf(gguf).metadata);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(toHfTokenizerJson(tok)));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(toHfTokenizerConfig(tok)));
  return { dir, gguf };
}

async function expectSameVectors(dir: string, gguf: Uint8Array) {
  const hf = await loadModel(dir, { threads: 1 }), gg = await loadModel(gguf, { threads: 1 });
  expect(hf.info.format).toBe("safetensors");
  expect(hf.info.embedding).toEqual(gg.info.embedding);
  expect(hf.info.embedding).toBeDefined();
  for (const text of TEXTS) {
    const a = await hf.embed(text), b = await gg.embed(text);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.rows).toBe(b.rows);
    expect(Array.from(a.vectors)).toEqual(Array.from(b.vectors)); // F32: bit-identical
  }
  return { hf, gg };
}

describe("sentence-transformers / PyLate folders", () => {
  it("bidirectional ColBERT (is_causal false, Dense with bias): the GGUF twin's vectors bit for bit; PyLate settings read", async () => {
    const { dir, gguf } = writeEncoderFolder({ embedding: { outDim: 32, pooling: 0, causal: false, bias: true } });
    const { hf, gg } = await expectSameVectors(dir, gguf);
    expect(hf.info.embedding).toEqual({ dim: 32, pooling: "none", causal: false });
    expect(hf.retrieval).toMatchObject({ queryPrefix: "[QQ] ", documentPrefix: "[DD] ", queryLength: 20, documentLength: 40,
      queryExpansion: true, attendToExpansionTokens: true, skiplistWords: ["!", ","] });
    expect(gg.retrieval.queryPrefix).toBe("[Q] "); // the GGUF carries none: documented defaults
    const q = await hf.embedQuery("what?");
    expect(q.rows).toBe(20); // expanded to query_length
    expect(q.tokens.slice(0, hf.tokenizer!.encode("[QQ] what?").length)).toEqual(hf.tokenizer!.encode("[QQ] what?"));
    const [d] = await hf.embedDocuments(["a, b! c."]);
    const comma = hf.tokenizer!.tokenId(","), bang = hf.tokenizer!.tokenId("!"), dot = hf.tokenizer!.tokenId(".");
    expect(d.tokens).not.toContain(comma);
    expect(d.tokens).not.toContain(bang);
    expect(d.tokens).toContain(dot); // not in this folder's skiplist
  }, 60_000);

  it("Lfm2BidirectionalModel without model_type or is_causal, no modules.json (1_Dense by name), no bias", async () => {
    const { dir, gguf } = writeEncoderFolder({ embedding: { outDim: 48, pooling: 0, causal: false }, bidirectionalBy: "architecture", noModules: true });
    const { hf } = await expectSameVectors(dir, gguf);
    expect(hf.info.embedding).toEqual({ dim: 48, pooling: "none", causal: false });
  }, 60_000);

  it("causal ColBERT (LFM2-ColBERT-350M layout)", async () => {
    const { dir, gguf } = writeEncoderFolder({ embedding: { outDim: 32, pooling: 0 } });
    const { hf } = await expectSameVectors(dir, gguf);
    expect(hf.info.embedding).toEqual({ dim: 32, pooling: "none", causal: true });
  }, 60_000);

  for (const [pooling, code] of [["mean", 1], ["cls", 2], ["lasttoken", 3]] as const) {
    it(`pooled (${pooling}) embedding model: a Pooling module gives llama.cpp's pooling_type ${code}`, async () => {
      const { dir, gguf } = writeEncoderFolder({ embedding: { outDim: 32, pooling: code, causal: false, bias: true }, pooling });
      const { hf } = await expectSameVectors(dir, gguf);
      expect(hf.info.config.pooling).toBe(code);
      const [v] = await hf.embed(["hello"]);
      expect(v.length).toBe(32);
    }, 60_000);
  }

  it("malformed Dense modules are typed errors", async () => {
    const emb = { outDim: 32, pooling: 0, causal: false, bias: true };
    const tanh = writeEncoderFolder({ embedding: emb, denseConfig: { in_features: 256, out_features: 32, bias: true, activation_function: "torch.nn.modules.activation.Tanh" } });
    await expect(loadModel(tanh.dir, { threads: 1 })).rejects.toMatchObject({ code: "UNSUPPORTED_ARCH" });
    const noWeight = writeEncoderFolder({ embedding: emb, dropDense: "linear.weight" });
    await expect(loadModel(noWeight.dir, { threads: 1 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    const noBias = writeEncoderFolder({ embedding: emb, dropDense: "linear.bias" });
    await expect(loadModel(noBias.dir, { threads: 1 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    const wrongOut = writeEncoderFolder({ embedding: emb, denseConfig: { in_features: 256, out_features: 64, bias: true } });
    await expect(loadModel(wrongOut.dir, { threads: 1 })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
  }, 60_000);
});
