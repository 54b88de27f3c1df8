// The `lfm2` command: run, chat, inspect, bench. With no model it builds the demo model in memory.
import { parseArgs } from "node:util";
import { createInterface } from "node:readline/promises";
import { loadModel, type Model, type LoadOptions } from "../index.js";
import { syntheticGguf } from "../model/synthetic.js";
import { concatChunks } from "../formats/gguf-writer.js";
import { Lfm2Error } from "../errors.js";
import type { ChatMessage } from "../text/chat-template.js";
import type { GenerateOptions } from "../generate/generate.js";

const HELP: Record<string, string> = {
  main: `lfm2 — run Liquid AI LFM2 models in WebAssembly

Usage: lfm2 <command> [options]

Commands:
  run       generate text from a prompt
  chat      interactive multi-turn chat
  inspect   show a model's metadata, tensor types and sizes
  bench     measure prefill and decode speed
  serve     serve the OpenAI-compatible HTTP API (like vLLM)

Run "lfm2 <command> --help" for a command's options. Without -m/--hf the commands use a small
built-in demo model with random weights (it shows the machinery works, not language).`,
  run: `lfm2 run [-m model.gguf | -m hf-folder | --hf LiquidAI/LFM2-350M-GGUF[:Q4_0]] [-p prompt] [-n tokens]

  -m, --model <path|url>   GGUF file, URL, or Hugging Face folder (config.json + model.safetensors)
      --hf <repo[:quant]>  download from the Hugging Face hub into the cache (e.g. LiquidAI/LFM2-350M-GGUF:Q4_0)
  -p, --prompt <text>      prompt (default "Once upon a time")
  -n, --tokens <n>         tokens to generate (default 64)
      --chat               wrap the prompt as a user turn with the model's chat template
      --temp <t>           temperature (0 = greedy, the default for run)
      --top-k, --top-p, --min-p, --repeat-penalty <x>, --seed <n>
  -t, --threads <n>        threads (default: cores, at most 4)
  -c, --ctx <n>            context length (default 4096)`,
  chat: `lfm2 chat [-m model | --hf repo[:quant]] [--system text] [options as for run]
  Multi-turn chat on stdin; each turn reuses the cache of the previous ones. Empty line or Ctrl-D ends.`,
  inspect: `lfm2 inspect [-m model | --hf repo[:quant]]   print architecture, config, tensor types and sizes`,
  bench: `lfm2 bench [-m model | --hf repo[:quant]] [--prompt-tokens 512] [--gen-tokens 128] [-t threads]
  Prefill and decode tokens/s of this runtime on the model (use npm run bench for the comparison table).`,
};

const options = {
  model: { type: "string", short: "m" }, hf: { type: "string" }, prompt: { type: "string", short: "p" },
  tokens: { type: "string", short: "n" }, temp: { type: "string" }, "top-k": { type: "string" }, "top-p": { type: "string" },
  "min-p": { type: "string" }, "repeat-penalty": { type: "string" }, seed: { type: "string" }, threads: { type: "string", short: "t" },
  ctx: { type: "string", short: "c" }, chat: { type: "boolean" }, system: { type: "string" }, help: { type: "boolean", short: "h" },
  "prompt-tokens": { type: "string" }, "gen-tokens": { type: "string" }, "no-progress": { type: "boolean" },
} as const;

type Args = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>["values"];

const num = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Lfm2Error("BAD_INPUT", `${what} must be a number, got "${v}"`);
  return n;
};

function progressBar(label: string) {
  let last = 0;
  return ({ loaded, total, rate }: { loaded: number; total: number; rate: number }) => {
    const now = Date.now();
    if (now - last < 100 && loaded < total) return;
    last = now;
    const f = total ? loaded / total : 0, w = 30;
    process.stderr.write(`\r${label} [${"#".repeat(Math.round(f * w)).padEnd(w, ".")}] ${(f * 100).toFixed(0).padStart(3)}% ${(loaded / 2 ** 20).toFixed(1)}/${(total / 2 ** 20).toFixed(1)} MiB ${(rate / 2 ** 20).toFixed(0)} MiB/s`);
    if (loaded >= total) process.stderr.write("\n");
  };
}

