import { describe, expect, it } from "vitest";
import {
  JsonSchemaMatcher, sampleConstrained, TokenConstraint, type JsonSchema,
} from "../src/generate/json-schema.js";
import { Mulberry32, Sampler } from "../src/generate/sampler.js";
import { Lfm2Error } from "../src/errors.js";

// ---------------------------------------------------------------------------------------------------
// A small independent validator for the keywords the matcher supports.

type S = JsonSchema;

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => deepEqual(x, (b as unknown[])[i]));
  const ka = Object.keys(a as object), kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function validate(v: unknown, s: S, root: S = s): boolean {
  if (s === true) return true;
  if (s === false) return false;
  if (typeof s.$ref === "string") {
    let target: unknown = root;
    for (const part of s.$ref.slice(2).split("/").filter(Boolean)) target = (target as Record<string, unknown>)[part];
    if (!validate(v, target as S, root)) return false;
  }
  if (Array.isArray(s.anyOf) && !(s.anyOf as S[]).some((b) => validate(v, b, root))) return false;
  if (s.const !== undefined && !deepEqual(v, s.const)) return false;
  if (Array.isArray(s.enum) && !(s.enum as unknown[]).some((e) => deepEqual(v, e))) return false;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const ok = types.some((t) => {
      switch (t) {
        case "null": return v === null;
        case "boolean": return typeof v === "boolean";
        case "string": return typeof v === "string";
        case "number": return typeof v === "number";
        case "integer": return typeof v === "number" && Number.isInteger(v);
        case "array": return Array.isArray(v);
        case "object": return v !== null && typeof v === "object" && !Array.isArray(v);
      }
      return false;
    });
    if (!ok) return false;
  }
  if (typeof v === "string") {
    const len = [...v].length;
    if (typeof s.minLength === "number" && len < s.minLength) return false;
    if (typeof s.maxLength === "number" && len > s.maxLength) return false;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === "number" && v.length < s.minItems) return false;
    if (typeof s.maxItems === "number" && v.length > s.maxItems) return false;
    if (s.items !== undefined && !v.every((x) => validate(x, s.items as S, root))) return false;
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, S>;
    for (const r of (s.required ?? []) as string[]) if (!(r in o)) return false;
    const extra: S = s.additionalProperties !== undefined ? s.additionalProperties as S : s.properties !== undefined ? false : true;
    for (const [k, x] of Object.entries(o)) {
      if (k in props) { if (!validate(x, props[k]!, root)) return false; }
      else if (!validate(x, extra, root)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------

const person: S = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    tags: { type: "array", items: { enum: ["a", "b", "c"] }, maxItems: 4 },
    nickname: { anyOf: [{ type: "string" }, { type: "null" }] },
    score: { type: "number" },
  },
  required: ["name", "age"],
};
const numbers: S = { type: "array", items: { type: "number" }, minItems: 1, maxItems: 5 };
const union: S = {
  anyOf: [
    { type: "object", properties: { kind: { const: "a" }, x: { type: "number" } }, required: ["kind", "x"] },
    { type: "object", properties: { kind: { const: "b" }, y: { type: "boolean" } }, required: ["kind"] },
  ],
};
const tree: S = {
  $defs: {
    node: {
      type: "object",
      properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } },
      required: ["v"],
    },
  },
  $ref: "#/$defs/node",
};
const mixedEnum: S = { enum: ["red", 1, null, true, { a: [1] }, "re"] };
const shortString: S = { type: "string", minLength: 2, maxLength: 5 };
const intMap: S = { type: "object", additionalProperties: { type: "integer" } };
const anyValue: S = {};
const rootNumber: S = { type: "number" };
const nullableInts: S = { type: "array", items: { type: ["integer", "null"] }, maxItems: 3 };

const SCHEMAS: Array<[string, S]> = [
  ["person", person], ["numbers", numbers], ["union", union], ["tree", tree], ["mixedEnum", mixedEnum],
  ["shortString", shortString], ["intMap", intMap], ["anyValue", anyValue], ["rootNumber", rootNumber],
  ["nullableInts", nullableInts],
];

