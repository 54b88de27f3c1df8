// The `lfm2` command: run, chat, inspect, bench. With no model it builds the demo model in memory.
// Every flag is validated before a model is loaded: usage errors exit with code 2, runtime errors with 1.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { createInterface } from "node:readline";
import { loadModel, type Model, type LoadOptions } from "../index.js";
import { syntheticGguf } from "../models/synthetic.js";
import { concatChunks } from "../formats/gguf-writer.js";
import { Lfm2Error } from "../errors.js";
import type { ChatMessage } from "../text/chat-template.js";
import type { GenerateOptions } from "../generate/generate.js";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string];

/** Every flag any command accepts; a command lists the ones it takes in `Command.flags`. */
const FLAGS: Record<string, OptionSpec> = {
  model: { type: "string", short: "m" }, hf: { type: "string" }, prompt: { type: "string", short: "p" },
  tokens: { type: "string", short: "n" }, temp: { type: "string" }, "top-k": { type: "string" },
  "top-p": { type: "string" }, "min-p": { type: "string" }, "repeat-penalty": { type: "string" },
  seed: { type: "string" }, threads: { type: "string", short: "t" }, ctx: { type: "string", short: "c" },
  chat: { type: "boolean" }, system: { type: "string" }, help: { type: "boolean", short: "h" },
  "prompt-tokens": { type: "string" }, "gen-tokens": { type: "string" }, "no-progress": { type: "boolean" },
};

/** Numeric flags and their valid ranges (the same bounds the library enforces, checked before loading). */
const NUMERIC: Record<string, { integer: boolean; ok: (n: number) => boolean; range: string }> = {
  tokens: { integer: true, ok: (n) => n >= 1, range: "≥ 1" },
  threads: { integer: true, ok: (n) => n >= 1, range: "≥ 1" },
  ctx: { integer: true, ok: (n) => n >= 1, range: "≥ 1" },
  temp: { integer: false, ok: (n) => n >= 0, range: "≥ 0" },
  "top-k": { integer: true, ok: (n) => n >= 0, range: "≥ 0" },
  "top-p": { integer: false, ok: (n) => n > 0 && n <= 1, range: "in (0, 1]" },
  "min-p": { integer: false, ok: (n) => n >= 0 && n <= 1, range: "in [0, 1]" },
  "repeat-penalty": { integer: false, ok: (n) => n > 0, range: "> 0" },
  seed: { integer: true, ok: (n) => n >= 0, range: "≥ 0" },
  "prompt-tokens": { integer: true, ok: (n) => n >= 1, range: "≥ 1" },
  "gen-tokens": { integer: true, ok: (n) => n >= 1, range: "≥ 1" },
};

const MODEL_FLAGS = ["model", "hf", "threads", "no-progress", "help"];
const SAMPLING_FLAGS = ["temp", "top-k", "top-p", "min-p", "repeat-penalty", "seed"];

/** Parsed and validated command line: strings and booleans as given, numeric flags as numbers. */
interface Cli {
  str: Record<string, string | undefined>;
  bool: Record<string, boolean | undefined>;
  num: Record<string, number | undefined>;
  positionals: string[];
}

interface Command {
  summary: string;
  help: string;
  flags: string[];
  /** How positional arguments are used; without it any positional is a usage error. */
  positionals?: "prompt";
  /** Checks between flags, run before the model is loaded (throw UsageError). */
  check?: (cli: Cli) => void;
  /** Returns the exit code (0 when it returns nothing). */
  run: (cli: Cli) => Promise<number | void>;
}

/** A mistake on the command line: reported with the command's help, exit code 2, before any work. */
class UsageError extends Error {}

const MODEL_HELP = `  -m, --model <path|url>   GGUF file, URL, or Hugging Face folder (config.json + model.safetensors)
      --hf <repo[:quant]>  download from the Hugging Face hub into the cache (e.g. LiquidAI/LFM2-350M-GGUF:Q4_0)
  -t, --threads <n>        threads (default: cores, at most 4)
      --no-progress        no download / load progress bar`;

const SAMPLING_HELP = `      --temp <t>           temperature (0 = greedy)
      --top-k <k>, --top-p <p>, --min-p <p>, --repeat-penalty <x>, --seed <n>`;

