// The index's MaxSim kernels (assembly/maxsim.ts) against JavaScript emulations of the exact arithmetic
// they promise: f32 (four-lane sums, then lanes (0+2)+(1+3), the tail, then Σ of row maxima, all in f32)
// and int8 (rows rounded to i8 with an f32 scale, query rows to i16, exact integer dots, then scaled in f32).
// Scores must be bit-identical to the emulation, close to a float64 reference, and give brute force's
// top-k. Widths not a multiple of 4 / 16 and query blocks not a multiple of 4 exercise every tail; the
// kernels also run in child processes under the baseline tier only (Liftoff) and the optimizing tier only.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deserialize, serialize } from "node:v8";
import { describe, expect, it } from "vitest";
import { createIndex } from "../src/index.js";
import type { Embedding } from "../src/models/colbert/encoder.js";
import { mulberry32 } from "../src/models/synthetic.js";

const f = Math.fround;
const emb = (vectors: Float32Array, rows: number, dim: number): Embedding => ({ tokens: [], dim, vectors, rows, pooled: false });

function randomRows(rand: () => number, rows: number, dim: number): Float32Array {
  const v = new Float32Array(rows * dim);
  for (let i = 0; i < v.length; i++) v[i] = rand() * 2 - 1;
  return v;
}

/** Float64 MaxSim (the plain definition). */
function maxSim64(q: Embedding, d: Embedding): number {
  if (d.rows === 0) return 0;
  let total = 0;
  for (let i = 0; i < q.rows; i++) {
    let best = -Infinity;
    for (let r = 0; r < d.rows; r++) {
      let s = 0;
      for (let j = 0; j < q.dim; j++) s += q.vectors[i * q.dim + j] * d.vectors[r * d.dim + j];
      best = Math.max(best, s);
    }
    total += best;
  }
  return total;
}

/** sumBest: Σ of row maxima in f32, 0 for an empty document. */
function sumRows(rowDots: (i: number, r: number) => number, nq: number, rows: number): number {
  if (rows === 0) return 0;
  let total = 0;
  for (let i = 0; i < nq; i++) {
    let best = -Infinity;
    for (let r = 0; r < rows; r++) { const s = rowDots(i, r); if (s > best) best = s; }
    total = f(total + best);
  }
  return total;
}

function emulateF32(q: Embedding, d: Embedding): number {
  const D = q.dim, dim4 = D & ~3;
  return sumRows((i, r) => {
    const lanes = [0, 0, 0, 0];
    for (let j = 0; j < dim4; j++) lanes[j & 3] = f(lanes[j & 3] + f(q.vectors[i * D + j] * d.vectors[r * D + j]));
    let s = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
    for (let j = dim4; j < D; j++) s = f(s + f(q.vectors[i * D + j] * d.vectors[r * D + j]));
    return s;
  }, q.rows, d.rows);
}

/** Round each row to integers of at most `top` in magnitude: (values, f32 scale per row). */
function quantRows(v: Float32Array, rows: number, dim: number, top: number): { ints: number[]; scales: number[] } {
  const ints: number[] = [], scales: number[] = [];
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < dim; j++) m = Math.max(m, Math.abs(v[r * dim + j]));
    const inv = m > 0 ? top / m : 0;
    scales.push(f(m / top));
    for (let j = 0; j < dim; j++) ints.push(Math.round(v[r * dim + j] * inv));
  }
  return { ints, scales };
}

function emulateI8(q: Embedding, d: Embedding): number {
  const D = q.dim, qMax = Math.min(32767, Math.floor((2 ** 31 - 1) / (127 * D)));
  const qq = quantRows(q.vectors, q.rows, D, qMax), dq = quantRows(d.vectors, d.rows, D, 127);
  let largest = 0;
  const score = sumRows((i, r) => {
    let dot = 0;
    for (let j = 0; j < D; j++) dot += qq.ints[i * D + j] * dq.ints[r * D + j];
    largest = Math.max(largest, Math.abs(dot));
    return f(f(f(dot) * dq.scales[r]) * qq.scales[i]);
  }, q.rows, d.rows);
  expect(largest).toBeLessThan(2 ** 31); // the kernel's i32 sums are exact
  return score;
}

interface Case { dim: number; nq: number; docs: Embedding[]; q: Embedding }

function makeCase(seed: number, dim: number, nq: number, nDocs: number): Case {
  const rand = mulberry32(seed);
  const docs = Array.from({ length: nDocs }, (_, i) => {
    const rows = i === 3 ? 0 : i === 4 ? 1 : 1 + Math.floor(rand() * 40);
    return emb(randomRows(rand, rows, dim), rows, dim);
  });
  return { dim, nq, docs, q: emb(randomRows(rand, nq, dim), nq, dim) };
}

const CASES: [number, number][] = [[128, 32], [128, 5], [7, 3], [131, 9], [16, 1], [1024, 4]];

