// npm run bench: lfm2-wasm beside native llama.cpp (node-llama-cpp) and llama.cpp-in-WebAssembly
// (wllama, in headless Chromium) on the same synthetic LFM2 GGUF files, measured in one run.
//   tsx bench/run.ts [--quick] [--no-browser] [--no-wllama] [--models 350M:Q4_0,1.2B:Q4_0] [--wait-quiet S]
//                    [--no-long-context] [--depths 512,4096,16384,32768] [--threads 1,2] [--gen 32]
//   tsx bench/run.ts --long-context …   only the long-context table (bench/long-context.ts), first model
// Prints tables with ratios and writes bench/results.json (bench/results-long-context.json).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchModel, REPO_ROOT, type BenchShape, type BenchWeightType } from "./models.js";
import { runNative, waitForQuiet, type RivalResult } from "./rivals/native.js";
import { runWllama, wllamaWasmInfo } from "./rivals/wllama.js";
import { runOursBrowser, runOursNode } from "./ours.js";
import { Arena, createMemory } from "../bindings/arena.js";
import { compileVariant, instantiateKernels, chooseVariant } from "../bindings/wasm.js";
import { statSync, readdirSync } from "node:fs";
import { defaultThreads, longContextTable, runLongContext } from "./long-context.js";

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(`--${f}`);
const arg = (f: string) => { const i = argv.indexOf(`--${f}`); return i >= 0 ? argv[i + 1] : undefined; };
const quick = flag("quick");
const browser = !flag("no-browser");
const wllama = !flag("no-wllama");
const quiet = Number(arg("wait-quiet") ?? 20);
const P = 512, G = 128, WP = 128, WG = 32; // wllama is ~100x slower: shorter run, tokens/s either way
const models = (arg("models") ?? (quick ? "350M:Q4_0" : "350M:Q4_0,350M:Q8_0,350M:Q4_K,350M:F16,1.2B:Q4_0"))
  .split(",").map((s) => s.split(":") as [BenchShape, BenchWeightType]);

interface Row { model: string; engine: string; threads: number; r?: RivalResult; error?: string }
const rows: Row[] = [];

async function measure(model: string, engine: string, threads: number, f: () => Promise<RivalResult>) {
  if (quiet > 0) await waitForQuiet({ timeoutMs: quiet * 1000 });
  process.stderr.write(`  ${model} · ${engine} · ${threads} thread(s)… `);
  try {
    const r = await f();
    rows.push({ model, engine, threads, r });
    process.stderr.write(`prefill ${r.prefillTps.toFixed(1)} tok/s, decode ${r.decodeTps.toFixed(1)} tok/s\n`);
  } catch (e) {
    rows.push({ model, engine, threads, error: (e as Error).message.split("\n")[0] });
    process.stderr.write(`failed: ${(e as Error).message.split("\n")[0]}\n`);
  }
}

/** Single-thread read bandwidth of WebAssembly memory (GB/s), with our own kernel. */
async function bandwidth(): Promise<number> {
  const arena = new Arena(createMemory(512 << 20, false));
  const k: any = await instantiateKernels(await compileVariant(chooseVariant(false)), arena.memory);
  const n = 256 << 20, p = arena.alloc(n);
  arena.u8(p, n).fill(1);
  k.readBandwidth(p, n);
  const t = performance.now(); const reps = 8;
  for (let i = 0; i < reps; i++) k.readBandwidth(p, n);
  return (n * reps) / ((performance.now() - t) / 1000) / 1e9;
}

const depths = (arg("depths") ?? (quick ? "512,4096" : "512,4096,16384,32768")).split(",").map(Number);
const lcThreads = arg("threads") ? arg("threads")!.split(",").map(Number) : defaultThreads();
async function longContext(): Promise<void> {
  const [shape, type] = models[0];
  const path = await benchModel(shape, type);
  console.error(`long context: ${shape} ${type}, depths ${depths.join(", ")}, threads ${lcThreads.join(", ")}`);
  const lcRows = await runLongContext(path, { depths, threads: lcThreads, gen: Number(arg("gen") ?? 32), quietS: quiet });
  console.log(`\n${shape} ${type}: prefill of a d-token prompt; decode = ${arg("gen") ?? 32} tokens right after it\n` + longContextTable(lcRows));
  writeFileSync(join(REPO_ROOT, "bench/results-long-context.json"), JSON.stringify({ date: new Date().toISOString(), model: `${shape} ${type}`, rows: lcRows }, null, 2));
}
if (flag("long-context")) {
  await longContext();
  process.exit(0);
}

