// Retrieval encoders (issue 10): per-token vectors against llama.cpp's own `llama-embedding` (v0.5.0) on
// the same synthetic GGUF, causal and bidirectional, for several weight types and multilingual texts;
// pooled models; MaxSim and the index against plain reference computations.
// Tolerance: max |Δ| over all rows relative to the reference RMS (vectors are O(1)): F32 2e-3 (summation
// order through 6 random-weight layers, as the logit parity test allows), F16 0.01, Q8_0 / Q4_0 / Q4_K 0.1
// (quantised activations: a float difference upstream can flip an int8 rounding, which random weights amplify).
import { afterAll, describe, expect, it } from "vitest";
import { createIndex, loadModel, type Model } from "../src/index.js";
import { maxSim, type Embedding } from "../src/models/colbert/encoder.js";
import { llamaEmbeddingRows, llamaEmbeddingTool } from "./helpers/llama-embedding.js";
import { llama } from "./helpers/llama-ref.js";
import { tinyModelPath } from "./helpers/models.js";
import type { GgmlTypeName } from "../src/core/quant-types.js";

const tool = llamaEmbeddingTool();
const TOL: Record<string, number> = { F32: 2e-3, F16: 0.01, Q8_0: 0.1, Q4_0: 0.1, Q4_K: 0.1 };
const TEXTS = ["hello world", "Le château de Versailles est magnifique, n'est-ce pas ?", "東京は日本の首都です。",
  "Привет, как дела? Это тест многоязычного поиска.",
  "Late interaction retrieval scores every query token against every document token and sums the best matches."];
const results: string[] = [];
afterAll(() => console.log("embeddings vs llama-embedding (max |Δ| / rms):\n" + results.join("\n")));

const rmsOf = (rows: number[][]) => Math.sqrt(rows.flat().reduce((a, v) => a + v * v, 0) / rows.flat().length);

function compareRows(e: Embedding, ref: number[][]): number {
  expect(e.rows).toBe(ref.length);
  expect(e.dim).toBe(ref[0].length);
  let worst = 0;
  ref.forEach((row, r) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - e.vectors[r * e.dim + j])); }));
  return worst / rmsOf(ref);
}

