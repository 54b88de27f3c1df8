// Runners for lfm2-wasm itself: a fresh Node process, or a page in headless Chromium.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./models.js";
import { benchPrompt, type RivalResult, type RunOptions } from "./rivals/native.js";
import { benchRoots, startServer } from "./serve.js";
import { withPage, withTimeout } from "./chromium.js";

const run = promisify(execFile);

export async function runOursNode(modelPath: string, opts: RunOptions & { plainSimd?: boolean }): Promise<RivalResult> {
  const ids = (await benchPrompt(modelPath, opts.promptTokens ?? 512)).ids;
  // the run's settings go through a file: a 32K-token prompt as a command-line argument exceeds the OS limit (E2BIG)
  const cfgDir = mkdtempSync(join(tmpdir(), "lfm2-bench-")), arg = join(cfgDir, "run.json");
  writeFileSync(arg, JSON.stringify({ model: modelPath, threads: opts.threads, ids, genTokens: opts.genTokens ?? 128, shortWarmup: opts.coldTtft === false }));
  // Node 20 needs a flag for relaxed SIMD (the lfm2 CLI adds it itself); later Node versions have it on
  const flags = Number(process.versions.node.split(".")[0]) < 22 && !opts.plainSimd ? ["--experimental-wasm-relaxed-simd"] : [];
  try {
    const { stdout } = await run(process.execPath, [...flags, "--import", "tsx", join(REPO_ROOT, "bench/ours-child.ts"), arg], { cwd: REPO_ROOT, maxBuffer: 1 << 24 });
    return JSON.parse(stdout.trim().split("\n").pop()!);
  } finally { rmSync(cfgDir, { recursive: true, force: true }); }
}

export async function runOursBrowser(modelPath: string, opts: RunOptions & { timeoutMs?: number }): Promise<RivalResult> {
  const ids = (await benchPrompt(modelPath, opts.promptTokens ?? 512)).ids;
  const server = await startServer({ roots: { ...benchRoots(), [`/models/${basename(modelPath)}`]: modelPath }, isolate: opts.threads > 1 });
  try {
    return await withPage(server.url("/bench/ours-page.html"), async (page) => {
      await page.waitForFunction(() => (window as any).oursReady === true);
      const cfg = { modelUrl: server.url(`/models/${basename(modelPath)}`), threads: opts.threads, ids, genTokens: opts.genTokens ?? 128 };
      return withTimeout(page.evaluate((c) => (window as any).oursBench(c), cfg), opts.timeoutMs ?? 600_000, "lfm2-wasm in Chromium");
    });
  } finally { await server.close(); }
}
