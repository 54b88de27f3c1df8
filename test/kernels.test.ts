// WASM matmul kernels and row dequantizers for every weight type, in both the plain-SIMD and the
// relaxed-SIMD build, against the TS references (dotReference: llama.cpp's semantics; the TS
// dequantizers), then end-to-end logits of synthetic models against native llama.cpp.
//
// The kernels run in a child node process per variant. Node 20 validates the relaxed build only with
// --experimental-wasm-relaxed-simd, and its baseline tier (Liftoff) then miscomputes
// i32x4.relaxed_dot_i8x16_i7x16_add_s (doubled sums; hasRelaxedSimd() probes for that and says no), so
// there the relaxed child also gets --no-liftoff: the relaxed build is checked in an engine that runs
// relaxed SIMD correctly, as the runtime would only pick it in one. The child instantiates the built module
// exactly as the runtime does (compileVariant / instantiateKernels / Arena), prepares activations with the
// module's own quantizers (as bindings/ops.ts does), and returns the raw outputs; every comparison
// happens here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deserialize, serialize } from "node:v8";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TYPE_KERNELS } from "../src/core/quant-types.js";
import { hasRelaxedSimd } from "../bindings/wasm.js";
import { dotReference } from "../src/formats/activation-quant.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { GGML, type GgmlType, type GgmlTypeName } from "../src/core/quant-types.js";
import { dequantizeTensor } from "../src/formats/quantize.js";
import { loadModel } from "../src/index.js";
import { randomActivations, randomMatrix } from "./helpers/kernel-inputs.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
import { argmax, llamaRef, margin, maxAbsDiff } from "./helpers/llama-ref.js";

const ROOT = new URL("..", import.meta.url);
const ALL_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"] as const;
const NEW_TYPES = ["Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"] as const;
const TOKENS = [1, 3, 17];
/** Matrix rows R, computed range [r0, r1): full groups, tails of 1..3, r0 > 0, fewer than four rows. */
const RANGES = [{ rows: 8, r0: 0, r1: 8 }, { rows: 13, r0: 0, r1: 13 }, { rows: 13, r0: 3, r1: 10 }, { rows: 6, r0: 1, r1: 3 }];
const VARIANTS = ["lfm2-simd", "lfm2-relaxed"] as const;
type Variant = (typeof VARIANTS)[number];

// ---- the child process ----------------------------------------------------------------------------

interface MatJob { kind: "matmul"; type: string; w: Uint8Array; x: Float32Array; n: number; nTok: number; yStride: number; r0: number; r1: number }
interface DeqJob { kind: "dequant"; type: string; row: Uint8Array; n: number }
interface ModelJob { kind: "model"; path: string; prompts: number[][] }
type Job = MatJob | DeqJob | ModelJob;
interface ChildResult { variant: string; relaxed: boolean; outputs: (Float32Array | Float32Array[])[] }

