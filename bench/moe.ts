// LFM2-MoE at full size: a synthetic file in a published MoE shape (bench/moe-file.ts, Q4_0), loaded
// through the public loadModel in Node (several WebAssembly memories), checked against native
// llama.cpp on the same file, then timed beside it. Heavy (≈10 GB RAM with both engines for 8B-A1B):
//   npm run bench:moe -- [--shape 8B-A1B|24B-A2B] [--check] [--speed] [--threads 1,2] [--prompt 256] [--gen 32] [--keep]
// (= tsx bench/moe.ts …). With neither --check nor --speed it does both. The file is deleted afterwards unless --keep.
// The 24B-A2B shape (≈13 GB) is meant for --check alone: llama.cpp runs first and is closed before ours loads.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { loadModel } from "../src/index.js";
import { argmax, llamaRef, margin, maxAbsDiff, rms } from "../test/helpers/llama-ref.js";
import { forwardWithRouteGap } from "../test/helpers/route-gap.js";
import { BENCH_CACHE_DIR } from "./models.js";
import { MOE_SHAPES, writeMoeGguf, type MoeShapeName } from "./moe-file.js";
import { runNative, waitForQuiet, type RivalResult } from "./rivals/native.js";
import { runOursNode } from "./ours.js";

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(`--${f}`);
const arg = (f: string) => { const i = argv.indexOf(`--${f}`); return i >= 0 ? argv[i + 1] : undefined; };
const shapeName = (arg("shape") ?? "8B-A1B") as MoeShapeName;
if (!MOE_SHAPES[shapeName]) throw new Error(`--shape must be one of ${Object.keys(MOE_SHAPES).join(", ")}`);
const both = !flag("check") && !flag("speed");
const GB = 1e9, gb = (b: number) => `${(b / GB).toFixed(2)} GB`;
const log = (s: string) => console.log(`[moe ${((performance.now()) / 1000).toFixed(0)}s] ${s}`);

async function check(path: string) {
  const prompt = Array.from({ length: 80 }, (_, i) => 520 + ((i * 37) % 1500));
  const steps = 8;
  const ref = await llamaRef(path);
  const g = await ref.greedy(prompt, steps);
  await ref.dispose();
  log(`llama.cpp greedy: ${g.tokens.join(" ")}`);
  const t0 = performance.now();
  const model = await loadModel(path, { threads: 1 });
  log(`loadModel: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${model.info.shards.length} shards: ` +
    model.info.shards.map((s, i) => `#${i} weights ${gb(s.weightBytes)} layers ${s.layers[0]}–${s.layers[s.layers.length - 1]}${s.head ? " + head" : ""}`).join("; "));
  const s = model.createSession({ contextLength: 256 });
  const forward = forwardWithRouteGap(model, s);
  let { out: logits, gap } = await forward(prompt);
  let worst = 0, same = 0;
  const ours: number[] = [], perStep: string[] = [];
  for (let i = 0; i < steps; i++) {
    const d = maxAbsDiff(g.logits[i], logits);
    worst = Math.max(worst, d);
    const diff = logits.map((v, j) => v - g.logits[i][j]);
    perStep.push(`${d.toFixed(3)} (RMS ${rms(diff).toFixed(3)}) of logit RMS ${rms(g.logits[i]).toFixed(2)} (route margin ${gap.toExponential(1)})`);
    ours.push(argmax(logits));
    if (ours[i] === g.tokens[i]) same++;
    else log(`step ${i}: ours ${ours[i]} vs llama.cpp ${g.tokens[i]} (llama.cpp margin ${margin(g.logits[i]).toFixed(3)})`);
    if (i < steps - 1) ({ out: logits, gap } = await forward([g.tokens[i]])); // teacher-forced
  }
  const c = model.info.config;
  const kv = c.kvHeads.reduce((a, h) => a + 2 * h * c.headDim * 2, 0) * s.contextLength;
  const shards = (model as any).shards as { bytes: number }[];
  log(`ours greedy:      ${ours.join(" ")}`);
  log(`per step max|Δlogit|: ${perStep.join(", ")}`);
  log(`parity: max|Δlogit| ${worst.toFixed(4)} over ${steps} steps (prompt ${prompt.length}), tokens ${same}/${steps} identical`);
  log(`memory: weights ${gb(model.info.weightBytes)} (file-type bytes), KV ${gb(kv)} (ctx ${s.contextLength}), wasm memories ` +
    `${shards.map((m) => gb(m.bytes)).join(" + ")} = ${gb(model.memoryBytes)} (${((model.memoryBytes / (model.info.weightBytes + kv) - 1) * 100).toFixed(1)}% over weights + KV), RSS ${gb(process.memoryUsage().rss)}`);
  model.dispose();
}

async function speed(path: string) {
  const threads = (arg("threads") ?? `1,${cpus().length}`).split(",").map(Number);
  const opts = { promptTokens: Number(arg("prompt") ?? 256), genTokens: Number(arg("gen") ?? 32), coldTtft: false };
  const rows: string[] = [];
  for (const t of threads) {
    const q = await waitForQuiet({ timeoutMs: 120_000 });
    const r: RivalResult[] = [];
    for (const run of [() => runNative(path, { ...opts, threads: t }), () => runOursNode(path, { ...opts, threads: t })]) r.push(await run());
    const [n, o] = r;
    const d = o.details as any;
    rows.push(`| ${t} | ${n.prefillTps.toFixed(1)} | ${o.prefillTps.toFixed(1)} (${(o.prefillTps / n.prefillTps).toFixed(2)}×) | ` +
      `${n.decodeTps.toFixed(2)} | ${o.decodeTps.toFixed(2)} (${(o.decodeTps / n.decodeTps).toFixed(2)}×) | ${gb(d.wasmMemoryBytes)} / ${gb(d.weightBytes + d.kvBytes)} | ${gb(d.maxRssBytes)} | ${q.quiet ? "" : `busy ${q.busyCores.toFixed(1)} cores`} |`);
    log(rows[rows.length - 1]);
  }
  console.log(`\nLFM2-${shapeName}-shaped Q4_0, prompt ${opts.promptTokens}, ${opts.genTokens} decode steps (tokens/s)\n` +
    "| threads | native prefill | ours prefill | native decode | ours decode | ours wasm mem / weights+KV | ours max RSS | note |\n|---|---|---|---|---|---|---|---|\n" + rows.join("\n"));
}

const dir = join(BENCH_CACHE_DIR, "moe");
mkdirSync(dir, { recursive: true });
const path = join(dir, `lfm2-${shapeName}-shape-Q4_0.gguf`);
log(`machine: ${gb(totalmem())} RAM, ${gb(freemem())} free, load ${loadavg()[0].toFixed(1)}`);
try {
  if (!existsSync(path)) {
    const t = performance.now();
    writeMoeGguf(path, shapeName);
    log(`wrote ${path}: ${gb(statSync(path).size)} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  if (both || flag("check")) await check(path);
  if (both || flag("speed")) await speed(path);
} finally {
  if (!flag("keep")) rmSync(path, { force: true });
}
