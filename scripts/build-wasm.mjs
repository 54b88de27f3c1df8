// Builds the four kernel variants: {plain SIMD, relaxed SIMD} × {private memory, shared memory}.
// asc compiles assembly/ (flags in asconfig.json), binaryen's wasm-opt optimizes the result.
import { execFileSync } from "node:child_process";
import { mkdirSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
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
for (const v of variants) {
  const raw = join(out, `${v.name}.raw.wasm`), opt = join(out, `${v.name}.wasm`);
  execFileSync(process.execPath, [asc, "assembly/index.ts", "--config", "asconfig.json", ...v.flags, "-o", raw], { cwd: root, stdio: "inherit" });
  const feats = ["--enable-simd", "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext", "--enable-mutable-globals"];
  if (v.flags.includes("relaxed-simd")) feats.push("--enable-relaxed-simd");
  if (v.flags.includes("threads")) feats.push("--enable-threads");
  execFileSync(wasmOpt, [raw, "-O3", ...feats, "-o", opt], { stdio: "inherit" });
  console.log(`${v.name}.wasm ${statSync(opt).size} bytes`);
}
for (const f of readdirSync(out)) if (f.endsWith(".raw.wasm")) execFileSync("rm", [join(out, f)]);
