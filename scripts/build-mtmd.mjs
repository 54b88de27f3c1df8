#!/usr/bin/env node
// Builds llama.cpp v0.5.0's libmtmd (the LFM2-VL reference) offline, plus scripts/mtmd/mtmd-dump.cpp, a small
// program of ours that runs it on one raw RGB image and dumps the token layout, projected embeddings and
// (with a prompt) the text logits. Source: the llama.cpp tree node-llama-cpp ships (gitRelease.bundle, cloned
// by scripts/build-llama-tools.mjs into .cache/llama-tools/src); libraries: the .so files it ships. Only
// libmtmd's own files are compiled (-O1, one object per file, cached, so an interrupted build resumes).
// ~10 min on 2 cores. Output (outside git): .cache/llama-tools/bin/mtmd-dump. Prints its path.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { buildLlamaEmbedding } from "./build-llama-tools.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const cacheDir = process.env.LFM2_LLAMA_TOOLS_DIR ?? join(root, ".cache", "llama-tools");
const libDir = join(root, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
const srcDir = join(cacheDir, "src");
const objDir = join(cacheDir, "obj-mtmd");
const binDir = join(cacheDir, "bin");
const dumpSource = join(root, "scripts/mtmd/mtmd-dump.cpp");
export const mtmdDumpPath = join(binDir, "mtmd-dump");

function compile(src, obj, includes) {
  return new Promise((resolve, reject) => {
    const tmp = `${obj}.tmp-${process.pid}`;
    // vendor/hash mixes languages in .c files: sha1.c uses C++ namespaces, sha256.c is C (hash.cpp calls it
    // with C linkage); choose per file by its content
    const cxx = !src.endsWith(".c") || readFileSync(src, "latin1").includes("namespace ");
    const cc = cxx ? ["g++", "-x", "c++", "-std=c++17"] : ["gcc", "-std=c11"];
    const p = spawn("nice", ["-n", "10", ...cc, "-w", "-O1", "-c", ...includes, src, "-o", tmp],
      { stdio: ["ignore", "ignore", "inherit"] });
    p.on("exit", (code) => code === 0 ? (renameSync(tmp, obj), resolve()) : reject(new Error(`g++ failed on ${src}`)));
  });
}

/** Builds mtmd-dump if missing or older than its source; returns its path. Throws with a stated reason. */
export async function buildMtmdDump({ force = false, quiet = false, jobs = 2 } = {}) {
  if (!force && existsSync(mtmdDumpPath) && statSync(mtmdDumpPath).mtimeMs > statSync(dumpSource).mtimeMs) {
    return mtmdDumpPath;
  }
  buildLlamaEmbedding({ quiet }); // clones the source and links the shipped .so files into bin/
  const log = (m) => { if (!quiet) process.stderr.write(`build-mtmd: ${m}\n`); };
  const mtmd = join(srcDir, "tools/mtmd");
  const sources = [
    ...["mtmd", "mtmd-audio", "mtmd-image", "mtmd-helper", "mtmd-helper-gen", "clip"].map((n) => join(mtmd, `${n}.cpp`)),
    ...readdirSync(join(mtmd, "models")).filter((n) => n.endsWith(".cpp")).map((n) => join(mtmd, "models", n)),
    ...readdirSync(join(srcDir, "vendor/hash")).filter((n) => n.endsWith(".cpp")).map((n) => join(srcDir, "vendor/hash", n)),
    ...["xxhash/xxhash.c", "sha1/sha1.c", "sha256/sha256.c"].map((n) => join(srcDir, "vendor/hash", n)),
    dumpSource,
  ];
  const includes = [mtmd, "include", "common", "ggml/include", "vendor", "vendor/hash", "src"]
    .flatMap((d) => ["-I", d.startsWith("/") ? d : join(srcDir, d)]);
  mkdirSync(objDir, { recursive: true });
  const objOf = (s) => join(objDir, `${s.includes("/models/") ? "models-" : ""}${basename(s).replace(/\.c(pp)?$/, "")}.o`);
  const todo = sources.filter((s) => force || !existsSync(objOf(s)) || statSync(objOf(s)).mtimeMs < statSync(s).mtimeMs);
  log(`compiling ${todo.length} of ${sources.length} files at -O1 (${jobs} jobs)`);
  let next = 0, done = 0;
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (next < todo.length) {
      const s = todo[next++];
      await compile(s, objOf(s), includes);
      log(`${++done}/${todo.length} ${basename(s)}`);
    }
  }));
  const tmp = `${mtmdDumpPath}.tmp-${process.pid}`;
  execFileSync("g++", [...sources.map(objOf), "-o", tmp, "-L", libDir, "-l:libllama-common.so", "-l:libllama.v0.5.0.so",
    "-l:libggml.v0.5.0.so", "-l:libggml-base.so", "-Wl,-rpath,$ORIGIN", "-pthread"], { stdio: quiet ? "ignore" : "inherit" });
  renameSync(tmp, mtmdDumpPath);
  return mtmdDumpPath;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildMtmdDump({ force: process.argv.includes("--force") }).then((p) => console.log(p), (e) => {
    console.error(`build-mtmd: cannot build mtmd-dump: ${e.message}`);
    process.exit(1);
  });
}