const bw = await bandwidth();
const wasmSizes = readdirSync(join(REPO_ROOT, "build")).filter((f) => f.endsWith(".wasm")).map((f) => `${f} ${statSync(join(REPO_ROOT, "build", f)).size} B`);
console.error(`memory read bandwidth (one thread, wasm): ${bw.toFixed(1)} GB/s`);
for (const [shape, type] of models) {
  const path = await benchModel(shape, type);
  const name = `${shape} ${type}`;
  const main = shape === "350M" && type === "Q4_0";
  for (const t of [1, 2]) {
    if (t === 2 && !main) continue;
    await measure(name, "lfm2-wasm Node", t, () => runOursNode(path, { threads: t, promptTokens: P, genTokens: G }));
    if (main && t === 1) await measure(name, "lfm2-wasm Node plain SIMD", t, () => runOursNode(path, { threads: t, promptTokens: P, genTokens: G, plainSimd: true }));
    if (browser && main) await measure(name, "lfm2-wasm Chromium", t, () => runOursBrowser(path, { threads: t, promptTokens: P, genTokens: G }));
    await measure(name, "llama.cpp native", t, () => runNative(path, { threads: t, promptTokens: P, genTokens: G }));
    if (wllama && browser && main) await measure(name, "wllama (Chromium)", t, () => runWllama(path, { threads: t, promptTokens: WP, genTokens: WG }));
  }
}

// ---- table -----------------------------------------------------------------------------------------
const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "–");
const find = (m: string, e: string, t: number) => rows.find((r) => r.model === m && r.engine === e && r.threads === t)?.r;
const lines: string[] = [];
lines.push(`| model | engine | thr | prefill tok/s | decode tok/s | TTFT ms (cold, 512-token prompt) | cold start ms (load + 1 token) | peak RSS MiB | prefill × native | decode × native | prefill × wllama | decode × wllama |`);
lines.push(`|---|---|---|---|---|---|---|---|---|---|---|---|`);
for (const row of rows) {
  const r = row.r;
  if (!r) { lines.push(`| ${row.model} | ${row.engine} | ${row.threads} | failed: ${row.error} ||||||||||`); continue; }
  const nat = find(row.model, "llama.cpp native", row.threads), wl = find(row.model, "wllama (Chromium)", row.threads);
  const ours = row.engine.startsWith("lfm2-wasm");
  const rss = r.details?.maxRssBytes as number | undefined;
  const cold = r.details?.coldStartMs as number | undefined;
  lines.push(`| ${row.model} | ${row.engine} | ${row.threads} | ${f(r.prefillTps)} | ${f(r.decodeTps)} | ${f(r.ttftMs, 0)} | ${cold ? f(cold, 0) : "–"} | ${rss ? f(rss / 2 ** 20, 0) : "–"} | ` +
    `${ours && nat ? f(r.prefillTps / nat.prefillTps, 2) : ""} | ${ours && nat ? f(r.decodeTps / nat.decodeTps, 2) : ""} | ` +
    `${ours && wl ? f(r.prefillTps / wl.prefillTps, 1) : ""} | ${ours && wl ? f(r.decodeTps / wl.decodeTps, 1) : ""} |`);
}
const bound: string[] = [];
for (const row of rows) {
  const r = row.r;
  if (!r || row.engine !== "lfm2-wasm Node" || row.threads !== 1) continue;
  const bytes = r.details.weightBytes as number; // every weight is read once per decoded token (KV reads are tiny at this length)
  bound.push(`${row.model}: ${(bytes / 2 ** 20).toFixed(0)} MiB read per decoded token → bandwidth ceiling ${(bw * 1e9 / bytes).toFixed(0)} tok/s at ${bw.toFixed(1)} GB/s; ` +
    `measured ${r.decodeTps.toFixed(1)} tok/s = ${(r.decodeTps * bytes / 1e9).toFixed(1)} GB/s (${((r.decodeTps * bytes) / (bw * 1e9) * 100).toFixed(0)}% of bandwidth: ` +
    `${(r.decodeTps * bytes) / (bw * 1e9) > 0.7 ? "bandwidth-bound" : "compute-bound: SIMD kernel throughput decides"})`);
}
console.log(lines.join("\n"));
console.log("\n" + bound.join("\n"));
console.log(`\nour wasm: ${wasmSizes.join(", ")}; wllama wasm: ${(wllamaWasmInfo().wasmBytes / 1e6).toFixed(1)} MB`);
writeFileSync(join(REPO_ROOT, "bench/results.json"), JSON.stringify({ date: new Date().toISOString(), bandwidthGBs: bw, promptTokens: P, genTokens: G, wllamaPromptTokens: WP, wllamaGenTokens: WG, rows }, null, 2));
console.log("wrote bench/results.json");
if (!flag("no-long-context")) await longContext();
