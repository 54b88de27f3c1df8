// The load-time row-interleaved layouts (assembly/matmul-x4.ts: Q4_0x4, Q8_0x4; matmul-kx4.ts: Q4_Kx4, Q6_Kx4;
// matmul-k5x4.ts: Q5_Kx4) against the file-layout kernels and the TS references, in the plain-SIMD and
// relaxed-SIMD build. Q4_0x4 / Q8_0x4 take prefill tokens four at a time and the rest one by one (Q8_0x4 with the
// four rows' quants interleaved in 4-byte chunks), so they run every nTok from 1 to 9 over odd block counts and
// ranges of 1..4 groups: a chunk or row out of place, or a tile edge off by one, changes outputs.
//
// As in test/kernels.test.ts the kernels run in child node processes (Node 20 validates the relaxed build
// only with --experimental-wasm-relaxed-simd). Each build runs twice: with the engine's default tiering
// (Liftoff first: what the runtime gets under that flag) and with --no-liftoff (the optimizing tier only),
// so both code generators are checked. The child repacks the file bytes in place exactly as
// src/model/weights.ts does (file bytes at the tail of the x4 region), quantizes the activations with the
// module's own quantizer and returns raw outputs; all comparisons happen here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deserialize, serialize } from "node:v8";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TYPE_KERNELS } from "../src/core/quant-types.js";
import { dotReference } from "../src/formats/activation-quant.js";
import { GGML, type GgmlType, type GgmlTypeName } from "../src/core/quant-types.js";
import { dequantizeTensor } from "../src/formats/quantize.js";
import { randomActivations, randomMatrix } from "./helpers/kernel-inputs.js";
import { mulberry32 } from "../src/models/synthetic.js";

const ROOT = new URL("..", import.meta.url);
const TYPES = ["Q4_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K"] as const;
const BLOCK32 = new Set<string>(["Q4_0", "Q8_0"]);
const tokensOf = (type: string) => (BLOCK32.has(type) ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : [1, 3, 4, 5, 17]);
/** Inputs per row: 3 and 11 blocks of 32 (odd), or 1 and 3 K-blocks of 256. */
const sizesOf = (type: string) => (BLOCK32.has(type) ? [96, 352] : [256, 768]);
const ROWS = 16;
/** Computed row ranges [r0, r1): multiples of four, including r0 > 0, single groups and odd group counts. */
const RANGES = [[0, 16], [4, 12], [12, 16], [0, 4], [8, 12], [4, 16]] as const;
const RUNS = [
  { name: "plain", variant: "lfm2-simd", flags: [] as string[] },
  { name: "plain, optimizing tier", variant: "lfm2-simd", flags: ["--no-liftoff"] },
  { name: "relaxed", variant: "lfm2-relaxed", flags: ["--experimental-wasm-relaxed-simd"] },
  { name: "relaxed, optimizing tier", variant: "lfm2-relaxed", flags: ["--experimental-wasm-relaxed-simd", "--no-liftoff"] },
] as const;

// ---- the child process ----------------------------------------------------------------------------

interface Job { type: string; w: Uint8Array; n: number; rows: number; xs: { x: Float32Array; nTok: number }[]; ranges: (readonly [number, number])[] }
/** Per job: for each activation and range, [x4 output, file-layout output]; then the x4-dequantized rows. */
interface JobOut { mats: [Float32Array, Float32Array][]; rows: Float32Array[] }
interface ChildResult { relaxed: boolean; outputs: JobOut[] }

