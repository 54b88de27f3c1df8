// Hugging Face LFM2-MoE checkpoints (config model_type "lfm2_moe", every expert its own tensor) and
// sharded safetensors (model-0000k-of-0000n.safetensors ± model.safetensors.index.json, any
// architecture) load to exactly the logits of their GGUF twin.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { syntheticGguf, syntheticWeights, type SyntheticOptions } from "../../src/models/synthetic.js";
import { encodeSafetensors, type SafetensorsWriteTensor } from "../../src/formats/safetensors-writer.js";
import { quantizeTensor } from "../../src/formats/quantize.js";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { ggufToHfName, hfToGgufName } from "../../src/formats/safetensors.js";
import { LFM2_SHAPES } from "../../src/models/lfm2/config.js";
import { tempDir } from "../helpers/models.js";

const MOE = { nExperts: 8, nUsed: 2, expertFfDim: 128, leadingDense: 2 };
const s = LFM2_SHAPES.tiny;

/** HF tensors of a synthetic model: per-expert w1/w3/w2 cut out of the stacked GGUF tensors. */
function hfTensors(opts: SyntheticOptions, dtype: "BF16" | "F32"): SafetensorsWriteTensor[] {
  const out: SafetensorsWriteTensor[] = [];
  for (const t of syntheticWeights(opts).tensors) {
    const isConv = t.name.endsWith("shortconv.conv.weight");
    const type = t.shape.length === 1 || isConv || t.name.endsWith("ffn_gate_inp.weight") ? "F32" : dtype;
    const enc = (v: Float32Array) => quantizeTensor(t.type, v, t.shape[0]);
    if (t.shape.length === 3) { // [nIn, nOut, E] → E tensors of HF shape [nOut, nIn]
      const [nIn, nOut, E] = t.shape;
      for (let e = 0; e < E; e++) {
        out.push({ name: ggufToHfName(`${t.name}.${e}`)!, dtype: type, shape: [nOut, nIn], data: enc(t.values.subarray(e * nIn * nOut, (e + 1) * nIn * nOut)) });
      }
    } else {
      const shape = t.shape.length === 1 ? t.shape : isConv ? [t.shape[1], 1, t.shape[0]] : [t.shape[1], t.shape[0]];
      out.push({ name: ggufToHfName(t.name)!, dtype: type, shape, data: enc(t.values) });
    }
  }
  return out;
}

const config = (moe: boolean, extra: Record<string, unknown> = {}) => JSON.stringify({
  model_type: moe ? "lfm2_moe" : "lfm2", architectures: [moe ? "Lfm2MoeForCausalLM" : "Lfm2ForCausalLM"],
  hidden_size: s.hiddenSize, num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads, num_key_value_heads: s.nKv,
  intermediate_size: s.ffDim, layer_types: Array.from({ length: s.nLayers }, (_, l) => ((s.attn as readonly number[]).includes(l) ? "full_attention" : "conv")),
  vocab_size: s.vocabSize, norm_eps: 1e-5, rope_theta: 1e6, conv_L_cache: 3, max_position_embeddings: 128000, tie_word_embeddings: true,
  ...(moe ? { num_experts: MOE.nExperts, num_experts_per_tok: MOE.nUsed, moe_intermediate_size: MOE.expertFfDim, num_dense_layers: MOE.leadingDense,
    norm_topk_prob: true, use_expert_bias: true, routed_scaling_factor: 1.0 } : {}),
  ...extra,
});

/** A folder with config.json and the tensors in `parts` files (1: model.safetensors). */
function writeFolder(name: string, tensors: SafetensorsWriteTensor[], cfg: string, parts: number, index = false): string {
  const dir = join(tempDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), cfg);
  const weightMap: Record<string, string> = {};
  for (let p = 0; p < parts; p++) {
    const file = parts === 1 ? "model.safetensors" : `model-${String(p + 1).padStart(5, "0")}-of-${String(parts).padStart(5, "0")}.safetensors`;
    const mine = tensors.filter((_, i) => i % parts === p); // interleaved: each layer's experts end up in several files
    for (const t of mine) weightMap[t.name] = file;
    writeFileSync(join(dir, file), concatChunks(encodeSafetensors(mine, { format: "pt" })));
  }
  if (index) writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

