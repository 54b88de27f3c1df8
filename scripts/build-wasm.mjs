// Builds the four kernel variants: {plain SIMD, relaxed SIMD} × {private memory, shared memory}.
// asc compiles assembly/ (flags in asconfig.json), binaryen's wasm-opt optimizes the result.
// Skips all work when assembly/**, asconfig.json, this script and the compiler versions are unchanged since
// the last build (stamp: build/.wasm-build.json); `--force` or LFM2_FORCE_BUILD=1 rebuilds.
import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  BuildFailed, filesUnder, fingerprint, packageVersion, removeStamp, root, runStep, upToDate, writeStamp,
} from "./build-cache.mjs";

const out = join(root, "build");
mkdirSync(out, { recursive: true });
const asc = join(root, "node_modules/assemblyscript/bin/asc.js");
const wasmOpt = join(root, "node_modules/binaryen/bin/wasm-opt");
const variants = [
  { name: "lfm2-simd", flags: [] },
  { name: "lfm2-relaxed", flags: ["--enable", "relaxed-simd"] },
  { name: "lfm2-simd-mt", flags: ["--enable", "threads", "--sharedMemory"] },
  { name: "lfm2-relaxed-mt", flags: ["--enable", "relaxed-simd", "--enable", "threads", "--sharedMemory"] },
];
const outputs = variants.map((v) => join(out, `${v.name}.wasm`));
const stamp = join(out, ".wasm-build.json");
const inputs = [...filesUnder("assembly"), "asconfig.json", relative(root, fileURLToPath(import.meta.url)), "scripts/build-cache.mjs"];
const print = fingerprint(inputs, [`assemblyscript ${packageVersion("assemblyscript")}`, `binaryen ${packageVersion("binaryen")}`]);

if (upToDate(stamp, print, outputs)) {
  console.error("build/*.wasm up to date (npm run build -- --force rebuilds)");
  process.exit(0);
}

removeStamp(stamp); // a build that fails half-way must not leave the old stamp claiming "up to date"
try {
  for (const [i, v] of variants.entries()) buildVariant(v, outputs[i]);
} catch (e) {
  if (!(e instanceof BuildFailed)) throw e;
  process.exit(1);
}
writeStamp(stamp, { fingerprint: print, inputs: inputs.length, builtAt: new Date().toISOString() });

function buildVariant(v, output) {
  // per-process temporary names: two builds running at once (or a test reading build/) never see half a file
  const raw = join(out, `${v.name}.${process.pid}.raw.wasm`), tmp = join(out, `${v.name}.${process.pid}.tmp.wasm`);
  try {
    runStep(`asc ${v.name}`, process.execPath, [asc, "assembly/index.ts", "--config", "asconfig.json", ...v.flags, "-o", raw]);
    const feats = ["--enable-simd", "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext", "--enable-mutable-globals"];
    if (v.flags.includes("relaxed-simd")) feats.push("--enable-relaxed-simd");
    if (v.flags.includes("threads")) feats.push("--enable-threads");
    runStep(`wasm-opt ${v.name}`, wasmOpt, [raw, "-O3", ...feats, "-o", tmp]);
    renameSync(tmp, output);
  } finally {
    rmSync(raw, { force: true });
    rmSync(tmp, { force: true });
  }
  console.error(`${v.name}.wasm ${statSync(output).size} bytes`);
}
