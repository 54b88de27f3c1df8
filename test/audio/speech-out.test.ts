// Speech out through the Model API on synthetic files (text model, audio head + code embeddings, detokenizer):
// speak / speakStream / chatAudio in both modes. Random weights say nothing about voice quality; these check
// the loop: frame counts → samples, streamed chunks = the final PCM, text/audio alternation, determinism, errors.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeWav, encodeWav, loadModel, syntheticGguf, type Model, type SpeechEvent } from "../../src/index.js";
import { syntheticAudioHead, syntheticDetokenizerGguf, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";
import { SAMPLES_PER_FRAME } from "../../src/models/lfm2audio/detokenizer.js";
import { SpeechOut } from "../../src/models/lfm2audio/speech-out.js";

const dir = mkdtempSync(join(tmpdir(), "speech-out-"));
const write = (name: string, chunks: Uint8Array[]) => { const p = join(dir, name); writeFileSync(p, Buffer.concat(chunks)); return p; };
const shape = { hiddenSize: 64, nLayers: 4, nHeads: 4, nKv: 2, ffDim: 128, attn: [1, 3], vocabSize: 2048 };
const textPath = write("text.gguf", syntheticGguf({ shape, weightType: "F32", seed: 4 }));
const detokPath = write("detok.gguf", syntheticDetokenizerGguf({ slidingWindow: 30 }));
const head = syntheticAudioHead({ backboneDim: 64, dim: 256, nLayers: 2, ffDim: 128 }); // dh 8, as the engine needs
const vocoder = Buffer.concat(syntheticVocoderGguf(64, 5, head.tensors, head.meta));

let model: Model | undefined;
const load = async () => (model ??= await loadModel(textPath, { threads: 1, speechOut: { vocoder, detokenizer: detokPath } }));

describe("model.speak / speakStream", () => {
  it("frames → 1920 samples each at 24 kHz; streamed chunks concatenate to the result; seeded runs repeat", async () => {
    const m = await load();
    const events: SpeechEvent[] = [];
    const gen = m.speakStream("Hello there", { maxFrames: 5, seed: 3 });
    let r = await gen.next();
    while (!r.done) { events.push(r.value); r = await gen.next(); }
    const res = r.value;
    expect(res.sampleRate).toBe(24000);
    const frames = res.codes.filter((c) => c[0] !== 2048).length;
    expect(frames).toBe(5); // random weights never pick end-of-audio first here; the cap ends the turn
    expect(res.pcm.length).toBe(frames * SAMPLES_PER_FRAME);
    const audio = events.filter((e) => e.type === "audio") as Extract<SpeechEvent, { type: "audio" }>[];
    expect(audio[0].pcm.length).toBe(SAMPLES_PER_FRAME - 480); // the first frame holds back the 'same' padding
    expect(Array.from(audio.flatMap((e) => Array.from(e.pcm)))).toEqual(Array.from(res.pcm));
    for (const c of res.codes) for (const v of c) expect(v >= 0 && v <= 2048).toBe(true);
    const again = await m.speak("Hello there", { maxFrames: 5, seed: 3 });
    expect(Array.from(again.pcm)).toEqual(Array.from(res.pcm));
    const other = await m.speak("Hello there", { maxFrames: 5, seed: 4 });
    expect(Array.from(other.pcm)).not.toEqual(Array.from(res.pcm));
    const wav = decodeWav(encodeWav(res.pcm, res.sampleRate));
    expect(wav.sampleRate).toBe(24000);
    expect(wav.samples.length).toBe(res.pcm.length);
  });

  it("typed errors: no speech parts, empty text, bad limits, bad mode", async () => {
    const plain = await loadModel(textPath, { threads: 1 });
    await expect(plain.speak("hi")).rejects.toMatchObject({ code: "BAD_INPUT" });
    const m = await load();
    expect(() => m.speakStream("")).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    await expect(m.speak("hi", { maxFrames: 0 })).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(m.speak("hi", { contextLength: 8 })).rejects.toMatchObject({ code: "CONTEXT_OVERFLOW" });
    expect(() => m.chatAudioStream([{ role: "user", content: "hi" }], { mode: "both" as never })).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
  });
});

describe("chat with audio output", () => {
  it("interleaved: 6 text tokens, then 12 frames, then text again (the switch counts of liquid-audio)", async () => {
    const m = await load();
    const kinds: string[] = [], tokens: number[] = [];
    const gen = m.chatAudioStream([{ role: "user", content: "Tell me something" }], { mode: "interleaved", maxTokens: 40, maxFrames: 100 });
    let r = await gen.next();
    while (!r.done) { kinds.push(r.value.type === "text" ? "t" : "a"); if (r.value.type === "text") tokens.push(r.value.token); r = await gen.next(); }
    expect(tokens.some((t) => t === 7 || t === 130)).toBe(false); // no early switch in this seeded run
    // the last event is the detokenizer's flush (the 480 samples of 'same' padding held back) when the turn ends
    expect(kinds.join("").match(/t+|a+/g)!.map((x) => x.length)).toEqual([6, 12, 6, 12, 4, 1]);
    expect(r.value.finishReason).toBe("length");
    expect(r.value.pcm.length).toBe(24 * SAMPLES_PER_FRAME);
  });

  it("sequential: text until <|audio_start|>, then frames (forced start, as speak does)", async () => {
    const m = await load();
    const sp = m.speech as SpeechOut;
    const ids = await sp.promptIds([{ role: "user", content: "Say hi" }]);
    const gen = sp.generate(ids, "sequential", { maxFrames: 3 }, true);
    const kinds: string[] = [];
    let r = await gen.next();
    while (!r.done) { kinds.push(r.value.type); r = await gen.next(); }
    expect(kinds.slice(0, 3)).toEqual(["audio", "audio", "audio"]);
    expect(r.value.pcm.length).toBe(3 * SAMPLES_PER_FRAME);
  });
});
