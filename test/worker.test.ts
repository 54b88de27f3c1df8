// Worker mode in Node: loadModel(..., { worker: true }) runs the engine in a worker_thread (from dist/, as
// shipped: the worker script is dist/worker.js beside dist/index.js). Everything must equal the in-process
// engine: greedy tokens, logits bit for bit, chat text and streamed deltas, error codes and messages, aborts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTEXT, DIST_INDEX, findDeno, importDist, MAX_TOKENS, nodeReference, PROMPT, REPO_ROOT, removeTemp, run, tinyModel } from "./runtimes/helpers.js";

type Pkg = Awaited<ReturnType<typeof importDist>>;
let pkg: Pkg;
let bytes: Uint8Array;
let local: Awaited<ReturnType<Pkg["loadModel"]>>;
let remote: import("../src/index.js").WorkerModel;

async function drain<T, R>(it: AsyncGenerator<T, R>): Promise<{ deltas: T[]; result: R }> {
  const deltas: T[] = [];
  for (let r = await it.next(); ; r = await it.next()) { if (r.done) return { deltas, result: r.value }; deltas.push(r.value); }
}

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string; isLfm2: boolean }> {
  try { await p; } catch (e: any) { return { code: e.code, message: e.message, isLfm2: e instanceof pkg.Lfm2Error }; }
  throw new Error("expected a rejection");
}

beforeAll(async () => {
  pkg = await importDist();
  bytes = (await tinyModel()).bytes;
  local = await pkg.loadModel(bytes.slice(), { threads: 1 });
  remote = await pkg.loadModel(bytes.slice(), { threads: 2, worker: true });
}, 120_000);

afterAll(async () => {
  local?.dispose();
  await remote?.dispose();
  removeTemp();
});

