// Sampling cost per token on a 65,536-token vocabulary (top-k partial selection, top-p without top-k,
// the model-card defaults, greedy): the figure test/sampler.test.ts used to assert with a clock.
//   npx tsx bench/sampler-speed.ts [--runs 30]
import { LFM2_DEFAULT_SAMPLING, Mulberry32, Sampler, type SamplingOptions } from "../src/generate/sampler.js";

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 30;
const V = 65536;
const r = new Mulberry32(12);
const logits = new Float32Array(V);
// LLM-like logits: roughly normal with a long upper tail
for (let i = 0; i < V; i++) logits[i] = (r.next() + r.next() + r.next() - 1.5) * 4 + (r.next() < 0.001 ? 10 : 0);
const history = Array.from({ length: 64 }, (_, i) => i * 7);
const cases: [string, SamplingOptions][] = [["top-k 40, top-p 0.9, T 0.8", { topK: 40, topP: 0.9, temperature: 0.8 }],
  ["top-p 0.95", { topP: 0.95 }], ["model-card defaults", { ...LFM2_DEFAULT_SAMPLING }], ["greedy", { temperature: 0 }]];
for (const [name, opts] of cases) {
  const s = new Sampler({ ...opts, seed: 1 }, V);
  s.sample(logits, history);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    s.sample(logits, history);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`${name.padEnd(28)} median ${times[times.length >> 1].toFixed(3)} ms/token (min ${times[0].toFixed(3)}, max ${times[times.length - 1].toFixed(3)})`);
}
