// LFM2-Audio from Liquid AI's Hugging Face layout: the synthetic text GGUF + lfm2a mmproj written as an
// LFM2AudioModel checkpoint (lfm.*, conformer.* with unfolded batch norms, audio_adapter.*) loads with its speech-in
// encoder and gives the GGUF + mmproj pair's audio embeddings and chat bit for bit (F32); the synthetic detokenizer
// GGUF + vocoder written as an `audio_detokenizer/` folder gives the same samples bit for bit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { Lfm2Error } from "../../src/errors.js";
import { syntheticGguf } from "../../src/models/synthetic.js";
import { syntheticAudioMmproj } from "../../src/models/lfm2audio/synthetic.js";
import { syntheticDetokenizerGguf, syntheticVocoderGguf, TINY_DETOKENIZER_SHAPE } from "../../src/models/lfm2audio/synthetic-out.js";
import { BATCH_NORM_EPS, foldBatchNorm, hfAudioName, lfm2AudioHfFolder, type HfAudioWriteOptions } from "../../src/models/lfm2audio/hf.js";
import { detokenizerHfFolder, readHfCodeEmbeddings } from "../../src/models/lfm2audio/hf-detokenizer.js";
import { AudioDetokenizer, readCodeEmbeddings } from "../../src/models/lfm2audio/detokenizer.js";
import { loadModel } from "../../src/runtime/load.js";
import type { HfModelInput, Model } from "../../src/runtime/model.js";
import type { ChatMessage } from "../../src/text/chat-template.js";
import { mulberry32 } from "../../src/models/synthetic.js";
import { noise, tones } from "./signals.js";

const TEXT = { hiddenSize: 64, nLayers: 3, nHeads: 4, nKv: 2, ffDim: 128, attn: [1], vocabSize: 2048 };
const AUDIO = { nLayers: 2, ffDim: 256, subChannels: 16, adapterHidden: 96, outDim: 64, posRows: 400, seed: 21 };

const textGguf = concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 11 }));
const mmproj = syntheticAudioMmproj({ ...AUDIO, weightType: "F32" });
const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** The folder's files as loadModel's in-memory HF input. */
function asInput(files: Map<string, Uint8Array | string>): HfModelInput {
  const str = (k: string) => files.get(k) as string | undefined;
  return { config: str("config.json")!, safetensors: files.get("model.safetensors") as Uint8Array, tokenizer: str("tokenizer.json"),
    tokenizerConfig: str("tokenizer_config.json"), chatTemplate: str("chat_template.jinja") };
}

async function loadError(input: HfModelInput): Promise<Lfm2Error> {
  const e = await loadModel(input, { threads: 1 }).then((m) => { m.dispose(); return null; }, (x) => x);
  expect(e).toBeInstanceOf(Lfm2Error);
  return e as Lfm2Error;
}

