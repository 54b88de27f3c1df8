// Caller input that used to be misread or to escape as an untyped TypeError / RangeError / NaN:
// sampling defaults and infinite biases, malformed prompts, tools and schemas, byte sources with a
// bad size, a vocabulary larger than the embedding table, huge metadata arrays, stalled downloads.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../src/index.js";
import { Lfm2Error } from "../src/errors.js";
import { GgufBoolArray, GgufValueType, parseGguf } from "../src/formats/gguf.js";
import { buildSyntheticVocab } from "../src/text/synthetic-vocab.js";
import { generate, renderPrompt, resolveSamplingOptions, type GenerationTarget } from "../src/generate/generate.js";
import { JsonSchemaMatcher } from "../src/generate/json-schema.js";
import { LFM2_DEFAULT_SAMPLING, Sampler } from "../src/generate/sampler.js";
import { openSource, urlSource, type ByteSource } from "../src/io/source.js";
import { renderChat } from "../src/text/chat-template.js";
import { assertVocabFits, Tokenizer } from "../src/text/tokenizer.js";

/** The synthetic LFM2-style tokenizer (real special tokens at their ids) built without a model file. */
function syntheticTokenizer(): Tokenizer {
  const v = buildSyntheticVocab(1024);
  return new Tokenizer({ tokens: v.tokens, types: v.types, merges: v.merges, bosId: 1, eosId: 7, eotId: 2, padId: 0, addBos: true, ignoreMerges: true });
}
const tok = syntheticTokenizer();

/** A session stand-in whose next-token logits are always `logits` (padded with -30 to the vocabulary). */
function fixedTarget(first: number[]): GenerationTarget {
  const logits = new Float32Array(tok.vocabSize).fill(-30);
  logits.set(first);
  const tokens: number[] = [];
  return {
    contextLength: 4096, tokens,
    async forward(ids) { tokens.push(...Array.from(ids)); return logits; },
    rewindToPrefix() { tokens.length = 0; return 0; },
    checkpoint() {},
  };
}

async function drain(it: AsyncGenerator<unknown, { tokens: number[] }>): Promise<number[]> {
  for (;;) { const r = await it.next(); if (r.done) return r.value.tokens; }
}

async function codeOfAsync(f: () => Promise<unknown>): Promise<string> {
  try { await f(); } catch (e) { return e instanceof Lfm2Error ? e.code : `untyped ${String(e)}`; }
  return "no error";
}
function codeOf(f: () => unknown): string {
  try { f(); } catch (e) { return e instanceof Lfm2Error ? e.code : `untyped ${String(e)}`; }
  return "no error";
}

// token 0 = a non-EOG ordinary token; its rival 1 is 2 logits behind
const FIRST = [2, 0];
const noEog = (ids: number[]) => ids.every((id) => !tok.eogIds.has(id));

describe("sampling options over the model-card defaults", () => {
  it("{ seed } alone keeps temperature 0.3 / min_p 0.15 / repetition penalty 1.05", () => {
    expect(resolveSamplingOptions({ seed: 42 })).toEqual({ ...LFM2_DEFAULT_SAMPLING, seed: 42 });
    expect(resolveSamplingOptions({ seed: 42, temperature: undefined, minP: undefined }))
      .toEqual({ ...LFM2_DEFAULT_SAMPLING, seed: 42 });
    expect(resolveSamplingOptions({ temperature: 1, minP: 0 })).toEqual({ ...LFM2_DEFAULT_SAMPLING, temperature: 1, minP: 0 });
  });

  it("generation with only a seed draws as the defaults do (min_p drops the rival token)", async () => {
    expect(noEog([0, 1])).toBe(true);
    const seeded = await drain(generate(fixedTarget(FIRST), tok, [1, 2, 3], { seed: 42, maxTokens: 60 }));
    expect(seeded.every((id) => id === 0)).toBe(true);
    // explicit options still override: at temperature 1 without min-p the rival (p ≈ 0.12) shows up
    const hot = await drain(generate(fixedTarget(FIRST), tok, [1, 2, 3], { seed: 42, maxTokens: 60, temperature: 1, minP: 0, repetitionPenalty: 1 }));
    expect(hot.some((id) => id === 1)).toBe(true);
  });
});