const COMMANDS: Record<string, Command> = {
  run: {
    summary: "generate text from a prompt",
    help: `lfm2 run [-m model | --hf repo[:quant]] [prompt words… | -p prompt] [-n tokens] [options]

  The prompt is the positional words joined by spaces, or -p (giving both is an error).
${MODEL_HELP}
  -p, --prompt <text>      prompt (default "Once upon a time")
  -n, --tokens <n>         tokens to generate (default 64)
  -c, --ctx <n>            context length (default 4096)
      --chat               wrap the prompt as a user turn with the model's chat template
${SAMPLING_HELP}
  Sampling is greedy unless --temp is given. Ctrl-C stops the generation.`,
    flags: [...MODEL_FLAGS, ...SAMPLING_FLAGS, "prompt", "tokens", "ctx", "chat"],
    positionals: "prompt",
    check: (cli) => {
      if (cli.positionals.length && cli.str.prompt !== undefined) {
        throw new UsageError("give the prompt either as -p/--prompt or as positional words, not both");
      }
    },
    run,
  },
  chat: {
    summary: "interactive multi-turn chat",
    help: `lfm2 chat [-m model | --hf repo[:quant]] [--system text] [-n tokens] [options]

  One user turn per line of stdin (typed or piped); each turn reuses the cache of the previous ones.
  Ctrl-C stops the current reply and returns to the prompt; Ctrl-C at an empty prompt or Ctrl-D (end of
  input) ends the chat. Blank lines are skipped.
${MODEL_HELP}
      --system <text>      system prompt
  -n, --tokens <n>         at most this many tokens per reply (default 512)
  -c, --ctx <n>            context length (default 4096)
${SAMPLING_HELP}`,
    flags: [...MODEL_FLAGS, ...SAMPLING_FLAGS, "system", "tokens", "ctx"],
    run: chat,
  },
  inspect: {
    summary: "show a model's metadata, tensor types and sizes",
    help: `lfm2 inspect [-m model | --hf repo[:quant]]   print architecture, config, tensor types and sizes
${MODEL_HELP}`,
    flags: MODEL_FLAGS,
    run: inspect,
  },
  bench: {
    summary: "measure prefill and decode speed",
    help: `lfm2 bench [-m model | --hf repo[:quant]] [--prompt-tokens 512] [--gen-tokens 128] [-t threads]
  Prefill and decode tokens/s of this runtime on the model (use npm run bench for the comparison table).
${MODEL_HELP}`,
    flags: [...MODEL_FLAGS, "prompt-tokens", "gen-tokens"],
    run: bench,
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return `lfm2 — run Liquid AI LFM2 models in WebAssembly

Usage: lfm2 <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`).join("\n")}
  ${"serve".padEnd(width)}serve the OpenAI-compatible HTTP API (like vLLM)

