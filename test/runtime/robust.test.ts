// Issue 8, the runtime: scripts exit without dispose(), calls on one session queue FIFO and equal
// their solo runs, dispose() during a forward cannot leak into the next session, memory stays flat
// across many sessions, threads are validated and capped, bad arguments are typed errors, and a
// tokenizer larger than the embedding table is refused at load.
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { mkdtempSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/runtime/load.js";
import type { Model } from "../../src/runtime/model.js";
import { Lfm2Error } from "../../src/errors.js";
import { concatChunks, encodeGguf, type GgufWriteTensor } from "../../src/formats/gguf-writer.js";
import { quantizeTensor } from "../../src/formats/quantize.js";
import { syntheticMetadata, syntheticWeights } from "../../src/models/synthetic.js";
import { tempDir, tinyModelPath } from "../helpers/models.js";
import { findDeno } from "../runtimes/helpers.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MODEL = { shape: "tiny", weightType: "Q4_0", seed: 7 } as const;

async function code(p: unknown): Promise<string> {
  try { await (typeof p === "function" ? (p as () => unknown)() : p); } catch (e) {
    expect(e, String(e)).toBeInstanceOf(Lfm2Error);
    return (e as Lfm2Error).code;
  }
  return "no error";
}

const load = (opts: Parameters<typeof loadModel>[1] = {}) => loadModel(tinyModelPath(MODEL), { threads: 1, ...opts });
const macrotask = () => new Promise<void>((r) => setImmediate(r));

const SCRIPT = (importFrom: string, modelPath: string, extra = "") => `
import { loadModel } from ${JSON.stringify(importFrom)};
const model = await loadModel(${JSON.stringify(modelPath)}, { threads: 2${extra} });
const s = model.createSession({ contextLength: 64 });
for await (const d of s.generate([1, 20, 30, 40], { maxTokens: 4, temperature: 0 })) {}
await model.chat([{ role: "user", content: "hi" }], { maxTokens: 3 });
console.log(JSON.stringify({ threads: model.info.threads, note: model.info.threadsNote ?? null }));
`;

describe("a script that never calls dispose() exits by itself (idle workers do not keep it alive)", () => {
  it("Node, threads: 2", () => {
    const dir = mkdtempSync(join(tempDir, "exit-"));
    const script = join(dir, "script.mts");
    writeFileSync(script, SCRIPT(pathToFileURL(join(ROOT, "src/index.ts")).href, tinyModelPath(MODEL)));
    // a hang guard, not a speed check: without the fix the child never exits
    const r = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: ROOT, encoding: "utf8", timeout: 45_000 });
    expect(r.signal, `killed after the timeout: the process did not exit\n${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).threads).toBe(2);
  }, 60_000);

  const deno = findDeno();
  it.skipIf(!deno.ok)("Deno, threads: 2 (workers from node:worker_threads, unref'd)", async () => {
    if (!deno.ok) return;
    const dir = mkdtempSync(join(tempDir, "exit-deno-"));
    const bundle = join(dir, "lfm2.js");
    await build({ entryPoints: [join(ROOT, "src/index.ts")], outfile: bundle, bundle: true, format: "esm", platform: "neutral",
      external: ["node:*"], mainFields: ["module", "main"], logLevel: "error" });
    const script = join(dir, "script.mjs");
    writeFileSync(script, SCRIPT(pathToFileURL(bundle).href, tinyModelPath(MODEL), `, wasmBaseUrl: ${JSON.stringify(pathToFileURL(join(ROOT, "build/")).href)}`));
    const r = spawnSync(deno.bin.path, ["run", "--no-prompt", `--allow-read=${ROOT},${tempDir}`, script],
      { encoding: "utf8", timeout: 60_000, env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", DENO_DIR: join(dir, "deno-dir") } });
    expect(r.signal, `killed after the timeout: the process did not exit\n${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).threads).toBe(2);
  }, 90_000);
});

