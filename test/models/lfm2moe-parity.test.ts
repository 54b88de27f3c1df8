// LFM2-MoE parity with native llama.cpp (node-llama-cpp runs arch lfm2moe) on synthetic MoE files in
// every weight type. Same standard and tolerances as the dense parity test (test/parity.test.ts):
// max |Δlogit| over prompt + decode < 2e-3 (F32), 0.03 (F16), 0.1 (BF16), 0.4 (K-quants), 0.3 (other
// quants); greedy tokens identical unless llama.cpp's own top-2 margin is below 0.3. Routing adds a
// discrete choice: where two experts' biased scores are within ROUTE_TIE (our engine reports its
// smallest routing margin per step), the same ~1e-2 upstream noise can pick the other expert and move
// that step's logits by ~0.5; such a step may exceed the tolerance (it is counted and reported), no
// other step may. Seen: Q4_0 seed 11 decode step 11, margin 0.0017, |Δ| 0.63.
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { argmax, llamaRef, margin, maxAbsDiff } from "../helpers/llama-ref.js";
import { tinyModelPath } from "../helpers/models.js";
import type { GgmlTypeName } from "../../src/core/quant-types.js";
import type { SyntheticOptions } from "../../src/models/synthetic.js";
import { forwardWithRouteGap } from "../helpers/route-gap.js";

const TOL: Record<string, number> = { F32: 2e-3, F16: 0.03, BF16: 0.1, Q4_K: 0.4, Q5_K: 0.4, Q6_K: 0.4 };
const QUANT_TOL = 0.3, TIE_MARGIN = 0.3, ROUTE_TIE = 0.005;
const TYPES: GgmlTypeName[] = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"];
const MOE_8x2 = { nExperts: 8, nUsed: 2, expertFfDim: 256, leadingDense: 2 }; // K-quant rows need 256-multiples
const MOE_32x4 = { nExperts: 32, nUsed: 4, expertFfDim: 256, leadingDense: 2 };
const prompt = Array.from({ length: 100 }, (_, i) => 520 + ((i * 37) % 1500)); // > one prefill chunk of 64
const STEPS = 12;

const results: string[] = [];
afterAll(() => console.log("lfm2moe parity vs llama.cpp (max |Δlogit| over prompt + decode, token agreement):\n" + results.join("\n")));

async function compare(label: string, opts: SyntheticOptions, tol: number, chunkSize?: number) {
  const path = tinyModelPath(opts);
  const ref = await llamaRef(path);
  const model = await loadModel(path, { threads: 1, chunkSize });
  try {
    expect(model.info.architecture).toBe("lfm2moe");
    const s = model.createSession({ contextLength: 512 });
    const forward = forwardWithRouteGap(model, s);
    const g = await ref.greedy(prompt, STEPS);
    let { out: logits, gap } = await forward(prompt);
    let worst = 0, same = 0, ties = 0, routeTies = 0, worstRouteTie = 0;
    for (let i = 0; i < STEPS; i++) {
      expect(logits.length).toBe(g.logits[i].length);
      const d = maxAbsDiff(g.logits[i], logits);
      if (d >= tol && gap < ROUTE_TIE) { routeTies++; worstRouteTie = Math.max(worstRouteTie, d); }
      else worst = Math.max(worst, d);
      if (argmax(logits) === g.tokens[i]) same++;
      else {
        expect(margin(g.logits[i]), `${label} step ${i}: different greedy token, llama.cpp margin ${margin(g.logits[i])}`).toBeLessThan(TIE_MARGIN);
        ties++;
      }
      if (i < STEPS - 1) ({ out: logits, gap } = await forward([g.tokens[i]])); // teacher-forced on llama.cpp's path
    }
    results.push(`  ${label.padEnd(26)} max|Δ| ${worst.toFixed(5)}  tokens ${same}/${STEPS} identical, ${ties} near-ties` +
      (routeTies ? `, ${routeTies} routing near-tie step(s) with |Δ| ${worstRouteTie.toFixed(3)}` : ""));
    expect(routeTies).toBeLessThanOrEqual(2);
    expect(worst).toBeLessThan(tol);
  } finally { model.dispose(); await ref.dispose(); }
}

describe("LFM2-MoE logits and greedy tokens equal llama.cpp's", () => {
  for (const t of TYPES) {
    it(`${t} weights, 8 experts top-2`, () => compare(`${t} 8x2`, { weightType: t, moe: MOE_8x2, seed: 11 }, TOL[t] ?? QUANT_TOL), 120_000);
  }
  it("mixed: Q4_K experts, Q6_K embeddings, untied output; 32 experts top-4 of 256", () =>
    compare("Q4_K+Q6_K 32x4", { weightType: "Q4_K", embedType: "Q6_K", untiedOutput: true, moe: MOE_32x4, seed: 12 }, QUANT_TOL), 120_000);
  it("Q4_0, 32 experts top-4, prompt in 16-token chunks", () =>
    compare("Q4_0 32x4 chunk16", { weightType: "Q4_0", moe: MOE_32x4, seed: 13 }, QUANT_TOL, 16), 120_000);
  it("a vocabulary of 3000 tokens read from the file", () =>
    compare("Q8_0 vocab 3000", { weightType: "Q8_0", moe: MOE_8x2, seed: 14,
      shape: { hiddenSize: 256, nLayers: 6, nHeads: 4, nKv: 2, ffDim: 512, attn: [2, 4], vocabSize: 3000 } }, QUANT_TOL), 120_000);
});
