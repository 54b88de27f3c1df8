// Rival 2: @wllama/wllama (llama.cpp compiled to wasm) in headless Chromium, on fixed token ids.
// wllama v3 runs llama-server's server-context inside the wasm worker; its low-level decode/sampling
// calls are gone and completions take text only, so we send benchPrompt()'s text (which tokenizes to
// exactly the ids the native runner evaluates) to createCompletion and read llama.cpp's own
// timings (prompt_ms = prefill + first-token sampling, predicted_ms = the decode steps), cross-checked
// against wall-clock time in the page.
import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { withPage, withTimeout } from "../chromium.js";
import { REPO_ROOT } from "../models.js";
import { benchRoots, startServer } from "../serve.js";
import { benchPrompt, cpuMonitor, median, type RivalResult, type RunOptions } from "./native.js";

export const WLLAMA_DIR = join(REPO_ROOT, "node_modules", "@wllama", "wllama");
export const WLLAMA_WASM = join(WLLAMA_DIR, "esm", "wasm", "wllama.wasm");

export interface WllamaRunOptions extends RunOptions {
  /** Overall limit for the in-page run (default: generous estimate from token counts, at least 10 min). */
  timeoutMs?: number;
  /** Forward the page's console (and wllama's native log) here. */
  onConsole?: (line: string) => void;
}

export interface WasmInfo { path: string; version: string; wasmBytes: number; wasmGzipBytes: number }

let wasmInfoCache: WasmInfo | undefined;
/** Size of the wasm binary wllama ships (one file serves single- and multi-thread), raw and gzip -9. */
export function wllamaWasmInfo(): WasmInfo {
  if (!wasmInfoCache) {
    const bytes = readFileSync(WLLAMA_WASM);
    const version = JSON.parse(readFileSync(join(WLLAMA_DIR, "package.json"), "utf8")).version;
    wasmInfoCache = { path: WLLAMA_WASM, version, wasmBytes: statSync(WLLAMA_WASM).size, wasmGzipBytes: gzipSync(bytes, { level: 9 }).length };
  }
  return wasmInfoCache;
}

/**
 * Benchmark wllama on `modelPath` in a fresh headless Chromium.
 * threads === 1: page served without COOP/COEP and n_threads 1 (wllama runs without pthreads).
 * threads > 1: page served cross-origin isolated (COOP same-origin + COEP require-corp), n_threads = threads.
 */
export async function runWllama(modelPath: string, opts: WllamaRunOptions): Promise<RivalResult> {
  const promptTokens = opts.promptTokens ?? 512;
  const genTokens = opts.genTokens ?? 128;
  const repeats = Math.max(1, opts.repeats ?? 1);
  const coldTtft = opts.coldTtft ?? true;
  const threads = Math.max(1, opts.threads);
  const isolate = threads > 1;
  const log = opts.log ?? (() => {});
  // ~3 tok/s prefill and ~2 tok/s decode as a floor, over every request we make, plus load time.
  const estMs = ((coldTtft ? 2 : 1) * promptTokens / 3 + (repeats - 1) * promptTokens / 3 + repeats * genTokens / 2) * 1000 + 120_000;
  const timeoutMs = opts.timeoutMs ?? Math.max(600_000, estMs);

  const prompt = await benchPrompt(modelPath, promptTokens);
  const modelUrlPath = `/model/${encodeURIComponent(basename(modelPath))}`;
  const server = await startServer({ roots: { ...benchRoots(), [modelUrlPath]: modelPath }, isolate });
  try {
    const raw: any = await withPage(server.url("/bench/rivals/wllama-page.html"), async (page) => {
      await page.waitForFunction(() => (window as any).wllamaReady === true, undefined, { timeout: 60_000 });
      const cfg = { modelUrl: modelUrlPath, promptText: prompt.text, bannedTokens: prompt.nonUtf8Tokens, threads, promptTokens, genTokens, coldTtft, repeats, nativeLog: !!opts.onConsole };
      log(`wllama: running in page (threads=${threads}, isolated=${isolate}, timeout ${(timeoutMs / 1000).toFixed(0)} s)`);
      // whole-machine CPU over the in-page run (load + cold + timed requests; Chromium's own processes included)
      const cpu = cpuMonitor();
      const res = await withTimeout(page.evaluate((c) => (window as any).wllamaBench(c), cfg), timeoutMs, "wllama benchmark");
      return { ...res, machine: cpu.stop() };
    }, { onConsole: opts.onConsole });

    if (!raw?.ok) throw new Error(`wllama run failed: ${raw?.error ?? JSON.stringify(raw)}`);
    if (isolate && !raw.crossOriginIsolated) throw new Error("page is not cross-origin isolated: multi-thread run impossible");
    if (isolate && !raw.isMultithread) throw new Error(`wllama did not enable multi-threading (numThreads=${raw.numThreads})`);

    const runs: any[] = raw.runs;
    for (const r of runs) {
      if (r.promptN !== promptTokens) log(`wllama: warning: prompt_n=${r.promptN}, expected ${promptTokens} (cache_n=${r.cacheN})`);
      if (r.predictedN !== genTokens + 1) log(`wllama: warning: predicted_n=${r.predictedN}, expected ${genTokens + 1}`);
    }
    const prefillMs = median(runs.map((r) => r.promptMs));
    const decodeMs = median(runs.map((r) => r.predictedMs));
    const decodeSteps = median(runs.map((r) => r.predictedN - 1)); // the first token comes from the prefill
    const promptN = median(runs.map((r) => r.promptN));
    const wasm = wllamaWasmInfo();
    return {
      engine: `wllama ${threads > 1 ? "mt" : "st"}`,
      prefillTps: promptN / (prefillMs / 1000),
      decodeTps: decodeSteps / (decodeMs / 1000),
      loadMs: raw.loadMs,
      ttftMs: raw.ttftMs ?? NaN,
      warmTtftMs: prefillMs,
      prefillMs,
      decodeMs,
      promptTokens,
      genTokens,
      threads,
      details: {
        wllamaVersion: wasm.version,
        libllamaVersion: raw.libllamaVersion,
        wasmBytes: wasm.wasmBytes,
        wasmGzipBytes: wasm.wasmGzipBytes,
        crossOriginIsolated: raw.crossOriginIsolated,
        isMultithread: raw.isMultithread,
        numThreads: raw.numThreads,
        hardwareConcurrency: raw.hardwareConcurrency,
        fetchMs: raw.fetchMs,
        loadModelMs: raw.loadModelMs,
        contextInfo: raw.contextInfo,
        machineDuringTimedRuns: raw.machine,
        coldTimings: raw.coldTimings,
        bannedTokens: prompt.nonUtf8Tokens.length,
        // wall-clock of the whole timed request vs llama.cpp's prompt_ms + predicted_ms (worker/glue overhead)
        wallMs: median(runs.map((r) => r.wallMs)),
        overheadMs: median(runs.map((r) => r.wallMs - r.promptMs - r.predictedMs)),
        runs,
      },
    };
  } finally {
    await server.close();
  }
}
