// lfm2-wasm on Cloudflare Workers / workerd.
//
// Workers cannot compile WebAssembly from bytes at run time, and a Worker's bundle has no URL to
// fetch "../build/*.wasm" from, so the kernel builds are imported as compiled WebAssembly.Module
// objects (wrangler does this for `.wasm` imports; config.capnp declares them as wasm modules) and
// handed to loadModel through `wasmModules`. Workers have no shared-memory threads: threads = 1.
//
// Where the model comes from, first match wins:
//   env.MODEL      a data binding (ArrayBuffer) holding a GGUF file (config.capnp; for wrangler see README.md)
//   env.MODEL_URL  a URL fetched (streamed) on the first request, e.g. an R2 public bucket
//   otherwise      the tiny synthetic demo model (random weights, seed env.SEED or 42), built in the isolate
//
// GET /?prompt=Hello&maxTokens=16  →  JSON { text, tokens, finishReason, usage, info }
import { loadModel, syntheticGguf } from "lfm2-wasm";
import simd from "lfm2-wasm/build/lfm2-simd.wasm";
import relaxed from "lfm2-wasm/build/lfm2-relaxed.wasm";

let modelPromise = null; // one model per isolate, shared by all requests it serves
let modelSource = "";

function getModel(env) {
  if (!modelPromise) {
    let source;
    if (env.MODEL) { source = new Uint8Array(env.MODEL); modelSource = "data binding MODEL"; }
    else if (env.MODEL_URL) { source = env.MODEL_URL; modelSource = env.MODEL_URL; }
    else {
      const seed = Number(env.SEED ?? 42);
      source = concat(syntheticGguf({ shape: "tiny", weightType: "Q4_0", seed }));
      modelSource = `synthetic tiny Q4_0, seed ${seed}`;
    }
    // lfm2-relaxed is used only where the relaxed-SIMD probe passes; workerd refuses to compile the
    // probe's bytes, so lfm2-simd runs there today. Shared-memory (-mt) builds are not needed.
    modelPromise = loadModel(source, { threads: 1, wasmModules: { "lfm2-simd": simd, "lfm2-relaxed": relaxed } });
    modelPromise.catch(() => { modelPromise = null; }); // let a later request retry
  }
  return modelPromise;
}

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/") return new Response("not found\n", { status: 404 });
    const prompt = url.searchParams.get("prompt") ?? "Hello";
    const maxTokens = Math.min(256, Number(url.searchParams.get("maxTokens") ?? 32));
    try {
      const model = await getModel(env);
      const session = model.createSession({ contextLength: 512 });
      const it = session.generate(prompt, { maxTokens, temperature: 0 });
      let r;
      while (!(r = await it.next()).done) { /* deltas: r.value.token, r.value.text */ }
      const { text, tokens, finishReason, usage } = r.value;
      const { wasmVariant, threads, threadsNote, parameters, weightBytes } = model.info;
      return Response.json({ text, tokens, finishReason, usage, info: { source: modelSource, wasmVariant, threads, threadsNote, parameters, weightBytes, memoryBytes: model.memoryBytes } });
    } catch (e) {
      return Response.json({ error: String(e?.stack ?? e) }, { status: 500 });
    }
  },
};
