// Weights across several WebAssembly memories: a model forced into 2+ shards computes bit-identical
// logits (prefill, decode, hidden states) to the same model in one memory, with and without threads.
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { tinyModelBytes } from "../helpers/models.js";

const prompt = [1, 17, 400, 1203, 99, 5, 1800, 64, 777, 12, 1500, 3];

async function run(bytes: Uint8Array, opts: { maxShardBytes?: number; threads?: number }) {
  const model = await loadModel(bytes, { threads: opts.threads ?? 1, maxShardBytes: opts.maxShardBytes, chunkSize: 5 });
  try {
    const s = model.createSession({ contextLength: 64 });
    const out: Float32Array[] = [await s.forward(prompt)];
    for (const t of [42, 1000, 7]) out.push(await s.forward([t]));
    return { info: model.info, logits: out };
  } finally { model.dispose(); }
}

describe("shards: weights in several WebAssembly memories", () => {
  const bytes = tinyModelBytes({ weightType: "Q4_0", seed: 7 });

  it("one shard by default; a small maxShardBytes spreads layers over several, logits bit-identical", async () => {
    const one = await run(bytes, {});
    expect(one.info.shards.length).toBe(1);
    const many = await run(bytes, { maxShardBytes: 900_000 });
    expect(many.info.shards.length).toBeGreaterThanOrEqual(3);
    // every layer placed exactly once, the head on the first shard, each shard within its budget
    expect(many.info.shards.flatMap((s) => s.layers).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(many.info.shards[0].head).toBe(true);
    for (const s of many.info.shards) expect(s.weightBytes).toBeLessThanOrEqual(900_000);
    for (let i = 0; i < one.logits.length; i++) expect(Buffer.compare(Buffer.from(many.logits[i].buffer), Buffer.from(one.logits[i].buffer))).toBe(0);
  });

  it("sharded with two threads per shard equals one shard single-threaded", async () => {
    const one = await run(bytes, {});
    const many = await run(bytes, { maxShardBytes: 900_000, threads: 2 });
    expect(many.info.threads).toBe(2);
    for (let i = 0; i < one.logits.length; i++) expect(Array.from(many.logits[i])).toEqual(Array.from(one.logits[i]));
  });

  it("a layer larger than maxShardBytes → MODEL_TOO_LARGE", async () => {
    await expect(loadModel(bytes, { threads: 1, maxShardBytes: 50_000 })).rejects.toMatchObject({ code: "MODEL_TOO_LARGE" });
  });
});
