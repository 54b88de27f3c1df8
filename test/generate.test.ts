// Generation through the whole engine: seeded sampling is reproducible, prefix reuse (KV cache +
// conv-state checkpoints) gives exactly the logits of a fresh run, chat turns reuse the cache,
// stop strings and JSON-schema output hold end to end.
import { describe, expect, it } from "vitest";
import { loadModel, type Model } from "../src/index.js";
import { tinyModelBytes } from "./helpers/models.js";

let modelP: Promise<Model> | undefined;
const model = () => (modelP ??= loadModel(tinyModelBytes({ weightType: "Q8_0", seed: 3 }), { threads: 1 }));

async function run(it: AsyncGenerator<{ text: string }, any>) {
  let r = await it.next(), text = "";
  for (; !r.done; r = await it.next()) text += r.value.text;
  return { text, result: r.value };
}

describe("generation", () => {
  it("the same seed reproduces the same tokens; another seed differs", async () => {
    const m = await model();
    const opts = { maxTokens: 40, temperature: 1.0, topK: 100, seed: 1234 };
    const a = await run(m.createSession({ contextLength: 128 }).generate("The quick brown fox", opts));
    const b = await run(m.createSession({ contextLength: 128 }).generate("The quick brown fox", opts));
    const c = await run(m.createSession({ contextLength: 128 }).generate("The quick brown fox", { ...opts, seed: 99 }));
    expect(a.result.tokens).toEqual(b.result.tokens);
    expect(a.text).toBe(b.text);
    expect(c.result.tokens).not.toEqual(a.result.tokens);
  });

  it("greedy generation equals argmax over session.forward step by step", async () => {
    const m = await model();
    const s = m.createSession({ contextLength: 128 });
    const g = await run(s.generate("Hello world", { maxTokens: 12, temperature: 0 }));
    const ref = m.createSession({ contextLength: 128 });
    let logits = await ref.forward(m.tokenizer!.encode("Hello world"));
    const toks: number[] = [];
    for (let i = 0; i < 12; i++) {
      let b = 0; for (let j = 1; j < logits.length; j++) if (logits[j] > logits[b]) b = j;
      if (m.tokenizer!.eogIds.has(b)) break;
      toks.push(b); logits = await ref.forward([b]);
    }
    expect(g.result.tokens).toEqual(toks);
  });

  it("a prompt sharing a prefix resumes from the cache with exactly a fresh run's logits", async () => {
    const m = await model();
    const tok = m.tokenizer!;
    const p1 = tok.encode("Once upon a time there was a little fox who lived in the forest.");
    const s = m.createSession({ contextLength: 256 });
    await s.forward(p1); s.checkpoint();
    await s.forward(tok.encode(" It liked apples.", { addBos: false }));
    // branch off after p1: the conv state must come back from the checkpoint
    const p2 = [...p1, ...tok.encode(" It was very quick and clever.", { addBos: false })];
    const kept = s.rewindToPrefix(p2);
    expect(kept).toBe(p1.length);
    const reused = await s.forward(p2.slice(kept));
    const fresh = await m.createSession({ contextLength: 256 }).forward(p2);
    expect(Array.from(reused)).toEqual(Array.from(fresh));
  });

  it("chat turn 2 reuses turn 1 from the cache and matches a fresh session", async () => {
    const m = await model();
    const s = m.createSession({ contextLength: 512 });
    const msgs = [{ role: "system" as const, content: "You are terse." }, { role: "user" as const, content: "Name a colour." }];
    const t1 = await s.chat(msgs, { maxTokens: 8, temperature: 0 });
    const turn2 = [...msgs, { role: "assistant" as const, content: t1.text }, { role: "user" as const, content: "Another one?" }];
    const t2 = await s.chat(turn2, { maxTokens: 8, temperature: 0 });
    expect(t2.usage.cachedTokens).toBeGreaterThanOrEqual(t1.usage.promptTokens);
    const fresh = await m.createSession({ contextLength: 512 }).chat(turn2, { maxTokens: 8, temperature: 0 });
    expect(t2.text).toBe(fresh.text);
    expect(fresh.usage.cachedTokens).toBe(0);
  });

  it("stop strings end generation and are not part of the text", async () => {
    const m = await model();
    const free = await run(m.createSession({ contextLength: 128 }).generate("Hello", { maxTokens: 30, temperature: 0 }));
    const stop = free.text.slice(5, 8);
    expect(stop.length).toBe(3);
    const cut = await run(m.createSession({ contextLength: 128 }).generate("Hello", { maxTokens: 30, temperature: 0, stop: [stop] }));
    expect(cut.result.finishReason).toBe("stop");
    expect(cut.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
  });

  it("jsonSchema output parses and matches the schema, even from a random-weight model", async () => {
    const m = await model();
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" }, ok: { type: "boolean" } }, required: ["name", "age", "ok"] };
    for (const seed of [1, 2, 3]) {
      const { text, result } = await run(m.createSession({ contextLength: 512 }).generate("Give JSON:", { maxTokens: 200, temperature: 0.8, seed, jsonSchema: schema }));
      expect(result.finishReason).toBe("stop");
      const v = JSON.parse(text);
      expect(Object.keys(v).sort()).toEqual(["age", "name", "ok"]);
      expect(typeof v.name).toBe("string"); expect(Number.isInteger(v.age)).toBe(true); expect(typeof v.ok).toBe("boolean");
    }
  }, 60_000);

  it("generation stops with finishReason 'context' when the cache is full; an oversized prompt is refused", async () => {
    const m = await model();
    const s = m.createSession({ contextLength: 16 });
    const noEnd = Object.fromEntries([...m.tokenizer!.eogIds].map((id) => [id, -1e9])); // never sample an end token
    const g = await run(s.generate("Hello there", { maxTokens: 100, temperature: 0, logitBias: noEnd }));
    expect(g.result.finishReason).toBe("context");
    expect(s.position).toBe(16);
    const long = "word ".repeat(40);
    await expect(run(m.createSession({ contextLength: 16 }).generate(long, { maxTokens: 4 }))).rejects.toMatchObject({ code: "CONTEXT_OVERFLOW" });
  });

  it("a disposed session's cache is reused by the next session: memory stays flat, results identical", async () => {
    const m = await model();
    const ids = m.tokenizer!.encode("Reuse the cache, please.");
    const first = m.createSession({ contextLength: 256 });
    const a = await first.forward(ids);
    first.dispose();
    await expect(first.forward(ids)).rejects.toMatchObject({ code: "BAD_INPUT" });
    const before = m.memoryBytes;
    for (let i = 0; i < 20; i++) { const s = m.createSession({ contextLength: 256 }); expect(Array.from(await s.forward(ids))).toEqual(Array.from(a)); s.dispose(); }
    expect(m.memoryBytes).toBe(before);
  });
});
