// LFM2.5-Audio speech out from the Hugging Face layout alone: the synthetic text model + mmproj + vocoder (audio head,
// code table) + detokenizer written as one checkpoint folder (head tensors in model.safetensors under the names
// llama.cpp's convert_vocoder_to_gguf.py reads, `bounded_attention` unshortened; audio_detokenizer/ beside it) give
// the GGUF set's speak() codes and PCM bit for bit (F32). Also: detokenizerWeightType requantizes the detokenizer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { parseGguf } from "../../src/formats/gguf.js";
import { syntheticGguf, mulberry32 } from "../../src/models/synthetic.js";
import { syntheticAudioMmproj } from "../../src/models/lfm2audio/synthetic.js";
import { syntheticAudioHead, syntheticDetokenizerGguf, syntheticVocoderGguf }
  from "../../src/models/lfm2audio/synthetic-out.js";
import { audioHeadHfName, hfAudioHeadName, lfm2AudioSpeechHfFolder } from "../../src/models/lfm2audio/hf-audio-head.js";
import { AudioDetokenizer } from "../../src/models/lfm2audio/detokenizer.js";
import { loadModel } from "../../src/runtime/load.js";
import type { HfModelInput, Model } from "../../src/runtime/model.js";
import type { SpeechResult } from "../../src/models/lfm2audio/speech-out.js";

const TEXT = { hiddenSize: 64, nLayers: 4, nHeads: 4, nKv: 2, ffDim: 128, attn: [1, 3], vocabSize: 2048 };
const AUDIO = { nLayers: 2, ffDim: 256, subChannels: 16, adapterHidden: 96, outDim: 64, posRows: 400, seed: 21 };

const textGguf = concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 4 }));
const mmproj = syntheticAudioMmproj({ ...AUDIO, weightType: "F32" });
const headParts = syntheticAudioHead({ backboneDim: 64, dim: 256, nLayers: 2, ffDim: 128 }); // dh 8, as the engine needs
const vocoder = concatChunks(syntheticVocoderGguf(64, 5, headParts.tensors, headParts.meta));
const detokGguf = concatChunks(syntheticDetokenizerGguf({ slidingWindow: 30 }));
const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** The folder's files as loadModel's in-memory input (audio_detokenizer/ as `audioDetokenizer`). */
function asInput(files: Map<string, Uint8Array | string>): HfModelInput {
  const str = (k: string) => files.get(k) as string | undefined;
  const detok = files.has("audio_detokenizer/config.json")
    ? { audioDetokenizer: { config: str("audio_detokenizer/config.json")!,
      safetensors: files.get("audio_detokenizer/model.safetensors") as Uint8Array } } : {};
  return { config: str("config.json")!, safetensors: files.get("model.safetensors") as Uint8Array,
    tokenizer: str("tokenizer.json"),
    tokenizerConfig: str("tokenizer_config.json"), chatTemplate: str("chat_template.jinja"), ...detok };
}

const same = (a: SpeechResult, b: SpeechResult) => {
  expect(b.codes.map((c) => Array.from(c))).toEqual(a.codes.map((c) => Array.from(c)));
  expect(b.pcm.length).toBe(a.pcm.length);
  expect(bits(b.pcm)).toEqual(bits(a.pcm));
  expect(b.text).toBe(a.text);
};