const CHILD_SRC = `
import { readFileSync, writeFileSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
const [taskFile, outFile] = process.argv.slice(2);
const { root, variant, jobs } = deserialize(readFileSync(taskFile));
const { compileVariant, instantiateKernels, hasRelaxedSimd } = await import(new URL("bindings/wasm.ts", root).href);
const { Arena, createMemory } = await import(new URL("bindings/arena.ts", root).href);
const { TYPE_KERNELS, actBytes } = await import(new URL("src/core/quant-types.ts", root).href);
const module = await compileVariant(variant);
const outputs = [];
for (const job of jobs) {
  const arena = new Arena(createMemory(1 << 24, false));
  const k = await instantiateKernels(module, arena.memory);
  const kern = TYPE_KERNELS[job.type], x4 = kern.x4;
  const { n, rows } = job, fileBytes = job.w.byteLength;
  const put = (bytes) => { const p = arena.alloc(bytes.byteLength); arena.u8(p, bytes.byteLength).set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)); return p; };
  const w = put(job.w);
  // in place, as src/model/weights.ts: the file bytes at the tail of the x4 region
  const x4Bytes = (rows / 4) * (n / 32) * x4.groupBlockBytes;
  if (!Number.isInteger(x4Bytes) || x4Bytes < fileBytes) throw new Error("bad x4 size " + x4Bytes);
  const w4 = arena.alloc(x4Bytes);
  arena.u8(w4, x4Bytes).fill(0xa5);
  arena.u8(w4 + x4Bytes - fileBytes, fileBytes).set(job.w);
  const scratch = arena.alloc(4 * (fileBytes / rows));
  k[x4.repack](w4, w4 + x4Bytes - fileBytes, rows, n, scratch);
  const mats = [];
  for (const { x, nTok } of job.xs) {
    const xp = put(x), xa = arena.alloc(actBytes(kern.act, n, nTok));
    if (kern.act === "q8_0") k.quantizeQ8_0(xp, n, nTok, xa); else k.quantizeQ8_K(xp, n, nTok, xa);
    for (const [r0, r1] of job.ranges) {
      const stride = rows + 3;
      const y4 = arena.alloc(nTok * stride * 4), yf = arena.alloc(nTok * stride * 4);
      arena.f32(y4, nTok * stride).fill(NaN); arena.f32(yf, nTok * stride).fill(NaN);
      k[x4.matmul](w4, xa, y4, n, nTok, stride, r0, r1);
      k[kern.matmul](w, xa, yf, n, nTok, stride, r0, r1);
      mats.push([arena.f32(y4, nTok * stride).slice(), arena.f32(yf, nTok * stride).slice()]);
    }
  }
  const deq = [];
  const dst = arena.alloc(n * 4);
  for (let r = 0; r < rows; r++) {
    arena.f32(dst, n).fill(NaN);
    k[x4.dequantRow](w4, r, n, dst);
    deq.push(arena.f32(dst, n).slice());
  }
  outputs.push({ mats, rows: deq });
}
writeFileSync(outFile, serialize({ relaxed: hasRelaxedSimd(), outputs }));
`;

let workDir = "";
function runChild(run: (typeof RUNS)[number], jobs: Job[]): ChildResult {
  const tag = run.name.replace(/\W+/g, "-");
  const task = join(workDir, `task-${tag}.bin`), out = join(workDir, `out-${tag}.bin`), script = join(workDir, "child.mjs");
  writeFileSync(script, CHILD_SRC);
  writeFileSync(task, serialize({ root: ROOT.href, variant: run.variant, jobs }));
  const r = spawnSync(process.execPath, [...run.flags, "--import", "tsx", script, task, out], { cwd: fileURLToPath(ROOT), encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`kernel child (${run.name}) failed: ${r.stderr || r.error}`);
  return deserialize(readFileSync(out)) as ChildResult;
}

// ---- test data --------------------------------------------------------------------------------------


interface Case { type: GgmlTypeName; n: number; w: Uint8Array; xs: { x: Float32Array; nTok: number }[] }
const CASES: Case[] = [];
{
  const rand = mulberry32(8675309);
  for (const type of TYPES) {
    for (const n of sizesOf(type)) {
      const w = randomMatrix(GGML[type], ROWS, n, rand);
      CASES.push({ type, n, w, xs: tokensOf(type).map((nTok) => ({ nTok, x: randomActivations(nTok, n, rand) })) });
    }
  }
}
const JOBS: Job[] = CASES.map((c) => ({ type: c.type, w: c.w, n: c.n, rows: ROWS, xs: c.xs, ranges: [...RANGES] }));

// ---- checks -----------------------------------------------------------------------------------------

const results = new Map<string, ChildResult | null>();
const worst = new Map<string, number>();

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "lfm2-kernels-x4-"));
  for (const run of RUNS) {
    try { results.set(run.name, runChild(run, JOBS)); } catch (e) {
      if (run.variant === "lfm2-relaxed") { console.warn(`relaxed SIMD unavailable here: ${(e as Error).message.slice(0, 300)}`); results.set(run.name, null); } else throw e;
    }
  }
}, 600_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  if (worst.size) console.log([...worst].map(([k, v]) => `${k.padEnd(40)} worst |Δ| / Σ|w·x| = ${v.toExponential(2)}`).join("\n"));
});