describe("MaxSim kernels", () => {
  for (const quantize of ["none", "int8"] as const) {
    const emulate = quantize === "none" ? emulateF32 : emulateI8;
    for (const [dim, nq] of CASES) {
      it(`${quantize}: width ${dim}, ${nq} query rows: bit-identical to the emulation, brute force's top-k`, async () => {
        const c = makeCase(dim * 31 + nq, dim, nq, 60);
        const index = await createIndex(null, { quantize });
        index.addEmbeddings(c.docs);
        const scores = await index.scores(c.q);
        expect(Array.from(scores)).toEqual(c.docs.map((d) => emulate(c.q, d)));
        expect(scores[3]).toBe(0); // the empty document
        const exact = c.docs.map((d) => maxSim64(c.q, d));
        // int8: both sides rounded to 1/254 of each row's largest value
        const tol = quantize === "none" ? 1e-5 : 0.02;
        scores.forEach((s, d) => expect(Math.abs(s - exact[d])).toBeLessThan(tol * nq * Math.sqrt(dim)));
        const brute = exact.map((score, id) => ({ id, score })).sort((a, b) => b.score - a.score || a.id - b.id);
        const hits = await index.search(c.q, 5);
        if (quantize === "none") expect(hits.map((h) => h.id)).toEqual(brute.slice(0, 5).map((h) => h.id));
        else {
          // int8 keeps the order wherever brute force's margin exceeds the rounding
          const ranked = Array.from(scores, (score, id) => ({ id, score })).sort((a, b) => b.score - a.score || a.id - b.id);
          expect(hits).toEqual(ranked.slice(0, 5));
          for (let i = 1; i < 5; i++) if (brute[i - 1].score - brute[i].score > 2 * tol * nq * Math.sqrt(dim)) expect(hits[i - 1].id).toBe(brute[i - 1].id);
        }
        // the JavaScript reference reads the same stored rows
        for (let d = 0; d < 6; d++) expect(Math.abs(index.score(c.q, d) - scores[d])).toBeLessThan(1e-3 * nq);
      });
    }
  }

  it("int8 sums never overflow i32 however wide the rows: the query's i16 range shrinks with the width", async () => {
    const dim = 20000, ones = new Float32Array(dim).fill(1);
    const index = await createIndex(null, { quantize: "int8" });
    index.addEmbeddings([emb(ones, 1, dim), emb(ones.map((_, j) => (j % 2 ? -1 : 1)), 1, dim)]);
    const q = emb(ones, 1, dim);
    const scores = await index.scores(q);
    expect(scores[0]).toBeCloseTo(dim, 0); // 127 · qMax · 20000 would wrap an i32 at qMax = 32767
    expect(scores[1]).toBeCloseTo(0, 5);
  });

  it("growth moves rows, scales and offsets intact; ties keep the earlier document; save/load round-trips", async () => {
    for (const quantize of ["none", "int8"] as const) {
      const c = makeCase(5, 128, 8, 150); // ~3000 rows: past the first 1024-row capacity three times
      const index = await createIndex(null, { quantize });
      for (const d of c.docs) index.addEmbeddings([d]);
      index.addEmbeddings([c.docs[7]]); // a copy of document 7
      const scores = await index.scores(c.q);
      const emulate = quantize === "none" ? emulateF32 : emulateI8;
      expect(Array.from(scores)).toEqual([...c.docs, c.docs[7]].map((d) => emulate(c.q, d)));
      const hits = await index.search(c.q, 151);
      const seven = hits.findIndex((h) => h.id === 7);
      expect(hits[seven + 1]).toEqual({ id: 150, score: hits[seven].score });
      const copy = (await createIndex(null, { quantize })).load(index.save());
      expect(await copy.scores(c.q)).toEqual(scores);
      expect(copy.save()).toEqual(index.save());
    }
  });

  it("bad queries are typed errors", async () => {
    const index = await createIndex(null);
    expect(await index.scores(emb(new Float32Array(4), 1, 4))).toEqual(new Float32Array(0));
    index.addEmbeddings([emb(new Float32Array(8), 2, 4)]);
    await expect(index.scores(emb(new Float32Array(8), 1, 8))).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(index.scores(emb(new Float32Array(0), 0, 4))).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(index.scores(emb(new Float32Array(3), 1, 4))).rejects.toMatchObject({ code: "BAD_INPUT" });
    expect(() => index.addEmbeddings([emb(new Float32Array(4), 2, 4)])).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
  });
});

// ---- the same kernels in one tier at a time ---------------------------------------------------------

const ROOT = new URL("..", import.meta.url);
const CHILD_SRC = `
import { readFileSync, writeFileSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
const [taskFile, outFile] = process.argv.slice(2);
const { root, cases } = deserialize(readFileSync(taskFile));
const { createIndex } = await import(new URL("src/models/colbert/index.ts", root).href);
const out = [];
for (const c of cases) {
  for (const quantize of ["none", "int8"]) {
    const index = await createIndex(null, { quantize, disableRelaxedSimd: true });
    index.addEmbeddings(c.docs);
    out.push(Array.from(await index.scores(c.q)));
  }
}
writeFileSync(outFile, serialize(out));
`;

describe.each([
  { name: "baseline tier only (Liftoff)", flags: ["--liftoff", "--no-wasm-tier-up"] },
  { name: "optimizing tier only", flags: ["--no-liftoff"] },
])("MaxSim kernels, $name", ({ flags }) => {
  it("scores equal the emulations", () => {
    const cases = [makeCase(11, 128, 32, 20), makeCase(12, 131, 7, 20)];
    const dir = mkdtempSync(join(tmpdir(), "maxsim-"));
    try {
      const script = join(dir, "child.mjs"), task = join(dir, "task"), out = join(dir, "out");
      writeFileSync(script, CHILD_SRC);
      writeFileSync(task, serialize({ root: ROOT.href, cases }));
      const r = spawnSync(process.execPath, [...flags, "--import", "tsx", script, task, out], { cwd: fileURLToPath(ROOT), encoding: "utf8", timeout: 300_000 });
      expect(r.stderr).toBe("");
      const got = deserialize(readFileSync(out)) as number[][];
      const want = cases.flatMap((c) => [c.docs.map((d) => emulateF32(c.q, d)), c.docs.map((d) => emulateI8(c.q, d))]);
      expect(got).toEqual(want);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
