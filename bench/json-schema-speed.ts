// Constrained (JSON schema) sampling cost per step with a 65,536-token vocabulary: the wall-clock figure that
// test/json-schema.test.ts used to assert (it now bounds the work by counting calls instead).
//   npx tsx bench/json-schema-speed.ts [--runs 5]
import { JsonSchemaMatcher, sampleConstrained, TokenConstraint, type JsonSchema } from "../src/generate/json-schema.js";
import { Mulberry32, Sampler } from "../src/generate/sampler.js";

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 5;
const person: JsonSchema = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 }, age: { type: "integer" },
    tags: { type: "array", items: { enum: ["a", "b", "c"] }, maxItems: 4 },
    nickname: { anyOf: [{ type: "string" }, { type: "null" }] }, score: { type: "number" },
  },
  required: ["name", "age"],
};
const EOG = 0, SPECIAL = 1, V = 65536;
const structural = ["<eog>", "<|special|>", "{", "}", "[", "]", ",", ":", '"', '{"', '"}', '":', '",', '"name":', '"age":',
  "a", "b", "c", "0", "1", "2", "9", "12", "-", ".", "e", "true", "false", "null", ..."defghijklmnopqrstuvwxyz".split("")];
const closers = [EOG, ...["}", "]", '"', '"}', "0"].map((t) => structural.indexOf(t))];

function once(seed: number): { steps: number; ms: number } {
  const r = new Mulberry32(seed);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const vocab = Array.from({ length: V }, (_, i) => {
    if (i < structural.length) return structural[i]!;
    let t = "";
    for (let j = 0, n = 1 + Math.floor(r.next() * 6); j < n; j++) t += letters[Math.floor(r.next() * 26)];
    return i % 5 === 0 ? '"' + t : i % 7 === 0 ? t + '"' : t;
  });
  const c = new TokenConstraint(new JsonSchemaMatcher(person), {
    vocabSize: V, tokenText: (id) => vocab[id]!, eogIds: [EOG], isSpecial: (id) => id === SPECIAL,
  });
  const s = new Sampler({ temperature: 0.8, topK: 40, seed }, V);
  const logits = new Float32Array(V);
  let steps = 0;
  const t0 = performance.now();
  for (; steps < 200 && !c.finished; steps++) {
    for (let i = 0; i < V; i++) logits[i] = r.next() * 5;
    if (steps > 30) for (const t of closers) logits[t] = logits[t]! + 8;
    c.advance(sampleConstrained(s, logits, [], c));
  }
  return { steps, ms: performance.now() - t0 };
}

const perStep: number[] = [];
for (let i = 0; i < runs; i++) { const { steps, ms } = once(5 + i); perStep.push(ms / steps); }
perStep.sort((a, b) => a - b);
console.log(`json-schema constrained sampling, V=${V}: median ${perStep[perStep.length >> 1]!.toFixed(2)} ms/step ` +
  `(min ${perStep[0]!.toFixed(2)}, max ${perStep.at(-1)!.toFixed(2)}, ${runs} runs)`);
