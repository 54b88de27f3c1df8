// A Hugging Face safetensors model (config.json + model.safetensors + tokenizer.json) gives exactly the
// logits of its GGUF twin (same weights, same types); HF names and shapes are mapped as in spec §2.1.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { syntheticWeights, syntheticGguf } from "../src/models/synthetic.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../src/formats/safetensors-writer.js";
import { quantizeTensor } from "../src/formats/quantize.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { ggufToHfName, hfToGgufName } from "../src/formats/safetensors.js";
import { parseGguf } from "../src/formats/gguf.js";
import { Tokenizer, toHfTokenizerJson, toHfTokenizerConfig } from "../src/text/tokenizer.js";
import { LFM2_SHAPES } from "../src/models/lfm2/config.js";
import { tempDir } from "./helpers/models.js";
import { Lfm2Error } from "../src/errors.js";

const hfName = (g: string) => ggufToHfName(g)!;

function writeHfFolder(dtype: "BF16" | "F16" | "F32", seed: number): { dir: string; gguf: Uint8Array } {
  const opts = { shape: "tiny" as const, weightType: dtype, seed };
  const { tensors } = syntheticWeights(opts);
  const st: SafetensorsWriteTensor[] = tensors.map((t) => {
    const isConv = t.name.endsWith("shortconv.conv.weight");
    const hfShape = t.shape.length === 1 ? t.shape : isConv ? [t.shape[1], 1, t.shape[0]] : [t.shape[1], t.shape[0]];
    const type = t.shape.length === 1 || isConv ? "F32" : dtype;
    return { name: hfName(t.name), dtype: type, shape: hfShape, data: quantizeTensor(t.type, t.values, t.shape[0]) };
  });
  const gguf = concatChunks(syntheticGguf(opts));
  const dir = join(tempDir, `hf-${dtype}-${seed}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.safetensors"), concatChunks(encodeSafetensors(st, { format: "pt" })));
  const s = LFM2_SHAPES.tiny;
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["Lfm2ForCausalLM"], model_type: "lfm2", hidden_size: s.hiddenSize, num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads,
    num_key_value_heads: s.nKv, block_ff_dim: s.ffDim, block_auto_adjust_ff_dim: false, full_attn_idxs: s.attn, vocab_size: s.vocabSize,
    norm_eps: 1e-5, rope_theta: 1e6, conv_L_cache: 3, max_position_embeddings: 128000, tie_embedding: true,
  }));
  const tok = Tokenizer.fromGguf(parseGguf(gguf).metadata);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(toHfTokenizerJson(tok)));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(toHfTokenizerConfig(tok)));
  return { dir, gguf };
}

describe("safetensors (Hugging Face layout)", () => {
  it("maps every HF LFM2 tensor name to its GGUF name", () => {
    expect(hfToGgufName("model.layers.3.conv.in_proj.weight")).toBe("blk.3.shortconv.in_proj.weight");
    expect(hfToGgufName("model.layers.2.self_attn.q_layernorm.weight")).toBe("blk.2.attn_q_norm.weight");
    expect(hfToGgufName("model.layers.0.feed_forward.w3.weight")).toBe("blk.0.ffn_up.weight");
    expect(hfToGgufName("model.embedding_norm.weight")).toBe("token_embd_norm.weight");
    expect(hfToGgufName("model.language_model.layers.1.feed_forward.w2.weight")).toBe("blk.1.ffn_down.weight");
    expect(hfToGgufName("model.vision_tower.blocks.0.weight")).toBeUndefined();
    for (const g of ["token_embd.weight", "token_embd_norm.weight", "output.weight", "blk.7.shortconv.conv.weight", "blk.2.attn_k_norm.weight"]) {
      expect(hfToGgufName(ggufToHfName(g)!)).toBe(g);
    }
    expect(ggufToHfName("output.weight")).toBe("lm_head.weight");
  });

  for (const dtype of ["BF16", "F16", "F32"] as const) {
    it(`a ${dtype} folder equals its GGUF twin: same logits, same tokens, same prompt ids`, async () => {
      const { dir, gguf } = writeHfFolder(dtype, 21);
      const hf = await loadModel(dir, { threads: 1 });
      const gg = await loadModel(gguf, { threads: 1 });
      expect(hf.info.format).toBe("safetensors");
      expect({ ...hf.info.config, normEps: 0 }).toEqual({ ...gg.info.config, normEps: 0 });
      expect(Math.fround(hf.info.config.normEps)).toBe(Math.fround(gg.info.config.normEps)); // GGUF stores it as f32
      const prompt = "The quick brown fox jumps over the lazy dog, 12345!";
      const ids = hf.tokenizer!.encode(prompt);
      expect(ids).toEqual(gg.tokenizer!.encode(prompt));
      const a = await hf.createSession({ contextLength: 128 }).forward(ids);
      const b = await gg.createSession({ contextLength: 128 }).forward(ids);
      expect(Array.from(a)).toEqual(Array.from(b));
      const gen = async (m: typeof hf) => { const it = m.createSession({ contextLength: 128 }).generate(prompt, { maxTokens: 12, temperature: 0 }); let r; while (!(r = await it.next()).done); return r.value.tokens; };
      expect(await gen(hf)).toEqual(await gen(gg));
    }, 60_000);
  }

  it("rejects a safetensors header that is not JSON, and a folder without weights", async () => {
    const bad = new Uint8Array(64); new DataView(bad.buffer).setBigUint64(0, 40n, true); bad.fill(0x7b, 8);
    const cfg = { model_type: "lfm2", hidden_size: 256, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, block_ff_dim: 512, full_attn_idxs: [], vocab_size: 16 };
    await expect(loadModel({ config: cfg, safetensors: bad })).rejects.toMatchObject({ code: "BAD_MAGIC" });
    const empty = join(tempDir, "hf-empty"); mkdirSync(empty, { recursive: true }); writeFileSync(join(empty, "config.json"), JSON.stringify(cfg));
    await expect(loadModel(empty)).rejects.toBeInstanceOf(Lfm2Error);
  });
});
