#!/usr/bin/env node
// Builds llama.cpp's libmtmd audio path (clip + mtmd-audio + graph builders) with a small dump program
// (scripts/mtmd-audio/mtmd-audio-dump.cpp) offline, as the independent reference for the LFM2-Audio
// (`lfm2a`) parity tests. The source is node-llama-cpp's llama/gitRelease.bundle (the exact commit of its
// prebuilt binary, cloned by build-llama-tools.mjs's layout) and the tool links against the shipped
// libggml/libllama .so files, so the maths is the binary's own. Objects are cached, so an interrupted
// build resumes. Output (outside git): .cache/mtmd-audio/bin/mtmd-audio-dump. Prints the binary's path.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, renameSync, statSync } from "node:fs";
import { join, basename } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bundle = join(root, "node_modules/node-llama-cpp/llama/gitRelease.bundle");
const libDir = join(root, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
const srcDir = process.env.LFM2_LLAMA_SRC_DIR ?? join(root, ".cache", "llama-tools", "src");
const cacheDir = process.env.LFM2_MTMD_AUDIO_DIR ?? join(root, ".cache", "mtmd-audio");
const objDir = join(cacheDir, "obj");
const binDir = join(cacheDir, "bin");
export const mtmdAudioDumpPath = join(binDir, "mtmd-audio-dump");
const dumpSource = join(root, "scripts/mtmd-audio/mtmd-audio-dump.cpp");

function sources() {
  const mtmd = join(srcDir, "tools/mtmd");
  const models = readdirSync(join(mtmd, "models")).filter((f) => f.endsWith(".cpp")).map((f) => join(mtmd, "models", f));
  return [...["clip.cpp", "mtmd.cpp", "mtmd-audio.cpp", "mtmd-image.cpp"].map((f) => join(mtmd, f)), ...models, dumpSource];
}

function compile(src, obj, quiet) {
  const inc = ["include", "common", "ggml/include", "vendor", "tools/mtmd"].flatMap((d) => ["-I", join(srcDir, d)]);
  return new Promise((resolve, reject) => {
    const tmp = `${obj}.tmp`;
    const p = spawn("nice", ["-n", "10", "g++", "-std=c++17", "-O1", "-fPIC", "-w", ...inc, "-c", src, "-o", tmp],
      { stdio: quiet ? "ignore" : ["ignore", "inherit", "inherit"] });
    p.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`g++ failed on ${src}`));
      renameSync(tmp, obj);
      resolve();
    });
  });
}

/** Builds the dump tool if missing; returns its path. Throws with a stated reason when it cannot be built. */
export async function buildMtmdAudioDump({ force = false, quiet = false, jobs = 2 } = {}) {
  // the dump program is ours and may change: rebuild (relink) when its source is newer than the binary
  const stale = existsSync(mtmdAudioDumpPath) && statSync(dumpSource).mtimeMs > statSync(mtmdAudioDumpPath).mtimeMs;
  if (!force && !stale && existsSync(mtmdAudioDumpPath)) return mtmdAudioDumpPath;
  if (process.platform !== "linux" || process.arch !== "x64") throw new Error(`needs linux-x64, this is ${process.platform}-${process.arch}`);
  if (!existsSync(libDir)) throw new Error(`missing ${libDir} (@node-llama-cpp/linux-x64 not installed)`);
  try { execFileSync("g++", ["--version"], { stdio: "ignore" }); } catch { throw new Error("g++ is not installed"); }
  const log = (m) => { if (!quiet) process.stderr.write(`build-mtmd-audio: ${m}\n`); };
  if (!existsSync(join(srcDir, "tools/mtmd/clip.cpp"))) {
    if (!existsSync(bundle)) throw new Error(`missing ${bundle} (node-llama-cpp not installed)`);
    log(`cloning ${bundle}`);
    rmSync(srcDir, { recursive: true, force: true });
    mkdirSync(join(srcDir, ".."), { recursive: true });
    execFileSync("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundle, srcDir]);
  }
  mkdirSync(objDir, { recursive: true });
  mkdirSync(binDir, { recursive: true });
  const work = sources().map((src) => ({ src, obj: join(objDir, basename(src).replace(/\.cpp$/, ".o")) }));
  const todo = work.filter((w) => force || !existsSync(w.obj) || w.src === dumpSource);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const w = todo[next++];
      log(`compiling ${basename(w.src)} (${next}/${todo.length})`);
      await compile(w.src, w.obj, quiet);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  for (const f of readdirSync(libDir).filter((n) => n.endsWith(".so"))) {
    const link = join(binDir, f);
    rmSync(link, { force: true });
    symlinkSync(join(libDir, f), link);
  }
  const tmp = `${mtmdAudioDumpPath}.tmp-${process.pid}`;
  log("linking");
  execFileSync("g++", [...work.map((w) => w.obj), "-o", tmp, "-L", libDir, "-l:libllama.v0.5.0.so",
    "-l:libggml.v0.5.0.so", "-l:libggml-base.so", "-Wl,-rpath,$ORIGIN", "-pthread"], { stdio: quiet ? "ignore" : "inherit" });
  renameSync(tmp, mtmdAudioDumpPath);
  return mtmdAudioDumpPath;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(await buildMtmdAudioDump({ force: process.argv.includes("--force") }));
  } catch (e) {
    console.error(`build-mtmd-audio: cannot build: ${e.message}`);
    process.exit(1);
  }
}