describe("worker mode (Node worker_thread)", () => {
  it("loads in a worker: info as in-process, its own thread pool inside the worker, the bytes transferred", async () => {
    expect(remote).toBeInstanceOf(pkg.WorkerModel);
    expect(remote.info.config).toEqual(local.info.config);
    expect(remote.info.parameters).toBe(local.info.parameters);
    expect(remote.info.tensorTypes).toEqual(local.info.tensorTypes);
    expect(remote.info.metadata.get("general.architecture")).toBe("lfm2");
    expect(remote.info.threads, remote.info.threadsNote).toBe(2); // nested: the pool's workers run inside the engine worker
    expect(remote.info.wasmVariant).toMatch(/-mt$/);
    const copy = bytes.slice();
    const progress: { loaded: number; total: number }[] = [];
    const m = await pkg.loadModel(copy, { worker: true, threads: 1, onProgress: (p) => progress.push(p) });
    try {
      expect(copy.buffer.byteLength, "the caller's buffer is detached (moved, not copied)").toBe(0);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)!.loaded).toBe(bytes.length);
    } finally { await m.dispose(); }
  });

  it("greedy generation: the same tokens, text and deltas as in-process", async () => {
    const opts = { maxTokens: MAX_TOKENS, temperature: 0 };
    const a = await drain(local.createSession({ contextLength: CONTEXT }).generate(PROMPT, opts));
    const s = await remote.createSession({ contextLength: CONTEXT });
    const b = await drain(s.generate(PROMPT, opts));
    expect(b.result.tokens).toEqual(a.result.tokens);
    expect(b.result.text).toBe(a.result.text);
    expect(b.result.tokens).toHaveLength(MAX_TOKENS);
    expect(b.deltas).toEqual(a.deltas);
    expect(s.position).toBe(b.result.usage.promptTokens + MAX_TOKENS - 1); // the last sampled token is not fed back
    expect(await remote.tokenizer!.encode(PROMPT)).toEqual(local.tokenizer!.encode(PROMPT));
    expect(await remote.tokenizer!.decode(a.result.tokens)).toBe(local.tokenizer!.decode(a.result.tokens));
  });

  it("forward: logits bit for bit; reset and dispose", async () => {
    const ids = local.tokenizer!.encode(PROMPT);
    const ls = local.createSession({ contextLength: CONTEXT });
    const rs = await remote.createSession({ contextLength: CONTEXT });
    for (const step of [ids, [7], [8, 9]]) {
      const a = await ls.forward(step), b = await rs.forward(step);
      expect(b).toBeInstanceOf(Float32Array);
      expect(new Uint32Array(b.buffer, b.byteOffset, b.length)).toEqual(new Uint32Array(a.buffer, a.byteOffset, a.length));
    }
    expect(rs.tokens).toEqual(ls.tokens);
    await rs.reset();
    expect(rs.position).toBe(0);
    ls.reset();
    const a = await ls.forward(ids), b = await rs.forward(ids);
    expect(new Uint32Array(b.buffer)).toEqual(new Uint32Array(a.buffer));
    await rs.dispose();
    expect(await errorOf(rs.forward([1]))).toMatchObject({ code: "BAD_INPUT", isLfm2: true });
  });

  it("chat and chatStream: the same text; streamed deltas add up to it", async () => {
    const messages = [{ role: "user" as const, content: "Say hi" }];
    const opts = { maxTokens: 12, temperature: 0 };
    const a = await local.chat(messages, opts);
    const b = await remote.chat(messages, opts);
    expect(b.text).toBe(a.text);
    expect(b.finishReason).toBe(a.finishReason);
    const s = await remote.createSession({ contextLength: CONTEXT });
    const streamed = await drain(s.chatStream(messages, opts));
    expect(streamed.deltas.map((d) => d.text).join("")).toBe(a.text);
    expect(streamed.result.text).toBe(a.text);
    await s.dispose();
  });

  it("errors keep their codes and messages", async () => {
    const ls = local.createSession({ contextLength: 8 });
    const rs = await remote.createSession({ contextLength: 8 });
    for (const call of [(s: any) => s.forward([1e6]), (s: any) => s.forward([]), (s: any) => s.forward(Array(9).fill(1))]) {
      const a = await errorOf(call(ls)), b = await errorOf(call(rs));
      expect(b).toEqual(a);
      expect(b.isLfm2).toBe(true);
    }
    const bad = await errorOf(pkg.loadModel(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), { worker: true }));
    expect(bad).toEqual(await errorOf(pkg.loadModel(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))));
    expect(bad.isLfm2).toBe(true);
    const noWorker = await errorOf(pkg.loadModel(bytes.slice(), { worker: true, workerUrl: new URL("./no-such-worker.js", import.meta.url) }));
    expect(noWorker.code).toBe("IO");
    expect(noWorker.message).toMatch(/no-such-worker\.js.*workerUrl/s);
  });

  it("an AbortSignal stops generation in the worker (ABORTED with the reason); the session stays usable", async () => {
    const s = await remote.createSession({ contextLength: CONTEXT });
    const ctrl = new AbortController();
    let n = 0;
    const err = await errorOf((async () => {
      for await (const _ of s.generate(PROMPT, { maxTokens: 240, temperature: 0, signal: ctrl.signal })) {
        if (++n === 3) ctrl.abort(new Error("user pressed stop"));
      }
    })());
    expect(err).toMatchObject({ code: "ABORTED", message: "user pressed stop", isLfm2: true });
    expect(n).toBeLessThan(240);
    // already aborted: rejected at once, as in-process
    expect(await errorOf(s.forward([1], { signal: ctrl.signal }))).toMatchObject({ code: "ABORTED" });
    // breaking out of a stream stops it too; the next call runs normally
    for await (const _ of s.generate(PROMPT, { maxTokens: 200, temperature: 0 })) break;
    const { result } = await drain(s.generate(PROMPT, { maxTokens: MAX_TOKENS, temperature: 0 }));
    const ref = await drain(local.createSession({ contextLength: CONTEXT }).generate(PROMPT, { maxTokens: MAX_TOKENS, temperature: 0 }));
    expect(result.tokens).toEqual(ref.result.tokens);
    // an abort during loading (from a file: the worker reads it with real I/O, so the abort message lands mid-load)
    const lc = new AbortController();
    const loading = pkg.loadModel((await tinyModel()).path, { worker: true, threads: 1, signal: lc.signal });
    lc.abort(new Error("cancelled load"));
    expect(await errorOf(loading)).toMatchObject({ code: "ABORTED", message: "cancelled load" });
  });

  it("a disposed model rejects further calls with BAD_INPUT", async () => {
    const m = await pkg.loadModel(bytes.slice(), { worker: true, threads: 1 });
    const s = await m.createSession({ contextLength: CONTEXT });
    await m.dispose();
    expect(await errorOf(s.forward([1]))).toMatchObject({ code: "BAD_INPUT", isLfm2: true });
    expect(await errorOf(m.chat([{ role: "user", content: "hi" }]))).toMatchObject({ code: "BAD_INPUT" });
  });
});