describe.skipIf("reason" in tool)(`parity with llama-embedding ${"reason" in tool ? tool.reason : ""}`, () => {
  const bin = "path" in tool ? tool.path : "";
  for (const causal of [true, false]) {
    for (const weightType of Object.keys(TOL) as GgmlTypeName[]) {
      it(`${causal ? "causal" : "bidirectional"} ${weightType}: per-token vectors (BOS included)`, async () => {
        const path = tinyModelPath({ weightType, embedding: { outDim: 32, pooling: 0, causal, bias: !causal } });
        const model = await loadModel(path, { threads: 1 });
        let worst = 0;
        for (const text of TEXTS) {
          const e = await model.embed(text, { prefix: false, normalize: false });
          expect(e.tokens[0]).toBe(model.tokenizer!.bosId);
          worst = Math.max(worst, compareRows(e, llamaEmbeddingRows(bin, path, text)));
        }
        results.push(`  ${causal ? "causal" : "bidir "} ${weightType.padEnd(5)} ${worst.toExponential(2)} (tol ${TOL[weightType]})`);
        expect(worst).toBeLessThan(TOL[weightType]);
        model.dispose();
      });
    }
  }

  for (const [pooling, name] of [[1, "mean"], [2, "cls"], [3, "last"]] as const) {
    it(`pooled (${name}) bidirectional model: one vector through embed`, async () => {
      const path = tinyModelPath({ weightType: "F32", embedding: { outDim: 48, pooling, causal: false } });
      const model = await loadModel(path, { threads: 1 });
      const e = await model.embed(TEXTS[1]);
      expect(e.pooled).toBe(true);
      expect(e.rows).toBe(1);
      const worst = compareRows(e, llamaEmbeddingRows(bin, path, TEXTS[1], name));
      results.push(`  pooled ${name.padEnd(5)} F32 ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(TOL.F32);
      model.dispose();
    });
  }

  it("a causal model's vectors do not depend on the chunk size; a bidirectional one's first token sees later ones", async () => {
    const long = TEXTS.join(" ");
    const causalPath = tinyModelPath({ embedding: { outDim: 32, pooling: 0 } });
    const a = await (await loadModel(causalPath, { threads: 1, chunkSize: 7 })).embed(long);
    const b = await (await loadModel(causalPath, { threads: 1 })).embed(long);
    expect(a.rows).toBeGreaterThan(64);
    expect(Array.from(a.vectors)).toEqual(Array.from(b.vectors));
    const bidir = await loadModel(tinyModelPath({ embedding: { outDim: 32, pooling: 0, causal: false, bias: true } }), { threads: 1 });
    const x = await bidir.embed("hello world"), y = await bidir.embed("hello there");
    expect(x.vectors[0]).not.toBe(y.vectors[0]);
  });
});

describe("node-llama-cpp (second check, causal: the last token's vector)", () => {
  it("matches our last row", async () => {
    const path = tinyModelPath({ weightType: "F32", embedding: { outDim: 32, pooling: 0 } });
    const lm = await (await llama()).loadModel({ modelPath: path });
    const ctx = await lm.createEmbeddingContext({ contextSize: 512, threads: 1 });
    const model = await loadModel(path, { threads: 1 });
    for (const text of TEXTS.slice(0, 3)) {
      const ref = (await ctx.getEmbeddingFor(text)).vector;
      const e = await model.embed(text);
      expect(ref.length).toBe(e.dim);
      const last = e.vectors.subarray((e.rows - 1) * e.dim);
      const worst = Math.max(...ref.map((v, j) => Math.abs(v - last[j])));
      expect(worst).toBeLessThan(TOL.F32 * Math.sqrt(ref.reduce((a, v) => a + v * v, 0) / ref.length));
    }
    await ctx.dispose(); await lm.dispose();
  });
});

describe("retrieval API", () => {
  let model: Model;
  const docs = TEXTS.concat(["Les chats dorment beaucoup.", "Der schnelle braune Fuchs springt.", "C. elegans is a nematode."]);
  const plainMaxSim = (q: Embedding, d: Embedding) => {
    let s = 0;
    for (let i = 0; i < q.rows; i++) {
      const sims = Array.from({ length: d.rows }, (_, j) => Array.from({ length: q.dim }, (_, k) => q.vectors[i * q.dim + k] * d.vectors[j * d.dim + k]).reduce((a, b) => a + b, 0));
      s += Math.max(...sims);
    }
    return s;
  };

  it("queries and documents: prefixed, L2-normalised, skiplist dropped, lengths cut", async () => {
    model = await loadModel(tinyModelPath({ embedding: { outDim: 32, pooling: 0, causal: false, bias: true } }), { threads: 1 });
    const tok = model.tokenizer!;
    const q = await model.embedQuery("what is C. elegans?");
    expect(q.tokens).toEqual(tok.encode("[Q] what is C. elegans?"));
    for (let r = 0; r < q.rows; r++) expect(Math.hypot(...q.vectors.subarray(r * q.dim, (r + 1) * q.dim))).toBeCloseTo(1, 5);
    const [d] = await model.embedDocuments(["a, b. c!"]);
    const all = tok.encode("[D] a, b. c!");
    const punct = new Set([",", ".", "!"].map((p) => tok.tokenId(p)));
    const kept = tok.encode("[D] ").length;
    expect(d.tokens).toEqual(all.filter((t, i) => i < kept || !punct.has(t)));
    expect(d.rows).toBeLessThan(all.length);
    model.retrieval = { ...model.retrieval, queryLength: 4 };
    expect((await model.embedQuery("a long query with many words")).rows).toBe(4);
    model.retrieval = { ...model.retrieval, queryLength: 24, queryExpansion: true, maskTokenId: 0 };
    await expect(model.embedQuery("short")).rejects.toMatchObject({ code: "BAD_INPUT", message: expect.stringMatching(/attend_to_expansion_tokens/) });
    model.retrieval = { ...model.retrieval, attendToExpansionTokens: true };
    const expanded = await model.embedQuery("short");
    expect(expanded.rows).toBe(24);
    expect(expanded.tokens.slice(-3)).toEqual([0, 0, 0]);
    model.retrieval = { ...model.retrieval, queryLength: 32, queryExpansion: false };
  });

  it("MaxSim equals a plain reference computation", async () => {
    const q = await model.embedQuery("nematode worms");
    for (const d of await model.embedDocuments(docs)) {
      expect(model.maxSim(q, d)).toBeCloseTo(plainMaxSim(q, d), 4);
      expect(maxSim(q, d)).toBe(model.maxSim(q, d));
    }
  });

  it("the index returns brute-force top-k (f32 exactly; int8 within 0.02 per query token, same top-3 on clear margins); save/load round-trips", async () => {
    const f32 = await createIndex(model), i8 = await createIndex(model, { quantize: "int8" });
    expect(await f32.add(docs)).toEqual(docs.map((_, i) => i));
    await i8.add(docs);
    const embs = await model.embedDocuments(docs);
    for (const text of ["nematode worms", "capital of Japan", "cats sleeping"]) {
      const q = await model.embedQuery(text);
      const brute = embs.map((d, id) => ({ id, score: plainMaxSim(q, d) })).sort((a, b) => b.score - a.score || a.id - b.id);
      const hits = await f32.search(q, 3);
      expect(hits.map((h) => h.id)).toEqual(brute.slice(0, 3).map((h) => h.id));
      hits.forEach((h, i) => expect(h.score).toBeCloseTo(brute[i].score, 4));
      const qh = await i8.search(q, docs.length);
      for (const h of qh) expect(Math.abs(h.score - brute.find((b) => b.id === h.id)!.score)).toBeLessThan(0.02 * q.rows);
      const clear = brute.slice(0, 4).every((b, i) => i === 0 || brute[i - 1].score - b.score > 0.04 * q.rows);
      if (clear) expect(qh.slice(0, 3).map((h) => h.id)).toEqual(brute.slice(0, 3).map((h) => h.id));
      const loaded = (await createIndex(model, { quantize: "int8" })).load(i8.save());
      expect(await loaded.search(q, 3)).toEqual(await i8.search(q, 3));
      const loadedF = (await createIndex(model)).load(f32.save());
      expect(await loadedF.search(q, 3)).toEqual(hits);
    }
    expect(i8.bytes).toBeLessThan(f32.bytes / 3);
    expect(() => f32.load(i8.save())).toThrow(/quantisation/);
    expect(() => f32.load(new Uint8Array(30))).toThrow(/magic/);
  });

  it("text-generation models are not encoders; bad inputs are typed errors", async () => {
    const lm = await loadModel(tinyModelPath(), { threads: 1 });
    expect(lm.info.embedding).toBeUndefined();
    expect(lm.isEncoder).toBe(false);
    for (const call of [() => lm.embed("hi"), () => lm.embed(["hi"]), () => lm.embedQuery("hi"), () => lm.embedDocuments(["hi"])]) {
      await expect(call()).rejects.toMatchObject({ code: "BAD_INPUT", message: expect.stringMatching(/is a text-generation model, not an embedding model/) });
    }
    expect(model.info.embedding).toEqual({ dim: 32, pooling: "none", causal: false });
    const pooled = await loadModel(tinyModelPath({ embedding: { outDim: 48, pooling: 1 } }), { threads: 1 });
    expect(pooled.info.embedding).toEqual({ dim: 48, pooling: "mean", causal: true });
    const [v] = await pooled.embed(["hello"]);
    expect(v).toBeInstanceOf(Float32Array);
    expect(v.length).toBe(48);
    await expect(model.embed(42 as any)).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect(model.embed(["a"])).rejects.toMatchObject({ code: "BAD_INPUT" }); // per-token model: no OpenAI vectors
    await expect(model.embedDocuments("x" as any)).rejects.toMatchObject({ code: "BAD_INPUT" });
    await expect((await createIndex(model)).search("q", 0)).rejects.toMatchObject({ code: "BAD_INPUT" });
  });
});
