// Single-thread matvec speed per weight type (decode shape: nTok = 1), plain-SIMD and relaxed-SIMD builds.
//   npx tsx bench/kernel-speed.ts [--n 1024] [--rows 4608] [--ms 600] [--types Q4_K,Q6_K]
// Reports GMAC/s (rows·n multiply-adds per call) and GB/s of weight bytes streamed, for the file-layout
// kernels of TYPE_KERNELS and, where a type has one, its load-time x4 layout. Activation preparation
// (quantize / round) is done once and not timed: a decode step shares it across all matmuls of a layer.
// Node 20 validates the relaxed build only with --experimental-wasm-relaxed-simd (and its baseline tier
// miscomputes one relaxed instruction), so there that variant runs in a child node process with the flag
// and --no-liftoff. Timing starts after a warm-up long enough for the optimizing tier to take over.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Arena, createMemory } from "../bindings/arena.js";
import { actBytes, TYPE_KERNELS } from "../src/core/quant-types.js";
import { compileVariant, hasRelaxedSimd, instantiateKernels, type KernelExports, type WasmVariant } from "../bindings/wasm.js";
import { f32ToF16 } from "../src/formats/fp16.js";
import { GGML, type GgmlTypeName } from "../src/core/quant-types.js";
import { quantizeTensor } from "../src/formats/quantize.js";
import { mulberry32 } from "../src/models/synthetic.js";

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : dflt; };
const N = Number(arg("n", "1024")), ROWS = Number(arg("rows", "4608")), MS = Number(arg("ms", "600"));
const TYPES = arg("types", "F32,F16,BF16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q4_K,Q5_K,Q6_K").split(",") as GgmlTypeName[];
const HALF_FIELDS: Record<string, number[]> = { Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };

interface Row { variant: string; kernel: string; type: string; gmacs: number; gbs: number; usPerCall: number }

/** Weights of one matrix: random block bytes with sane fp16 scales (speed does not depend on values). */
function weights(name: GgmlTypeName, rand: () => number): Uint8Array {
  const t = GGML[name];
  const halves = HALF_FIELDS[name];
  if (!halves) { // float types: encode random values
    const v = new Float32Array(ROWS * N);
    for (let i = 0; i < v.length; i++) v[i] = rand() - 0.5;
    return quantizeTensor(t, v, N);
  }
  const bytes = new Uint8Array((ROWS * N / t.blockSize) * t.blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (rand() * 256) | 0;
  for (let b = 0; b < bytes.length; b += t.blockBytes) {
    for (const off of halves) { const h = f32ToF16(0.01 + 0.01 * rand()); bytes[b + off] = h & 0xff; bytes[b + off + 1] = h >> 8; }
  }
  return bytes;
}

async function bench(variant: WasmVariant): Promise<Row[]> {
  const module = await compileVariant(variant);
  const arena = new Arena(createMemory(64 << 20, false));
  const k: KernelExports = await instantiateKernels(module, arena.memory);
  const rand = mulberry32(99);
  const x = arena.alloc(N * 4);
  const xs = arena.f32(x, N);
  for (let i = 0; i < N; i++) xs[i] = rand() * 2 - 1;
  const y = arena.alloc(ROWS * 4);
  const rows: Row[] = [];
  for (const name of TYPES) {
    const kern = TYPE_KERNELS[name];
    if (!kern) continue;
    const mark = arena.mark();
    const wb = weights(name, rand);
    const w = arena.alloc(wb.length);
    arena.u8(w, wb.length).set(wb);
    let xa = x;
    if (kern.act !== "f32") {
      xa = arena.alloc(actBytes(kern.act, N, 1));
      if (kern.act === "q8_0") k.quantizeQ8_0(x, N, 1, xa);
      else if (kern.act === "q8_K") k.quantizeQ8_K(x, N, 1, xa);
      else { arena.f32(xa, N).set(xs); (kern.act === "f16" ? k.roundF16 : k.roundBf16)(xa, N); }
    }
    const run = (fn: string, wp: number, label: string) => {
      const f = k[fn as `matmul${string}`];
      for (const tw = performance.now(); performance.now() - tw < 200;) f(wp, xa, y, N, 1, ROWS, 0, ROWS); // warm up / tier up
      let calls = 0;
      const t0 = performance.now();
      let t1 = t0;
      while (t1 - t0 < MS) { for (let i = 0; i < 10; i++) f(wp, xa, y, N, 1, ROWS, 0, ROWS); calls += 10; t1 = performance.now(); }
      const s = (t1 - t0) / 1000 / calls;
      rows.push({ variant, kernel: label, type: name, gmacs: (ROWS * N) / s / 1e9, gbs: wb.length / s / 1e9, usPerCall: s * 1e6 });
    };
    run(kern.matmul, w, kern.matmul);
    if (kern.x4) {
      const w4 = arena.alloc((ROWS / 4) * (N / 32) * kern.x4.groupBlockBytes);
      const scratch = arena.alloc(4 * (wb.length / ROWS));
      k[kern.x4.repack as `repack${string}`](w4, w, ROWS, N, scratch);
      run(kern.x4.matmul, w4, kern.x4.matmul);
    }
    arena.release(mark);
  }
  return rows;
}

if (process.argv.includes("--child")) {
  process.stdout.write(JSON.stringify(await bench(arg("variant", "lfm2-relaxed") as WasmVariant)));
} else {
  const all: Row[] = await bench("lfm2-simd");
  if (hasRelaxedSimd()) all.push(...await bench("lfm2-relaxed"));
  else {
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync(process.execPath, ["--experimental-wasm-relaxed-simd", "--no-liftoff", "--import", "tsx", self, "--child", "--variant", "lfm2-relaxed", ...process.argv.slice(2)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status === 0) all.push(...JSON.parse(r.stdout) as Row[]);
    else console.error(`relaxed variant unavailable: ${r.stderr.split("\n").slice(0, 3).join(" ")}`);
  }
  console.log(`matvec ${ROWS} rows × ${N} (nTok = 1), one thread, ${process.version}`);
  console.log("type   kernel          variant        GMAC/s   weight GB/s   µs/call");
  const byType = [...new Set(all.map((r) => r.type + " " + r.kernel))];
  for (const key of byType) {
    for (const r of all.filter((q) => q.type + " " + q.kernel === key)) {
      console.log(`${r.type.padEnd(6)} ${r.kernel.padEnd(15)} ${r.variant.padEnd(13)} ${r.gmacs.toFixed(2).padStart(7)} ${r.gbs.toFixed(2).padStart(12)} ${r.usPerCall.toFixed(0).padStart(9)}`);
    }
  }
}