describe("infinite logit biases", () => {
  const logits = Float32Array.from({ length: 16 }, (_, i) => (i * 7) % 5);
  it("+Infinity forces the token at any temperature, greedy included", () => {
    for (const temperature of [0, 0.3, 1, 2]) {
      for (const extra of [{}, { topK: 4 }, { topP: 0.5 }, { minP: 0.1 }, { repetitionPenalty: 1.3 }]) {
        const s = new Sampler({ temperature, seed: 1, logitBias: { 3: Infinity }, ...extra }, 16);
        for (let i = 0; i < 20; i++) expect(s.sample(logits, [3, 3, 5])).toBe(3);
      }
    }
  });

  it("several +Infinity tokens: only those are drawn, each sometimes; greedy takes the lowest id", () => {
    const s = new Sampler({ temperature: 0.7, seed: 5, logitBias: { 9: Infinity, 4: Infinity } }, 16);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(s.sample(logits, []));
    expect([...seen].sort()).toEqual([4, 9]);
    expect(new Sampler({ temperature: 0, logitBias: { 9: Infinity, 4: Infinity } }, 16).sample(logits, [])).toBe(4);
  });

  it("-Infinity bans; everything banned is a typed error", () => {
    const s = new Sampler({ temperature: 1, seed: 2, logitBias: { 0: -Infinity, 1: -Infinity } }, 2);
    expect(codeOf(() => s.sample(Float32Array.of(1, 2), []))).toBe("BAD_INPUT");
    const ban = new Sampler({ temperature: 1.5, seed: 3, logitBias: { 4: -Infinity } }, 16);
    for (let i = 0; i < 200; i++) expect(ban.sample(logits, [])).not.toBe(4);
  });

  it("a logitBias that is not an object is BAD_INPUT", () => {
    expect(codeOf(() => new Sampler({ logitBias: null as never }, 4))).toBe("BAD_INPUT");
    expect(codeOf(() => new Sampler({ logitBias: 5 as never }, 4))).toBe("BAD_INPUT");
  });
});

describe("malformed prompts and chat options", () => {
  for (const [name, prompt] of [["null", null], ["undefined", undefined], ["a number", 42], ["an object", { a: 1 }],
    ["ids with a float", [1, 2.5]], ["ids out of range", [1, 1e9]], ["a negative id", [-1]]] as const) {
    it(`generate(${name}) is BAD_INPUT`, async () => {
      expect(await codeOfAsync(() => drain(generate(fixedTarget(FIRST), tok, prompt as never, { maxTokens: 1 })))).toBe("BAD_INPUT");
    });
  }

  it("tools must be a list of tool objects or strings", () => {
    const msgs = [{ role: "user" as const, content: "x" }];
    for (const tools of [{}, "tool", 5, [null], [5], [{}], [{ type: "function" }], [{ type: "function", function: { name: 3 } }], [[]]]) {
      expect(codeOf(() => renderChat(msgs, { tools: tools as never }))).toBe("BAD_INPUT");
      expect(codeOf(() => renderPrompt(tok, msgs, { tools: tools as never }))).toBe("BAD_INPUT");
    }
    expect(codeOf(() => renderChat([{ role: "assistant", content: "x", toolCalls: {} as never }]))).toBe("BAD_INPUT");
  });

  it("a 5000-deep JSON schema is BAD_INPUT with a depth message", () => {
    let s: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 5000; i++) s = { type: "object", properties: { a: s } };
    let err: unknown;
    try { new JsonSchemaMatcher(s); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(Lfm2Error);
    expect((err as Lfm2Error).code).toBe("BAD_INPUT");
    expect((err as Lfm2Error).message).toMatch(/deep/);
  });

  it("cyclic $ref schemas are BAD_INPUT or accepted, never a stack overflow", () => {
    const selfRef = { $ref: "#" };
    expect(codeOf(() => new JsonSchemaMatcher(selfRef))).toBe("BAD_INPUT");
    const pair = { $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } }, $ref: "#/$defs/a" };
    expect(codeOf(() => new JsonSchemaMatcher(pair))).toBe("BAD_INPUT");
    const withSiblings = { $defs: { a: { $ref: "#/$defs/a", type: "string" } }, $ref: "#/$defs/a", minLength: 1 };
    expect(codeOf(() => new JsonSchemaMatcher(withSiblings))).toBe("BAD_INPUT");
    const objCycle: Record<string, unknown> = { type: "object" };
    objCycle.properties = { self: objCycle };
    expect(["BAD_INPUT", "no error"]).toContain(codeOf(() => new JsonSchemaMatcher(objCycle)));
    expect(codeOf(() => new JsonSchemaMatcher({ type: 10n } as never))).toBe("BAD_INPUT");
  });
});

describe("byte sources", () => {
  const src = (size: number): ByteSource => ({ name: "custom", size, async *chunks() { yield new Uint8Array(4); } });
  for (const size of [NaN, -1, 1.5, Infinity]) {
    it(`size ${size} is BAD_INPUT`, async () => {
      expect(await codeOfAsync(() => openSource(src(size)))).toBe("BAD_INPUT");
    });
  }
  it("a valid custom source passes through", async () => {
    const s = src(4);
    expect(await openSource(s)).toBe(s);
  });
});