async function openModel(a: Args): Promise<Model> {
  const lo: LoadOptions = { threads: num(a.threads, "--threads") };
  if (!a["no-progress"] && process.stderr.isTTY) lo.onProgress = progressBar("loading");
  if (a.hf) {
    const { downloadHf } = await import("../io/hub.js");
    const { path } = await downloadHf(a.hf, { onProgress: a["no-progress"] ? undefined : progressBar("download") });
    return loadModel(path, lo);
  }
  if (a.model) return loadModel(a.model, lo);
  process.stderr.write("note: no model given, using the built-in demo model (tiny LFM2 shape, random weights: its text is gibberish).\n" +
    "      To run a real model:  lfm2 run --hf LiquidAI/LFM2-350M-GGUF:Q4_0 -p \"Hello\"   (or -m path/to/model.gguf)\n");
  return loadModel(concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q8_0", seed: 1, name: "LFM2 demo (random weights)" })), lo);
}

function sampling(a: Args, greedyDefault: boolean): GenerateOptions {
  const o: GenerateOptions = {
    temperature: num(a.temp, "--temp") ?? (greedyDefault ? 0 : undefined), topK: num(a["top-k"], "--top-k"), topP: num(a["top-p"], "--top-p"),
    minP: num(a["min-p"], "--min-p"), repetitionPenalty: num(a["repeat-penalty"], "--repeat-penalty"), seed: num(a.seed, "--seed"),
  };
  for (const k of Object.keys(o) as (keyof GenerateOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

async function run(a: Args) {
  const model = await openModel(a);
  try {
    const session = model.createSession({ contextLength: num(a.ctx, "--ctx") ?? 4096 });
    const prompt = a.prompt ?? "Once upon a time";
    const maxTokens = num(a.tokens, "--tokens") ?? 64;
    const ac = new AbortController();
    process.once("SIGINT", () => ac.abort());
    const opts = { ...sampling(a, true), maxTokens, signal: ac.signal };
    let result;
    if (a.chat) {
      const it = session.chatStream([{ role: "user", content: prompt }], opts);
      for (let r = await it.next(); ; r = await it.next()) {
        if (r.done) { result = r.value; break; }
        process.stdout.write(r.value.text);
        for (const c of r.value.toolCalls) process.stdout.write(`\n[tool call] ${c.name}(${JSON.stringify(c.arguments)})\n`);
      }
    } else {
      process.stdout.write(prompt);
      const it = session.generate(prompt, opts);
      for (let r = await it.next(); ; r = await it.next()) {
        if (r.done) { result = r.value; break; }
        process.stdout.write(r.value.text);
      }
    }
    const { usage, timings } = result;
    process.stdout.write("\n");
    process.stderr.write(`\n${usage.promptTokens} prompt tokens in ${timings.prefillMs.toFixed(0)} ms (${(usage.promptTokens / (timings.prefillMs / 1000)).toFixed(1)} tok/s), ` +
      `${usage.completionTokens} generated in ${timings.decodeMs.toFixed(0)} ms (${(usage.completionTokens / Math.max(1e-9, timings.decodeMs / 1000)).toFixed(1)} tok/s) · ` +
      `${model.info.wasmVariant}, ${model.info.threads} thread(s)${model.info.threadsNote ? ` (${model.info.threadsNote})` : ""}\n`);
  } finally { model.dispose(); }
}

async function chat(a: Args) {
  const model = await openModel(a);
  const session = model.createSession({ contextLength: num(a.ctx, "--ctx") ?? 4096 });
  const messages: ChatMessage[] = a.system ? [{ role: "system", content: a.system }] : [];
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
  try {
    for (;;) {
      const line = await rl.question("> ").catch(() => "");
      if (!line.trim()) break;
      messages.push({ role: "user", content: line });
      const it = session.chatStream(messages, { ...sampling(a, false), maxTokens: num(a.tokens, "--tokens") ?? 512 });
      let r = await it.next();
      for (; !r.done; r = await it.next()) process.stdout.write(r.value.text);
      messages.push({ role: "assistant", content: r.value.text, toolCalls: r.value.toolCalls.length ? r.value.toolCalls : undefined });
      process.stdout.write("\n");
      process.stderr.write(`[${r.value.usage.cachedTokens} cached + ${r.value.usage.promptTokens - r.value.usage.cachedTokens} new prompt tokens, ` +
        `${r.value.usage.completionTokens} generated, ${(r.value.usage.completionTokens / Math.max(1e-9, r.value.timings.decodeMs / 1000)).toFixed(1)} tok/s]\n`);
    }
  } finally { rl.close(); model.dispose(); }
}

async function inspect(a: Args) {
  const model = await openModel(a);
  try {
    const i = model.info, c = i.config;
    const lines = [
      `name:          ${i.name ?? "(none)"}`, `format:        ${i.format}`, `architecture:  ${i.architecture}`,
      `parameters:    ${i.parameters.toLocaleString("en-US")}`, `weights:       ${(i.weightBytes / 2 ** 20).toFixed(1)} MiB in WebAssembly memory`,
      `tensor types:  ${Object.entries(i.tensorTypes).map(([t, n]) => `${t}×${n}`).join(", ")}`,
      `hidden ${c.hiddenSize}, layers ${c.nLayers} (${c.kvHeads.filter((h) => h > 0).length} attention at [${c.kvHeads.flatMap((h, l) => (h > 0 ? [l] : [])).join(", ")}], ${c.kvHeads.filter((h) => h === 0).length} conv)`,
      `heads ${c.nHeads}/${Math.max(...c.kvHeads)} kv, head dim ${c.headDim}, ffn ${c.ffDim}, vocab ${c.vocabSize}, conv L ${c.convL}, rope θ ${c.ropeTheta}, eps ${c.normEps}, trained ctx ${c.contextLength}`,
      `tokenizer:     ${model.tokenizer ? `${model.tokenizer.vocabSize} tokens, bos ${model.tokenizer.bosId}, eog [${[...model.tokenizer.eogIds].join(", ")}]` : "(none)"}`,
      `chat template: ${model.chatTemplate ? `${model.chatTemplate.length} chars from the file` : "official LFM2 template (file has none)"}`,
      `runtime:       ${i.wasmVariant}, ${i.threads} thread(s)${i.threadsNote ? ` — ${i.threadsNote}` : ""}`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally { model.dispose(); }
}

async function bench(a: Args) {
  const model = await openModel(a);
  try {
    const P = num(a["prompt-tokens"], "--prompt-tokens") ?? 512, G = num(a["gen-tokens"], "--gen-tokens") ?? 128;
    const s = model.createSession({ contextLength: P + G + 8 });
    const V = model.info.config.vocabSize;
    const ids = Array.from({ length: P }, (_, i) => 500 + ((i * 7919) % Math.max(1, V - 500)));
    await s.forward(ids.slice(0, 16)); s.reset(); // warm-up: tiers up the kernels
    let t = performance.now();
    let logits = await s.forward(ids);
    const prefill = P / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < G; i++) { let b = 0; for (let j = 1; j < logits.length; j++) if (logits[j] > logits[b]) b = j; logits = await s.forward([b]); }
    const decode = G / ((performance.now() - t) / 1000);
    process.stdout.write(`prefill ${prefill.toFixed(1)} tok/s (${P} tokens) · decode ${decode.toFixed(1)} tok/s (${G} tokens) · ${model.info.wasmVariant}, ${model.info.threads} thread(s)\n`);
  } finally { model.dispose(); }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "serve") return (await import("../server/cli.js")).serveCommand(rest);
  const commands: Record<string, (a: Args) => Promise<void>> = { run, chat, inspect, bench };
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") { process.stdout.write(HELP.main + "\n"); return 0; }
  const f = commands[cmd];
  if (!f) { process.stderr.write(`unknown command "${cmd}"\n\n${HELP.main}\n`); return 2; }
  let a: Args;
  try { a = parseArgs({ args: rest, options, allowPositionals: true, strict: true }).values; } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${HELP[cmd]}\n`); return 2;
  }
  if (a.help) { process.stdout.write(HELP[cmd] + "\n"); return 0; }
  try { await f(a); return 0; } catch (e) {
    if (e instanceof Lfm2Error) { process.stderr.write(`\nerror (${e.code}): ${e.message}\n`); return 1; }
    throw e;
  }
}

/**
 * Node 20 has relaxed SIMD only behind a V8 flag; the kernels run ~1.7× faster with it, so the CLI
 * re-executes itself with the flag there (Node ≥ 22, Deno and browsers have it by default).
 */
async function relaunchWithRelaxedSimd(): Promise<number | null> {
  const { hasRelaxedSimd } = await import("../../bindings/wasm.js");
  if (hasRelaxedSimd() || process.execArgv.includes("--experimental-wasm-relaxed-simd") || process.env.LFM2_NO_RELAUNCH) return null;
  if (Number(process.versions.node.split(".")[0]) >= 22) return null;
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, ["--experimental-wasm-relaxed-simd", ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, LFM2_NO_RELAUNCH: "1" } });
  process.on("SIGINT", () => {}); // the child handles Ctrl-C
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}

const self = typeof process !== "undefined" ? process.argv[1] ?? "" : "";
if (/(cli\.js|main\.ts|lfm2)$/.test(self)) {
  relaunchWithRelaxedSimd()
    .then((code) => code ?? main(process.argv.slice(2)))
    .then((code) => process.exit(code));
}
