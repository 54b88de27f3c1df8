// Time to first token of chat turn 2, with the session's cache reused vs a fresh session
// (350M Q4_0 synthetic model; turn 1 = a ~400-token system prompt + question + 32-token answer).
//   node --experimental-wasm-relaxed-simd --import tsx bench/chat-reuse.ts
import { loadModel, type ChatMessage } from "../src/index.js";
import { benchModel } from "./models.js";

const model = await loadModel(await benchModel("350M", "Q4_0"), { threads: 1 });
const system = "You are a helpful assistant for a small bakery. " + "Answer questions about bread, cakes, opening hours and prices. ".repeat(30);
const turn1: ChatMessage[] = [{ role: "system", content: system }, { role: "user", content: "When do you open on Sundays?" }];
const opts = { maxTokens: 32, temperature: 0 };
const ttft = async (s: ReturnType<typeof model.createSession>, msgs: ChatMessage[]) => {
  const it = s.chatStream(msgs, opts);
  const t0 = performance.now();
  let first = NaN;
  for (let r = await it.next(); ; r = await it.next()) {
    if (Number.isNaN(first)) first = performance.now() - t0;
    if (r.done) return { first, result: r.value };
  }
};
const warm = model.createSession({ contextLength: 2048 });
await warm.forward([1, 2, 3]); warm.reset(); // tier the kernels up
const s = model.createSession({ contextLength: 2048 });
const a = await ttft(s, turn1);
const turn2: ChatMessage[] = [...turn1, { role: "assistant", content: a.result.text }, { role: "user", content: "And on Mondays?" }];
const reused = await ttft(s, turn2);
const fresh = await ttft(model.createSession({ contextLength: 2048 }), turn2);
// time to first token = prompt processing up to the first sampled token (the first visible text
// delta can come later: the tool-call parser holds back text that may start a marker)
const show = (label: string, x: typeof a) => console.log(`${label}: ${x.result.usage.promptTokens} prompt tokens, ${x.result.usage.cachedTokens} from cache, ` +
  `time to first token ${x.result.timings.prefillMs.toFixed(0)} ms (first text delta after ${x.first.toFixed(0)} ms)`);
show("turn 1              ", a);
show("turn 2 with reuse   ", reused);
show("turn 2 fresh session", fresh);
console.log(`reuse makes turn 2's first token ${(fresh.result.timings.prefillMs / reused.result.timings.prefillMs).toFixed(1)}× faster`);
model.dispose();