const deno = findDeno();
describe.skipIf(!deno.ok)(`worker mode in Deno (a module Web Worker running dist/worker.js)${deno.ok ? "" : `: skipped, ${deno.reason}`}`, () => {
  it("Node's greedy tokens, with the engine's thread pool nested in the worker", async () => {
    if (!deno.ok) return;
    const ref = await nodeReference();
    const { path, dir } = await tinyModel();
    const script = `const { loadModel } = await import(${JSON.stringify(new URL(`file://${DIST_INDEX}`).href)});
      const m = await loadModel(${JSON.stringify(path)}, { worker: true, threads: 2 });
      const s = await m.createSession({ contextLength: ${CONTEXT} });
      const it = s.generate(${JSON.stringify(PROMPT)}, { maxTokens: ${MAX_TOKENS}, temperature: 0 });
      let r; while (!(r = await it.next()).done);
      console.log(JSON.stringify({ tokens: r.value.tokens, threads: m.info.threads, isWorker: typeof m.memoryBytes === "function" }));
      await m.dispose();`;
    const r = await run(deno.bin.path, ["eval", script], {
      timeoutMs: 90_000, env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", DENO_DIR: `${dir}/deno-dir` }, cwd: REPO_ROOT });
    expect(r.code, r.stderr).toBe(0); // and it exits: dispose() ends the worker, which would keep Deno alive
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.tokens).toEqual(ref.tokens);
    expect(out.threads).toBe(2);
    expect(out.isWorker).toBe(true); // memoryBytes() is a method on WorkerModel, a getter on Model
  }, 120_000);
});

describe("worker mode: the rest of Model's API", () => {
  it("renderPrompt, and an embedding model's embed / embedQuery / embedDocuments / maxSim equal in-process", async () => {
    const msgs = [{ role: "user" as const, content: "Name three planets." }];
    expect(await remote.renderPrompt(msgs)).toEqual(await local.renderPrompt(msgs));
    const { syntheticGguf } = await import("../src/models/synthetic.js");
    const { concatChunks } = await import("../src/formats/gguf-writer.js");
    const enc = concatChunks(syntheticGguf({ embedding: { outDim: 32, pooling: 0, causal: false } }));
    const inProc = await pkg.loadModel(enc.slice(), { threads: 1 });
    const worker = await pkg.loadModel(enc.slice(), { threads: 1, worker: true });
    try {
      expect(worker.info.embedding).toEqual(inProc.info.embedding);
      const a = await inProc.embed("some text", { prefix: false, normalize: false });
      const b = await worker.embed("some text", { prefix: false, normalize: false });
      expect(b.tokens).toEqual(a.tokens);
      expect(Array.from(b.vectors)).toEqual(Array.from(a.vectors));
      const q = await worker.embedQuery("what is it?"), docs = await worker.embedDocuments(["one doc", "another doc"]);
      expect(worker.maxSim(q, docs[0])).toBe(inProc.maxSim(await inProc.embedQuery("what is it?"), (await inProc.embedDocuments(["one doc", "another doc"]))[0]));
      // a text-generation model refuses embed with the same typed error in both modes
      expect((await errorOf(remote.embed("x"))).code).toBe((await errorOf(local.embed("x"))).code);
    } finally {
      inProc.dispose();
      await worker.dispose();
    }
  }, 120_000);
});
