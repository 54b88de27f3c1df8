import { describe, expect, it } from "vitest";
import {
  formatToolCalls, parsePythonLiteral, parseToolCalls, ToolCallStreamParser, TOOL_CALL_END, TOOL_CALL_START,
  type ParsedToolCalls,
} from "../src/text/tool-calls.js";

const S = TOOL_CALL_START;
const E = TOOL_CALL_END;

describe("parseToolCalls — Pythonic form", () => {
  it("parses the LFM2-1.2B-Tool card example", () => {
    const r = parseToolCalls(`${S}[get_candidate_status(candidate_id="12345")]${E}Checking the current status.`);
    expect(r).toEqual({
      text: "Checking the current status.",
      toolCalls: [{ name: "get_candidate_status", arguments: { candidate_id: "12345" }, id: "call_0" }],
      errors: [],
    });
  });

  it("parses every Python literal kind", () => {
    const r = parseToolCalls(`${S}[fn(a="x", b=2, c=[1, "y"], d={"k": True}, e=None, f=True, g=False, h=-3.5e2, i='sq\\'s', ` +
      `j="\\n\\t\\\\\\"\\u00e9\\x41", k=(1, 2), l=[], m={}, n={'a': {'b': [None, 1.0]}}, o=0x1F, p=1_000, q=.5, r=r"\\d+", s="""tri"ple""", t=(7))]${E}`);
    expect(r.errors).toEqual([]);
    expect(r.text).toBe("");
    expect(r.toolCalls).toHaveLength(1);
    expect(r.toolCalls[0]!.name).toBe("fn");
    expect(r.toolCalls[0]!.arguments).toEqual({
      a: "x", b: 2, c: [1, "y"], d: { k: true }, e: null, f: true, g: false, h: -350, i: "sq's",
      j: "\n\t\\\"éA", k: [1, 2], l: [], m: {}, n: { a: { b: [null, 1] } }, o: 31, p: 1000, q: 0.5, r: "\\d+",
      s: 'tri"ple', t: 7,
    });
  });

  it("parses parallel calls, dotted/hyphenated names, whitespace and trailing commas", () => {
    const r = parseToolCalls(`before ${S}[ a.b(x=1,) ,\n c-d( y = "z" ), noargs() , ]${E} after`);
    expect(r.errors).toEqual([]);
    expect(r.text).toBe("before  after");
    expect(r.toolCalls).toEqual([
      { name: "a.b", arguments: { x: 1 }, id: "call_0" },
      { name: "c-d", arguments: { y: "z" }, id: "call_1" },
      { name: "noargs", arguments: {}, id: "call_2" },
    ]);
  });

  it("accepts a call without the list brackets, and several blocks with running ids", () => {
    const r = parseToolCalls(`${S}f(a=1)${E}mid${S}[g(b=2), h(c=3)]${E}`, { makeId: (i) => `id-${i}` });
    expect(r.toolCalls.map((c) => [c.name, c.id])).toEqual([["f", "id-0"], ["g", "id-1"], ["h", "id-2"]]);
    expect(r.text).toBe("mid");
  });

  it("JSON literals inside Pythonic calls", () => {
    const r = parseToolCalls(`${S}[f(a=true, b=null, c=false, d={"x": [1, 2]})]${E}`);
    expect(r.toolCalls[0]!.arguments).toEqual({ a: true, b: null, c: false, d: { x: [1, 2] } });
  });

  it("keeps unusual keys safe (no prototype pollution)", () => {
    const r = parseToolCalls(`${S}[f(a={"__proto__": {"polluted": 1}})]${E}`);
    const a = r.toolCalls[0]!.arguments.a as Record<string, unknown>;
    expect(Object.keys(a)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("parseToolCalls — JSON form", () => {
  it("array of {name, arguments}", () => {
    const r = parseToolCalls(`${S}[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}, {"name": "noop", "arguments": {}}]${E}`);
    expect(r.errors).toEqual([]);
    expect(r.toolCalls).toEqual([
      { name: "get_weather", arguments: { city: "Paris", days: 3 }, id: "call_0" },
      { name: "noop", arguments: {}, id: "call_1" },
    ]);
  });

  it("single object, string-encoded arguments, OpenAI function wrapper", () => {
    expect(parseToolCalls(`${S}{"name": "a", "arguments": {"x": [true, null]}}${E}`).toolCalls[0]!.arguments).toEqual({ x: [true, null] });
    expect(parseToolCalls(`${S}[{"name": "a", "arguments": "{\\"x\\": 1}"}]${E}`).toolCalls[0]!.arguments).toEqual({ x: 1 });
    expect(parseToolCalls(`${S}[{"type": "function", "function": {"name": "w", "arguments": {"q": "s"}}}]${E}`).toolCalls[0])
      .toEqual({ name: "w", arguments: { q: "s" }, id: "call_0" });
  });
});

describe("parseToolCalls — malformed input never throws", () => {
  const bad = [
    `${S}[f(1)]${E}`, // positional
    `${S}[f(a=)]${E}`,
    `${S}[f(a="x)]${E}`, // unterminated string
    `${S}[f(a=1, a=2)]${E}`, // duplicate
    `${S}[f(a=[1, 2)]${E}`,
    `${S}[f(a=1)${E}`, // missing ]
    `${S}[f(a=1)] trailing${E}`,
    `${S}[{"arguments": {}}]${E}`, // no name
    `${S}[{"name": "f", "arguments": [1]}]${E}`,
    `${S}[f(a=undefined_name)]${E}`,
    `${S}[f(a=01)]${E}`,
    `${S}[f(a=1e)]${E}`,
    `${S}[f(a='line\nbreak')]${E}`,
  ];
  for (const src of bad) {
    it(`keeps ${JSON.stringify(src)} as text with an error`, () => {
      const r = parseToolCalls("pre " + src + " post");
      expect(r.toolCalls).toEqual([]);
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]!.raw).toBe(src);
      expect(r.text).toBe("pre " + src + " post");
    });
  }

  it("newlines between tokens are whitespace, not an error", () => {
    const r = parseToolCalls(`${S}[f(a="x"\n)]${E}`);
    expect(r.errors).toEqual([]);
    expect(r.toolCalls).toEqual([{ name: "f", arguments: { a: "x" }, id: "call_0" }]);
  });

  it("an unterminated block is text plus an error", () => {
    const r = parseToolCalls(`ok ${S}[f(a=1)`);
    expect(r.toolCalls).toEqual([]);
    expect(r.text).toBe(`ok ${S}[f(a=1)`);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.message).toMatch(/unterminated/);
  });

  it("a malformed block does not spoil a later good one", () => {
    const r = parseToolCalls(`${S}[f(]${E}x${S}[g(b=1)]${E}`);
    expect(r.text).toBe(`${S}[f(]${E}x`);
    expect(r.toolCalls).toEqual([{ name: "g", arguments: { b: 1 }, id: "call_0" }]);
    expect(r.errors).toHaveLength(1);
  });

  it("a stray end marker is plain text", () => {
    expect(parseToolCalls(`a${E}b`)).toEqual({ text: `a${E}b`, toolCalls: [], errors: [] });
  });
});

describe("parsePythonLiteral", () => {
  it("parses and rejects", () => {
    expect(parsePythonLiteral(`{'a': [1, 2.5, -3], "b": (None,), 1: True}`)).toEqual({ a: [1, 2.5, -3], b: [null], 1: true });
    expect(parsePythonLiteral(`"\\U0001F600\\101"`)).toBe("😀A");
    expect(() => parsePythonLiteral("[1, 2")).toThrow();
    expect(() => parsePythonLiteral("foo")).toThrow();
    expect(() => parsePythonLiteral("1 2")).toThrow();
  });
});

function streamAll(chunks: string[]): ParsedToolCalls & { pieces: string[] } {
  const p = new ToolCallStreamParser();
  const out: ParsedToolCalls & { pieces: string[] } = { text: "", toolCalls: [], errors: [], pieces: [] };
  for (const c of [...chunks.map((c) => p.push(c)), p.end()]) {
    out.text += c.text;
    out.pieces.push(c.text);
    out.toolCalls.push(...c.toolCalls);
    out.errors.push(...c.errors);
  }
  return out;
}

describe("ToolCallStreamParser", () => {
  const samples = [
    `Sure. ${S}[get_weather(city="Paris", unit='c'), get_time(tz="CET")]${E} Done.`,
    `${S}[{"name": "a", "arguments": {"x": "<|tool_call"}}]${E}`,
    `<|tool_ <|tool_call_star ${S}[f(a="<|tool_call_end")]${E}<|tool_call_sta`,
    `${S}[bad(1)]${E}tail${S}[ok(z=None)]${E}`,
    `no calls at all, just < and <| and <|t`,
    `x ${S}[f(a=1)`,
  ];
  for (const sample of samples) {
    it(`matches the batch parse for every split point and single characters: ${JSON.stringify(sample).slice(0, 50)}`, () => {
      const whole = parseToolCalls(sample);
      for (let i = 0; i <= sample.length; i++) {
        for (let j = i; j <= sample.length; j += 7) {
          const r = streamAll([sample.slice(0, i), sample.slice(i, j), sample.slice(j)]);
          expect(r.text).toBe(whole.text);
          expect(r.toolCalls).toEqual(whole.toolCalls);
          expect(r.errors).toEqual(whole.errors);
        }
      }
      const chars = streamAll([...sample]);
      expect(chars.text).toBe(whole.text);
      expect(chars.toolCalls).toEqual(whole.toolCalls);
    });
  }

  it("never emits any part of a marker or of a call body", () => {
    const sample = `Hi ${S}[f(secret="SECRET")]${E}bye`;
    const r = streamAll([...sample]);
    for (const piece of r.pieces) {
      expect(piece).not.toContain("<");
      expect(piece).not.toContain("SECRET");
    }
    expect(r.text).toBe("Hi bye");
  });

  it("releases plain text immediately and holds only a possible marker prefix", () => {
    const p = new ToolCallStreamParser();
    expect(p.push("Hello <|tool").text).toBe("Hello ");
    expect(p.push("_x").text).toBe("<|tool_x");
    expect(p.push("<").text).toBe("");
    expect(p.push("|tool_call_start|>[f(a=1)]").text).toBe("");
    expect(p.insideToolCall).toBe(true);
    const done = p.push("<|tool_call_end|>!");
    expect(done.text).toBe("!");
    expect(done.toolCalls).toEqual([{ name: "f", arguments: { a: 1 }, id: "call_0" }]);
    expect(p.end()).toEqual({ text: "", toolCalls: [], errors: [] });
  });
});

describe("formatToolCalls", () => {
  it("writes the Pythonic form and round-trips through the parser", () => {
    const calls = [
      { name: "f", arguments: { s: "a \"q\" \\ \n é 😀", n: -2, x: 0.25, t: true, f: false, z: null, l: [1, ["x"]], d: { "k k": { j: 1 } } } },
      { name: "g", arguments: {} },
    ];
    const text = formatToolCalls(calls);
    expect(text).toBe(`${S}[f(s="a \\"q\\" \\\\ \\n é 😀", n=-2, x=0.25, t=True, f=False, z=None, l=[1, ["x"]], d={"k k": {"j": 1}}), g()]${E}`);
    const back = parseToolCalls(text);
    expect(back.errors).toEqual([]);
    expect(back.toolCalls.map(({ name, arguments: a }) => ({ name, arguments: a }))).toEqual(calls);
  });

  it("falls back to JSON when keys are not identifiers, and that round-trips too", () => {
    const calls = [{ name: "f", arguments: { "not an identifier": 1 } }];
    const text = formatToolCalls(calls);
    expect(text).toBe(`${S}[{"name": "f", "arguments": {"not an identifier": 1}}]${E}`);
    expect(parseToolCalls(text).toolCalls[0]!.arguments).toEqual({ "not an identifier": 1 });
    expect(formatToolCalls([{ name: "f", arguments: { a: 1 } }], "json")).toBe(`${S}[{"name": "f", "arguments": {"a": 1}}]${E}`);
  });
});
