// LFM2-Audio speech input end to end: loadModel(text, { mmproj: lfm2a }), model.encodeAudio, chat with
// {type:"audio"} and OpenAI input_audio parts, clips reused from the session cache, model.transcribe.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { syntheticGguf } from "../../src/models/synthetic.js";
import { syntheticAudioMmproj } from "../../src/models/lfm2audio/synthetic.js";
import { AudioEncoder } from "../../src/models/lfm2audio/encoder.js";
import { loadModel } from "../../src/runtime/load.js";
import type { Model } from "../../src/runtime/model.js";
import type { ChatMessage } from "../../src/text/chat-template.js";
import { llamaTool } from "../../scripts/build-llama-tools.mjs";
import { noise, speech, tones } from "./signals.js";

const TEXT = { hiddenSize: 64, nLayers: 3, nHeads: 4, nKv: 2, ffDim: 128, attn: [1], vocabSize: 2048 };
const AUDIO = { nLayers: 2, ffDim: 256, subChannels: 16, adapterHidden: 96, outDim: 64, posRows: 400, seed: 21 };

/** 16-bit mono WAV bytes of x at 16 kHz. */
function wav16(x: Float32Array): Uint8Array {
  const b = new Uint8Array(44 + 2 * x.length), dv = new DataView(b.buffer);
  const tag = (o: number, s: string) => { for (let i = 0; i < 4; i++) b[o + i] = s.charCodeAt(i); };
  tag(0, "RIFF"); dv.setUint32(4, b.length - 8, true); tag(8, "WAVE"); tag(12, "fmt "); dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true); dv.setUint16(22, 1, true); dv.setUint32(24, 16000, true); dv.setUint32(28, 32000, true);
  dv.setUint16(32, 2, true); dv.setUint16(34, 16, true); tag(36, "data"); dv.setUint32(40, 2 * x.length, true);
  for (let i = 0; i < x.length; i++) dv.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, x[i])) * 32767), true);
  return b;
}
const base64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