const CHILD_SRC = `
import { readFileSync, writeFileSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
const [taskFile, outFile] = process.argv.slice(2);
const { root, variant, jobs } = deserialize(readFileSync(taskFile));
const { compileVariant, instantiateKernels, hasRelaxedSimd } = await import(new URL("bindings/wasm.ts", root).href);
const { Arena, createMemory } = await import(new URL("bindings/arena.ts", root).href);
const { TYPE_KERNELS, actBytes } = await import(new URL("src/core/quant-types.ts", root).href);
const { loadModel } = await import(new URL("src/index.ts", root).href);
const relaxed = hasRelaxedSimd();
const module = await compileVariant(variant);
const outputs = [];
for (const job of jobs) {
  if (job.kind === "model") {
    const model = await loadModel(job.path, { disableRelaxedSimd: variant !== "lfm2-relaxed", threads: 1 });
    if (!model.info.wasmVariant.startsWith(variant)) throw new Error("loadModel chose " + model.info.wasmVariant);
    const res = [];
    for (const p of job.prompts) res.push(await model.createSession({ contextLength: 64 }).forward(p));
    model.dispose?.();
    outputs.push(res);
    continue;
  }
  const arena = new Arena(createMemory(1 << 22, false));
  const k = await instantiateKernels(module, arena.memory);
  const kern = TYPE_KERNELS[job.type];
  const put = (bytes) => { const p = arena.alloc(bytes.byteLength); arena.u8(p, bytes.byteLength).set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)); return p; };
  if (job.kind === "dequant") {
    const src = put(job.row), dst = arena.alloc(job.n * 4);
    arena.f32(dst, job.n).fill(NaN);
    k[kern.dequantRow](src, dst, job.n);
    outputs.push(arena.f32(dst, job.n).slice());
    continue;
  }
  const { n, nTok } = job;
  const w = put(job.w), xp = put(job.x);
  let x = xp;
  if (kern.act !== "f32") {
    x = arena.alloc(actBytes(kern.act, n, nTok));
    if (kern.act === "q8_0") k.quantizeQ8_0(xp, n, nTok, x);
    else if (kern.act === "q8_K") k.quantizeQ8_K(xp, n, nTok, x);
    else { arena.f32(x, n * nTok).set(job.x); (kern.act === "f16" ? k.roundF16 : k.roundBf16)(x, n * nTok); }
  }
  const y = arena.alloc(nTok * job.yStride * 4);
  arena.f32(y, nTok * job.yStride).fill(NaN);
  k[kern.matmul](w, x, y, n, nTok, job.yStride, job.r0, job.r1);
  outputs.push(arena.f32(y, nTok * job.yStride).slice());
}
writeFileSync(outFile, serialize({ variant, relaxed, outputs }));
`;

let workDir = "";
function runChild(variant: Variant, jobs: Job[]): ChildResult {
  const task = join(workDir, `task-${variant}.bin`), out = join(workDir, `out-${variant}.bin`), script = join(workDir, "child.mjs");
  writeFileSync(script, CHILD_SRC);
  writeFileSync(task, serialize({ root: ROOT.href, variant, jobs }));
  const flags = variant === "lfm2-relaxed" && !hasRelaxedSimd() ? ["--experimental-wasm-relaxed-simd", "--no-liftoff"] : [];
  const r = spawnSync(process.execPath, [...flags, "--import", "tsx", script, task, out], { cwd: fileURLToPath(ROOT), encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`kernel child (${variant}) failed: ${r.stderr || r.error}`);
  return deserialize(readFileSync(out)) as ChildResult;
}

// ---- test data --------------------------------------------------------------------------------------


interface MatCase { type: string; nTok: number; n: number; range: (typeof RANGES)[number]; w: Uint8Array; x: Float32Array; job: number }
const MAT_CASES: MatCase[] = [];
const DEQ_CASES: { type: string; row: Uint8Array; n: number; job: number }[] = [];
const JOBS: Job[] = [];

{
  const rand = mulberry32(20240611);
  for (const name of ALL_TYPES) {
    const t = GGML[name];
    const sizes = t.blockSize === 256 ? [512] : t.blockSize === 32 ? [96, 512] : [64, 512];
    for (const n of sizes) {
      for (const nTok of TOKENS) {
        for (const range of RANGES) {
          const w = randomMatrix(t, range.rows, n, rand), x = randomActivations(nTok, n, rand);
          MAT_CASES.push({ type: name, nTok, n, range, w, x, job: JOBS.length });
          JOBS.push({ kind: "matmul", type: name, w, x, n, nTok, yStride: range.rows + 3, r0: range.r0, r1: range.r1 });
        }
      }
    }
    if (TYPE_KERNELS[name].dequantRow) {
      const n = 1024;
      for (let k = 0; k < 4; k++) {
        const m = randomMatrix(t, 2, n, rand);
        const rb = m.length / 2, row = m.slice((k & 1) * rb, ((k & 1) + 1) * rb); // value row, then random-bytes row
        DEQ_CASES.push({ type: name, row, n, job: JOBS.length });
        JOBS.push({ kind: "dequant", type: name, row, n });
      }
    }
  }
}

// ---- kernel checks ---------------------------------------------------------------------------------

const results = new Map<Variant, ChildResult | null>();

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "lfm2-kernels-"));
  for (const v of VARIANTS) {
    try { results.set(v, runChild(v, JOBS)); } catch (e) {
      if (v === "lfm2-relaxed") { console.warn(`relaxed SIMD unavailable here: ${(e as Error).message.slice(0, 300)}`); results.set(v, null); } else throw e;
    }
  }
}, 600_000);

