// Run by test/runtimes/deno.test.ts under Deno (plain JS: no npm:, no import map, the package is
// imported by relative path as a Deno user vendoring dist/ would). Greedy-generates from the same
// model loaded every way Deno can (bytes, path, file: URL, http URL, with worker threads) and prints
// one JSON line with every case.
//   deno run --allow-read --allow-net=127.0.0.1 test/runtimes/deno-run.mjs '<json args>'
import { loadModel } from "../../dist/index.js";

const { modelPath, prompt, maxTokens, context, threads } = JSON.parse(Deno.args[0]);
const bytes = await Deno.readFile(modelPath);

async function greedy(name, source, opts) {
  const t0 = performance.now();
  let model;
  try {
    model = await loadModel(source, opts);
    const loadMs = performance.now() - t0;
    const it = model.createSession({ contextLength: context }).generate(prompt, { maxTokens, temperature: 0 });
    let r = await it.next();
    while (!r.done) r = await it.next();
    const { wasmVariant, threads, threadsNote } = model.info;
    return { name, tokens: r.value.tokens, text: r.value.text, wasmVariant, threads, threadsNote, shards: model.info.shards.length, loadMs,
      decodeMs: r.value.timings.decodeMs };
  } catch (e) {
    return { name, error: String(e?.stack ?? e) };
  } finally { model?.dispose(); }
}

// the model over HTTP from a local Deno.serve (HEAD for the size, then a streamed GET)
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
  new Response(bytes, { headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) } }));
const url = `http://127.0.0.1:${server.addr.port}/tiny.gguf`;

const results = [];
try {
  results.push(await greedy("bytes", bytes, { threads: 1 }));
  results.push(await greedy("path", modelPath, { threads: 1 }));
  results.push(await greedy("file-url", new URL(`file://${modelPath}`), { threads: 1 }));
  results.push(await greedy("http-url", url, { threads: 1 }));
  results.push(await greedy("threads", bytes, { threads }));
  // weights over several WebAssembly memories, single- and multi-threaded
  results.push(await greedy("shards", bytes, { threads: 1, maxShardBytes: 900_000 }));
  results.push(await greedy("shards-threads", bytes, { threads, maxShardBytes: 900_000 }));
} finally {
  await server.shutdown();
}
// deno.json's "exports": the package imported by its JSR name resolves to this same module
let jsrName;
try {
  const name = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).name;
  const mod = await import(name);
  jsrName = { name, sameModule: mod.loadModel === loadModel };
} catch (e) { jsrName = { error: String(e) }; }
console.log(JSON.stringify({ deno: Deno.version.deno, v8: Deno.version.v8, results, jsrName }));