describe("vocabulary against the embedding table", () => {
  it("assertVocabFits throws SHAPE_MISMATCH when the vocabulary has more tokens than rows", () => {
    expect(codeOf(() => assertVocabFits(tok, tok.vocabSize - 1))).toBe("SHAPE_MISMATCH");
    expect(codeOf(() => assertVocabFits(tok, tok.vocabSize))).toBe("no error");
    expect(codeOf(() => assertVocabFits(tok, tok.vocabSize + 100))).toBe("no error");
    expect(codeOf(() => assertVocabFits(tok, NaN))).toBe("BAD_INPUT");
  });
});

describe("huge metadata arrays", () => {
  /** A tensor-less GGUF with one array of `count` elements of `type`, each `elemBytes` bytes of `fill`. */
  function arrayGguf(type: GgufValueType, count: number, elemBytes: number, fill: number): Uint8Array {
    const key = new TextEncoder().encode("test.big");
    const head = 4 + 4 + 8 + 8 + 8 + key.length + 4 + 4 + 8;
    const out = new Uint8Array(head + count * elemBytes);
    const v = new DataView(out.buffer);
    let p = 0;
    v.setUint32(p, 0x46554747, true); p += 4; v.setUint32(p, 3, true); p += 4;
    v.setBigUint64(p, 0n, true); p += 8; v.setBigUint64(p, 1n, true); p += 8;
    v.setBigUint64(p, BigInt(key.length), true); p += 8; out.set(key, p); p += key.length;
    v.setUint32(p, GgufValueType.ARRAY, true); p += 4; v.setUint32(p, type, true); p += 4;
    v.setBigUint64(p, BigInt(count), true); p += 8;
    out.fill(fill, p);
    return out;
  }

  it("an 8M-element bool array is a compact typed array", () => {
    const n = 8 << 20;
    const before = process.memoryUsage().heapUsed;
    const meta = parseGguf(arrayGguf(GgufValueType.BOOL, n, 1, 1)).metadata;
    const v = meta.get("test.big");
    expect(v).toBeInstanceOf(GgufBoolArray);
    expect((v as GgufBoolArray).length).toBe(n);
    expect((v as GgufBoolArray)[n - 1]).toBe(1);
    // a JS array of 8M booleans is 64 MiB of heap; the typed array lives off-heap
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 << 20);
  });

  it("a bool array with a value other than 0/1 is BAD_METADATA", () => {
    expect(codeOf(() => parseGguf(arrayGguf(GgufValueType.BOOL, 1000, 1, 2)))).toBe("BAD_METADATA");
  });

  it("u8 arrays stay typed", () => {
    const v = parseGguf(arrayGguf(GgufValueType.U8, 4 << 20, 1, 7)).metadata.get("test.big");
    expect(v).toBeInstanceOf(Uint8Array);
    expect((v as Uint8Array).length).toBe(4 << 20);
  });
});

describe("stalled downloads", () => {
  const servers: Server[] = [];
  afterAll(() => { for (const s of servers) s.closeAllConnections(), s.close(); });

  async function stallingServer(): Promise<string> {
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-length": "1000000", "accept-ranges": "bytes" });
      if (req.method === "HEAD") { res.end(); return; }
      res.write(new Uint8Array(100)); // then nothing, forever
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
  }

  it("a server that stops sending ends in an IO error after readTimeoutMs", async () => {
    const url = await stallingServer();
    const src = await urlSource(url, { readTimeoutMs: 300 });
    let got = 0, err: unknown;
    try { for await (const c of src.chunks()) got += c.length; } catch (e) { err = e; }
    expect(got).toBe(100);
    expect(err).toBeInstanceOf(Lfm2Error);
    expect((err as Lfm2Error).code).toBe("IO");
    expect((err as Lfm2Error).message).toMatch(/no data/);
  });

  it("loadModel passes readTimeoutMs on: a stalled model URL ends in IO instead of a hang", async () => {
    const url = await stallingServer();
    const err = await loadModel(url, { readTimeoutMs: 300, threads: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(Lfm2Error);
    expect((err as Lfm2Error).code).toBe("IO");
    expect((err as Lfm2Error).message).toMatch(/no data for 300 ms/);
  });

  it("a bad readTimeoutMs is BAD_INPUT", async () => {
    expect(await codeOfAsync(() => urlSource("http://127.0.0.1:1/x", { readTimeoutMs: -5 }))).toBe("BAD_INPUT");
  });
});