describe("LFM2.5-Audio speech out from an HF checkpoint alone", () => {
  let root: string, dir: string, textPath: string, detokPath: string;
  const models: Model[] = [];
  const keep = (m: Model) => { models.push(m); return m; };
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "speech-hf-"));
    dir = join(root, "LFM2.5-Audio");
    for (const [f, data] of lfm2AudioSpeechHfFolder(textGguf, mmproj, vocoder, detokGguf)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), data);
    }
    textPath = join(root, "text.gguf"); detokPath = join(root, "detok.gguf");
    writeFileSync(textPath, textGguf); writeFileSync(detokPath, detokGguf);
  });
  afterAll(() => { for (const m of models) m.dispose(); rmSync(root, { recursive: true, force: true }); });

  it("speak(): codes and PCM equal the GGUF set's bit for bit (F32 head on the engine)", async () => {
    const speechOut = { vocoder, detokenizer: detokPath, headWeightType: "F32" } as const;
    const g = keep(await loadModel(textPath, { threads: 1, speechOut }));
    const h = keep(await loadModel(dir, { threads: 1, speechOut: { headWeightType: "F32" } }));
    expect(h.info.format).toBe("safetensors");
    expect(h.audio).not.toBeNull(); // speech in from the same folder
    const a = await g.speak("Hello there", { maxFrames: 5, seed: 3 });
    const b = await h.speak("Hello there", { maxFrames: 5, seed: 3 });
    expect(a.codes.filter((c) => c[0] !== 2048).length).toBe(5);
    expect(a.pcm.some((x) => x !== 0)).toBe(true);
    same(a, b);
    const msgs = [{ role: "user" as const, content: "Tell me something" }];
    same(await g.chatAudio(msgs, { maxTokens: 24, maxFrames: 12 }), await h.chatAudio(msgs, { maxTokens: 24, maxFrames: 12 }));
  }, 180_000);

  it("speechOut: true (default Q8_0 head) and the in-memory file map match the GGUF set with its default head", async () => {
    const g = keep(await loadModel(textPath, { threads: 1, speechOut: { vocoder, detokenizer: detokPath } }));
    const h = keep(await loadModel(dir, { threads: 1, speechOut: true }));
    const map = asInput(lfm2AudioSpeechHfFolder(textGguf, mmproj, vocoder, detokGguf));
    const mem = keep(await loadModel(map, { threads: 1, speechOut: true }));
    const a = await g.speak("Good morning", { maxFrames: 4, seed: 7 });
    same(a, await h.speak("Good morning", { maxFrames: 4, seed: 7 }));
    same(a, await mem.speak("Good morning", { maxFrames: 4, seed: 7 }));
    // a vocoder given with the folder still supplies the head and code table (the folder the detokenizer)
    const mixed = keep(await loadModel(dir, { threads: 1, speechOut: { vocoder } }));
    same(a, await mixed.speak("Good morning", { maxFrames: 4, seed: 7 }));
  }, 180_000);

  it("without speechOut the folder loads as before (no speech parts read)", async () => {
    const m = keep(await loadModel(dir, { threads: 1 }));
    expect(m.speech).toBeNull();
    await expect(m.speak("hi")).rejects.toMatchObject({ code: "BAD_INPUT" });
  }, 60_000);

  it("typed errors: missing head tensor (HF name), no detokenizer folder, no depthformer config, no decoder", async () => {
    const files = (o = {}) => lfm2AudioSpeechHfFolder(textGguf, mmproj, vocoder, detokGguf, o);
    const qNorm = "depthformer.layers.1.operator.bounded_attention.q_layernorm.weight";
    const e1 = await loadModel(asInput(files({ omit: [qNorm] })), { threads: 1, speechOut: true }).then(() => null, (x) => x);
    expect(e1?.code).toBe("MISSING_TENSOR");
    expect(e1?.message).toContain(qNorm);
    const noDetok = files();
    noDetok.delete("audio_detokenizer/config.json");
    await expect(loadModel(asInput(noDetok), { threads: 1, speechOut: true })).rejects.toMatchObject({ code: "BAD_INPUT" });
    const cfg = JSON.parse(files().get("config.json") as string);
    delete cfg.depthformer;
    await expect(loadModel({ ...asInput(files()), config: JSON.stringify(cfg) }, { threads: 1, speechOut: true }))
      .rejects.toMatchObject({ code: "BAD_METADATA" });
    await expect(loadModel(textPath, { threads: 1, speechOut: true })).rejects.toMatchObject({ code: "BAD_INPUT" });
    // an explicit detokenizer without the vocoder has no code table
    await expect(loadModel(dir, { threads: 1, speechOut: { detokenizer: detokPath } }))
      .rejects.toMatchObject({ code: "BAD_INPUT" });
  }, 180_000);

  it("names: the converter's prefix filter and its bounded_attention → attention rename", () => {
    expect(hfAudioHeadName("depthformer.layers.0.operator.bounded_attention.k_layernorm.weight"))
      .toBe("depthformer.layers.0.operator.attention.k_layernorm.weight");
    expect(hfAudioHeadName("depth_embeddings.7.to_logits.weight")).toBe("depth_embeddings.7.to_logits.weight");
    expect(hfAudioHeadName("audio_embedding.embedding_norm.weight")).toBe("audio_embedding.embedding_norm.weight");
    for (const n of ["lfm.layers.0.operator_norm.weight", "conformer.layers.0.norm_out.weight", "emb.emb.weight"]) {
      expect(hfAudioHeadName(n)).toBeUndefined();
    }
    for (const t of parseGguf(vocoder).tensors) {
      if (t.name !== "emb.emb.weight") expect(hfAudioHeadName(audioHeadHfName(t.name))).toBe(t.name);
    }
  });
});

