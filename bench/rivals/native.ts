// Rival 1: native llama.cpp (CPU) through node-llama-cpp, on fixed token ids (benchPrompt()).
// Also home of what every runner in the benchmark shares: the options/result shapes, the fixed
// prompt, and the machine-load monitor.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type { Token } from "node-llama-cpp";

/** node-llama-cpp brands token ids; ours are plain numbers. */
const tk = (n: number) => n as unknown as Token;

export interface RunOptions {
  /** Engine threads (native: llama.cpp threads; wllama: 1 = no pthreads, >1 = pthreads, needs cross-origin isolation). */
  threads: number;
  /** Prompt length in tokens (BOS included) for the prefill measurement; the ids come from benchPrompt(). Default 512. */
  promptTokens?: number;
  /** Number of single-token decode steps timed after the prefill. Default 128. */
  genTokens?: number;
  /** Measure a cold first request (full prompt + first token) right after load, reported as ttftMs. Default true. */
  coldTtft?: boolean;
  /** Timed repetitions of (prefill, decode); medians are reported. Default 1. */
  repeats?: number;
  /** Progress messages. */
  log?: (msg: string) => void;
}

export interface RivalResult {
  engine: string;
  /** Prompt tokens / s over the timed (warm) prefill; the prefill also samples the first token. */
  prefillTps: number;
  /** Tokens / s over `genTokens` decode steps, each one model evaluation of one token + greedy sampling. */
  decodeTps: number;
  /** Model load: file → ready context (native: loadModel + createContext; wllama: fetch + loadModel). */
  loadMs: number;
  /** Cold time to first token: first request after load, full prompt + one sampled token (NaN if skipped). */
  ttftMs: number;
  /** Warm time to first token (= the timed prefill, which includes sampling the first token). */
  warmTtftMs: number;
  prefillMs: number;
  decodeMs: number;
  promptTokens: number;
  genTokens: number;
  threads: number;
  /** Engine-specific facts (versions, flags, sizes, raw timings). */
  details: Record<string, unknown>;
}

export interface BenchPrompt {
  /** The exact token ids an engine should evaluate (BOS first when the model wants it), `nTokens` long. */
  ids: number[];
  /** Text that llama.cpp's tokenizer turns into exactly `ids` (with BOS added as the model asks). */
  text: string;
  addBos: boolean;
  /**
   * Tokens whose text is not valid UTF-8 on its own (byte-fallback pieces). wllama serializes the
   * generated text strictly and fails on them, so its runner bans them with a logit bias.
   */
  nonUtf8Tokens: number[];
}

const promptCache = new Map<string, Promise<BenchPrompt>>();

/**
 * A fixed benchmark prompt of exactly `nTokens` tokens, usable both as ids and as text.
 * wllama v3 only accepts text prompts, so engines that take ids and engines that take text must
 * see the same sequence: we use ordinary-word tokens (" word", one pre-token each, so tokenization
 * never merges across them) from id 1000 upwards, cycling, and verify with llama.cpp's tokenizer
 * (via node-llama-cpp, vocab only) that the text round-trips to exactly these ids.
 */
export function benchPrompt(modelPath: string, nTokens: number): Promise<BenchPrompt> {
  const key = `${modelPath}\0${nTokens}`;
  let p = promptCache.get(key);
  if (!p) {
    p = makeBenchPrompt(modelPath, nTokens);
    p.catch(() => promptCache.delete(key));
    promptCache.set(key, p);
  }
  return p;
}

