// `lfm2 serve`: load a model and serve the OpenAI-compatible API until Ctrl-C / SIGTERM.
import { parseArgs } from "node:util";
import { Lfm2Error } from "../errors.js";
import { loadModel } from "../runtime/load.js";
import type { LoadOptions, Model } from "../runtime/model.js";
import { syntheticGguf } from "../models/synthetic.js";
import { concatChunks } from "../formats/gguf-writer.js";
import { serveOpenAI } from "./node.js";

export const SERVE_HELP = `lfm2 serve [-m model.gguf | --hf LiquidAI/LFM2-350M-GGUF[:Q4_0]] [--port 8080] [--host 127.0.0.1]

  OpenAI-compatible HTTP API (as vLLM serves it): POST /v1/chat/completions, /v1/completions,
  /v1/embeddings (embedding models), GET /v1/models, /health. Requests run one at a time, in order.

  -m, --model <path|url>   GGUF file, URL, or Hugging Face folder (default: the built-in demo model)
      --hf <repo[:quant]>  download from the Hugging Face hub into the cache
      --port <n>           port (default 8080; 0 = any free port)
      --host <addr>        address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)
      --model-name <id>    the model id clients send (default: the file name without .gguf)
  -c, --ctx <n>            context length of the serving session (default 4096)
  -t, --threads <n>        threads (default: cores, at most 4)
      --max-body <bytes>   largest request body (default 4194304)`;

const options = {
  model: { type: "string", short: "m" }, hf: { type: "string" }, port: { type: "string" }, host: { type: "string" },
  "model-name": { type: "string" }, ctx: { type: "string", short: "c" }, threads: { type: "string", short: "t" },
  "max-body": { type: "string" }, "no-progress": { type: "boolean" }, help: { type: "boolean", short: "h" },
} as const;

function int(v: string | undefined, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Lfm2Error("BAD_INPUT", `${what} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}

const baseName = (p: string) => p.replace(/[\\/]+$/, "").split(/[\\/]/).pop()!.replace(/\.gguf$/i, "");

async function openServedModel(a: { model?: string; hf?: string; threads?: string; "no-progress"?: boolean }): Promise<{ model: Model; name: string }> {
  const lo: LoadOptions = { threads: int(a.threads, "--threads", 1, 256) };
  if (a.hf) {
    const { downloadHf } = await import("../io/hub.js");
    const { path } = await downloadHf(a.hf);
    return { model: await loadModel(path, lo), name: a.hf };
  }
  if (a.model) return { model: await loadModel(a.model, lo), name: baseName(a.model) };
  process.stderr.write("note: no model given, serving the built-in demo model (tiny LFM2 shape, random weights: its text is gibberish).\n" +
    "      To serve a real model:  lfm2 serve --hf LiquidAI/LFM2-350M-GGUF:Q4_0   (or -m path/to/model.gguf)\n");
  const bytes = concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q8_0", seed: 1, name: "LFM2 demo (random weights)" }));
  return { model: await loadModel(bytes, lo), name: "lfm2-demo" };
}

/** Runs `lfm2 serve` (argv after the command name); resolves with the exit code once the server stops. */
export async function serveCommand(argv: string[]): Promise<number> {
  let a;
  try { a = parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values; } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${SERVE_HELP}\n`);
    return 2;
  }
  if (a.help) { process.stdout.write(SERVE_HELP + "\n"); return 0; }
  try {
    const port = int(a.port, "--port", 0, 65535) ?? 8080;
    const contextLength = int(a.ctx, "--ctx", 16, 1 << 20);
    const maxBodyBytes = int(a["max-body"], "--max-body", 1024, 2 ** 31);
    const { model, name } = await openServedModel(a);
    const modelName = a["model-name"] ?? name;
    const server = await serveOpenAI(model, {
      port, host: a.host ?? "127.0.0.1", modelName, contextLength, maxBodyBytes,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
    }).catch((e: NodeJS.ErrnoException) => {
      model.dispose();
      throw e.code === "EADDRINUSE" || e.code === "EACCES"
        ? new Lfm2Error("IO", `cannot listen on ${a.host ?? "127.0.0.1"}:${port}: ${e.code}`, { cause: e }) : e;
    });
    process.stdout.write(`lfm2 serve: model "${modelName}" at ${server.url}/v1 (OpenAI-compatible; Ctrl-C stops)\n`);
    await new Promise<void>((resolve) => {
      const stop = () => { process.off("SIGINT", stop); process.off("SIGTERM", stop); resolve(); };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    process.stderr.write("lfm2 serve: shutting down\n");
    await server.close();
    model.dispose();
    return 0;
  } catch (e) {
    if (e instanceof Lfm2Error) { process.stderr.write(`error (${e.code}): ${e.message}\n`); return 1; }
    throw e;
  }
}
