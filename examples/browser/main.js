// lfm2-wasm browser example: load a GGUF by URL with a progress bar, then stream a generation and
// report tokens/s. In your own app import from the package instead ("lfm2-wasm" via a bundler, or an
// ESM CDN); the .wasm kernels are found next to the module (or pass `wasmBaseUrl`).
//
// The engine runs in a Web Worker (loadModel(..., { worker: true })) so generation never freezes the page;
// untick "Run in a Worker" (or ?worker=0) to run it on the page's own thread.
//
// Query parameters fill the form: ?model=URL&threads=N&prompt=...&maxTokens=N&cache=0|1&worker=0|1, and
// &autorun=1 loads and generates at once (greedy). window.lfm2Demo exposes state and results, which
// the browser test (test/runtimes/browser.test.ts) reads.
import { loadModel, syntheticGguf } from "../../dist/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const demo = (window.lfm2Demo = { state: "idle", crossOriginIsolated: self.crossOriginIsolated === true, load: null, result: null, error: null });

let model = null;
let loadAbort = null;
let genAbort = null;

$("model").value = params.get("model") ?? "demo";
$("threads").value = params.get("threads") ?? String(Math.min(4, navigator.hardwareConcurrency || 1));
if (params.has("prompt")) $("prompt").value = params.get("prompt");
if (params.has("maxTokens")) $("maxTokens").value = params.get("maxTokens");
if (params.get("cache") === "0") $("cache").checked = false;
if (params.get("worker") === "0") $("worker").checked = false;

const mb = (n) => (n / 1e6).toFixed(1);
const setState = (s) => {
  demo.state = s;
  $("load").disabled = s === "loading" || s === "generating";
  $("cancel").disabled = s !== "loading";
  $("generate").disabled = !model || s === "loading" || s === "generating";
  $("stop").disabled = s !== "generating";
};
const fail = (e) => {
  demo.error = String(e?.stack ?? e);
  $("error").textContent = e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? e);
  setState("error");
};
const nextFrame = () => new Promise((r) => setTimeout(r, 0)); // let the page paint between tokens

async function load() {
  $("error").textContent = "";
  await model?.dispose();
  model = null;
  setState("loading");
  loadAbort = new AbortController();
  const t0 = performance.now();
  let progressEvents = 0, lastProgress = null;
  const onProgress = (p) => {
    progressEvents++;
    lastProgress = p;
    $("progress").value = p.total ? p.loaded / p.total : 0;
    $("progressText").textContent = `${mb(p.loaded)} / ${mb(p.total)} MB · ${mb(p.rate)} MB/s`;
  };
  try {
    const url = $("model").value.trim();
    // "demo": the tiny random-weight model, generated here (a Blob is a model source like any other)
    const source = url === "demo" ? new Blob(syntheticGguf({ shape: "tiny", weightType: "Q4_0", seed: 42 })) : new URL(url, location.href).href;
    model = await loadModel(source, {
      onProgress,
      signal: loadAbort.signal,
      threads: Number($("threads").value) || undefined,
      // Cache Storage for URL loads: a second visit reads the weights from disk, not the network
      cache: $("cache").checked,
      worker: $("worker").checked,
    });
    const loadMs = performance.now() - t0;
    const { wasmVariant, threads, threadsNote, parameters, weightBytes, name } = model.info;
    demo.load = { loadMs, progressEvents, lastProgress, worker: $("worker").checked,
      info: { wasmVariant, threads, threadsNote, parameters, weightBytes, name } };
    $("progress").value = 1;
    $("info").textContent = `${name ?? "model"}: ${(parameters / 1e6).toFixed(1)}M parameters, ${mb(weightBytes)} MB of weights, ` +
      `loaded in ${(loadMs / 1000).toFixed(2)} s · ${wasmVariant}, ${threads} thread${threads > 1 ? "s" : ""}` +
      (threadsNote ? ` (${threadsNote})` : "") + (demo.crossOriginIsolated ? " · cross-origin isolated" : "") +
      ($("worker").checked ? " · in a Worker" : "");
    setState("ready");
  } catch (e) {
    model = null;
    fail(e);
  } finally { loadAbort = null; }
}

async function generate() {
  if (!model) return;
  $("error").textContent = "";
  $("output").textContent = "";
  setState("generating");
  genAbort = new AbortController();
  try {
    const session = await model.createSession({ contextLength: 2048 }); // a Promise in worker mode
    const it = session.generate($("prompt").value, {
      maxTokens: Number($("maxTokens").value) || 64,
      temperature: Number($("temperature").value) || 0,
      signal: genAbort.signal,
    });
    // time spent computing (inside next()), not painting: the first call includes the prompt
    let prefillMs = 0, decodeMs = 0, n = 0;
    let r;
    for (;;) {
      const t = performance.now();
      r = await it.next();
      const dt = performance.now() - t;
      if (r.done) { decodeMs += dt; break; }
      if (n++ === 0) prefillMs = dt; else decodeMs += dt;
      $("output").textContent += r.value.text;
      if (n > 1) $("stats").textContent = `${n} tokens · ${((n - 1) / (decodeMs / 1000)).toFixed(1)} tokens/s`;
      await nextFrame();
    }
    const res = r.value;
    const tokensPerSecond = n > 1 ? (n - 1) / (decodeMs / 1000) : 0;
    demo.result = { text: res.text, tokens: res.tokens, finishReason: res.finishReason, usage: res.usage, prefillMs, decodeMs, tokensPerSecond };
    $("output").textContent = res.text;
    $("stats").textContent = `${res.tokens.length} tokens (${res.finishReason}) · prompt ${res.usage.promptTokens} tokens in ${prefillMs.toFixed(0)} ms · ` +
      `${tokensPerSecond.toFixed(1)} tokens/s`;
    setState("done");
  } catch (e) {
    fail(e);
  } finally { genAbort = null; }
}

$("load").onclick = load;
$("cancel").onclick = () => loadAbort?.abort();
$("generate").onclick = generate;
$("stop").onclick = () => genAbort?.abort();
setState("idle");

if (params.get("autorun") === "1") {
  await load();
  if (model) await generate();
}
