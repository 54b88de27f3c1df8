// Single-thread speed of the x4 kernels (matmulQ4_0x4, matmulQ8_0x4) on the 350M shapes, for one or more
// builds of the kernel module side by side, e.g. the build before and after a kernel change:
//   node --experimental-wasm-relaxed-simd --import tsx bench/matmul-micro.ts [--dirs /tmp/x4-before,build]
//     [--variant lfm2-relaxed|lfm2-simd] [--types Q4_0,Q8_0] [--tokens 1,64] [--reps 5] [--ms 300] [--copies 16]
// The machine is shared, so the builds take turns: each rep times every (shape, build) once, timing is by the
// process's CPU time (not wall time: other processes' time slices do not count), and the table reports the
// median over reps (GMAC/s = rows · n · nTok multiply-adds per CPU second) and each build's ratio to the first.
// Activations are quantized once outside the timing, as a layer shares them across matmuls.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Arena, createMemory } from "../bindings/arena.js";
import { compileVariant, hasRelaxedSimd, instantiateKernels, type KernelExports, type WasmVariant } from "../bindings/wasm.js";
import { actBytes, GGML, TYPE_KERNELS, type GgmlTypeName } from "../src/core/quant-types.js";
import { f32ToF16 } from "../src/formats/fp16.js";
import { mulberry32 } from "../src/models/synthetic.js";

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : dflt; };
const DIRS = arg("dirs", "build").split(",");
const VARIANT = arg("variant", hasRelaxedSimd() ? "lfm2-relaxed" : "lfm2-simd") as WasmVariant;
const TYPES = arg("types", "Q4_0,Q8_0").split(",") as GgmlTypeName[];
const TOKENS = arg("tokens", "1,64").split(",").map(Number);
const REPS = Number(arg("reps", "5")), MS = Number(arg("ms", "300"));
/** Copies of each weight matrix the calls rotate over: enough of them (e.g. 16) to stream from DRAM, not cache. */
const COPIES = Number(arg("copies", "1"));
/** [n (inputs), rows]: ffn w1/w3, ffn w2, attention / conv projections of the 350M model. */
const SHAPES: [number, number][] = [[1024, 4608], [4608, 1024], [1024, 1024]];

if (VARIANT.startsWith("lfm2-relaxed") && !hasRelaxedSimd()) {
  console.error("relaxed SIMD is unavailable: run node with --experimental-wasm-relaxed-simd (Node 20/21) or pass --variant lfm2-simd");
  process.exit(1);
}

/** Random Q4_0 / Q8_0 file bytes with sane fp16 scales (speed does not depend on the values). */
function weights(type: GgmlTypeName, rows: number, n: number, rand: () => number): Uint8Array {
  const t = GGML[type], bytes = new Uint8Array((rows * n / t.blockSize) * t.blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (rand() * 256) | 0;
  for (let b = 0; b < bytes.length; b += t.blockBytes) {
    const h = f32ToF16(0.01 + 0.01 * rand());
    bytes[b] = h & 0xff; bytes[b + 1] = h >> 8;
  }
  return bytes;
}

/** One case ready to call in one build: the x4 weights and quantized activations sit in that build's memory. */
interface Prepared { call: () => void; macs: number }

async function prepare(dir: string): Promise<Map<string, Prepared>> {
  const module = await compileVariant(VARIANT, { wasmBaseUrl: pathToFileURL(resolve(dir) + "/") });
  const arena = new Arena(createMemory((256 + 48 * COPIES) << 20, false));
  const k: KernelExports = await instantiateKernels(module, arena.memory);
  const cases = new Map<string, Prepared>();
  for (const type of TYPES) {
    const kern = TYPE_KERNELS[type], x4 = kern.x4!;
    for (const [n, rows] of SHAPES) {
      const rand = mulberry32(n * 31 + rows); // same bytes in every build
      const file = weights(type, rows, n, rand);
      const src = arena.alloc(file.length);
      arena.u8(src, file.length).set(file);
      const x4Bytes = (rows / 4) * (n / 32) * x4.groupBlockBytes, scratch = arena.alloc(4 * (file.length / rows));
      const w4s: number[] = [];
      for (let c = 0; c < COPIES; c++) {
        w4s.push(arena.alloc(x4Bytes));
        k[x4.repack as `repack${string}`](w4s[c], src, rows, n, scratch);
      }
      for (const nTok of TOKENS) {
        const x = arena.alloc(nTok * n * 4), xs = arena.f32(x, nTok * n);
        for (let i = 0; i < xs.length; i++) xs[i] = rand() * 2 - 1;
        const xq = arena.alloc(actBytes(kern.act, n, nTok)), y = arena.alloc(nTok * rows * 4);
        k.quantizeQ8_0(x, n, nTok, xq);
        const f = k[x4.matmul as `matmul${string}`];
        let c = 0;
        const call = () => { f(w4s[c], xq, y, n, nTok, rows, 0, rows); c = (c + 1) % COPIES; };
        cases.set(`${type} ${n}→${rows} nTok=${nTok}`, { call, macs: rows * n * nTok });
      }
    }
  }
  return cases;
}

/** This process's CPU time in ms: time-slicing by other processes on a shared machine does not count. */
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** GMAC/s of one timed burst (after a warm-up long enough for the optimizing tier to take over). */
function time(p: Prepared, warmMs: number): number {
  for (const t0 = performance.now(); performance.now() - t0 < warmMs;) p.call();
  let calls = 0;
  const t0 = cpuMs();
  let t1 = t0;
  while (t1 - t0 < MS) { p.call(); calls++; t1 = cpuMs(); }
  return (p.macs * calls) / ((t1 - t0) / 1000) / 1e9;
}

const builds = await Promise.all(DIRS.map(prepare));
const keys = [...builds[0].keys()];
const samples = new Map<string, number[][]>(keys.map((key) => [key, DIRS.map(() => [])]));
for (let rep = 0; rep < REPS; rep++) {
  for (const key of keys) {
    builds.forEach((b, i) => samples.get(key)![i].push(time(b.get(key)!, rep === 0 ? 300 : 30)));
  }
  process.stderr.write(`rep ${rep + 1}/${REPS} done\n`);
}
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
console.log(`x4 kernels, ${VARIANT}, one thread, ${process.version}, median GMAC/s (per CPU second) of ${REPS} alternating reps (${MS} ms CPU each)`);
console.log(`${"case".padEnd(28)}${DIRS.map((d) => d.padStart(20)).join("")}${DIRS.length > 1 ? "   ratio to " + DIRS[0] : ""}`);
for (const key of keys) {
  const med = samples.get(key)!.map(median);
  const ratios = med.slice(1).map((m) => (m / med[0]).toFixed(2) + "x").join("  ");
  console.log(`${key.padEnd(28)}${med.map((m) => m.toFixed(2).padStart(20)).join("")}   ${ratios}`);
}
