// LFM2-MoE engine behaviour: chunked prefill = token-by-token, sharded = one memory (bit-identical),
// only the chosen experts' rows are read, and malformed MoE files end in typed errors.
import { describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../src/index.js";
import { encodeGguf, concatChunks, type GgufWriteValue } from "../../src/formats/gguf-writer.js";
import { quantizeTensor } from "../../src/formats/quantize.js";
import { syntheticMetadata, syntheticWeights, type SyntheticOptions, type SyntheticTensor } from "../../src/models/synthetic.js";
import type { Matrix } from "../../src/core/quant-types.js";
import { rowSlice, type MoeFfnWeights } from "../../src/graph/blocks.js";

const MOE = { nExperts: 8, nUsed: 2, expertFfDim: 128, leadingDense: 2 };
const OPTS: SyntheticOptions = { weightType: "Q4_0", moe: MOE, seed: 5 };
const prompt = Array.from({ length: 50 }, (_, i) => 300 + ((i * 53) % 1700));

/** A synthetic MoE GGUF, optionally with its metadata or tensor list altered first. */
function moeBytes(opts: SyntheticOptions = OPTS,
  edit: (meta: Record<string, GgufWriteValue>, tensors: SyntheticTensor[]) => SyntheticTensor[] | void = () => {}): Uint8Array {
  const { tensors, shape } = syntheticWeights(opts);
  const meta = syntheticMetadata(shape, opts);
  const list = edit(meta, tensors) ?? tensors;
  return concatChunks(encodeGguf(meta, list.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: quantizeTensor(t.type, t.values, t.shape[0]) }))));
}
const bytes = moeBytes();

async function logitsOf(model: Model, steps: number[][]): Promise<Float32Array[]> {
  const s = model.createSession({ contextLength: 128 });
  const out: Float32Array[] = [];
  for (const t of steps) out.push((await s.forward(t)).slice());
  return out;
}
const same = (a: Float32Array, b: Float32Array) => Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)) === 0;

describe("LFM2-MoE forward", () => {
  it("a prompt in 16-token chunks gives bit-identical logits to feeding it one token at a time", async () => {
    const chunked = await loadModel(bytes, { threads: 1, chunkSize: 16 });
    const single = await loadModel(bytes, { threads: 1, chunkSize: 1 });
    try {
      const a = await logitsOf(chunked, [prompt, [42], [901]]);
      const sSingle = single.createSession({ contextLength: 128 });
      let last!: Float32Array;
      for (const t of prompt) last = (await sSingle.forward([t])).slice();
      expect(same(a[0], last)).toBe(true);
      expect(same(a[1], (await sSingle.forward([42])).slice())).toBe(true);
      expect(same(a[2], (await sSingle.forward([901])).slice())).toBe(true);
    } finally { chunked.dispose(); single.dispose(); }
  }, 60_000);

  it("weights spread over several shards give bit-identical logits to one shard (1 and 2 threads)", async () => {
    const one = await loadModel(bytes, { threads: 1, chunkSize: 16 });
    const ref = await logitsOf(one, [prompt, [42], [7]]);
    one.dispose();
    for (const threads of [1, 2]) {
      const many = await loadModel(bytes, { threads, chunkSize: 16, maxShardBytes: 700_000 });
      try {
        expect(many.info.shards.length).toBeGreaterThanOrEqual(3);
        const got = await logitsOf(many, [prompt, [42], [7]]);
        for (let i = 0; i < ref.length; i++) expect(same(got[i], ref[i]), `threads ${threads} step ${i}`).toBe(true);
      } finally { many.dispose(); }
    }
  }, 60_000);
});