Run "lfm2 <command> --help" for a command's options. Without -m/--hf the commands use a small
built-in demo model with random weights (it shows the machinery works, not language).`;
}

const NUMBER_SYNTAX = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Parses argv for one command and validates every value; throws UsageError. */
export function parseCommandLine(name: string, argv: string[]): Cli {
  const cmd = COMMANDS[name]!;
  const options = Object.fromEntries(cmd.flags.map((f) => [f, FLAGS[f]!]));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const cli: Cli = { str: {}, bool: {}, num: {}, positionals: parsed.positionals };
  for (const [flag, value] of Object.entries(parsed.values)) {
    if (typeof value === "boolean") { cli.bool[flag] = value; continue; }
    const v = value as string;
    cli.str[flag] = v;
    const rule = NUMERIC[flag];
    if (!rule) continue;
    const n = Number(v);
    const what = rule.integer ? "an integer" : "a number";
    if (!NUMBER_SYNTAX.test(v.trim()) || !Number.isFinite(n) || (rule.integer && !Number.isInteger(n))) {
      throw new UsageError(`--${flag} must be ${what} ${rule.range}, got "${v}"`);
    }
    if (!rule.ok(n)) throw new UsageError(`--${flag} must be ${rule.range}, got ${v}`);
    cli.num[flag] = n;
  }
  if (cli.bool.help) return cli;
  if (cli.positionals.length && !cmd.positionals) {
    throw new UsageError(`unexpected argument "${cli.positionals[0]}" (lfm2 ${name} takes no positional arguments)`);
  }
  if (cli.str.model !== undefined && cli.str.hf !== undefined) throw new UsageError("give -m/--model or --hf, not both");
  cmd.check?.(cli);
  return cli;
}

function progressBar(label: string) {
  let last = 0;
  return ({ loaded, total, rate }: { loaded: number; total: number; rate: number }) => {
    const now = Date.now();
    if (now - last < 100 && loaded < total) return;
    last = now;
    const f = total ? loaded / total : 0, w = 30;
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    process.stderr.write(`\r${label} [${"#".repeat(Math.round(f * w)).padEnd(w, ".")}] ${(f * 100).toFixed(0).padStart(3)}% ` +
      `${mib(loaded)}/${mib(total)} MiB ${(rate / 2 ** 20).toFixed(0)} MiB/s`);
    if (loaded >= total) process.stderr.write("\n");
  };
}

async function openModel(cli: Cli): Promise<Model> {
  const lo: LoadOptions = { threads: cli.num.threads };
  const progress = !cli.bool["no-progress"] && process.stderr.isTTY;
  if (progress) lo.onProgress = progressBar("loading");
  if (cli.str.hf) {
    const { downloadHf } = await import("../io/hub.js");
    const { path } = await downloadHf(cli.str.hf, { onProgress: progress ? progressBar("download") : undefined });
    return loadModel(path, lo);
  }
  if (cli.str.model) return loadModel(cli.str.model, lo);
  process.stderr.write("note: no model given, using the built-in demo model (tiny LFM2 shape, random weights: " +
    "its text is gibberish).\n      To run a real model:  lfm2 run --hf LiquidAI/LFM2-350M-GGUF:Q4_0 -p \"Hello\"" +
    "   (or -m path/to/model.gguf)\n");
  const demo = syntheticGguf({ shape: "tiny", weightType: "Q8_0", seed: 1, name: "LFM2 demo (random weights)" });
  return loadModel(concatChunks(demo), lo);
}

function sampling(cli: Cli, greedyDefault: boolean): GenerateOptions {
  const n = cli.num;
  const o: GenerateOptions = {
    temperature: n.temp ?? (greedyDefault ? 0 : undefined), topK: n["top-k"], topP: n["top-p"], minP: n["min-p"],
    repetitionPenalty: n["repeat-penalty"], seed: n.seed,
  };
  for (const k of Object.keys(o) as (keyof GenerateOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

const isAbort = (e: unknown) => e instanceof Lfm2Error && e.code === "ABORTED";

async function run(cli: Cli): Promise<number> {
  const prompt = cli.positionals.length ? cli.positionals.join(" ") : cli.str.prompt ?? "Once upon a time";
  const model = await openModel(cli);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop); // a second Ctrl-C kills the process as usual
  try {
    const session = model.createSession({ contextLength: cli.num.ctx ?? 4096 });
    const opts = { ...sampling(cli, true), maxTokens: cli.num.tokens ?? 64, signal: ac.signal };
    let result;
    // the prompt is echoed with the first chunk, so a prompt the session rejects is not printed before the error
    let echo = !cli.bool.chat;
    try {
      const it = cli.bool.chat ? session.chatStream([{ role: "user", content: prompt }], opts) : session.generate(prompt, opts);
      for (let r = await it.next(); ; r = await it.next()) {
        if (echo) { process.stdout.write(prompt); echo = false; }
        if (r.done) { result = r.value; break; }
        process.stdout.write(r.value.text);
        const calls = "toolCalls" in r.value ? (r.value.toolCalls as { name: string; arguments: unknown }[]) : [];
        for (const c of calls) process.stdout.write(`\n[tool call] ${c.name}(${JSON.stringify(c.arguments)})\n`);
      }
    } catch (e) {
      if (!isAbort(e)) throw e;
      process.stdout.write("\n");
      process.stderr.write("[stopped]\n");
      return 130;
    }
    const { usage, timings } = result;
    const rate = (n: number, ms: number) => (n / Math.max(1e-9, ms / 1000)).toFixed(1);
    process.stdout.write("\n");
    process.stderr.write(`\n${usage.promptTokens} prompt tokens in ${timings.prefillMs.toFixed(0)} ms ` +
      `(${rate(usage.promptTokens, timings.prefillMs)} tok/s), ${usage.completionTokens} generated in ` +
      `${timings.decodeMs.toFixed(0)} ms (${rate(usage.completionTokens, timings.decodeMs)} tok/s) · ` +
      `${model.info.wasmVariant}, ${model.info.threads} thread(s)` +
      `${model.info.threadsNote ? ` (${model.info.threadsNote})` : ""}\n`);
    return 0;
  } finally {
    process.off("SIGINT", stop);
    model.dispose();
  }
}

async function chat(cli: Cli): Promise<void> {
  const model = await openModel(cli);
  const session = model.createSession({ contextLength: cli.num.ctx ?? 4096 });
  const messages: ChatMessage[] = cli.str.system ? [{ role: "system", content: cli.str.system }] : [];
  const tty = Boolean(process.stdin.isTTY);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: tty, prompt: "> " });
  // Reading lines through the iterator buffers them: piped lines that arrive during a reply are kept in order
  // (readline's question() drops lines that arrive while no question is pending).
  const lines = rl[Symbol.asyncIterator]();
  let reply: AbortController | null = null;
  const interrupt = () => {
    if (reply) { reply.abort(); return; }
    if (tty && rl.line) { // Ctrl-C on a half-typed line clears it, like a shell
      rl.write(null, { ctrl: true, name: "u" });
      process.stderr.write("^C\n");
      rl.prompt();
      return;
    }
    process.stderr.write("\n");
    rl.close(); // ends the line iterator: the loop below finishes
  };
  rl.on("SIGINT", interrupt); // a terminal in raw mode: readline turns Ctrl-C into this event
  process.on("SIGINT", interrupt); // piped stdin: Ctrl-C (or kill -INT) arrives as a real signal
  try {
    for (;;) {
      rl.prompt();
      const next = await lines.next();
      if (next.done) { process.stderr.write("\n"); break; }
      const line = String(next.value);
      if (!line.trim()) continue;
      messages.push({ role: "user", content: line });
      reply = new AbortController();
      let text = "";
      try {
        const it = session.chatStream(messages, { ...sampling(cli, false), maxTokens: cli.num.tokens ?? 512, signal: reply.signal });
        let r = await it.next();
        for (; !r.done; r = await it.next()) { process.stdout.write(r.value.text); text += r.value.text; }
        const { usage, timings, toolCalls } = r.value;
        messages.push({ role: "assistant", content: r.value.text, toolCalls: toolCalls.length ? toolCalls : undefined });
        process.stdout.write("\n");
        process.stderr.write(`[${usage.cachedTokens} cached + ${usage.promptTokens - usage.cachedTokens} new prompt tokens, ` +
          `${usage.completionTokens} generated, ${(usage.completionTokens / Math.max(1e-9, timings.decodeMs / 1000)).toFixed(1)} tok/s]\n`);
      } catch (e) {
        if (!isAbort(e)) throw e;
        // keep what was shown as the assistant's turn: the history matches the screen and the session's cache
        messages.push({ role: "assistant", content: text });
        process.stdout.write("\n");
        process.stderr.write("[stopped]\n");
      } finally {
        reply = null;
      }
    }
  } finally {
    process.off("SIGINT", interrupt);
    rl.close();
    model.dispose();
  }
}

async function inspect(cli: Cli): Promise<void> {
  const model = await openModel(cli);
  try {
    const i = model.info, c = i.config;
    const attn = c.kvHeads.flatMap((h, l) => (h > 0 ? [l] : []));
    const tok = model.tokenizer;
    const lines = [
      `name:          ${i.name ?? "(none)"}`, `format:        ${i.format}`, `architecture:  ${i.architecture}`,
      `parameters:    ${i.parameters.toLocaleString("en-US")}`,
      `weights:       ${(i.weightBytes / 2 ** 20).toFixed(1)} MiB in WebAssembly memory`,
      `tensor types:  ${Object.entries(i.tensorTypes).map(([t, n]) => `${t}×${n}`).join(", ")}`,
      `hidden ${c.hiddenSize}, layers ${c.nLayers} (${attn.length} attention at [${attn.join(", ")}], ` +
        `${c.kvHeads.filter((h) => h === 0).length} conv)`,
      `heads ${c.nHeads}/${Math.max(...c.kvHeads)} kv, head dim ${c.headDim}, ffn ${c.ffDim}, vocab ${c.vocabSize}, ` +
        `conv L ${c.convL}, rope θ ${c.ropeTheta}, eps ${c.normEps}, trained ctx ${c.contextLength}`,
      `tokenizer:     ${tok ? `${tok.vocabSize} tokens, bos ${tok.bosId}, eog [${[...tok.eogIds].join(", ")}]` : "(none)"}`,
      `chat template: ${model.chatTemplate ? `${model.chatTemplate.length} chars from the file` : "official LFM2 template (file has none)"}`,
      `runtime:       ${i.wasmVariant}, ${i.threads} thread(s)${i.threadsNote ? ` — ${i.threadsNote}` : ""}`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally { model.dispose(); }
}

async function bench(cli: Cli): Promise<void> {
  const model = await openModel(cli);
  try {
    const P = cli.num["prompt-tokens"] ?? 512, G = cli.num["gen-tokens"] ?? 128;
    const s = model.createSession({ contextLength: P + G + 8 });
    const V = model.info.config.vocabSize;
    const ids = Array.from({ length: P }, (_, i) => 500 + ((i * 7919) % Math.max(1, V - 500)));
    await s.forward(ids.slice(0, 16)); s.reset(); // warm-up: tiers up the kernels
    let t = performance.now();
    let logits = await s.forward(ids);
    const prefill = P / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < G; i++) {
      let b = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[b]) b = j;
      logits = await s.forward([b]);
    }
    const decode = G / ((performance.now() - t) / 1000);
    process.stdout.write(`prefill ${prefill.toFixed(1)} tok/s (${P} tokens) · decode ${decode.toFixed(1)} tok/s (${G} tokens) · ` +
      `${model.info.wasmVariant}, ${model.info.threads} thread(s)\n`);
  } finally { model.dispose(); }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") { process.stdout.write(mainHelp() + "\n"); return 0; }
  if (name === "serve") return (await import("../server/cli.js")).serveCommand(rest);
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) { process.stderr.write(`lfm2: unknown command "${name}"\n\n${mainHelp()}\n`); return 2; }
  let cli: Cli;
  try { cli = parseCommandLine(name, rest); } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`lfm2 ${name}: ${e.message}\n\n${cmd.help}\n`);
    return 2;
  }
  if (cli.bool.help) { process.stdout.write(cmd.help + "\n"); return 0; }
  try { return (await cmd.run(cli)) ?? 0; } catch (e) {
    if (e instanceof Lfm2Error) { process.stderr.write(`\nerror (${e.code}): ${e.message}\n`); return 1; }
    throw e;
  }
}

/**
 * Node 20 has relaxed SIMD only behind a V8 flag; the kernels run ~1.7× faster with it. The flag is set in
 * this process before any module is compiled (Node ≥ 22, Deno and browsers have the feature by default).
 * Re-executing node with the flag instead would put a second process between the terminal and the chat,
 * which then has to forward signals and stdin.
 */
async function enableRelaxedSimd(): Promise<void> {
  const { hasRelaxedSimd } = await import("../../bindings/wasm.js");
  if (hasRelaxedSimd() || process.env.LFM2_NO_RELAXED_FLAG) return;
  const { setFlagsFromString } = await import("node:v8");
  setFlagsFromString("--experimental-wasm-relaxed-simd");
}

const self = typeof process !== "undefined" ? process.argv[1] ?? "" : "";
if (/(cli\.js|main\.ts|lfm2)$/.test(self)) {
  enableRelaxedSimd()
    .then(() => main(process.argv.slice(2)))
    .then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
}