async function makeBenchPrompt(modelPath: string, nTokens: number): Promise<BenchPrompt> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
  try {
    const model = await llama.loadModel({ modelPath, vocabOnly: true });
    try {
      const addBos = model.tokens.shouldPrependBosToken && model.tokens.bos != null;
      // ids past the vocabulary abort the process inside llama.cpp, so the bound must be exact
      const md = model.fileInfo.metadata as any;
      const nVocab = Number(md?.tokenizer?.ggml?.tokens?.length ?? md?.[md?.general?.architecture]?.vocab_size);
      if (!Number.isInteger(nVocab) || nVocab <= 0) throw new Error(`cannot determine vocabulary size of ${modelPath}`);
      const words: { id: number; text: string }[] = [];
      const scan = (from: number, to: number) => {
        for (let id = from; id < to && words.length < 500; id++) {
          if (model.isSpecialToken(tk(id))) continue;
          let text: string;
          try { text = model.detokenize([tk(id)]); } catch { continue; }
          if (!/^ \p{L}{2,}$/u.test(text)) continue;
          const back = model.tokenize(text);
          if (back.length === 1 && (back[0] as unknown as number) === id) words.push({ id, text });
        }
      };
      scan(1000, nVocab);
      if (words.length < 16) scan(0, 1000);
      if (words.length < 2) throw new Error(`no usable word tokens in ${modelPath}`);
      const body = Array.from({ length: nTokens - (addBos ? 1 : 0) }, (_, i) => words[i % words.length]);
      const text = body.map((w) => w.text).join("");
      const ids = body.map((w) => w.id);
      const check = model.tokenize(text) as unknown as number[];
      if (check.length !== ids.length || check.some((t, i) => t !== ids[i])) {
        throw new Error(`benchmark prompt does not round-trip through the tokenizer (${check.length} vs ${ids.length} tokens)`);
      }
      const nonUtf8Tokens: number[] = [];
      for (let id = 0; id < nVocab; id++) {
        if (model.isSpecialToken(tk(id))) continue;
        if (model.detokenize([tk(id)]).includes("\uFFFD")) nonUtf8Tokens.push(id);
      }
      return { ids: addBos ? [model.tokens.bos as number, ...ids] : ids, text, addBos, nonUtf8Tokens };
    } finally {
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Whole-machine CPU use between start and stop, from /proc/stat (Linux; null elsewhere).
 * busyCores ≈ how many cores were busy on average: compare with the engine's thread count to spot
 * other processes competing for the CPU during a measurement.
 */
export function cpuMonitor(): { stop(): { busyCores: number; cores: number; loadavg1: number } | null } {
  const read = (): { busy: number; total: number; cores: number } | null => {
    try {
      const text: string = readFileSync("/proc/stat", "utf8");
      const lines = text.split("\n");
      const f = lines[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = f[3] + (f[4] ?? 0);
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
      return { busy: total - idle, total, cores: lines.filter((l) => /^cpu\d+ /.test(l)).length };
    } catch { return null; }
  };
  const a = read();
  return {
    stop() {
      const b = read();
      if (!a || !b || b.total === a.total) return null;
      return { busyCores: ((b.busy - a.busy) / (b.total - a.total)) * b.cores, cores: b.cores, loadavg1: loadavg()[0] };
    },
  };
}

/**
 * Wait until the machine looks idle (average busy cores below `maxBusyCores` over `windowMs`), for at
 * most `timeoutMs`. Returns the last measured busy-core count and whether the wait succeeded.
 */
export async function waitForQuiet(opts: { maxBusyCores?: number; windowMs?: number; timeoutMs?: number } = {}): Promise<{ quiet: boolean; busyCores: number; waitedMs: number }> {
  const max = opts.maxBusyCores ?? 0.25, win = opts.windowMs ?? 2000, limit = opts.timeoutMs ?? 120_000;
  const t0 = performance.now();
  let busy = NaN;
  for (;;) {
    const m = cpuMonitor();
    await new Promise((r) => setTimeout(r, win));
    const s = m.stop();
    if (!s) return { quiet: true, busyCores: NaN, waitedMs: 0 };
    busy = s.busyCores;
    const waitedMs = performance.now() - t0;
    if (busy <= max) return { quiet: true, busyCores: busy, waitedMs };
    if (waitedMs >= limit) return { quiet: false, busyCores: busy, waitedMs };
  }
}

export function formatResult(r: RivalResult): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
  const m = r.details.machineDuringTimedRuns as { busyCores: number; cores: number } | null | undefined;
  return `${r.engine.padEnd(22)} threads=${r.threads} prompt=${r.promptTokens} gen=${r.genTokens}  ` +
    `prefill ${f(r.prefillTps)} tok/s  decode ${f(r.decodeTps)} tok/s  load ${f(r.loadMs, 0)} ms  ` +
    `ttft(cold) ${f(r.ttftMs, 0)} ms  ttft(warm) ${f(r.warmTtftMs, 0)} ms` +
    (m ? `  [busy cores ${m.busyCores.toFixed(2)}/${m.cores}]` : "");
}

/**
 * Benchmark native llama.cpp (CPU only) on `modelPath`.
 * Cold TTFT = the first evaluation after load (prompt + one greedy token); it doubles as the warm-up.
 * Then, per repeat: clear the sequence, time the prefill of `promptTokens` ids (with first-token
 * sampling), then time `genTokens` decode steps feeding back the greedy token one at a time.
 */
export async function runNative(modelPath: string, opts: RunOptions): Promise<RivalResult> {
  const promptTokens = opts.promptTokens ?? 512;
  const genTokens = opts.genTokens ?? 128;
  const repeats = Math.max(1, opts.repeats ?? 1);
  const log = opts.log ?? (() => {});
  const prompt = (await benchPrompt(modelPath, promptTokens)).ids.map(tk);
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");

  const tInit = performance.now();
  // maxThreads: 0 → the `threads` we pass is exactly what llama.cpp uses; build: "never" → no network, no compiling.
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error, progressLogs: false });
  const initMs = performance.now() - tInit;

  const contextSize = Math.max(1024, promptTokens + genTokens + 8);
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize, batchSize: 512, threads: opts.threads, sequences: 1 });
  const loadMs = performance.now() - t0;
  const seq = context.getSequence();
  const greedy = { generateNext: { token: true, options: { temperature: 0 } } } as const;

  const promptInput = (): any[] => [...prompt.slice(0, -1), [prompt[prompt.length - 1], greedy]];
  const nextOf = (out: any[], i: number): Token => {
    const t = out[i]?.next?.token;
    if (typeof t !== "number") throw new Error("node-llama-cpp returned no token");
    return tk(t);
  };

  try {
    let ttftMs = NaN;
    if (opts.coldTtft ?? true) {
      const tc = performance.now();
      const out = await seq.controlledEvaluate(promptInput());
      nextOf(out, promptTokens - 1);
      ttftMs = performance.now() - tc;
      log(`native: cold ttft ${ttftMs.toFixed(0)} ms`);
    } else {
      // warm-up without timing: a short prompt and a couple of decode steps
      const out = await seq.controlledEvaluate([...prompt.slice(0, 15), [prompt[15], greedy]]);
      let tok = nextOf(out, 15);
      for (let i = 0; i < 2; i++) tok = nextOf(await seq.controlledEvaluate([[tok, greedy]]), 0);
    }

    const cpu = cpuMonitor();
    const prefillMsAll: number[] = [], decodeMsAll: number[] = [];
    const generated: Token[] = [];
    for (let r = 0; r < repeats; r++) {
      await seq.clearHistory();
      const tp = performance.now();
      const out = await seq.controlledEvaluate(promptInput());
      let tok = nextOf(out, promptTokens - 1);
      const prefillMs = performance.now() - tp;
      generated.length = 0;
      generated.push(tok);
      const td = performance.now();
      for (let i = 0; i < genTokens; i++) {
        tok = nextOf(await seq.controlledEvaluate([[tok, greedy]]), 0);
        generated.push(tok);
      }
      const decodeMs = performance.now() - td;
      prefillMsAll.push(prefillMs);
      decodeMsAll.push(decodeMs);
      log(`native: repeat ${r}: prefill ${prefillMs.toFixed(0)} ms, decode ${decodeMs.toFixed(0)} ms`);
    }
    const machine = cpu.stop();
    const prefillMs = median(prefillMsAll), decodeMs = median(decodeMsAll);
    return {
      engine: "llama.cpp native",
      prefillTps: promptTokens / (prefillMs / 1000),
      decodeTps: genTokens / (decodeMs / 1000),
      loadMs,
      ttftMs,
      warmTtftMs: prefillMs,
      prefillMs,
      decodeMs,
      promptTokens,
      genTokens,
      threads: opts.threads,
      details: {
        nodeLlamaCpp: await nodeLlamaCppVersion(),
        llamaCppRelease: llama.llamaCppRelease,
        buildType: llama.buildType,
        gpu: llama.gpu,
        initMs,
        contextSize,
        contextThreads: (context as any).currentThreads ?? (context as any).idealThreads,
        flashAttention: (context as any).flashAttention,
        machineDuringTimedRuns: machine,
        prefillMsAll,
        decodeMsAll,
        firstGenerated: generated.slice(0, 8),
      },
    };
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

async function nodeLlamaCppVersion(): Promise<string | undefined> {
  try {
    const { createRequire } = await import("node:module");
    const req = createRequire(import.meta.url);
    const { readFileSync } = await import("node:fs");
    const { join, dirname } = await import("node:path");
    // package.json is not in the exports map: locate it next to the resolved entry.
    let dir = dirname(req.resolve("node-llama-cpp"));
    for (let i = 0; i < 4; i++) {
      try { return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version; } catch { dir = dirname(dir); }
    }
  } catch { /* ignore */ }
  return undefined;
}