describe("LFM2-MoE reads only the chosen experts", () => {
  /** The expert (layer, e) a matmul's weight pointer falls in, if any. */
  function expertsOf(model: Model) {
    const layers = (model as any).fwd.w.layers as { ffn: MoeFfnWeights | { kind: "dense" } }[];
    const moe = layers.map((L, l) => ({ l, f: L.ffn })).filter((x): x is { l: number; f: MoeFfnWeights } => x.f.kind === "moe");
    // bytes of one expert as the engine addresses it (x4 layouts store rows at their own width)
    const span = (m: Matrix) => { const rows = m.nOut / MOE.nExperts; return rowSlice(m, rows, rows).ptr - m.ptr; };
    return {
      moe,
      span,
      find(ptr: number): [number, number] | undefined {
        for (const { l, f } of moe) for (const m of [f.gate, f.up, f.down]) {
          const e = Math.floor((ptr - m.ptr) / span(m));
          if (ptr >= m.ptr && e < MOE.nExperts) return [l, e];
        }
        return undefined;
      },
    };
  }

  it("decode multiplies by exactly nUsed experts per MoE layer; NaN in every other expert leaves the logits bit-identical", async () => {
    const model = await loadModel(bytes, { threads: 1 });
    try {
      const ex = expertsOf(model);
      const ops = (model as any).shards[0].ops;
      const used = new Set<string>();
      let perStep: string[] = [];
      const matmul = ops.matmul.bind(ops);
      ops.matmul = (m: Matrix, a: any, y: number) => {
        const hit = ex.find(m.ptr);
        if (hit) { used.add(hit.join(":")); perStep.push(hit.join(":")); }
        return matmul(m, a, y);
      };
      const steps = [prompt.slice(0, 6), [42], [901], [13]];
      const s = model.createSession({ contextLength: 64 });
      const base: Float32Array[] = [];
      for (const t of steps) {
        perStep = [];
        base.push((await s.forward(t)).slice());
        if (t.length === 1) { // one token: gate, up, down of nUsed distinct experts in each MoE layer
          expect(perStep.length).toBe(3 * MOE.nUsed * ex.moe.length);
          expect(new Set(perStep).size).toBe(MOE.nUsed * ex.moe.length);
        }
      }
      const unused = ex.moe.flatMap(({ l }) => Array.from({ length: MOE.nExperts }, (_, e) => [l, e]).filter(([, e]) => !used.has(`${l}:${e}`)));
      expect(unused.length).toBeGreaterThan(ex.moe.length); // the prompt leaves several experts idle per layer
      const arena = (model as any).shards[0].arena;
      const poison = (l: number, e: number) => {
        const f = ex.moe.find((x) => x.l === l)!.f;
        for (const m of [f.gate, f.up, f.down]) arena.u8(m.ptr + e * ex.span(m), ex.span(m)).fill(0xff); // NaN scales
      };
      for (const [l, e] of unused) poison(l, e);
      const after = await logitsOf(model, steps);
      for (let i = 0; i < steps.length; i++) expect(same(after[i], base[i]), `step ${i}`).toBe(true);
      // the poison is visible when an expert is used (the kernels' int8 activation rounding turns NaN into
      // finite garbage, so: changed logits)
      const [l, e] = [...used][0].split(":").map(Number);
      poison(l, e);
      const broken = await logitsOf(model, steps);
      expect(broken.some((x, i) => !same(x, base[i]))).toBe(true);
    } finally { model.dispose(); }
  }, 60_000);
});

describe("malformed LFM2-MoE files → typed errors", () => {
  const setU32 = (key: string, value: number) => (meta: Record<string, GgufWriteValue>) => { meta[key] = { type: "u32", value }; };
  const cases: [string, () => Uint8Array, string][] = [
    ["expert_count disagrees with the expert tensors", () => moeBytes(OPTS, setU32("lfm2moe.expert_count", 16)), "SHAPE_MISMATCH"],
    ["expert_feed_forward_length disagrees with the expert tensors", () => moeBytes(OPTS, setU32("lfm2moe.expert_feed_forward_length", 256)), "SHAPE_MISMATCH"],
    ["an expert tensor with the wrong shape", () => moeBytes(OPTS, (_, ts) => {
      const t = ts.find((x) => x.name === "blk.3.ffn_down_exps.weight")!;
      t.shape = [MOE.expertFfDim, 256, MOE.nExperts / 2]; t.values = t.values.subarray(0, t.values.length / 2);
    }), "SHAPE_MISMATCH"],
    ["more experts used per token than exist", () => moeBytes(OPTS, setU32("lfm2moe.expert_used_count", 9)), "BAD_METADATA"],
    ["missing exp_probs_b.bias", () => moeBytes(OPTS, (_, ts) => ts.filter((t) => t.name !== "blk.4.exp_probs_b.bias")), "MISSING_TENSOR"],
    ["softmax gating (1)", () => moeBytes(OPTS, setU32("lfm2moe.expert_gating_func", 1)), "BAD_METADATA"],
    ["no gating function key (llama.cpp requires it too)", () => moeBytes(OPTS, (meta) => { delete meta["lfm2moe.expert_gating_func"]; }), "BAD_METADATA"],
    ["no expert_count key", () => moeBytes(OPTS, (meta) => { delete meta["lfm2moe.expert_count"]; }), "BAD_METADATA"],
  ];
  for (const [what, make, code] of cases) {
    it(`${what} → ${code}`, async () => {
      await expect(loadModel(make(), { threads: 1 })).rejects.toMatchObject({ code });
    });
  }
});