describe("speechOut.detokenizerWeightType", () => {
  const root = mkdtempSync(join(tmpdir(), "speech-detok-type-"));
  const textPath = join(root, "text.gguf"), detokPath = join(root, "detok.gguf");
  writeFileSync(textPath, textGguf); writeFileSync(detokPath, detokGguf);
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const rand = mulberry32(12), codes = Array.from({ length: 8 * 10 }, () => Math.floor(rand() * 2048));

  // tolerance: 10% RMS of the F32 PCM (random weights through 8 layers and exp(); 6.3% seen)
  it("Q8_0: every matrix a step reads is placed as Q8_0 (x4 where rows allow); PCM near F32", async () => {
    const f32 = await loadModel(textPath, { threads: 1, speechOut: { vocoder, detokenizer: detokPath } });
    const q8 = await loadModel(textPath,
      { threads: 1, speechOut: { vocoder, detokenizer: detokPath, detokenizerWeightType: "Q8_0" } });
    try {
      const d32 = f32.speech!.detok as AudioDetokenizer, d8 = q8.speech!.detok as AudioDetokenizer;
      const mats = (d: AudioDetokenizer) => d.fwd.w.layers.flatMap((L) => [
        ...(L.attn ? [L.attn.q, L.attn.k, L.attn.v, L.attn.o] : []), ...(L.conv ? [L.conv.inProj, L.conv.outProj] : []),
        ...(L.ffn.kind === "dense" ? [L.ffn.gate, L.ffn.up, L.ffn.down] : [])]).concat(d.fwd.w.denseOut!);
      expect(new Set(mats(d32).map((m) => m.type.name))).toEqual(new Set(["F32"]));
      expect(new Set(mats(d8).map((m) => m.type.name))).toEqual(new Set(["Q8_0"]));
      for (const m of mats(d8)) expect(m.x4).toBe(m.nOut % 4 === 0);
      expect(d8.fwd.w.denseOut!.nOut).toBe(1282); // not a multiple of 4: plain rows
      const a = d32.decode(codes), b = d8.decode(codes);
      let err = 0, ref = 0;
      for (let i = 0; i < a.length; i++) { err += (a[i] - b[i]) ** 2; ref += a[i] ** 2; }
      const rel = Math.sqrt(err / ref);
      expect(rel).toBeGreaterThan(0); // it did change the weights
      expect(rel).toBeLessThan(0.1);
      // the same as a detokenizer written in Q8_0 from the same values (quantized once, by the same code)
      const q8File = concatChunks(syntheticDetokenizerGguf({ slidingWindow: 30, weightType: "Q8_0" }));
      const fileQ8 = await loadModel(q8File, { threads: 1, chunkSize: 8 });
      try {
        expect(bits(new AudioDetokenizer(fileQ8.forwardPass, d8.codeTable).decode(codes))).toEqual(bits(b));
      } finally { fileQ8.dispose(); }
      const bad = { vocoder, detokenizer: detokPath, detokenizerWeightType: "Q9" as never };
      await expect(loadModel(textPath, { threads: 1, speechOut: bad }))
        .rejects.toMatchObject({ code: "UNSUPPORTED_TYPE" });
    } finally { f32.dispose(); q8.dispose(); }
  }, 180_000);
});