describe("JsonSchemaMatcher", () => {
  const accepts = (s: S, text: string) => { const m = new JsonSchemaMatcher(s); return m.accept(text) && m.isComplete(); };

  it("accepts minimal JSON of valid instances", () => {
    const cases: Array<[S, unknown]> = [
      [person, { name: "Ann", age: 3 }],
      [person, { age: -0, name: "" , tags: ["a", "c"], nickname: null, score: 1.5e-3 }],
      [person, { name: "q\"\\\n\u0001é😀", age: 12345678 }],
      [numbers, [0, -1.25, 3e10, 12, 0.5]],
      [union, { kind: "a", x: 2 }],
      [union, { y: true, kind: "b" }],
      [union, { kind: "b" }],
      [tree, { v: 1, kids: [{ v: 2 }, { v: 3, kids: [] }] }],
      [mixedEnum, { a: [1] }], [mixedEnum, "re"], [mixedEnum, "red"], [mixedEnum, null], [mixedEnum, 1],
      [shortString, "ab"], [shortString, "abcde"],
      [intMap, {}], [intMap, { "any key": 1, "x": -2 }],
      [anyValue, { a: [1, "x", null, { b: false }], c: {} }], [anyValue, "s"], [anyValue, 7],
      [rootNumber, -12.5e+7], [nullableInts, [1, null, 3]],
    ];
    for (const [s, v] of cases) expect(accepts(s, JSON.stringify(v)), JSON.stringify(v)).toBe(true);
    expect(accepts(person, '{"name":"\\u00e9\\/","age":1}')).toBe(true);
    expect(accepts(rootNumber, "1E5")).toBe(true);
  });

  it("rejects invalid texts", () => {
    const cases: Array<[S, string]> = [
      [person, '{"name":"Ann"}'], // missing required
      [person, '{"name":"Ann","age":1.5}'], // not an integer
      [person, '{"name":"Ann","age":1,"other":1}'], // additional property
      [person, '{"name":"Ann","age":1,"age":2}'], // duplicate key
      [person, '{"name":"Ann", "age":1}'], // whitespace is not minimal
      [person, '{"name":"Ann","age":01}'], // leading zero
      [person, '{"name":"Ann","age":1,"tags":["d"]}'],
      [person, '{"name":"Ann","age":1,"tags":["a","a","a","a","a"]}'], // maxItems
      [person, '{"name":"abcdefghijklm","age":1}'], // maxLength
      [person, '{"name":"a\tb","age":1}'], // raw control character
      [person, '{"name":"\\x","age":1}'], // bad escape
      [numbers, "[]"], [numbers, "[1,]"], [numbers, "[1,2,3,4,5,6]"], [numbers, "[.5]"], [numbers, "[1.]"], [numbers, "[-]"], [numbers, "[1e]"],
      [union, '{"kind":"a"}'], [union, '{"kind":"b","x":1}'], [union, '{"kind":"c"}'],
      [mixedEnum, '"blue"'], [mixedEnum, "2"], [mixedEnum, "false"], [mixedEnum, '{"a":[2]}'],
      [shortString, '"a"'], [shortString, '"abcdef"'],
      [intMap, '{"a":"x"}'], [rootNumber, "NaN"], [rootNumber, "+1"], [nullableInts, "[1.5]"],
    ];
    for (const [s, t] of cases) expect(accepts(s, t), t).toBe(false);
  });

  it("accept() is all-or-nothing; clone() is independent", () => {
    const m = new JsonSchemaMatcher(person);
    expect(m.accept('{"na')).toBe(true);
    const c = m.clone();
    expect(m.accept('me":"x",BAD')).toBe(false);
    expect(m.consumed).toBe('{"na');
    expect(c.accept('me":"x","age":7}')).toBe(true);
    expect(c.isComplete()).toBe(true);
    expect(c.isFinished()).toBe(true);
    expect(m.isComplete()).toBe(false);
    expect(m.accept('me":"y","age":8}')).toBe(true);
    expect(m.consumed).toBe('{"name":"y","age":8}');
  });

  it("numbers at the top level are complete but may continue", () => {
    const m = new JsonSchemaMatcher({ type: "integer" });
    expect(m.accept("-")).toBe(true);
    expect(m.isComplete()).toBe(false);
    expect(m.accept("12")).toBe(true);
    expect(m.isComplete()).toBe(true);
    expect(m.isFinished()).toBe(false);
    expect(m.canAccept("3")).toBe(true);
    expect(m.canAccept(".")).toBe(false);
  });

  it("bounds number length so generation cannot run away", () => {
    const m = new JsonSchemaMatcher({ type: "number" }, { maxNumberLength: 4 });
    expect(m.accept("123")).toBe(true);
    expect(m.canAccept(".")).toBe(false); // "123." would need a 5th character
    expect(m.accept("4")).toBe(true);
    expect(m.canAccept("5")).toBe(false);
    expect(m.isComplete()).toBe(true);
  });

  it("every prefix of a valid text can be completed; random mutations never yield invalid complete JSON", () => {
    const r = new Mulberry32(2024);
    const alphabet = '{}[],:"abn01-.e\\u"tfl ';
    for (const [, s] of SCHEMAS) {
      for (let trial = 0; trial < 300; trial++) {
        let t = "";
        const m = new JsonSchemaMatcher(s);
        for (let step = 0; step < 40; step++) {
          const ch = alphabet[Math.floor(r.next() * alphabet.length)]!;
          if (m.accept(ch)) t += ch;
        }
        expect(m.consumed).toBe(t);
        if (m.isComplete()) {
          const v = JSON.parse(t);
          expect(validate(v, s), t).toBe(true);
        }
      }
    }
  });

  it("rejects unsupported keywords unless told to ignore them", () => {
    expect(() => new JsonSchemaMatcher({ type: "string", pattern: "^a" })).toThrow(Lfm2Error);
    expect(() => new JsonSchemaMatcher({ type: "integer", minimum: 3 })).toThrow(/minimum/);
    expect(() => new JsonSchemaMatcher({ $ref: "#/nowhere" })).toThrow(Lfm2Error);
    expect(() => new JsonSchemaMatcher({ type: "object", properties: {}, required: ["x"] })).toThrow(Lfm2Error);
    expect(() => new JsonSchemaMatcher(false)).toThrow(Lfm2Error);
    const m = new JsonSchemaMatcher({ type: "string", pattern: "^a", format: "date", description: "d" }, { ignoreUnsupported: true });
    expect(m.accept('"zz"')).toBe(true);
    // annotations alone are fine
    expect(new JsonSchemaMatcher({ type: "string", format: "date", title: "t" }).accept('"x"')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// Token level

const EOG = 0;
const SPECIAL = 1;
const TOKENS = [
  "<eog>", "<|special|>",
  "{", "}", "[", "]", ",", ":", '"', '{"', '"}', '":', '",', '","', '":"', '"]', '["', '":"', "{}", "[]", '""', ',"', "},", "],",
  "a", "b", "c", "ab", "re", "red", "d", "x", "y", "v", "kids", "kind", "name", '"name":', "age", '"age":', "tags", "nick", "nickname",
  "score", "any key", " ", "é", "\uFFFD", "\\", "\\n", "\\u", "00", "e9", '\\"', "\n",
  "0", "1", "2", "9", "12", "-", ".", "e", "E", "+", ".5", "e-", "10", "-1",
  "true", "false", "null", "nu", "ll", "tr", "ue", "fal", "se", '{"a":[1]}', '"re"', '"a"', '"b"', '"c"',
  // like a byte-level BPE vocabulary, every single character the schemas need is a token too
  ..."fghijklmnopqrstuvwz345678".split(""),
];
const CLOSERS = [EOG, ...["}", "]", '"', '"}', '"]', "0"].map((t) => TOKENS.indexOf(t))];
const vocab = {
  vocabSize: TOKENS.length,
  tokenText: (id: number) => TOKENS[id]!,
  eogIds: [EOG],
  isSpecial: (id: number) => id === SPECIAL,
};

function generate(schema: S, sampler: Sampler, r: Mulberry32, maxSteps = 4000): { text: string; steps: number } {
  const c = new TokenConstraint(new JsonSchemaMatcher(schema), vocab);
  const history: number[] = [];
  const logits = new Float32Array(TOKENS.length);
  let text = "";
  for (let step = 0; step < maxSteps; step++) {
    for (let i = 0; i < logits.length; i++) logits[i] = r.next() * 6;
    // after a while, favour tokens that close things so every run terminates
    if (step > 150) for (const t of CLOSERS) logits[t] = logits[t]! + Math.min(20, (step - 150) / 10);
    const id = sampleConstrained(sampler, logits, history, c);
    expect(c.allowed(id)).toBe(true);
    c.advance(id);
    history.push(id);
    if (id === EOG) return { text, steps: step };
    expect(id).not.toBe(SPECIAL);
    text += TOKENS[id];
  }
  throw new Error("generation did not finish: " + text.slice(0, 200));
}

describe("TokenConstraint + sampleConstrained", () => {
  for (const [name, schema] of SCHEMAS) {
    it(`random logits always give valid JSON for schema "${name}"`, () => {
      const r = new Mulberry32(name.length * 7919 + 1);
      const outputs = new Set<string>();
      for (let run = 0; run < 40; run++) {
        const opts = run % 4 === 0 ? { temperature: 0 } : run % 4 === 1 ? { temperature: 1.5, seed: run } : run % 4 === 2 ? { temperature: 1, topK: 5, seed: run } : { temperature: 0.7, minP: 0.05, topP: 0.95, seed: run };
        const { text } = generate(schema, new Sampler(opts, TOKENS.length), r);
        let v: unknown;
        expect(() => { v = JSON.parse(text); }, text).not.toThrow();
        expect(validate(v, schema), text).toBe(true);
        outputs.add(text);
      }
      // random logits explore: not the same output every time
      if (name !== "rootNumber") expect(outputs.size).toBeGreaterThan(3);
    });
  }

  it("greedy constrained sampling is the argmax over allowed tokens (lazy order = full scan)", () => {
    const r = new Mulberry32(77);
    const sampler = new Sampler({ temperature: 0 }, TOKENS.length);
    for (let run = 0; run < 20; run++) {
      const c = new TokenConstraint(new JsonSchemaMatcher(person), vocab);
      for (let step = 0; step < 60 && !c.finished; step++) {
        const logits = Float32Array.from(TOKENS, () => Math.floor(r.next() * 8)); // many ties
        const allowed = c.allowedIds();
        let best = -1;
        for (const id of allowed) if (best < 0 || logits[id]! > logits[best]!) best = id;
        const got = sampleConstrained(sampler, logits, [], c, { candidates: 3 });
        expect(got).toBe(best);
        c.advance(got);
      }
    }
  });

  it("allows only EOG once complete, and EOG only then", () => {
    const c = new TokenConstraint(new JsonSchemaMatcher({ type: "boolean" }), vocab);
    expect(c.allowed(EOG)).toBe(false);
    expect(c.allowedIds().map((id) => TOKENS[id])).toEqual(["true", "false", "tr", "fal", "f", "t"]);
    c.advance(TOKENS.indexOf("tr"));
    expect(c.allowedIds().map((id) => TOKENS[id])).toEqual(["ue", "u"]);
    c.advance(TOKENS.indexOf("ue"));
    expect(c.isComplete()).toBe(true);
    expect(c.allowedIds()).toEqual([EOG]);
    c.advance(EOG);
    expect(c.finished).toBe(true);
    expect(c.allowedIds()).toEqual([]);
    expect(() => c.advance(EOG)).toThrow(Lfm2Error);
  });

  it("never allows special or empty tokens, and rejects disallowed advances", () => {
    const c = new TokenConstraint(new JsonSchemaMatcher({ type: "string" }), { ...vocab, tokenText: (id) => (id === 2 ? "" : TOKENS[id]!) });
    c.advance(TOKENS.indexOf('"'));
    expect(c.allowed(SPECIAL)).toBe(false);
    expect(c.allowed(2)).toBe(false);
    expect(c.allowed(TOKENS.indexOf("\uFFFD"))).toBe(true); // partial UTF-8 bytes are fine inside strings
    expect(() => c.advance(TOKENS.indexOf("\n"))).toThrow(Lfm2Error);
  });

  it("falls back to a full scan when none of the top candidates is allowed", () => {
    const c = new TokenConstraint(new JsonSchemaMatcher({ const: "re" }), vocab);
    const logits = new Float32Array(TOKENS.length).fill(10);
    const target = TOKENS.indexOf('"re"');
    logits[target] = -5; // the only allowed whole-value token is ranked last
    logits[TOKENS.indexOf('"')] = -6;
    const s = new Sampler({ temperature: 1, seed: 3 }, TOKENS.length);
    const got = sampleConstrained(s, logits, [], c, { candidates: 4 });
    expect([target, TOKENS.indexOf('"')]).toContain(got);
  });

  // Speed is measured by bench/json-schema-speed.ts; here the work is bounded by counting calls, so the
  // test does not depend on how busy the machine is.
  it("with a 65,536-token vocabulary, decodes each token once and checks it at most once per step", () => {
    const V = 65536;
    const r = new Mulberry32(5);
    const letters = "abcdefghijklmnopqrstuvwxyz";
    const big: string[] = Array.from({ length: V }, (_, i) => {
      if (i < TOKENS.length) return TOKENS[i]!;
      let t = "";
      const n = 1 + Math.floor(r.next() * 6);
      for (let j = 0; j < n; j++) t += letters[Math.floor(r.next() * 26)];
      return i % 5 === 0 ? '"' + t : i % 7 === 0 ? t + '"' : t;
    });
    let decoded = 0;
    const bigVocab = { vocabSize: V, tokenText: (id: number) => { decoded++; return big[id]!; }, eogIds: [EOG], isSpecial: (id: number) => id === SPECIAL };
    const matcher = new JsonSchemaMatcher(person);
    let checks = 0;
    const canAccept = matcher.canAccept.bind(matcher);
    matcher.canAccept = (t: string) => { checks++; return canAccept(t); };
    const c = new TokenConstraint(matcher, bigVocab);
    const s = new Sampler({ temperature: 0.8, topK: 40, seed: 1 }, V);
    const logits = new Float32Array(V);
    let steps = 0;
    let text = "";
    for (; steps < 200 && !c.finished; steps++) {
      for (let i = 0; i < V; i++) logits[i] = r.next() * 5;
      if (steps > 30) for (const t of CLOSERS) logits[t] = logits[t]! + 8;
      const id = sampleConstrained(s, logits, [], c);
      c.advance(id);
      if (id !== EOG) text += big[id];
    }
    expect(c.finished).toBe(true);
    expect(validate(JSON.parse(text), person)).toBe(true);
    expect(decoded).toBeLessThanOrEqual(V); // token texts are cached across steps
    expect(checks).toBeLessThanOrEqual(V * steps); // answers are cached within a step
  });
});
