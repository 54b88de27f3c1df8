// Shared by the runtime tests (Deno, Chromium, workerd): one tiny synthetic model with a fixed seed,
// Node's greedy output for it as the reference, and locating the runtime binaries that npm installed
// (their postinstall scripts may have been blocked, so the platform packages are searched directly).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DIST_INDEX = join(REPO_ROOT, "dist", "index.js");
export const WASM_VARIANTS = ["lfm2-simd", "lfm2-relaxed", "lfm2-simd-mt", "lfm2-relaxed-mt"] as const;

/** The model every runtime loads, and what it is asked. */
export const MODEL_OPTS = { shape: "tiny", weightType: "Q4_0", seed: 42 } as const;
export const PROMPT = "Hello world, this is";
export const MAX_TOKENS = 16;
export const CONTEXT = 256;

/** Throws with the fix when the package has not been built (tests exercise dist/ and build/, as shipped). */
export function assertBuilt(): void {
  const missing = [DIST_INDEX, ...WASM_VARIANTS.map((v) => join(REPO_ROOT, "build", `${v}.wasm`))].filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`run \`npm run build\` first; missing ${missing.map((p) => p.slice(REPO_ROOT.length + 1)).join(", ")}`);
}

type Pkg = typeof import("../../src/index.js");
export const importDist = (): Promise<Pkg> => import(pathToFileURL(DIST_INDEX).href);

let modelCache: { bytes: Uint8Array; path: string; dir: string } | undefined;

/** The tiny Q4_0 model's bytes, also written to a temp file. */
export async function tinyModel(): Promise<{ bytes: Uint8Array; path: string; dir: string }> {
  if (!modelCache) {
    assertBuilt();
    const { syntheticGguf } = await importDist();
    const chunks = syntheticGguf({ ...MODEL_OPTS });
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) { bytes.set(c, o); o += c.length; }
    const dir = mkdtempSync(join(tmpdir(), "lfm2-runtimes-"));
    const path = join(dir, "tiny-q4_0.gguf");
    writeFileSync(path, bytes);
    modelCache = { bytes, path, dir };
  }
  return modelCache;
}

export interface GreedyRun { tokens: number[]; text: string; finishReason: string; wasmVariant: string; threads: number; threadsNote?: string }

let refCache: Promise<GreedyRun> | undefined;

/** Node's greedy tokens for PROMPT: the reference every other runtime must reproduce exactly. */
export function nodeReference(): Promise<GreedyRun> {
  refCache ??= (async () => {
    const { loadModel } = await importDist();
    const { bytes } = await tinyModel();
    const model = await loadModel(bytes, { threads: 1 });
    try {
      const it = model.createSession({ contextLength: CONTEXT }).generate(PROMPT, { maxTokens: MAX_TOKENS, temperature: 0 });
      let r = await it.next();
      while (!r.done) r = await it.next();
      const { tokens, text, finishReason } = r.value;
      if (tokens.length !== MAX_TOKENS) throw new Error(`the reference run stopped after ${tokens.length} tokens (${finishReason}); pick a prompt/seed that runs to maxTokens`);
      return { tokens, text, finishReason, wasmVariant: model.info.wasmVariant, threads: model.info.threads, threadsNote: model.info.threadsNote };
    } finally { model.dispose(); }
  })();
  return refCache;
}

const require = createRequire(import.meta.url);

function packageDir(name: string): string | null {
  try { return dirname(require.resolve(`${name}/package.json`, { paths: [REPO_ROOT] })); } catch { return null; }
}

/** Run `bin --version`; the binary is usable when it prints something and exits 0. */
function probe(bin: string): string | null {
  if (!existsSync(bin)) return null;
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim().split("\n")[0] : null;
}

export interface Binary { path: string; version: string }
export type Found = { ok: true; bin: Binary } | { ok: false; reason: string };

function firstWorking(candidates: (string | null | undefined)[], what: string): Found {
  const tried: string[] = [];
  for (const c of candidates) {
    if (!c) continue;
    tried.push(c);
    const version = probe(c);
    if (version) return { ok: true, bin: { path: c, version } };
  }
  return { ok: false, reason: `no working ${what} binary (tried: ${tried.join(", ") || "nothing"})` };
}

/**
 * Deno from the `deno` npm package: its postinstall links node_modules/deno/deno; without it the
 * binary sits in the platform package @deno/<os>-<arch>[-glibc]. DENO_BIN overrides; PATH is last.
 */
export function findDeno(): Found {
  const exe = process.platform === "win32" ? "deno.exe" : "deno";
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const plat = process.platform === "linux" ? `linux-${arch}-glibc` : `${process.platform}-${arch}`;
  const main = packageDir("deno");
  const platDir = packageDir(`@deno/${plat}`);
  return firstWorking([process.env.DENO_BIN, main && join(main, exe), platDir && join(platDir, exe), onPath(exe)], "deno");
}

/**
 * workerd from the @cloudflare/workerd-<os>-<arch> platform package (the native binary), else the `workerd`
 * package's bin/workerd. Without its postinstall (install scripts are denied) that one is a Node shim that
 * does not pass on the --control-fd the tests use, so the native binary comes first.
 */
export function findWorkerd(): Found {
  const exe = process.platform === "win32" ? "workerd.exe" : "workerd";
  const arch = process.arch === "arm64" ? "arm64" : "64";
  const main = packageDir("workerd");
  const platDir = packageDir(`@cloudflare/workerd-${process.platform === "win32" ? "windows" : process.platform}-${arch}`);
  return firstWorking([process.env.WORKERD_BIN, platDir && join(platDir, "bin", exe), main && join(main, "bin", exe), onPath(exe)], "workerd");
}

function onPath(exe: string): string | null {
  for (const d of (process.env.PATH ?? "").split(process.platform === "win32" ? ";" : ":")) {
    if (d && existsSync(join(d, exe))) return join(d, exe);
  }
  return null;
}

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Run a process to completion (killed after timeoutMs). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (e) => { clearTimeout(timer); fail(e); });
    child.on("close", (code, signal) => { clearTimeout(timer); ok({ code, signal, stdout, stderr }); });
  });
}

/** Delete the temp dir (model, generated configs, bundles); call from afterAll. */
export function removeTemp(): void {
  if (modelCache) rmSync(modelCache.dir, { recursive: true, force: true });
  modelCache = undefined;
}

/** Write a file into the model's temp dir (for generated configs and bundles). */
export async function tempFile(name: string, text: string | Uint8Array): Promise<string> {
  const { dir } = await tinyModel();
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
