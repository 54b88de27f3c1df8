// Serves the browser example from a checkout: examples/, dist/, build/ and a model, on 127.0.0.1, with
// or without cross-origin isolation (bench/serve.ts does the HTTP). Used by browser.test.ts and by hand:
//
//   npm run build && npx tsx test/runtimes/serve.ts --isolate [--port 8080] [--model path/to/model.gguf]
//   → open http://127.0.0.1:8080/examples/browser/?model=/models/model.gguf
//
// Without --model the tiny synthetic demo model (the one the runtime tests use) is served.
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type StaticServer } from "../../bench/serve.js";
import { REPO_ROOT, tinyModel } from "./helpers.js";

export const MODEL_URL_PATH = "/models/model.gguf";
export const EXAMPLE_PATH = "/examples/browser/index.html";

export async function startExampleServer(opts: { modelPath: string; isolate?: boolean; port?: number; extraRoots?: Record<string, string>; log?: (line: string) => void }): Promise<StaticServer> {
  return startServer({
    roots: {
      "/examples/": join(REPO_ROOT, "examples"),
      "/dist/": join(REPO_ROOT, "dist"),
      "/build/": join(REPO_ROOT, "build"),
      [MODEL_URL_PATH]: opts.modelPath,
      ...opts.extraRoots,
    },
    isolate: opts.isolate,
    port: opts.port,
    log: opts.log,
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  const modelPath = opt("--model") ? resolve(opt("--model")!) : (await tinyModel()).path;
  const s = await startExampleServer({ modelPath, isolate: args.includes("--isolate"), port: Number(opt("--port") ?? 8080), log: (l) => console.log(l) });
  console.log(`${s.url(EXAMPLE_PATH)}?model=${MODEL_URL_PATH}${args.includes("--isolate") ? "  (cross-origin isolated: threads on)" : "  (not isolated: 1 thread; add --isolate for threads)"}`);
}