async function logits(input: Parameters<typeof loadModel>[0]): Promise<Float32Array[]> {
  const m = await loadModel(input, { threads: 1, chunkSize: 16 });
  try {
    const sess = m.createSession({ contextLength: 64 });
    return [(await sess.forward([1, 300, 17, 900, 1200, 44, 5, 600, 1999, 250, 3, 77, 88, 99, 100, 101, 102, 103])).slice(), (await sess.forward([42])).slice()];
  } finally { m.dispose(); }
}
const equal = (a: Float32Array[], b: Float32Array[]) => a.every((x, i) => Buffer.compare(Buffer.from(x.buffer), Buffer.from(b[i].buffer)) === 0);

describe("Hugging Face LFM2-MoE and sharded safetensors", () => {
  const moeOpts: SyntheticOptions = { weightType: "BF16", moe: MOE, seed: 31 };
  const moeTensors = hfTensors(moeOpts, "BF16");

  it("maps per-expert HF names to stacked GGUF names and back", () => {
    expect(hfToGgufName("model.layers.4.feed_forward.experts.17.w2.weight")).toBe("blk.4.ffn_down_exps.weight.17");
    expect(hfToGgufName("model.layers.4.feed_forward.gate.weight")).toBe("blk.4.ffn_gate_inp.weight");
    expect(hfToGgufName("model.layers.4.feed_forward.expert_bias")).toBe("blk.4.exp_probs_b.bias");
    for (const g of ["blk.3.ffn_gate_exps.weight.0", "blk.3.ffn_up_exps.weight.7", "blk.5.exp_probs_b.bias"]) expect(hfToGgufName(ggufToHfName(g)!)).toBe(g);
  });

  it("an lfm2_moe folder (BF16, experts apart) gives the logits of its GGUF twin bit for bit", async () => {
    const dir = writeFolder("hf-moe", moeTensors, config(true), 1);
    const gguf = concatChunks(syntheticGguf(moeOpts));
    const m = await loadModel(dir, { threads: 1 });
    expect(m.info.architecture).toBe("lfm2moe");
    expect(m.info.config.moe).toMatchObject(MOE);
    m.dispose();
    expect(equal(await logits(dir), await logits(gguf))).toBe(true);
  }, 60_000);

  it("the same checkpoint in 3 parts with model.safetensors.index.json, and a dense one in 2 parts without", async () => {
    const gguf = concatChunks(syntheticGguf(moeOpts));
    expect(equal(await logits(writeFolder("hf-moe-3", moeTensors, config(true), 3, true)), await logits(gguf))).toBe(true);
    const denseOpts: SyntheticOptions = { weightType: "F32", seed: 32 };
    const dense = writeFolder("hf-dense-2", hfTensors(denseOpts, "F32"), config(false), 2);
    expect(equal(await logits(dense), await logits(concatChunks(syntheticGguf(denseOpts))))).toBe(true);
  }, 60_000);

  it("a missing part, a duplicated tensor and unsupported routing options → typed errors", async () => {
    const dir = writeFolder("hf-moe-missing", moeTensors, config(true), 3, true);
    rmSync(join(dir, "model-00002-of-00003.safetensors"));
    await expect(loadModel(dir, { threads: 1 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    const noIndex = writeFolder("hf-moe-missing2", moeTensors, config(true), 3);
    rmSync(join(noIndex, "model-00003-of-00003.safetensors"));
    await expect(loadModel(noIndex, { threads: 1 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    const dup = writeFolder("hf-moe-dup", moeTensors, config(true), 1);
    await expect(loadModel({ config: config(true), safetensors: [join(dup, "model.safetensors"), join(dup, "model.safetensors")] }, { threads: 1 }))
      .rejects.toMatchObject({ code: "BAD_INPUT" });
    for (const extra of [{ num_experts_per_tok: 9 }, { routed_scaling_factor: 2.5 }, { norm_topk_prob: false }, { use_expert_bias: false }]) {
      await expect(loadModel({ config: config(true, extra), safetensors: join(dup, "model.safetensors") }, { threads: 1 }), JSON.stringify(extra))
        .rejects.toMatchObject({ code: "BAD_METADATA" });
    }
    // an expert of the wrong shape
    const bad = moeTensors.map((t) => (t.name === "model.layers.3.feed_forward.experts.5.w1.weight" ? { ...t, shape: [64, 512] } : t));
    await expect(loadModel(writeFolder("hf-moe-shape", bad, config(true), 1), { threads: 1 })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
  }, 60_000);
});