const A = [{ role: "user" as const, content: "Tell me about the sea." }];
const B = [{ role: "user" as const, content: "Name three colours, please." }];
const SAMPLED = { maxTokens: 12, temperature: 0.9, seed: 11 };
const GREEDY = { maxTokens: 12, temperature: 0 };

async function drainGen<R>(it: AsyncGenerator<unknown, R>): Promise<R> {
  for (;;) { const r = await it.next(); if (r.done) return r.value; }
}

describe("calls on one session or model queue FIFO; each equals its run one after the other", () => {
  it("Promise.all of model.chat calls (seeded sampling and greedy)", async () => {
    const solo = await load(), both = await load();
    try {
      const ref = [(await solo.chat(A, SAMPLED)).text, (await solo.chat(B, GREEDY)).text, (await solo.chat(A, GREEDY)).text];
      const got = await Promise.all([both.chat(A, SAMPLED), both.chat(B, GREEDY), both.chat(A, GREEDY)]);
      expect(got.map((r) => r.text)).toEqual(ref);
    } finally { solo.dispose(); both.dispose(); }
  });

  it("model.chat with varying contextLength while another chat runs", async () => {
    const solo = await load(), both = await load();
    try {
      const ref = [(await solo.chat(A, { ...GREEDY, contextLength: 256 })).text, (await solo.chat(B, { ...SAMPLED, contextLength: 128 })).text];
      const got = await Promise.all([both.chat(A, { ...GREEDY, contextLength: 256 }), both.chat(B, { ...SAMPLED, contextLength: 128 })]);
      expect(got.map((r) => r.text)).toEqual(ref);
    } finally { solo.dispose(); both.dispose(); }
  });

  it("two session.generate() iterators driven at once", async () => {
    const model = await load();
    try {
      const ref = model.createSession({ contextLength: 128 });
      const p1 = "The sea is", p2 = "Colours are";
      const r1 = await drainGen(ref.generate(p1, SAMPLED)), r2 = await drainGen(ref.generate(p2, GREEDY));
      const s = model.createSession({ contextLength: 128 });
      const [g1, g2] = await Promise.all([drainGen(s.generate(p1, SAMPLED)), drainGen(s.generate(p2, GREEDY))]);
      expect([g1.tokens, g2.tokens]).toEqual([r1.tokens, r2.tokens]);
    } finally { model.dispose(); }
  });

  it("chat() while a chatStream() is paused waits for the stream; an unstarted iterator holds nothing", async () => {
    const model = await load();
    try {
      const ref = model.createSession({ contextLength: 128 });
      const rs = await ref.chat(A, SAMPLED), rc = await ref.chat(B, GREEDY);
      const s = model.createSession({ contextLength: 128 });
      const never = s.generate("unused", GREEDY); // never iterated: must not take the session
      const stream = s.chatStream(A, SAMPLED);
      const first = await stream.next();
      expect(first.done).toBe(false);
      let settled = false;
      const queued = s.chat(B, GREEDY).finally(() => { settled = true; });
      for (let i = 0; i < 20; i++) await macrotask();
      expect(settled).toBe(false); // the paused stream still holds the session
      let text = (first.value as { text: string }).text, r = await stream.next();
      while (!r.done) { text += (r.value as { text: string }).text; r = await stream.next(); }
      expect(text).toBe(rs.text);
      expect((await queued).text).toBe(rc.text);
      await never.return(undefined as never);
    } finally { model.dispose(); }
  });

  it("an abort while an iterator sits paused hands the session on (no deadlock); queued calls still wait", async () => {
    const model = await load();
    try {
      const s = model.createSession({ contextLength: 128 });
      const ac = new AbortController();
      const it = s.generate("The sea is", { ...GREEDY, signal: ac.signal });
      await it.next();
      let settled = false;
      const queued = s.forward([5, 6]).finally(() => { settled = true; });
      for (let i = 0; i < 20; i++) await macrotask();
      expect(settled).toBe(false); // queued behind the paused iterator
      ac.abort();
      expect((await queued).length).toBe(model.info.config.vocabSize); // would wait forever without the hand-on
      expect(await code(it.next())).toBe("ABORTED");
    } finally { model.dispose(); }
  });
});

