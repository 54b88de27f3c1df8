#!/usr/bin/env node
// Builds llama.cpp's own tools offline as the independent references of the parity tests and benchmarks.
// node-llama-cpp ships both the llama.cpp source of its prebuilt binary (llama/gitRelease.bundle, release
// v0.5.0) and that binary's shared libraries; only tool programs (and libmtmd, which the libraries lack) are
// compiled here and linked against them, so the maths is the binary's own.
//   llama-embedding   examples/embedding/embedding.cpp                     (~8 s)
//   mtmd-dump         libmtmd + scripts/mtmd/mtmd-dump.cpp   (LFM2-VL)      (libmtmd: ~10 min at -O1 on 2 cores)
//   mtmd-audio-dump   libmtmd + scripts/mtmd-audio/mtmd-audio-dump.cpp (LFM2-Audio, same libmtmd objects)
// Output (outside git): .cache/llama-tools/bin/, the .so files symlinked beside the binaries. Objects are
// cached, so an interrupted build resumes; a tool is rebuilt when missing or older than its own source.
//   node scripts/build-llama-tools.mjs [embedding] [mtmd] [mtmd-audio] [--force]   (no names: all three)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const cacheDir = process.env.LFM2_LLAMA_TOOLS_DIR ?? join(root, ".cache", "llama-tools");
const bundle = join(root, "node_modules/node-llama-cpp/llama/gitRelease.bundle");
const libDir = join(root, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
const srcDir = join(cacheDir, "src");
const binDir = join(cacheDir, "bin");
const objDir = join(cacheDir, "obj-mtmd");
export const llamaEmbeddingPath = join(binDir, "llama-embedding");
export const mtmdDumpPath = join(binDir, "mtmd-dump");
export const mtmdAudioDumpPath = join(binDir, "mtmd-audio-dump");
const dumpSources = { [mtmdDumpPath]: join(root, "scripts/mtmd/mtmd-dump.cpp"),
  [mtmdAudioDumpPath]: join(root, "scripts/mtmd-audio/mtmd-audio-dump.cpp") };
const LINK = ["-L", libDir, "-l:libllama-common.so", "-l:libllama.v0.5.0.so", "-l:libggml.v0.5.0.so", "-l:libggml-base.so",
  "-Wl,-rpath,$ORIGIN", "-pthread"];

const newer = (a, b) => statSync(a).mtimeMs > statSync(b).mtimeMs;

/** Why the tools cannot be built here, or null. */
function missingPrerequisite() {
  if (process.platform !== "linux" || process.arch !== "x64") return `needs linux-x64 (the shipped libraries), this is ${process.platform}-${process.arch}`;
  if (!existsSync(bundle)) return `missing ${bundle} (node-llama-cpp not installed)`;
  if (!existsSync(libDir)) return `missing ${libDir} (@node-llama-cpp/linux-x64 not installed)`;
  try { execFileSync("g++", ["--version"], { stdio: "ignore" }); } catch { return "g++ is not installed"; }
  return null;
}

/** The llama.cpp tree cloned from the bundle, and the shipped libraries linked into bin/. */
function prepare(log, quiet) {
  const why = missingPrerequisite();
  if (why) throw new Error(why);
  if (!existsSync(join(srcDir, "tools/mtmd/clip.cpp"))) {
    log(`cloning ${bundle}`);
    rmSync(srcDir, { recursive: true, force: true });
    mkdirSync(cacheDir, { recursive: true });
    execFileSync("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundle, srcDir], { stdio: quiet ? "ignore" : "inherit" });
  }
  mkdirSync(binDir, { recursive: true });
  // the libraries are loaded beside the binary (rpath $ORIGIN), CPU backends by ggml_backend_load_all()
  for (const f of readdirSync(libDir).filter((n) => n.endsWith(".so"))) {
    const link = join(binDir, f);
    rmSync(link, { force: true });
    symlinkSync(join(libDir, f), link);
  }
}

const logger = (quiet) => (m) => { if (!quiet) process.stderr.write(`build-llama-tools: ${m}\n`); };

/** llama-embedding; returns its path. Throws with a stated reason when it cannot be built. */
export function buildLlamaEmbedding({ force = false, quiet = false } = {}) {
  if (!force && existsSync(llamaEmbeddingPath)) return llamaEmbeddingPath;
  const log = logger(quiet);
  prepare(log, quiet);
  const inc = ["include", "common", "ggml/include", "vendor"].flatMap((d) => ["-I", join(srcDir, d)]);
  // llama.cpp's logger (which prints the tool's JSON) writes from a thread and is never flushed at exit
  // (upstream issue 22142): without this, the tail of the output is now and then lost
  const flushShim = join(cacheDir, "flush-log-at-exit.cpp");
  writeFileSync(flushShim, '#include "log.h"\n#include <cstdlib>\n' +
    "static const int registered = std::atexit([] { common_log_flush(common_log_main()); });\n");
  const tmp = `${llamaEmbeddingPath}.tmp-${process.pid}`;
  log("compiling examples/embedding/embedding.cpp");
  execFileSync("g++", ["-std=c++17", "-O1", ...inc, join(srcDir, "examples/embedding/embedding.cpp"), flushShim, "-o", tmp, ...LINK],
    { stdio: quiet ? "ignore" : "inherit" });
  renameSync(tmp, llamaEmbeddingPath);
  return llamaEmbeddingPath;
}

function compile(src, obj, includes) {
  return new Promise((resolve, reject) => {
    const tmp = `${obj}.tmp-${process.pid}`;
    // vendor/hash mixes languages in .c files: sha1.c uses C++ namespaces, sha256.c is C (hash.cpp calls it
    // with C linkage); choose per file by its content
    const cxx = !src.endsWith(".c") || readFileSync(src, "latin1").includes("namespace ");
    const cc = cxx ? ["g++", "-x", "c++", "-std=c++17"] : ["gcc", "-std=c11"];
    const p = spawn("nice", ["-n", "10", ...cc, "-w", "-O1", "-c", ...includes, src, "-o", tmp], { stdio: ["ignore", "ignore", "inherit"] });
    p.on("exit", (code) => (code === 0 ? (renameSync(tmp, obj), resolve()) : reject(new Error(`g++ failed on ${src}`))));
  });
}

/** libmtmd's object files (compiled once, shared by both dump tools). */
async function libmtmdObjects(log, { force, jobs }) {
  const mtmd = join(srcDir, "tools/mtmd");
  const sources = [
    ...["mtmd", "mtmd-audio", "mtmd-image", "mtmd-helper", "mtmd-helper-gen", "clip"].map((n) => join(mtmd, `${n}.cpp`)),
    ...readdirSync(join(mtmd, "models")).filter((n) => n.endsWith(".cpp")).map((n) => join(mtmd, "models", n)),
    ...readdirSync(join(srcDir, "vendor/hash")).filter((n) => n.endsWith(".cpp")).map((n) => join(srcDir, "vendor/hash", n)),
    ...["xxhash/xxhash.c", "sha1/sha1.c", "sha256/sha256.c"].map((n) => join(srcDir, "vendor/hash", n)),
  ];
  mkdirSync(objDir, { recursive: true });
  const objOf = (s) => join(objDir, `${s.includes("/models/") ? "models-" : ""}${basename(s).replace(/\.c(pp)?$/, "")}.o`);
  const todo = sources.filter((s) => force || !existsSync(objOf(s)) || newer(s, objOf(s)));
  if (todo.length) log(`compiling libmtmd: ${todo.length} of ${sources.length} files at -O1 (${jobs} jobs, ~10 min on 2 cores)`);
  let next = 0, done = 0;
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (next < todo.length) {
      const s = todo[next++];
      await compile(s, objOf(s), includes());
      log(`${++done}/${todo.length} ${basename(s)}`);
    }
  }));
  return sources.map(objOf);
}

