// Parity with native llama.cpp (node-llama-cpp, CPU) on the same GGUF files, for every weight type.
// Tolerances: llama.cpp quantizes activations for quantized weights exactly as we do, but float
// differences of ~1e-6 upstream can flip an int8 rounding, and random-weight models amplify each
// flip to ~0.1 on the logits (logit RMS ≈ 3). So: quantized types max |Δlogit| < 0.3 (K-quants 0.4), F16 < 0.03, BF16 < 0.1,
// F32 < 2e-3; greedy tokens must be identical unless llama.cpp's own top-2 margin is below 0.3.
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { argmax, llamaRef, margin, maxAbsDiff } from "./helpers/llama-ref.js";
import { tinyModelPath } from "./helpers/models.js";
import type { GgmlTypeName } from "../src/core/quant-types.js";

// bf16 activations keep 8 mantissa bits; K-quants pair with Q8_K activations, one scale per 256 values,
// so a single rounding flip moves the logits further than with Q8_0's 32-value blocks
const TOL: Record<string, number> = { F32: 2e-3, F16: 0.03, BF16: 0.1, Q4_K: 0.4, Q5_K: 0.4, Q6_K: 0.4 };
const QUANT_TOL = 0.3, TIE_MARGIN = 0.3;
const TYPES: GgmlTypeName[] = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"];
const prompt = Array.from({ length: 150 }, (_, i) => 520 + ((i * 37) % 1500)); // > 2 prefill chunks of 64
const STEPS = 24;

const results: string[] = [];
afterAll(() => console.log("parity vs llama.cpp (max |Δlogit| over prompt + decode, token agreement):\n" + results.join("\n")));

async function compare(label: string, path: string, tol: number, load: () => ReturnType<typeof loadModel> = () => loadModel(path)) {
  const ref = await llamaRef(path);
  try {
    const model = await load();
    const s = model.createSession({ contextLength: 512 });
    const g = await ref.greedy(prompt, STEPS);
    let logits = await s.forward(prompt);
    let worst = 0, same = 0, ties = 0;
    for (let i = 0; i < STEPS; i++) {
      const d = maxAbsDiff(g.logits[i], logits);
      worst = Math.max(worst, d);
      if (argmax(logits) === g.tokens[i]) same++;
      else {
        expect(margin(g.logits[i]), `${label} step ${i}: different greedy token with llama.cpp margin ${margin(g.logits[i])}`).toBeLessThan(TIE_MARGIN);
        ties++;
      }
      if (i < STEPS - 1) logits = await s.forward([g.tokens[i]]); // teacher-forced: stay on llama.cpp's path
    }
    results.push(`  ${label.padEnd(22)} max|Δ| ${worst.toFixed(5)}  tokens ${same}/${STEPS} identical, ${ties} near-ties`);
    expect(worst).toBeLessThan(tol);
  } finally { await ref.dispose(); }
}

describe("logits and greedy tokens equal llama.cpp's", () => {
  for (const t of TYPES) {
    it(`${t} weights`, async () => {
      await compare(t, tinyModelPath({ weightType: t, seed: 7 }), TOL[t] ?? QUANT_TOL);
    }, 60_000);
  }
  it("mixed per-tensor types (Q4_K weights, Q6_K embeddings) with an untied output matrix", async () => {
    await compare("Q4_K+Q6_K untied", tinyModelPath({ weightType: "Q4_K", embedType: "Q6_K", untiedOutput: true, seed: 9 }), QUANT_TOL);
  }, 60_000);
  it("Q8_0 with a prompt split into 16-token chunks equals one long prefill", async () => {
    const path = tinyModelPath({ weightType: "Q8_0", seed: 7 });
    await compare("Q8_0 chunk 16", path, QUANT_TOL, () => loadModel(path, { chunkSize: 16 }));
  }, 60_000);
});
