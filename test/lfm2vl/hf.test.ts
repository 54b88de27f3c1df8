// LFM2-VL from the Hugging Face layout: the synthetic GGUF text model + mmproj written as an
// Lfm2VlForConditionalGeneration folder (one file, shards, F32, BF16) loads with its vision tower and processor
// options, and gives the GGUF + mmproj pair's image rows and chat logits bit for bit (F32).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode as encodePng } from "fast-png";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { parseGguf } from "../../src/formats/gguf.js";
import { syntheticGguf } from "../../src/models/synthetic.js";
import { syntheticMmproj } from "../../src/models/lfm2vl/mmproj.js";
import { hfVisionName, lfm2VlHfFolder, visionHfName, type HfVlWriteOptions } from "../../src/models/lfm2vl/hf.js";
import { loadModel } from "../../src/runtime/load.js";
import type { Model } from "../../src/runtime/model.js";
import type { ChatMessage } from "../../src/text/chat-template.js";

const TEXT = { hiddenSize: 64, nLayers: 3, nHeads: 4, nKv: 2, ffDim: 128, attn: [1], vocabSize: 2048 };
const VISION = { hiddenSize: 64, ffDim: 128, nLayers: 2, nHeads: 4, projHidden: 96, outDim: 64 };
// as LFM2-VL-450M's processor: no thumbnail after the tiles (the mmproj path's default is true)
const PRE = { use_thumbnail: false, min_image_tokens: 64, max_image_tokens: 256 };

function pixels(w: number, h: number, seed = 0): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = ((Math.imul(i + seed, 2654435761) >>> 24) ^ ((i / 3 / w) & 0xff)) & 0xff;
  return rgb;
}
const png = (w: number, h: number, seed = 0) => encodePng({ width: w, height: h, data: pixels(w, h, seed), channels: 3, depth: 8 });

const textGguf = concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 11 }));
const mmproj = concatChunks(syntheticMmproj({ shape: VISION, weightType: "F32", patchEmbdType: "F32", seed: 12 }));

let root: string;
function writeFolder(name: string, opts: HfVlWriteOptions): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, data] of lfm2VlHfFolder(textGguf, mmproj, opts)) writeFileSync(join(dir, f), data);
  return dir;
}

/** The HF-object form of a folder, with config.json edited. */
function hfObject(opts: HfVlWriteOptions, edit: (cfg: Record<string, any>) => void = () => {}) {
  const files = lfm2VlHfFolder(textGguf, mmproj, { preprocessor: PRE, ...opts });
  const config = JSON.parse(files.get("config.json") as string);
  edit(config);
  return { config, safetensors: files.get("model.safetensors") as Uint8Array, tokenizer: files.get("tokenizer.json") as string,
    tokenizerConfig: files.get("tokenizer_config.json") as string, preprocessorConfig: files.get("preprocessor_config.json") as string };
}

const question = (image: Uint8Array): ChatMessage[] =>
  [{ role: "user", content: [{ type: "image", image }, { type: "text", text: "Describe the picture." }] } as unknown as ChatMessage];