describe("dispose() during a multi-chunk forward", () => {
  it("the in-flight call ends ABORTED and the next session computes exactly what a fresh one does", async () => {
    const prompt = Array.from({ length: 60 }, (_, i) => 10 + ((i * 37) % 500));
    const next = Array.from({ length: 40 }, (_, i) => 20 + ((i * 53) % 700));
    const fresh = await load({ chunkSize: 4 });
    const want = await fresh.createSession({ contextLength: 128 }).forward(next);
    fresh.dispose();
    const model = await load({ chunkSize: 4 });
    try {
      const s1 = model.createSession({ contextLength: 128 });
      const inFlight = s1.forward(prompt);
      const outcome = inFlight.then(() => "resolved", (e) => (e instanceof Lfm2Error ? e.code : String(e)));
      while (s1.position === 0) await macrotask(); // the first chunk is in
      s1.dispose();
      const s2 = model.createSession({ contextLength: 128 });
      const got = await s2.forward(next);
      expect(await outcome).toBe("ABORTED");
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(await code(s1.forward([1]))).toBe("BAD_INPUT"); // disposed
    } finally { model.dispose(); }
  });
});

describe("memory stays flat for a long-running process", () => {
  // each new context is larger than any before: a cache that is only ever reused, never freed, grows
  // by every one of them; freed blocks coalesce and take the next one in place
  const SIZES = Array.from({ length: 50 }, (_, i) => 64 + 48 * i);
  const LARGEST = SIZES[SIZES.length - 1];
  const arena = (m: Model) => (m as any).shards[0].arena as { liveBytes: number; used: number };
  const MiB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

  /** Memory of a model that only ever held one session, of the largest context. */
  async function oneLargest(): Promise<number> {
    const m = await load();
    try {
      const s = m.createSession({ contextLength: LARGEST });
      await s.chat(A, { maxTokens: 2, temperature: 0 });
      return m.memoryBytes;
    } finally { m.dispose(); }
  }

  it("50 sessions of varying contextLength (createSession, use, dispose)", async () => {
    const ref = await oneLargest();
    const model = await load();
    try {
      for (const contextLength of SIZES) {
        const s = model.createSession({ contextLength });
        await s.chat(A, { maxTokens: 2, temperature: 0 });
        s.dispose();
      }
      console.log(`50 sessions: ${MiB(model.memoryBytes)}; one session of ${LARGEST} positions: ${MiB(ref)}`);
      expect(model.memoryBytes).toBeLessThanOrEqual(ref + 256 * 1024);
    } finally { model.dispose(); }
  });

  it("50 model.chat calls with varying contextLength", async () => {
    const ref = await oneLargest();
    const model = await load();
    try {
      for (const contextLength of SIZES) await model.chat(A, { maxTokens: 2, temperature: 0, contextLength });
      console.log(`50 chats: ${MiB(model.memoryBytes)}; one session of ${LARGEST} positions: ${MiB(ref)}`);
      expect(model.memoryBytes).toBeLessThanOrEqual(ref + 256 * 1024);
    } finally { model.dispose(); }
  });

  it("a failed createSession (MODEL_TOO_LARGE) leaves memory and allocations unchanged", async () => {
    const model = await load();
    try {
      const ok = model.createSession({ contextLength: 256 });
      const before = { bytes: model.memoryBytes, live: arena(model).liveBytes, used: arena(model).used };
      // 5M positions × 1 KiB of KV per position: more than one 4 GiB memory holds
      expect(await code(() => model.createSession({ contextLength: 5_000_000 }))).toBe("MODEL_TOO_LARGE");
      expect({ bytes: model.memoryBytes, live: arena(model).liveBytes, used: arena(model).used }).toEqual(before);
      expect((await ok.forward([1, 2, 3])).length).toBe(model.info.config.vocabSize);
    } finally { model.dispose(); }
  });
});

