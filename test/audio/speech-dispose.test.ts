// model.dispose() frees what speech out holds: the backbone state kept between speak() calls (back to the text
// model's arena), and the depthformer's and detokenizer's own models — their worker pools terminated (2 threads
// each here: every pool created while loading ends with no workers). Calls afterwards fail with BAD_INPUT, and so
// does a stream that was running when the model was disposed (its state given back when it stops).
import { afterAll, describe, expect, it, vi } from "vitest";
import { loadModel, type Model } from "../../src/index.js";
import { writeTinySpeechSet } from "./tiny-speech-set.js";
import { WorkerPool } from "../../bindings/threads.js";

const { textPath, detokPath, vocoder, remove } = writeTinySpeechSet("speech-dispose-");
afterAll(remove);

/** Bytes one backbone state of speak()'s default 4096 positions takes in the text model's arena. */
function stateBytes(m: Model): number {
  const f = m.forwardPass, a = f.ops.arena, before = a.liveBytes, s = f.allocState(4096), bytes = a.liveBytes - before;
  f.releaseState(s);
  return bytes;
}

/** Load with 2 threads, collecting every worker pool started (text model, depthformer, detokenizer). */
async function loadWithPools() {
  const create = vi.spyOn(WorkerPool, "create");
  try {
    const m = await loadModel(textPath, { threads: 2, speechOut: { vocoder, detokenizer: detokPath } });
    const pools = await Promise.all(create.mock.results.map((r) => r.value as Promise<WorkerPool>));
    return { m, pools };
  } finally { create.mockRestore(); }
}

describe("model.dispose() and speech out", () => {
  it("terminates the depthformer's and detokenizer's workers, gives back the kept state, then refuses calls", async () => {
    const { m, pools } = await loadWithPools();
    expect(m.info.threads).toBe(2);
    expect(pools.length).toBe(3); // text model, engine depthformer, detokenizer backbone
    for (const p of pools) expect(p.size).toBe(2);
    const arena = m.forwardPass.ops.arena, state = stateBytes(m);
    expect(state).toBeGreaterThan(1 << 20); // 2 attention layers × K and V × 4096 positions × 32 × fp16
    const r = await m.speak("Hello there", { maxFrames: 3, seed: 1 });
    expect(r.pcm.length).toBeGreaterThan(0);
    const held = arena.liveBytes; // the backbone state kept for the next call (and scratch the steps grew)
    m.dispose();
    for (const p of pools) expect(p.size).toBe(1); // no workers left anywhere
    expect(held - arena.liveBytes).toBe(state);
    await expect(m.speak("Hello there", { maxFrames: 3 }))
      .rejects.toMatchObject({ code: "BAD_INPUT", message: expect.stringMatching(/disposed/) });
    await expect((async () => m.chatAudio([{ role: "user", content: "hi" }], { maxFrames: 2 }))())
      .rejects.toMatchObject({ code: "BAD_INPUT", message: expect.stringMatching(/disposed/) });
    m.dispose(); // twice is harmless
  }, 120_000);

  it("a stream running at dispose fails on its next step and gives its state back", async () => {
    const { m, pools } = await loadWithPools();
    const arena = m.forwardPass.ops.arena, state = stateBytes(m);
    const gen = m.speakStream("Hello there", { maxFrames: 20, seed: 2 });
    const first = await gen.next();
    expect(first.done).toBe(false);
    const held = arena.liveBytes;
    m.dispose();
    expect(arena.liveBytes).toBe(held); // in use by the stream: not freed under it
    await expect(gen.next()).rejects.toMatchObject({ code: "BAD_INPUT", message: expect.stringMatching(/disposed/) });
    expect(held - arena.liveBytes).toBe(state);
    for (const p of pools) expect(p.size).toBe(1);
  }, 120_000);
});