describe("LFM2-Audio speech in from the Hugging Face layout", () => {
  let root: string, gguf: Model, hf: Model;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "lfm2audio-hf-"));
    const dir = join(root, "LFM2-Audio");
    mkdirSync(dir);
    for (const [f, data] of lfm2AudioHfFolder(textGguf, mmproj)) writeFileSync(join(dir, f), data);
    writeFileSync(join(root, "text.gguf"), textGguf);
    writeFileSync(join(root, "mmproj.gguf"), mmproj);
    gguf = await loadModel(join(root, "text.gguf"), { mmproj: join(root, "mmproj.gguf"), threads: 1 });
    hf = await loadModel(dir, { threads: 1 });
  }, 180_000);
  afterAll(() => { gguf?.dispose(); hf?.dispose(); rmSync(root, { recursive: true, force: true }); });

  it("a folder loads as text tower + audio encoder; the embeddings equal the mmproj's bit for bit", () => {
    expect(hf.info.format).toBe("safetensors");
    expect(hf.audio).not.toBeNull();
    expect(hf.vision).toBeNull();
    expect(hf.audio!.encoder.config).toEqual({ ...gguf.audio!.encoder.config, posRows: 1 });
    for (const clip of [tones(1.2), noise(2.1)]) {
      const a = gguf.encodeAudio({ samples: clip, sampleRate: 16000 }), b = hf.encodeAudio({ samples: clip, sampleRate: 16000 });
      expect(b.rows).toBe(a.rows);
      expect(bits(b.embeddings)).toEqual(bits(a.embeddings));
      expect(b.embeddings.some((x) => x !== 0)).toBe(true);
    }
  });

  it("chat with an audio part gives the same greedy text", async () => {
    const audio = { samples: tones(0.8), sampleRate: 16000 };
    const messages: ChatMessage[] = [{ role: "user", content: [{ type: "text", text: "What is said?" }, { type: "audio", audio }] }];
    const a = await gguf.chat(messages, { maxTokens: 6, temperature: 0 });
    const b = await hf.chat(messages, { maxTokens: 6, temperature: 0 });
    expect(b.text).toBe(a.text);
  });

  it("an in-memory file map loads too (same embeddings)", async () => {
    const m = await loadModel(asInput(lfm2AudioHfFolder(textGguf, mmproj)), { threads: 1 });
    try {
      const clip = tones(0.9);
      expect(bits(m.encodeAudio({ samples: clip, sampleRate: 16000 }).embeddings))
        .toEqual(bits(gguf.encodeAudio({ samples: clip, sampleRate: 16000 }).embeddings));
    } finally { m.dispose(); }
  });

  it("an explicit mmproj still replaces the checkpoint's encoder", async () => {
    const m = await loadModel(asInput(lfm2AudioHfFolder(textGguf, mmproj)), { threads: 1, mmproj });
    try { expect(m.audio!.encoder.config.posRows).toBe(AUDIO.posRows); } finally { m.dispose(); }
  });
}, 300_000);

describe("LFM2-Audio HF checkpoint errors", () => {
  const withOpts = (o: HfAudioWriteOptions) => asInput(lfm2AudioHfFolder(textGguf, mmproj, o));

  it("a missing encoder tensor: MISSING_TENSOR naming the HF tensor", async () => {
    for (const name of ["conformer.layers.1.conv.batch_norm.running_var", "audio_adapter.model.3.weight", "conformer.pre_encode.conv.5.bias"]) {
      const e = await loadError(withOpts({ omit: [name] }));
      expect(e.code).toBe("MISSING_TENSOR");
      expect(e.message).toContain(name);
    }
  }, 120_000);

  it("a misshaped encoder tensor: SHAPE_MISMATCH naming the HF tensor", async () => {
    const cases: Record<string, number[]> = {
      "conformer.layers.0.self_attn.linear_q.weight": [256, 512],
      "conformer.layers.1.conv.depthwise_conv.weight": [512, 1, 7],
      "conformer.layers.0.conv.batch_norm.running_mean": [256],
    };
    for (const [name, shape] of Object.entries(cases)) {
      const e = await loadError(withOpts({ reshape: { [name]: shape } }));
      expect(e.code).toBe("SHAPE_MISMATCH");
      expect(e.message).toContain(name);
    }
  }, 120_000);

  it("an encoder variant llama.cpp's lfm2a graph does not run: UNSUPPORTED_ARCH", async () => {
    for (const patch of [{ conv_norm_type: "layer_norm" }, { self_attention_model: "abs_pos" }, { feat_out: 1024 }]) {
      const input = withOpts({});
      const cfg = JSON.parse(input.config as string);
      Object.assign(cfg.encoder, patch);
      const e = await loadError({ ...input, config: JSON.stringify(cfg) });
      expect(e.code).toBe("UNSUPPORTED_ARCH");
    }
  }, 120_000);

  it("name mapping follows the converter (and skips the text tower and audio-out tensors)", () => {
    expect(hfAudioName("conformer.layers.3.norm_self_att.weight")).toBe("a.blk.3.ln1.weight");
    expect(hfAudioName("conformer.layers.3.self_attn.pos_bias_u")).toBe("a.blk.3.pos_bias_u");
    expect(hfAudioName("conformer.layers.3.norm_out.bias")).toBe("a.blk.3.ln2.bias");
    expect(hfAudioName("conformer.pre_encode.conv.6.weight")).toBe("a.conv1d.6.weight");
    expect(hfAudioName("audio_adapter.model.0.weight")).toBe("mm.a.mlp.0.weight");
    expect(hfAudioName("conformer.layers.3.conv.batch_norm.num_batches_tracked")).toBeUndefined();
    for (const n of ["lfm.layers.0.operator_norm.weight", "audio_embedding.embedding.weight", "depth_linear.weight"]) expect(hfAudioName(n)).toBeUndefined();
  });

  it("batch-norm folding matches w/sqrt(var+eps) and bias − mean·scale", () => {
    const rand = mulberry32(5), n = 64, v = () => new Float32Array(n).map(() => rand() * 2 - 1);
    const w = v(), b = v(), mean = v(), variance = new Float32Array(n).map(() => 0.1 + rand() * 3);
    const { scale, shift } = foldBatchNorm(w, b, mean, variance);
    for (let i = 0; i < n; i++) {
      const a = w[i] / Math.sqrt(variance[i] + BATCH_NORM_EPS);
      expect(scale[i]).toBeCloseTo(a, 6);
      expect(shift[i]).toBeCloseTo(b[i] - mean[i] * a, 6);
    }
  });
});

