// Quick check of the rival runners: native llama.cpp and wllama (single- and multi-thread) on the
// tiny and 350M synthetic Q4_0 models.
//
//   npx tsx bench/rivals-smoke.ts [--shapes tiny,350M] [--type Q4_0] [--engines native,wllama-st,wllama-mt]
//                                 [--wllama-prompt 128] [--wllama-gen 32] [--native-repeats 3] [--wait-quiet SECONDS]
//                                 [--json out.json] [--verbose]
//
// Native runs use 512 prompt / 128 generated tokens (median of 3 timed repeats). wllama is ~100x slower on the 350M shape, so on
// shapes other than "tiny" it defaults to 128 / 32 tokens (tokens/s are reported either way).
// Every result shows how many cores the whole machine kept busy during the timed part: on a shared
// machine, --wait-quiet N waits up to N s for other processes to go idle before each measurement.
import { writeFileSync } from "node:fs";
import { benchModel, type BenchShape, type BenchWeightType } from "./models.js";
import { formatResult, runNative, waitForQuiet, type RivalResult } from "./rivals/native.js";
import { runWllama, wllamaWasmInfo } from "./rivals/wllama.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const shapes = (arg("shapes") ?? "tiny,350M").split(",") as BenchShape[];
const type = (arg("type") ?? "Q4_0") as BenchWeightType;
const engines = new Set((arg("engines") ?? "native,wllama-st,wllama-mt").split(","));
const quietSec = Number(arg("wait-quiet") ?? 0);
const nativeRepeats = Number(arg("native-repeats") ?? 3);
const verbose = process.argv.includes("--verbose");
const log = (m: string) => console.error(`  … ${m}`);
const onConsole = verbose ? (l: string) => console.error(`  page: ${l}`) : undefined;

const wasm = wllamaWasmInfo();
console.log(`wllama ${wasm.version}: ${wasm.path}`);
console.log(`  wasm ${(wasm.wasmBytes / 1e6).toFixed(2)} MB raw, ${(wasm.wasmGzipBytes / 1e6).toFixed(2)} MB gzip -9 (one binary for single- and multi-thread)`);

const all: { shape: BenchShape; type: BenchWeightType; result?: RivalResult; error?: string; engine: string }[] = [];
for (const shape of shapes) {
  const path = await benchModel(shape, type);
  console.log(`\n== ${shape} ${type}: ${path}`);
  const wp = Number(arg("wllama-prompt") ?? (shape === "tiny" ? 512 : 128));
  const wg = Number(arg("wllama-gen") ?? (shape === "tiny" ? 128 : 32));
  const jobs: [string, () => Promise<RivalResult>][] = [];
  if (engines.has("native")) {
    jobs.push(["native t1", () => runNative(path, { threads: 1, promptTokens: 512, genTokens: 128, repeats: nativeRepeats, log })]);
    jobs.push(["native t2", () => runNative(path, { threads: 2, promptTokens: 512, genTokens: 128, repeats: nativeRepeats, log })]);
  }
  if (engines.has("wllama-st")) jobs.push(["wllama st", () => runWllama(path, { threads: 1, promptTokens: wp, genTokens: wg, log, onConsole })]);
  if (engines.has("wllama-mt")) jobs.push(["wllama mt", () => runWllama(path, { threads: 2, promptTokens: wp, genTokens: wg, log, onConsole })]);
  for (const [name, job] of jobs) {
    if (quietSec > 0) {
      const q = await waitForQuiet({ timeoutMs: quietSec * 1000 });
      if (!q.quiet) console.log(`  (machine still busy: ${q.busyCores.toFixed(2)} cores in use by others after ${(q.waitedMs / 1000).toFixed(0)} s; measuring anyway)`);
    }
    const t0 = performance.now();
    try {
      const r = await job();
      all.push({ shape, type, engine: name, result: r });
      console.log(formatResult(r) + `   [${((performance.now() - t0) / 1000).toFixed(0)} s]`);
      if (verbose) console.log(JSON.stringify(r.details));
    } catch (e) {
      const msg = (e as Error).stack ?? String(e);
      all.push({ shape, type, engine: name, error: msg });
      console.log(`${name.padEnd(22)} FAILED: ${msg.split("\n")[0]}`);
    }
  }
}

const out = arg("json");
if (out) {
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), wasm, runs: all }, null, 2));
  console.log(`\nwrote ${out}`);
}
process.exitCode = all.some((r) => r.error) ? 1 : 0;