describe("threads", () => {
  it("more threads than the machine has are capped, with a note", async () => {
    const cores = availableParallelism();
    const model = await load({ threads: cores + 1 });
    try {
      expect(model.info.threads).toBe(cores);
      expect(model.info.threadsNote).toMatch(new RegExp(`capped at this machine's ${cores} hardware threads \\(asked for ${cores + 1}\\)`));
    } finally { model.dispose(); }
  });

  it.each([0, -1, NaN, 1.5, "2", null, Infinity])("threads: %s → BAD_INPUT", async (threads) => {
    expect(await code(load({ threads: threads as number }))).toBe("BAD_INPUT");
  });
});

describe("every bad argument is an Lfm2Error BAD_INPUT", () => {
  it("session and model API", async () => {
    const model = await load();
    try {
      const s = model.createSession({ contextLength: 64 });
      for (const bad of [null, undefined, "text", [1.5], [-1], [1e9], {}, [1, "2"], 5]) {
        expect(await code(s.forward(bad as any)), JSON.stringify(bad)).toBe("BAD_INPUT");
      }
      expect(await code(s.forward([1], null as any))).toBe("BAD_INPUT");
      expect(await code(s.forward([1], { signal: "x" as any }))).toBe("BAD_INPUT");
      for (const contextLength of [NaN, -1, 0, "x", 1.5, Infinity]) {
        expect(await code(() => model.createSession({ contextLength: contextLength as number })), String(contextLength)).toBe("BAD_INPUT");
        expect(await code(model.chat(A, { contextLength: contextLength as number })), String(contextLength)).toBe("BAD_INPUT");
      }
      for (const chunkSize of [0, -2, "x", 1.5, 100_000]) {
        expect(await code(() => model.createSession({ chunkSize: chunkSize as number })), String(chunkSize)).toBe("BAD_INPUT");
      }
      expect(await code(() => model.createSession(null as any))).toBe("BAD_INPUT");
      expect(await code(model.chat(A, null as any))).toBe("BAD_INPUT");
      expect(await code(s.generate("hi", null as any).next())).toBe("BAD_INPUT");
      expect(await code(s.chat(A, 7 as any))).toBe("BAD_INPUT");
      expect(await code(() => s.rewindToPrefix(null as any))).toBe("BAD_INPUT");
      expect(await code(loadModel(tinyModelPath(MODEL), null as any))).toBe("BAD_INPUT");
      // still usable after all of that
      expect((await s.forward([1, 2])).length).toBe(model.info.config.vocabSize);
    } finally { model.dispose(); }
  });

  it("a session with a smaller chunkSize computes the same logits", async () => {
    const model = await load();
    try {
      const ids = Array.from({ length: 30 }, (_, i) => 3 + i * 11);
      const a = await model.createSession({ contextLength: 64 }).forward(ids);
      const small = model.createSession({ contextLength: 64, chunkSize: 7 });
      expect(small.chunkSize).toBe(7);
      expect(Array.from(await small.forward(ids))).toEqual(Array.from(a));
    } finally { model.dispose(); }
  });
});

describe("a tokenizer larger than the embedding table", () => {
  it("is refused at load with SHAPE_MISMATCH", async () => {
    const { tensors, shape } = syntheticWeights({ shape: "tiny", seed: 3 });
    const meta = syntheticMetadata(shape);
    const tokens = meta["tokenizer.ggml.tokens"].value as string[], types = meta["tokenizer.ggml.token_type"].value as number[];
    meta["tokenizer.ggml.tokens"] = { type: "string[]", value: [...tokens, "extra-a", "extra-b", "extra-c"] };
    meta["tokenizer.ggml.token_type"] = { type: "i32[]", value: [...types, 1, 1, 1] };
    const out: GgufWriteTensor[] = tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: quantizeTensor(t.type, t.values, t.shape[0]) }));
    const bytes = concatChunks(encodeGguf(meta, out));
    let err: unknown;
    try { (await loadModel(bytes, { threads: 1 })).dispose(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(Lfm2Error);
    expect((err as Lfm2Error).code).toBe("SHAPE_MISMATCH");
    expect((err as Error).message).toMatch(/2051 tokens .* 2048 rows/);
  });
});