describe("LFM2.5-Audio detokenizer from the Hugging Face layout", () => {
  const backbone = concatChunks(syntheticDetokenizerGguf({ slidingWindow: 30 }));
  const vocoder = concatChunks(syntheticVocoderGguf(TINY_DETOKENIZER_SHAPE.hiddenSize));
  const folder = detokenizerHfFolder(backbone, vocoder);
  const input = (files: Map<string, Uint8Array | string>) => ({ config: files.get("config.json") as string, safetensors: files.get("model.safetensors") as Uint8Array });

  it("loads as the detokenizer backbone (window 30, 1282-wide lin) and decodes the same samples bit for bit", async () => {
    const g = await loadModel(backbone, { threads: 1, chunkSize: 8 });
    const h = await loadModel(input(folder), { threads: 1, chunkSize: 8 });
    try {
      expect(h.info.config.slidingWindow).toBe(30);
      expect(h.info.config.embeddingOut).toBe(1282);
      expect(h.info.config.pooling).toBe(0);
      const tg = readCodeEmbeddings(vocoder), th = readHfCodeEmbeddings(folder.get("model.safetensors") as Uint8Array);
      expect(th.dim).toBe(tg.dim);
      expect(bits(th.table)).toEqual(bits(tg.table));
      const rand = mulberry32(9), codes = Array.from({ length: 8 * 7 }, () => Math.floor(rand() * 2048));
      const a = new AudioDetokenizer(g.forwardPass, tg.table).decode(codes);
      const b = new AudioDetokenizer(h.forwardPass, th.table).decode(codes);
      expect(b.length).toBe(7 * 1920);
      expect(bits(b)).toEqual(bits(a));
      expect(a.some((x) => x !== 0)).toBe(true);
    } finally { g.dispose(); h.dispose(); }
  }, 120_000);

  it("a missing lin / code table / backbone tensor: typed errors", async () => {
    const noLin = await loadModel(input(detokenizerHfFolder(backbone, vocoder, { omit: ["lin.weight", "lin.bias"] })), { threads: 1, chunkSize: 8 });
    try {
      expect(() => new AudioDetokenizer(noLin.forwardPass, readCodeEmbeddings(vocoder).table)).toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
    } finally { noLin.dispose(); }
    const noEmb = detokenizerHfFolder(backbone, vocoder, { omit: ["emb.emb.weight"] });
    expect(() => readHfCodeEmbeddings(noEmb.get("model.safetensors") as Uint8Array)).toThrow(expect.objectContaining({ code: "MISSING_TENSOR" }));
    const e = await loadModel(input(detokenizerHfFolder(backbone, vocoder, { omit: ["lfm.layers.2.self_attn.q_proj.weight"] })), { threads: 1 })
      .then(() => null, (x) => x);
    expect(e).toBeInstanceOf(Lfm2Error);
    expect(e.code).toBe("MISSING_TENSOR");
    const cfg = JSON.parse(folder.get("config.json") as string);
    const bad = await loadModel({ ...input(folder), config: JSON.stringify({ ...cfg, output_size: 1000 }) }, { threads: 1 }).then(() => null, (x) => x);
    expect(bad?.code).toBe("BAD_METADATA");
  }, 120_000);
});
