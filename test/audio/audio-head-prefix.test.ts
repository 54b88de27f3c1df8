// speak() keeps the backbone state between calls: a prompt sharing the system turn with the previous one resumes
// after it (conv checkpoint + KV cut back by position) and gives exactly what a fresh model gives.
import { afterAll, describe, expect, it } from "vitest";
import { loadModel, type SpeechResult } from "../../src/index.js";
import { TTS_SYSTEM_PROMPT } from "../../src/models/lfm2audio/speech-out.js";
import { writeTinySpeechSet } from "./tiny-speech-set.js";

const { textPath, detokPath, vocoder, remove } = writeTinySpeechSet("speech-prefix-");
afterAll(remove);
// chunks of 4 tokens: the prompt is prefilled over several steps, and checkpoints fall inside chunks' reach
const load = () => loadModel(textPath, { threads: 1, chunkSize: 4, speechOut: { vocoder, detokenizer: detokPath } });
const same = (a: SpeechResult, b: SpeechResult) => {
  expect(a.codes.map((c) => Array.from(c))).toEqual(b.codes.map((c) => Array.from(c)));
  expect(Array.from(a.pcm)).toEqual(Array.from(b.pcm));
};

describe("speech out: the prompt prefix is kept across calls", () => {
  it("a second speak() resumes after the system turn and equals a fresh model's; a repeated prompt reuses all of it", async () => {
    const warm = await load(), sp = warm.speech!;
    await warm.speak("The first sentence.", { maxFrames: 3, seed: 1 });
    const first = sp.lastPrefill;
    expect(first.reused).toBe(0);
    const second = await warm.speak("Quite another one, longer than the first.", { maxFrames: 4, seed: 2 });
    // resumed at the user turn's <|im_start|>: everything before it (the system turn) came from the cache
    const ids = await sp.promptIds([{ role: "system", content: TTS_SYSTEM_PROMPT }, { role: "user", content: "x" }]);
    const turns = ids.flatMap((id, i) => (id === warm.tokenizer!.tokenId("<|im_start|>") ? [i] : []));
    expect(turns.length).toBe(3);
    expect(sp.lastPrefill.reused).toBe(turns[1]);
    expect(sp.lastPrefill.computed).toBeGreaterThan(0);
    same(second, await (await load()).speak("Quite another one, longer than the first.", { maxFrames: 4, seed: 2 }));
    const again = await warm.speak("Quite another one, longer than the first.", { maxFrames: 4, seed: 2 });
    expect(sp.lastPrefill.computed).toBe(0);
    same(again, second);
  });

  it("another system prompt, a chat turn, and two overlapping streams still equal fresh runs", async () => {
    const warm = await load(), sp = warm.speech!;
    await warm.speak("Warm the cache.", { maxFrames: 2 });
    const other = await warm.speak("Hello.", { maxFrames: 3, system: "Perform TTS. Use the US male voice." });
    same(other, await (await load()).speak("Hello.", { maxFrames: 3, system: "Perform TTS. Use the US male voice." }));
    const chat = await warm.chatAudio([{ role: "user", content: "Hi!" }], { maxTokens: 20 });
    same(chat, await (await load()).chatAudio([{ role: "user", content: "Hi!" }], { maxTokens: 20 }));
    // two generators pulled in turn: the second finds the kept state busy and takes one of its own
    const ids = await sp.promptIds([{ role: "system", content: TTS_SYSTEM_PROMPT }, { role: "user", content: "Two at once." }]);
    const a = sp.generate(ids, "sequential", { maxFrames: 3 }, true);
    const b = sp.generate(ids, "sequential", { maxFrames: 3 }, true);
    let ra = await a.next(), rb = await b.next();
    while (!ra.done || !rb.done) { if (!ra.done) ra = await a.next(); if (!rb.done) rb = await b.next(); }
    same(ra.value as SpeechResult, rb.value as SpeechResult);
    same(ra.value as SpeechResult, await (await load()).speak("Two at once.", { maxFrames: 3 }));
  });
});
