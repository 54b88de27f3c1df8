#!/usr/bin/env node
// Builds llama.cpp's own `llama-embedding` tool offline, as the independent reference for the embedding
// parity tests and benchmark. node-llama-cpp ships both the llama.cpp source of its prebuilt binary
// (llama/gitRelease.bundle, one commit) and that binary's shared libraries; only the small tool program
// is compiled here (g++, ~8 s) and linked against those libraries, so the tool runs the exact same code.
// Output (outside git): .cache/llama-tools/bin/llama-embedding, with the .so files symlinked beside it.
// Rebuilds only when the binary is missing (or with --force). Prints the binary's path.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const cacheDir = process.env.LFM2_LLAMA_TOOLS_DIR ?? join(root, ".cache", "llama-tools");
const bundle = join(root, "node_modules/node-llama-cpp/llama/gitRelease.bundle");
const libDir = join(root, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
const srcDir = join(cacheDir, "src");
const binDir = join(cacheDir, "bin");
export const llamaEmbeddingPath = join(binDir, "llama-embedding");

/** Builds the tool if missing; returns its path. Throws with a stated reason when it cannot be built. */
export function buildLlamaEmbedding({ force = false, quiet = false } = {}) {
  if (!force && existsSync(llamaEmbeddingPath)) return llamaEmbeddingPath;
  if (process.platform !== "linux" || process.arch !== "x64") throw new Error(`needs linux-x64 (the shipped libraries), this is ${process.platform}-${process.arch}`);
  if (!existsSync(bundle)) throw new Error(`missing ${bundle} (node-llama-cpp not installed)`);
  if (!existsSync(libDir)) throw new Error(`missing ${libDir} (@node-llama-cpp/linux-x64 not installed)`);
  try { execFileSync("g++", ["--version"], { stdio: "ignore" }); } catch { throw new Error("g++ is not installed"); }
  const log = (m) => { if (!quiet) process.stderr.write(`build-llama-tools: ${m}\n`); };
  if (!existsSync(join(srcDir, "examples/embedding/embedding.cpp"))) {
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
  const inc = ["include", "common", "ggml/include", "vendor"].flatMap((d) => ["-I", join(srcDir, d)]);
  // llama.cpp's logger (which prints the tool's JSON) writes from a thread and is never flushed at exit
  // (upstream issue 22142): without this, the tail of the output is now and then lost
  const flushShim = join(cacheDir, "flush-log-at-exit.cpp");
  writeFileSync(flushShim, '#include "log.h"\n#include <cstdlib>\n' +
    "static const int registered = std::atexit([] { common_log_flush(common_log_main()); });\n");
  const tmp = `${llamaEmbeddingPath}.tmp-${process.pid}`;
  log("compiling examples/embedding/embedding.cpp");
  execFileSync("g++", ["-std=c++17", "-O1", ...inc, join(srcDir, "examples/embedding/embedding.cpp"), flushShim, "-o", tmp,
    "-L", libDir, "-l:libllama-common.so", "-l:libllama.v0.5.0.so", "-l:libggml.v0.5.0.so", "-l:libggml-base.so",
    "-Wl,-rpath,$ORIGIN", "-pthread"], { stdio: quiet ? "ignore" : "inherit" });
  execFileSync("mv", [tmp, llamaEmbeddingPath]);
  return llamaEmbeddingPath;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(buildLlamaEmbedding({ force: process.argv.includes("--force") }));
  } catch (e) {
    console.error(`build-llama-tools: cannot build llama-embedding: ${e.message}`);
    process.exit(1);
  }
}