const includes = () => [join(srcDir, "tools/mtmd"), "include", "common", "ggml/include", "vendor", "vendor/hash", "src"]
  .flatMap((d) => ["-I", d.startsWith("/") ? d : join(srcDir, d)]);

async function buildDump(path, { force = false, quiet = false, jobs = 2 } = {}) {
  const dumpSource = dumpSources[path];
  if (!force && existsSync(path) && newer(path, dumpSource)) return path;
  const log = logger(quiet);
  prepare(log, quiet);
  const libObjects = await libmtmdObjects(log, { force, jobs });
  const dumpObj = join(objDir, `${basename(dumpSource, ".cpp")}.o`);
  await compile(dumpSource, dumpObj, includes());
  const tmp = `${path}.tmp-${process.pid}`;
  log(`linking ${basename(path)}`);
  execFileSync("g++", [...libObjects, dumpObj, "-o", tmp, ...LINK], { stdio: quiet ? "ignore" : "inherit" });
  renameSync(tmp, path);
  return path;
}

/** mtmd-dump (LFM2-VL reference): token layout, projected embeddings, logits after an image prompt. */
export const buildMtmdDump = (opts) => buildDump(mtmdDumpPath, opts);
/** mtmd-audio-dump (LFM2-Audio reference): mel, embeddings, logits after an audio prompt. */
export const buildMtmdAudioDump = (opts) => buildDump(mtmdAudioDumpPath, opts);

/**
 * For tests: the path of a built tool, or the reason it is absent. Only llama-embedding (seconds) is built on
 * demand; libmtmd takes minutes, so its tools must be built beforehand (.ci/run does).
 */
export function llamaTool(name) {
  const path = { "llama-embedding": llamaEmbeddingPath, "mtmd-dump": mtmdDumpPath, "mtmd-audio-dump": mtmdAudioDumpPath }[name];
  if (name === "llama-embedding") {
    try { return { path: buildLlamaEmbedding({ quiet: true }) }; } catch (e) { return { reason: `llama-embedding cannot be built: ${e.message}` }; }
  }
  if (existsSync(path) && newer(path, dumpSources[path])) return { path };
  const why = missingPrerequisite();
  return { reason: why ? `${name} cannot be built: ${why}` : `${name} not built (run: node scripts/build-llama-tools.mjs, ~10 min)` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const force = process.argv.includes("--force");
  const names = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const want = names.length ? names : ["embedding", "mtmd", "mtmd-audio"];
  try {
    for (const n of want) {
      if (n === "embedding") console.log(buildLlamaEmbedding({ force }));
      else if (n === "mtmd") console.log(await buildMtmdDump({ force }));
      else if (n === "mtmd-audio") console.log(await buildMtmdAudioDump({ force }));
      else throw new Error(`unknown tool "${n}" (embedding, mtmd, mtmd-audio)`);
    }
  } catch (e) {
    console.error(`build-llama-tools: cannot build: ${e.message}`);
    process.exit(1);
  }
}
