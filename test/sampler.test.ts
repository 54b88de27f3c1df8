import { describe, expect, it } from "vitest";
import {
  applyPenalties, LFM2_DEFAULT_SAMPLING, minP, Mulberry32, Sampler, softmax, topK, topP, type SamplingOptions,
} from "../src/generate/sampler.js";
import { StopStringMatcher } from "../src/generate/stop.js";
import { Lfm2Error } from "../src/errors.js";

const close = (a: ArrayLike<number>, b: number[], eps = 1e-7) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(eps);
};

/** Pearson chi-square of observed counts against expected probabilities. */
function chiSquare(counts: number[], probs: number[], total: number): number {
  let x = 0;
  for (let i = 0; i < probs.length; i++) {
    const e = probs[i]! * total;
    x += (counts[i]! - e) ** 2 / e;
  }
  return x;
}

// chi-square critical values at p = 0.001
const CHI2_001 = [NaN, 10.83, 13.82, 16.27, 18.47, 20.52];

function draw(opts: SamplingOptions, logits: number[], n: number, history: number[] = []): number[] {
  const s = new Sampler(opts, logits.length);
  const l = Float32Array.from(logits);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(l, history)]++;
  return counts;
}

describe("pure helpers", () => {
  it("softmax matches hand-computed values, with temperature", () => {
    close(softmax([1, 2, 3]), [0.09003057317, 0.24472847105, 0.66524095577], 1e-9);
    // logits / 0.5 = [2, 4, 6] → [e^-4, e^-2, 1] / 1.15365092...
    close(softmax([1, 2, 3], 0.5), [0.01587623997, 0.11731042782, 0.86681333221], 1e-9);
    close(softmax([1000, 1000]), [0.5, 0.5]);
    close(softmax([0, -Infinity]), [1, 0]);
  });

  it("topK keeps the k best, best first, lower id on ties", () => {
    expect(topK([0.5, 3, 3, -1, 2], 2)).toEqual([1, 2]);
    expect(topK([0.5, 3, 3, -1, 2], 3)).toEqual([1, 2, 4]);
    expect(topK([0.5, 3, 3, -1, 2], 10)).toEqual([1, 2, 4, 0, 3]);
    expect(topK([1, 1, 1, 1], 2)).toEqual([0, 1]);
  });

  it("topK agrees with a full sort on random data", () => {
    const r = new Mulberry32(7);
    for (let t = 0; t < 60; t++) {
      const n = 1 + Math.floor(r.next() * 3000);
      const v = Array.from({ length: n }, () => Math.round(r.next() * 40) / 4); // many ties
      // small k takes the heap path, large k the quickselect path
      const k = t % 2 === 0 ? 1 + Math.floor(r.next() * Math.max(1, n / 16)) : 1 + Math.floor(r.next() * n);
      const ref = v.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((p) => p[1]);
      expect(topK(v, k)).toEqual(ref);
    }
  });

  it("topP keeps the smallest prefix reaching p", () => {
    expect(topP([0.1, 0.4, 0.2, 0.3], 0.5)).toEqual([1, 3]);
    expect(topP([0.1, 0.4, 0.2, 0.3], 0.4)).toEqual([1]);
    expect(topP([0.1, 0.4, 0.2, 0.3], 0.75)).toEqual([1, 3, 2]);
    expect(topP([0.1, 0.4, 0.2, 0.3], 0.95)).toEqual([1, 3, 2, 0]);
    expect(topP([0.1, 0.4, 0.2, 0.3], 1)).toEqual([1, 3, 2, 0]);
  });

  it("topP agrees with a full sort on large random distributions (incremental selection)", () => {
    const r = new Mulberry32(99);
    for (let t = 0; t < 20; t++) {
      const n = 5000 + Math.floor(r.next() * 20000);
      const logits = Array.from({ length: n }, () => r.next() * 12);
      const p = softmax(logits);
      const target = 0.5 + r.next() * 0.49;
      const order = Array.from(p, (x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      let cum = 0, k = 0;
      while (k < n) { cum += order[k]![0]; k++; if (cum >= target) break; }
      expect(topP(p, target)).toEqual(order.slice(0, k).map((q) => q[1]));
    }
  });

  it("minP keeps tokens with p ≥ minP · p_max", () => {
    expect(minP([0.1, 0.4, 0.2, 0.3], 0.5)).toEqual([1, 3, 2]);
    expect(minP([0.1, 0.4, 0.2, 0.3], 0.25)).toEqual([1, 3, 2, 0]);
    expect(minP([0.1, 0.4, 0.2, 0.3], 1)).toEqual([1]);
    expect(minP([0.1, 0.4, 0.2, 0.3], 0)).toEqual([1, 3, 2, 0]);
  });

  it("applyPenalties: repetition divides positive and multiplies negative logits", () => {
    const l = [2, -1, 0.5, 3];
    close(applyPenalties(l, [0, 1, 1, 3], { repetitionPenalty: 2 }), [1, -2, 0.5, 1.5]);
    // presence once per distinct token, frequency per occurrence
    close(applyPenalties(l, [0, 1, 1, 3], { presencePenalty: 0.5, frequencyPenalty: 0.25 }), [1.25, -2, 0.5, 2.25]);
    // both: repetition first, then subtraction
    close(applyPenalties(l, [1, 1], { repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 }), [2, -3, 0.5, 3]);
    // window: only the last 2 history tokens count
    close(applyPenalties(l, [0, 1, 3], { repetitionPenalty: 2, penaltyLastN: 2 }), [2, -2, 0.5, 1.5]);
    close(applyPenalties(l, [0, 1, 3], { repetitionPenalty: 2, penaltyLastN: 0 }), l);
    close(applyPenalties(l, [0], { repetitionPenalty: 2, penaltyLastN: -1 }), [1, -1, 0.5, 3]);
    // the input is not modified, out-of-range history ids are ignored
    close(applyPenalties(l, [99, -1], { repetitionPenalty: 2 }), l);
    expect(l).toEqual([2, -1, 0.5, 3]);
  });
});

describe("Sampler", () => {
  it("LFM2 defaults are the model-card values", () => {
    expect(LFM2_DEFAULT_SAMPLING).toEqual({ temperature: 0.3, minP: 0.15, repetitionPenalty: 1.05 });
  });

  it("temperature 0 is greedy argmax with the lowest id on ties", () => {
    const s = new Sampler({ temperature: 0 }, 4);
    expect(s.sample(Float32Array.from([1, 5, 5, 2]), [])).toBe(1);
    expect(s.sample(Float32Array.from([-3, -1, -2, -1]), [])).toBe(1);
  });

  it("greedy applies bias and penalties first", () => {
    const l = Float32Array.from([1, 5, 4, 2]);
    expect(new Sampler({ temperature: 0, repetitionPenalty: 1.5 }, 4).sample(l, [1])).toBe(2); // 5/1.5 < 4
    expect(new Sampler({ temperature: 0, logitBias: { 0: 10 } }, 4).sample(l, [])).toBe(0);
    expect(new Sampler({ temperature: 0, logitBias: { 1: -Infinity, 2: -Infinity } }, 4).sample(l, [])).toBe(3);
    expect(new Sampler({ temperature: 0 }, 4).sample(l, [], (id) => id % 2 === 0)).toBe(2);
  });

  it("same seed → same sequence; different seed → different sequence", () => {
    const l = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const run = (seed: number) => { const s = new Sampler({ seed }, 1000); return Array.from({ length: 50 }, () => s.sample(l, [])); };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
    const s = new Sampler({ seed: 5 }, 1000);
    const a = Array.from({ length: 10 }, () => s.sample(l, []));
    s.reseed(5);
    expect(Array.from({ length: 10 }, () => s.sample(l, []))).toEqual(a);
  });

  it("plain sampling frequencies match softmax (chi-square, fixed seed)", () => {
    const logits = [0.2, 1.5, -0.7, 1.0, 0.0];
    const N = 40000;
    const counts = draw({ seed: 1 }, logits, N);
    expect(chiSquare(counts, Array.from(softmax(logits)), N)).toBeLessThan(CHI2_001[4]!);
  });

  it("temperature reshapes the distribution (chi-square)", () => {
    const logits = [0.2, 1.5, -0.7, 1.0];
    const N = 40000;
    const counts = draw({ seed: 2, temperature: 0.6 }, logits, N);
    expect(chiSquare(counts, Array.from(softmax(logits, 0.6)), N)).toBeLessThan(CHI2_001[3]!);
    // and the untempered distribution is rejected: the test has teeth
    expect(chiSquare(counts, Array.from(softmax(logits)), N)).toBeGreaterThan(100);
  });

  it("top-k → temperature → top-p chain (hand-computed)", () => {
    // logits [1, 2, 3, 0]: top-3 keeps {2, 1, 0}; softmax = [.665, .245, .090]; top-p 0.9 keeps {2, 1}
    const N = 30000;
    const counts = draw({ seed: 3, topK: 3, topP: 0.9 }, [1, 2, 3, 0], N);
    expect(counts[0]).toBe(0);
    expect(counts[3]).toBe(0);
    const p2 = Math.exp(3) / (Math.exp(3) + Math.exp(2));
    expect(chiSquare([counts[2]!, counts[1]!], [p2, 1 - p2], N)).toBeLessThan(CHI2_001[1]!);
  });

  it("min-p (hand-computed)", () => {
    // probabilities [0.5, 0.3, 0.15, 0.05]; min-p 0.2 → threshold 0.1 → keep the first three
    const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    const N = 30000;
    const counts = draw({ seed: 4, minP: 0.2 }, logits, N);
    expect(counts[3]).toBe(0);
    expect(chiSquare(counts.slice(0, 3), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95], N)).toBeLessThan(CHI2_001[2]!);
  });

  it("penalties change sampled frequencies as computed", () => {
    const logits = [1, 1, 1];
    const N = 30000;
    // token 0 seen twice: 1/2 = 0.5 after repetition, minus 2·0.1 + 0.2 = 0.1
    const counts = draw({ seed: 6, repetitionPenalty: 2, frequencyPenalty: 0.1, presencePenalty: 0.2 }, logits, N, [0, 0]);
    expect(chiSquare(counts, Array.from(softmax([0.1, 1, 1])), N)).toBeLessThan(CHI2_001[2]!);
  });

  it("LFM2 defaults on a realistic vocabulary keep only plausible tokens", () => {
    const V = 65536;
    const r = new Mulberry32(11);
    const l = new Float32Array(V);
    for (let i = 0; i < V; i++) l[i] = r.next() * 4 - 10;
    l[100] = 8; l[200] = 7.8; l[300] = 7.5;
    const s = new Sampler({ ...LFM2_DEFAULT_SAMPLING, seed: 9 }, V);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(s.sample(l, [100]));
    // with T = 0.3 and min-p 0.15 only these three survive
    expect([...seen].every((id) => id === 100 || id === 200 || id === 300)).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
  });

  it("uses only the first vocabSize logits and validates input", () => {
    const s = new Sampler({ temperature: 0 }, 3);
    expect(s.sample(Float32Array.from([0, 1, 2, 99]), [])).toBe(2);
    const codes: string[] = [];
    const attempt = (f: () => unknown) => { try { f(); codes.push("none"); } catch (e) { codes.push(e instanceof Lfm2Error ? e.code : "other"); } };
    attempt(() => s.sample(Float32Array.from([0, 1]), []));
    attempt(() => new Sampler({ temperature: -1 }, 3));
    attempt(() => new Sampler({ topP: 0 }, 3));
    attempt(() => new Sampler({ topK: 1.5 }, 3));
    attempt(() => new Sampler({ minP: 2 }, 3));
    attempt(() => new Sampler({ repetitionPenalty: 0 }, 3));
    attempt(() => new Sampler({}, 0));
    attempt(() => new Sampler({ temperature: 0 }, 2).sample(Float32Array.from([-Infinity, NaN]), []));
    attempt(() => new Sampler({}, 2).sample(Float32Array.from([1, 2]), [], () => false));
    expect(codes).toEqual(Array(9).fill("BAD_INPUT"));
  });
});

describe("StopStringMatcher", () => {
  it("holds back a partial stop string and cuts at the match", () => {
    const m = new StopStringMatcher(["<|end|>"]);
    expect(m.push("Hello wor")).toEqual({ text: "Hello wor", stopped: false });
    expect(m.push("ld<|e")).toEqual({ text: "ld", stopped: false });
    expect(m.pending).toBe("<|e");
    expect(m.push("nd|> more")).toEqual({ text: "", stopped: true, stopString: "<|end|>" });
    expect(m.push("anything")).toEqual({ text: "", stopped: true, stopString: "<|end|>" });
    expect(m.flush()).toBe("");
  });

  it("releases held text when the prefix turns out not to match, and on flush", () => {
    const m = new StopStringMatcher(["STOP"]);
    expect(m.push("ST")).toEqual({ text: "", stopped: false });
    expect(m.push("AR")).toEqual({ text: "STAR", stopped: false });
    expect(m.push("xST")).toEqual({ text: "x", stopped: false });
    expect(m.flush()).toBe("ST");
  });

  it("earliest match wins across several stop strings", () => {
    const m = new StopStringMatcher(["yz1", "xyz"]);
    expect(m.push("axyz1")).toEqual({ text: "a", stopped: true, stopString: "xyz" });
  });

  it("gives the same result for every way of splitting the stream", () => {
    const stops = ["\n\nUser:", "</s>", "aab"];
    const texts = ["Hello\n\nUse this\n\nUser: hi", "aaaab then", "no stop here \n\nUser", "x</s", "a</s>b"];
    for (const text of texts) {
      let first = -1, which = "";
      for (const s of stops) { const k = text.indexOf(s); if (k >= 0 && (first < 0 || k < first)) { first = k; which = s; } }
      const expected = first >= 0 ? text.slice(0, first) : text;
      for (let i = 0; i <= text.length; i++) {
        for (let j = i; j <= text.length; j++) {
          const m = new StopStringMatcher(stops);
          let out = "";
          let stopped = false;
          for (const part of [text.slice(0, i), text.slice(i, j), text.slice(j)]) {
            const r = m.push(part);
            out += r.text;
            stopped = r.stopped;
          }
          out += m.flush();
          expect(out).toBe(expected);
          expect(stopped).toBe(first >= 0);
          if (first >= 0) expect(m.stopString).toBe(which);
        }
      }
      // character by character, nothing past the stop is ever emitted
      const m = new StopStringMatcher(stops);
      let out = "";
      for (const ch of text) { out += m.push(ch).text; expect(expected.startsWith(out)).toBe(true); }
    }
  });

  it("rejects empty stop strings", () => {
    expect(() => new StopStringMatcher([""])).toThrow(Lfm2Error);
    const none = new StopStringMatcher([]);
    expect(none.push("abc")).toEqual({ text: "abc", stopped: false });
  });
});