/** Checks one output against the references; returns the worst relative error. */
function check(c: Case, nTok: number, x: Float32Array, [r0, r1]: readonly [number, number], y4: Float32Array, yf: Float32Array, wd: Float32Array): number {
  const t = GGML[c.type], rb = (c.n / t.blockSize) * t.blockBytes, stride = ROWS + 3;
  let bad = 0;
  for (let tk = 0; tk < nTok; tk++) {
    const xt = x.subarray(tk * c.n, (tk + 1) * c.n);
    for (let r = 0; r < stride; r++) {
      const got = y4[tk * stride + r];
      const where = `${c.type} n=${c.n} nTok=${nTok} rows [${r0},${r1}) token ${tk} row ${r}`;
      if (r < r0 || r >= r1) { if (!Number.isNaN(got)) throw new Error(`${where}: written outside the range (${got})`); continue; }
      const ref = dotReference(t, c.w.subarray(r * rb, (r + 1) * rb), xt), file = yf[tk * stride + r];
      let mag = 0;
      for (let i = 0; i < c.n; i++) mag += Math.abs(wd[r * c.n + i] * xt[i]);
      const eRef = Math.abs(got - ref) / (mag + 1e-30), eFile = Math.abs(got - file) / (mag + 1e-30);
      if (!(eRef <= 1e-5) && Math.abs(got - ref) > 1e-30) throw new Error(`${where}: got ${got}, dotReference ${ref}, Σ|w·x| ${mag}`);
      if (!(eFile <= 1e-5) && Math.abs(got - file) > 1e-30) throw new Error(`${where}: got ${got}, file-layout kernel ${file}, Σ|w·x| ${mag}`);
      bad = Math.max(bad, Number.isFinite(eRef) ? eRef : 0, Number.isFinite(eFile) ? eFile : 0);
    }
  }
  return bad;
}

for (const run of RUNS) {
  describe(`${run.name} build (${run.variant}${run.flags.length ? " " + run.flags.join(" ") : ""})`, () => {
    for (const type of TYPES) {
      for (const nTok of tokensOf(type)) {
        it(`${type}x4 matmul, nTok=${nTok}: = file-layout kernel and dotReference (≤ 1e-5 of Σ|w·x|), rows ${RANGES.map(([a, b]) => `[${a},${b})`).join(" ")}`, (ctx) => {
          const res = results.get(run.name);
          if (!res) return ctx.skip();
          if (run.variant === "lfm2-relaxed") expect(res.relaxed).toBe(true);
          CASES.forEach((c, ci) => {
            if (c.type !== type) return;
            const wd = dequantizeTensor(GGML[type], c.w, ROWS * c.n);
            const xi = c.xs.findIndex((e) => e.nTok === nTok);
            RANGES.forEach((range, ri) => {
              const [y4, yf] = res.outputs[ci].mats[xi * RANGES.length + ri];
              const e = check(c, nTok, c.xs[xi].x, range, y4, yf, wd);
              const key = `${run.name} ${type}`;
              worst.set(key, Math.max(worst.get(key) ?? 0, e));
            });
          });
        });
      }
      it(`${type}x4 dequantRow: bit-exact with the TS dequantizer (value rows and random-bytes rows)`, (ctx) => {
        const res = results.get(run.name);
        if (!res) return ctx.skip();
        CASES.forEach((c, ci) => {
          if (c.type !== type) return;
          const want = dequantizeTensor(GGML[type], c.w, ROWS * c.n);
          res.outputs[ci].rows.forEach((got, r) => {
            for (let i = 0; i < c.n; i++) {
              if (!Object.is(got[i], want[r * c.n + i]) && got[i] !== want[r * c.n + i]) throw new Error(`${type} n=${c.n} row ${r} element ${i}: got ${got[i]}, want ${want[r * c.n + i]}`);
            }
          });
        });
      });
    }
  });
}

describe("all builds agree", () => {
  it("x4 outputs are bit-identical across plain/relaxed builds and tiers (integer sums reduced before any float math)", (ctx) => {
    const base = results.get(RUNS[0].name)!;
    let compared = 0;
    for (const run of RUNS.slice(1)) {
      const res = results.get(run.name);
      if (!res) continue;
      res.outputs.forEach((o, ci) => o.mats.forEach(([y4], mi) => {
        const ref = base.outputs[ci].mats[mi][0];
        for (let i = 0; i < ref.length; i++) {
          if (!Object.is(ref[i], y4[i])) throw new Error(`${run.name} vs ${RUNS[0].name}: ${CASES[ci].type} n=${CASES[ci].n} output ${mi} element ${i}: ${y4[i]} vs ${ref[i]}`);
        }
      }));
      compared++;
    }
    if (!compared) ctx.skip();
  });

  it("the x4 tables are consistent: TYPE_KERNELS rows name these kernels, sizes are whole bytes", () => {
    for (const type of TYPES) {
      const x4 = TYPE_KERNELS[type].x4!;
      expect(x4.matmul).toBe(`matmul${type}x4`);
      expect(x4.dequantRow).toBe(`dequantRow${type}x4`);
      expect(Number.isInteger(x4.groupBlockBytes * 8)).toBe(true);
      expect(x4.groupBlockBytes * 8).toBeGreaterThanOrEqual(4 * GGML[type].blockBytes); // a record holds ≥ the file's 4 rows
    }
  });
});