describe("LFM2-Audio model API", () => {
  let dir: string, textPath: string, mmPath: string, model: Model;
  const clip = tones(1.2), clipWav = wav16(clip);
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lfm2audio-api-"));
    textPath = join(dir, "text.gguf"); mmPath = join(dir, "mmproj.gguf");
    writeFileSync(textPath, concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 11 })));
    writeFileSync(mmPath, syntheticAudioMmproj({ ...AUDIO, weightType: "F32" }));
    model = await loadModel(textPath, { mmproj: mmPath, threads: 1 });
  }, 120_000);
  afterAll(() => { model?.dispose(); rmSync(dir, { recursive: true, force: true }); });

  it("encodeAudio: one id past the vocabulary per row, the encoder's embeddings, cached by content", async () => {
    expect(model.audio).not.toBeNull();
    expect(model.vision).toBeNull();
    const r = model.encodeAudio({ samples: clip, sampleRate: 16000 });
    const enc = await AudioEncoder.load(mmPath);
    const direct = enc.encode({ samples: clip, sampleRate: 16000 });
    enc.dispose();
    expect(r.rows).toBe(direct.tokens);
    expect(r.rows).toBe(16); // 1.2 s → 121 mel frames → 61 → 31 → 16
    expect(r.embeddings).toEqual(direct.embeddings);
    expect(r.tokens.every((t) => t >= TEXT.vocabSize)).toBe(true);
    expect(r.tokens).toEqual(Array.from({ length: 16 }, (_, i) => r.tokens[0] + i));
    // the same samples again: the same ids (no second encode); a different clip: the next ids
    const again = model.encodeAudio({ samples: clip, sampleRate: 16000 });
    expect(again.tokens).toEqual(r.tokens);
    const other = model.encodeAudio({ samples: noise(0.5), sampleRate: 16000 });
    expect(other.tokens[0]).toBe(r.tokens[15] + 1);
  });

  it("chat: audio rows spliced where the part is, text around them tokenized; input_audio gives the same prompt", async () => {
    const tok = model.tokenizer!;
    const ids = await model.renderPrompt([{ role: "user", content: [{ type: "text", text: "Listen:" }, { type: "audio", audio: clipWav }] }]);
    const audioIds = model.encodeAudio(clipWav).tokens;
    const at = ids.indexOf(audioIds[0]);
    expect(at).toBeGreaterThan(0);
    expect(ids.slice(at, at + audioIds.length)).toEqual(audioIds);
    expect(tok.decode(ids.slice(0, at), { skipSpecial: false } as never)).toBe("<|startoftext|><|im_start|>user\nListen:");
    expect(tok.decode(ids.slice(at + audioIds.length), { skipSpecial: false } as never)).toBe("<|im_end|>\n<|im_start|>assistant\n");
    const openai = await model.renderPrompt([{ role: "user", content: [{ type: "text", text: "Listen:" },
      { type: "input_audio", input_audio: { data: base64(clipWav), format: "wav" } }] }]);
    expect(openai).toEqual(ids);
  });

  it("chat with an audio part generates what a session fed the same ids does (greedy), and reuses the prefix", async () => {
    const messages: ChatMessage[] = [{ role: "user", content: [{ type: "audio", audio: clipWav }, { type: "text", text: "What was said?" }] }];
    const r = await model.chat(messages, { maxTokens: 6, temperature: 0 });
    const ids = await model.renderPrompt(messages);
    const s = model.createSession();
    let text = "";
    for await (const d of s.generate(ids, { maxTokens: 6, temperature: 0 })) text += d.text;
    s.dispose();
    expect(r.usage.promptTokens).toBe(ids.length);
    expect(r.text).toBe(text);
    // the next turn carries the same clip: the whole first prompt, audio rows included, comes from the cache
    const turn2: ChatMessage[] = [...messages, { role: "assistant", content: r.text }, { role: "user", content: "Again." }];
    const r2 = await model.chat(turn2, { maxTokens: 2, temperature: 0 });
    expect(r2.usage.cachedTokens).toBeGreaterThanOrEqual(ids.length);
  });

  it("transcribe: a chat turn with the ASR system prompt", async () => {
    const text = await model.transcribe({ samples: clip, sampleRate: 16000 }, { maxTokens: 5 });
    const r = await model.chat([{ role: "system", content: "Perform ASR." }, { role: "user", content: [{ type: "audio", audio: { samples: clip, sampleRate: 16000 } }] }],
      { maxTokens: 5, temperature: 0 });
    expect(text).toBe(r.text);
  });

  it("typed errors: no audio encoder, bad parts, bad audio", async () => {
    const plain = await loadModel(textPath, { threads: 1 });
    expect(() => plain.encodeAudio(clipWav)).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    await expect(plain.transcribe(clipWav)).rejects.toMatchObject({ code: "BAD_INPUT" });
    plain.dispose();
    expect(() => model.encodeAudio(new Uint8Array([1, 2, 3]))).toThrow(expect.objectContaining({ code: "BAD_AUDIO" }));
    await expect(model.chat([{ role: "user", content: [{ type: "input_audio", input_audio: { data: "AAAA", format: "mp3" } }] }], { maxTokens: 1 }))
      .rejects.toMatchObject({ code: "BAD_AUDIO" });
    await expect(model.chat([{ role: "user", content: [{ type: "audio" }] }], { maxTokens: 1 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    // an audio mmproj whose width is not the text model's
    const wide = join(dir, "wide.gguf");
    writeFileSync(wide, syntheticAudioMmproj({ ...AUDIO, outDim: 96 }));
    await expect(loadModel(textPath, { mmproj: wide, threads: 1 })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
  });
});

describe("logits after an audio prompt vs llama.cpp mtmd (text model + lfm2a mmproj)", () => {
  let dir: string, textPath: string, mmPath: string, model: Model, tool: string | undefined, whyNot = "";
  beforeAll(async () => {
    const t = llamaTool("mtmd-audio-dump");
    tool = t.path;
    whyNot = t.reason ?? "";
    dir = mkdtempSync(join(tmpdir(), "lfm2audio-logits-"));
    textPath = join(dir, "text.gguf"); mmPath = join(dir, "mmproj.gguf");
    writeFileSync(textPath, concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 5 })));
    writeFileSync(mmPath, syntheticAudioMmproj({ ...AUDIO, weightType: "F32", seed: 6 }));
    model = await loadModel(textPath, { mmproj: mmPath, threads: 1 });
  }, 40 * 60_000);
  afterAll(() => { model?.dispose(); rmSync(dir, { recursive: true, force: true }); });

  const spoken = speech("Hello there, how are you today?");
  it.for([["tones 1.2 s", tones(1.2)], ["espeak-ng speech", spoken]] as const)("%s", async ([, x], ctx) => {
    if (!tool) return ctx.skip(whyNot);
    if (typeof x === "string") return ctx.skip(x);
    writeFileSync(join(dir, "in.f32"), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const prompt = "<|startoftext|><|im_start|>user\n<__media__>What was said?<|im_end|>\n<|im_start|>assistant\n";
    execFileSync(tool, ["--prompt", textPath, mmPath, join(dir, "in.f32"), prompt, join(dir, "out")], { stdio: "ignore" });
    const ref = JSON.parse(readFileSync(join(dir, "out.json"), "utf8")) as
      { chunks: { type: string; tokens?: number[]; n_tokens?: number }[]; n_past: number; logits: number[] };
    const messages: ChatMessage[] = [{ role: "user", content: [{ type: "audio", audio: { samples: x, sampleRate: 16000 } }, { type: "text", text: "What was said?" }] }];
    const ids = await model.renderPrompt(messages);
    // same layout: text ids, then as many audio rows (ids past the vocabulary) as llama.cpp, then text ids
    const layout = ids.map((t) => (t >= model.tokenizer!.vocabSize ? -1 : t));
    const refLayout = ref.chunks.flatMap((c) => (c.type === "text" ? c.tokens! : new Array(c.n_tokens!).fill(-1)));
    expect(layout).toEqual(refLayout);
    const s = model.createSession();
    const logits = await s.forward(ids);
    s.dispose();
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < ref.logits.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(logits[i] - ref.logits[i])); maxAbs = Math.max(maxAbs, Math.abs(ref.logits[i])); }
    console.log(`logits after ${ids.length} prompt positions: max |ours − llama.cpp| ${maxDiff.toExponential(2)} (max |logit| ${maxAbs.toFixed(2)})`);
    expect(maxDiff / maxAbs).toBeLessThan(2e-4); // measured ≤ 2.4e-5
  });
});