afterAll(() => { if (workDir) rmSync(workDir, { recursive: true, force: true }); });

/** max over rows/tokens of |y − ref| / Σ|w·x| (w dequantized, x as given), after checking y's layout. */
function checkMatmul(c: MatCase, y: Float32Array): number {
  const t = GGML[c.type as GgmlTypeName], { rows, r0, r1 } = c.range, stride = rows + 3;
  const rb = (c.n / t.blockSize) * t.blockBytes;
  const wd = dequantizeTensor(t, c.w, rows * c.n);
  let worst = 0;
  for (let tk = 0; tk < c.nTok; tk++) {
    const x = c.x.subarray(tk * c.n, (tk + 1) * c.n);
    for (let r = 0; r < stride; r++) {
      const got = y[tk * stride + r];
      if (r < r0 || r >= r1) { expect(Number.isNaN(got), `${c.type} wrote row ${r} outside [${r0}, ${r1})`).toBe(true); continue; }
      const ref = dotReference(t, c.w.subarray(r * rb, (r + 1) * rb), x);
      let mag = 0;
      for (let i = 0; i < c.n; i++) mag += Math.abs(wd[r * c.n + i] * x[i]);
      const rel = Math.abs(got - ref) / (mag + 1e-30);
      if (!(rel <= 1e-5) && Math.abs(got - ref) > 1e-30) {
        throw new Error(`${c.type} n=${c.n} nTok=${c.nTok} rows [${r0},${r1}) token ${tk} row ${r}: got ${got}, reference ${ref}, Σ|w·x| ${mag}`);
      }
      worst = Math.max(worst, Math.abs(got - ref) / (mag + 1e-30));
    }
  }
  return worst;
}

const worstRel = new Map<string, number>();

for (const variant of VARIANTS) {
  describe(`${variant}: matmul vs dotReference`, () => {
    for (const name of ALL_TYPES) {
      for (const nTok of TOKENS) {
        it(`${name}, nTok=${nTok}, row ranges ${RANGES.map((r) => `[${r.r0},${r.r1})/${r.rows}`).join(" ")}`, (ctx) => {
          const res = results.get(variant);
          if (!res) return ctx.skip();
          if (variant === "lfm2-relaxed") expect(res.relaxed).toBe(true);
          for (const c of MAT_CASES.filter((m) => m.type === name && m.nTok === nTok)) {
            const rel = checkMatmul(c, res.outputs[c.job] as Float32Array);
            const key = `${variant} ${name}`;
            worstRel.set(key, Math.max(worstRel.get(key) ?? 0, rel));
          }
        });
      }
    }
  });

  describe(`${variant}: dequantRow vs the TS dequantizer`, () => {
    for (const name of ALL_TYPES) {
      if (!TYPE_KERNELS[name].dequantRow) continue;
      it(`${name}: bit-exact (value rows and random-bytes rows)`, (ctx) => {
        const res = results.get(variant);
        if (!res) return ctx.skip();
        for (const c of DEQ_CASES.filter((d) => d.type === name)) {
          const got = res.outputs[c.job] as Float32Array;
          const want = dequantizeTensor(GGML[name], c.row, c.n);
          for (let i = 0; i < c.n; i++) if (got[i] !== want[i]) throw new Error(`${name} element ${i}: got ${got[i]}, want ${want[i]}`);
        }
      });
    }
  });
}