describe("LFM2-VL Hugging Face folder", () => {
  let gguf: Model, hf: Model;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "lfm2vl-hf-"));
    gguf = await loadModel(textGguf, { mmproj, threads: 1, imageOptions: { use_thumbnail: false } });
    hf = await loadModel(writeFolder("f32", { dtype: "F32", preprocessor: PRE }), { threads: 1 });
  }, 120_000);
  afterAll(() => { gguf?.dispose(); hf?.dispose(); rmSync(root, { recursive: true, force: true }); });

  it("maps every mmproj tensor to its HF name and back", () => {
    const names = parseGguf(mmproj).tensors.map((t) => t.name);
    expect(names.length).toBe(3 + 16 * VISION.nLayers + 2 + 6);
    for (const g of names) expect(hfVisionName(visionHfName(g)!)).toBe(g);
    expect(hfVisionName("model.vision_tower.vision_model.embeddings.patch_embedding.weight")).toBe("v.patch_embd.weight");
    expect(hfVisionName("model.vision_tower.vision_model.encoder.layers.5.mlp.fc1.bias")).toBe("v.blk.5.ffn_up.bias");
    expect(hfVisionName("model.vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.weight")).toBe("v.blk.0.attn_out.weight");
    expect(hfVisionName("model.multi_modal_projector.layer_norm.weight")).toBe("mm.input_norm.weight");
    expect(hfVisionName("model.multi_modal_projector.linear_2.bias")).toBe("mm.2.bias");
    expect(hfVisionName("model.language_model.layers.0.conv.in_proj.weight")).toBeUndefined();
    expect(hfVisionName("model.vision_tower.vision_model.head.probe")).toBeUndefined();
  });

  it("loads text tower, vision tower and the processor options of preprocessor_config.json", () => {
    expect(hf.info.format).toBe("safetensors");
    expect({ ...hf.info.config, normEps: 0 }).toEqual({ ...gguf.info.config, normEps: 0 });
    expect(hf.vision).not.toBeNull();
    expect(hf.vision!.encoder.config).toEqual(gguf.vision!.encoder.config);
    expect(hf.vision!.imageOptions).toMatchObject(PRE);
  });

  it("encodeImage: the same tokens and bit-identical rows as GGUF + mmproj (tiled, single, small)", async () => {
    for (const [w, h, o] of [[1152, 768, {}], [336, 240, {}], [64, 64, { min_image_tokens: 16 }]] as const) {
      const a = await hf.encodeImage(png(w, h), o), b = await gguf.encodeImage(png(w, h), o);
      expect(a.tokens).toEqual(b.tokens);
      expect(a.rows).toBe(b.rows);
      expect(a.grid).toEqual(b.grid);
      expect(Buffer.from(a.embeddings.buffer).equals(Buffer.from(b.embeddings.buffer))).toBe(true);
    }
    expect((await hf.encodeImage(png(1152, 768))).grid).toEqual({ cols: 3, rows: 2, thumbnail: false });
  }, 120_000);

  it("chat with an image part: same prompt ids, bit-identical logits, same greedy reply", async () => {
    const msgs = question(png(700, 500, 3));
    const ids = await hf.renderPrompt(msgs);
    expect(ids).toEqual(await gguf.renderPrompt(msgs));
    const la = await hf.createSession({ contextLength: 2048 }).forward(ids);
    const lb = await gguf.createSession({ contextLength: 2048 }).forward(ids);
    expect(Buffer.from(la.buffer, la.byteOffset, la.byteLength).equals(Buffer.from(lb.buffer, lb.byteOffset, lb.byteLength))).toBe(true);
    const ra = await hf.chat(msgs, { maxTokens: 6, temperature: 0 }), rb = await gguf.chat(msgs, { maxTokens: 6, temperature: 0 });
    expect(ra.text).toBe(rb.text);
  }, 120_000);

  it("a sharded checkpoint (3 parts + index) gives the same rows", async () => {
    const m = await loadModel(writeFolder("sharded", { dtype: "F32", shards: 3, preprocessor: PRE }), { threads: 1 });
    try {
      const a = await m.encodeImage(png(1152, 768)), b = await gguf.encodeImage(png(1152, 768));
      expect(Buffer.from(a.embeddings.buffer).equals(Buffer.from(b.embeddings.buffer))).toBe(true);
    } finally { m.dispose(); }
  }, 120_000);

  it("a BF16 checkpoint (and the HF object form) gives rows within BF16 rounding of the F32 ones", async () => {
    const m = await loadModel(hfObject({ dtype: "BF16" }), { threads: 1 });
    try {
      const a = await m.encodeImage(png(336, 240)), b = await gguf.encodeImage(png(336, 240));
      expect(a.tokens).toEqual(b.tokens);
      let worst = 0, scale = 0, dot = 0, na = 0, nb = 0;
      for (let i = 0; i < a.embeddings.length; i++) {
        const x = a.embeddings[i], y = b.embeddings[i];
        worst = Math.max(worst, Math.abs(x - y)); scale = Math.max(scale, Math.abs(y));
        dot += x * y; na += x * x; nb += y * y;
      }
      expect(worst).toBeGreaterThan(0); // really BF16 weights
      expect(worst / scale).toBeLessThan(0.05);
      expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.999);
    } finally { m.dispose(); }
  }, 120_000);

  it("runs every vision layer of vision_config whatever vision_feature_layer says (Lfm2VlModel does not read it)", async () => {
    // llama.cpp's converter drops -(vision_feature_layer + 1) layers from the mmproj; HF's forward uses last_hidden_state
    const m = await loadModel(hfObject({ dtype: "F32" }, (c) => { c.vision_feature_layer = -2; }), { threads: 1 });
    try {
      expect(m.vision!.encoder.config.nLayers).toBe(VISION.nLayers);
      const a = await m.encodeImage(png(336, 240)), b = await gguf.encodeImage(png(336, 240));
      expect(Buffer.from(a.embeddings.buffer).equals(Buffer.from(b.embeddings.buffer))).toBe(true);
    } finally { m.dispose(); }
  }, 120_000);

  it("typed errors for a malformed checkpoint", async () => {
    const fc2 = "model.vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight";
    await expect(loadModel(hfObject({ omit: [fc2] }), { threads: 1 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    const pe = "model.vision_tower.vision_model.embeddings.patch_embedding.weight";
    await expect(loadModel(hfObject({ omit: [pe] }), { threads: 1 })).rejects.toMatchObject({ code: "MISSING_TENSOR" });
    await expect(loadModel(hfObject({}, (c) => { c.vision_config.intermediate_size = 256; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    await expect(loadModel(hfObject({}, (c) => { c.projector_hidden_size = 128; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    await expect(loadModel(hfObject({}, (c) => { c.vision_config.patch_size = 14; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    await expect(loadModel(hfObject({}, (c) => { c.projector_hidden_act = "swish"; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "BAD_METADATA" });
    await expect(loadModel(hfObject({}, (c) => { c.vision_config.hidden_act = "relu"; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "BAD_METADATA" });
    await expect(loadModel(hfObject({}, (c) => { c.image_token_index = 7; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "BAD_METADATA" });
    await expect(loadModel(hfObject({}, (c) => { delete c.text_config; }), { threads: 1 }))
      .rejects.toMatchObject({ code: "BAD_METADATA" });
  }, 120_000);
});