describe("plain and relaxed builds agree", () => {
  it("bit-identical outputs for Q4_1 … Q6_K (integer sums reduced before any float math)", (ctx) => {
    const a = results.get("lfm2-simd"), b = results.get("lfm2-relaxed");
    if (!a || !b) return ctx.skip();
    for (const c of MAT_CASES) {
      if (!(NEW_TYPES as readonly string[]).includes(c.type)) continue; // the others: each build checked against the reference
      const ya = a.outputs[c.job] as Float32Array, yb = b.outputs[c.job] as Float32Array;
      for (let i = 0; i < ya.length; i++) {
        if (!Object.is(ya[i], yb[i]) && !(Number.isNaN(ya[i]) && Number.isNaN(yb[i]))) throw new Error(`${c.type} differs at ${i}: ${ya[i]} vs ${yb[i]}`);
      }
    }
  });

  afterAll(() => {
    const lines = [...worstRel].map(([k, v]) => `${k.padEnd(20)} worst |y − ref| / Σ|w·x| = ${v.toExponential(2)}`);
    if (lines.length) console.log(lines.join("\n"));
  });
});

// ---- end to end against llama.cpp ---------------------------------------------------------------------

describe("end to end: synthetic tiny models vs node-llama-cpp logits", () => {
  const PROMPTS = [[1, 300, 301, 512, 1000], [1, 5, 77, 1999, 42, 42, 9], [1, 1234, 640, 17, 88, 99, 111, 222, 333, 444, 555]];
  const E2E = ["F32", ...NEW_TYPES] as const;
  const SEED = 4242;
  let dir = "";
  const relaxedLogits = new Map<string, Float32Array[]>();
  const report: string[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lfm2-kernels-e2e-"));
    for (const name of E2E) writeFileSync(join(dir, `${name}.gguf`), concatChunks(syntheticGguf({ shape: "tiny", weightType: name, seed: SEED })));
    if (results.get("lfm2-relaxed")) {
      const jobs: Job[] = E2E.map((name) => ({ kind: "model", path: join(dir, `${name}.gguf`), prompts: PROMPTS }));
      const res = runChild("lfm2-relaxed", jobs);
      E2E.forEach((name, i) => relaxedLogits.set(name, res.outputs[i] as Float32Array[]));
    }
  }, 600_000);
  afterAll(() => {
    if (report.length) console.log(report.join("\n"));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of E2E) {
    it(`${name}: argmax agrees (or llama.cpp's top-2 margin < 0.3), max |Δlogit| < ${name === "F32" ? "1e-3" : "0.3"}`, async () => {
      const path = join(dir, `${name}.gguf`);
      const ref = await llamaRef(path);
      const model = await loadModel(path, { threads: 1 } as Parameters<typeof loadModel>[1]);
      const tol = name === "F32" ? 1e-3 : 0.3;
      try {
        for (let p = 0; p < PROMPTS.length; p++) {
          const want = await ref.logits(PROMPTS[p]);
          const runs: [string, Float32Array][] = [[model.info.wasmVariant, await model.createSession({ contextLength: 64 }).forward(PROMPTS[p])]];
          const rl = relaxedLogits.get(name);
          if (rl && !model.info.wasmVariant.startsWith("lfm2-relaxed")) runs.push(["lfm2-relaxed", rl[p]]);
          for (const [v, got] of runs) {
            const diff = maxAbsDiff(got, want), m = margin(want), same = argmax(got) === argmax(want);
            report.push(`${name.padEnd(5)} ${v.padEnd(13)} prompt ${p}: max|Δ| ${diff.toFixed(4)}, argmax ${same ? "equal" : "DIFFERS"}, llama.cpp margin ${m.toFixed(3)}`);
            expect(diff, `${name} ${v} prompt ${p}`).toBeLessThan(tol);
            if (!same) expect(m, `${name} ${v} prompt ${p}: argmax differs with margin ${m}`).toBeLessThan(0.3);
          }
        }
      } finally {
        (model as { dispose?: () => void }).dispose?.();
        await ref.dispose();
      }
    }, 120_000);
  }
});

