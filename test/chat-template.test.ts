import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LFM2_CHAT_TEMPLATE, renderChat, type ChatMessage, type ToolDefinition } from "../src/text/chat-template.js";
import { Lfm2Error } from "../src/errors.js";

const here = dirname(fileURLToPath(import.meta.url));
// the official file, kept in the repository with its LICENSE and SOURCE.txt
const fixture = resolve(here, "fixtures/lfm2-tokenizer/chat_template.jinja");

const weatherTool: ToolDefinition = {
  name: "get_weather",
  description: "Current weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const weatherJson = '{"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}';

describe("LFM2_CHAT_TEMPLATE", () => {
  it("is byte-identical to the official chat_template.jinja", () => {
    expect(LFM2_CHAT_TEMPLATE).toBe(readFileSync(fixture, "utf8"));
  });

  it("has the official template's distinctive pieces", () => {
    expect(LFM2_CHAT_TEMPLATE.startsWith("{{- bos_token -}}\n")).toBe(true);
    expect(LFM2_CHAT_TEMPLATE).toContain('"List of tools: <|tool_list_start|>["');
    expect(LFM2_CHAT_TEMPLATE).toContain("\t{%- set ns.system_prompt = messages[0][\"content\"] -%}");
    expect(LFM2_CHAT_TEMPLATE.endsWith("{%- endif -%}")).toBe(true);
    expect(LFM2_CHAT_TEMPLATE.length).toBe(1379);
  });
});

describe("renderChat — hand-written expectations", () => {
  it("single user turn, no system", () => {
    expect(renderChat([{ role: "user", content: "Hello" }])).toBe(
      "<|startoftext|><|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("addGenerationPrompt false", () => {
    expect(renderChat([{ role: "user", content: "Hello" }], { addGenerationPrompt: false })).toBe(
      "<|startoftext|><|im_start|>user\nHello<|im_end|>\n",
    );
  });

  it("system + tools", () => {
    const out = renderChat(
      [{ role: "system", content: "You are helpful." }, { role: "user", content: "Weather in Paris?" }],
      { tools: [weatherTool] },
    );
    expect(out).toBe(
      "<|startoftext|><|im_start|>system\nYou are helpful.\nList of tools: <|tool_list_start|>[" + weatherJson +
      "]<|tool_list_end|><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("tools without a system message; OpenAI-style and string tools, joined by \", \"", () => {
    const out = renderChat([{ role: "user", content: "hi" }], {
      tools: [{ type: "function", function: { name: "a", parameters: { type: "object" } } }, "raw text tool"],
    });
    expect(out).toBe(
      "<|startoftext|><|im_start|>system\nList of tools: <|tool_list_start|>[" +
      '{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}, raw text tool' +
      "]<|tool_list_end|><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("empty system prompt is dropped; empty tools list is no tools", () => {
    expect(renderChat([{ role: "system", content: "" }, { role: "user", content: "x" }], { tools: [] })).toBe(
      "<|startoftext|><|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("multi-turn with tool call and tool result", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "S" },
      { role: "user", content: "What is the status of candidate 12345?" },
      { role: "assistant", content: "Checking.", toolCalls: [{ name: "get_candidate_status", arguments: { candidate_id: "12345" } }] },
      { role: "tool", content: '{"status": "interview"}' },
      { role: "assistant", content: "They are at the interview stage." },
      { role: "user", content: "Thanks" },
    ];
    expect(renderChat(messages)).toBe(
      "<|startoftext|><|im_start|>system\nS<|im_end|>\n" +
      "<|im_start|>user\nWhat is the status of candidate 12345?<|im_end|>\n" +
      '<|im_start|>assistant\n<|tool_call_start|>[get_candidate_status(candidate_id="12345")]<|tool_call_end|>Checking.<|im_end|>\n' +
      '<|im_start|>tool\n<|tool_response_start|>{"status": "interview"}<|tool_response_end|><|im_end|>\n' +
      "<|im_start|>assistant\nThey are at the interview stage.<|im_end|>\n" +
      "<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("parallel tool calls with mixed argument types and null content", () => {
    const out = renderChat([
      { role: "user", content: "go" },
      {
        role: "assistant", content: null, toolCalls: [
          { name: "f", arguments: { s: 'say "hi"\n', n: 2, x: 1.5, b: false, z: null, l: [1, "y"], d: { k: true } } },
          { name: "g", arguments: '{"q": "json string args"}' },
        ],
      },
    ], { addGenerationPrompt: false });
    expect(out).toBe(
      "<|startoftext|><|im_start|>user\ngo<|im_end|>\n<|im_start|>assistant\n" +
      '<|tool_call_start|>[f(s="say \\"hi\\"\\n", n=2, x=1.5, b=False, z=None, l=[1, "y"], d={"k": True}), g(q="json string args")]<|tool_call_end|>' +
      "<|im_end|>\n",
    );
  });

  it("non-string content is tojson-ed (user, tool and assistant)", () => {
    const out = renderChat([
      { role: "user", content: [{ type: "text", text: "héllo" }] },
      { role: "assistant", content: { answer: 42, ok: true, none: null } },
      { role: "tool", content: [1, 2.5, "x"] },
    ]);
    expect(out).toBe(
      '<|startoftext|><|im_start|>user\n[{"type": "text", "text": "héllo"}]<|im_end|>\n' +
      '<|im_start|>assistant\n{"answer": 42, "ok": true, "none": null}<|im_end|>\n' +
      '<|im_start|>tool\n<|tool_response_start|>[1, 2.5, "x"]<|tool_response_end|><|im_end|>\n' +
      "<|im_start|>assistant\n",
    );
  });

  it("only the first message is treated as the system prompt", () => {
    const out = renderChat([{ role: "user", content: "u" }, { role: "system", content: "late" }], { addGenerationPrompt: false });
    expect(out).toBe("<|startoftext|><|im_start|>user\nu<|im_end|>\n<|im_start|>system\nlate<|im_end|>\n");
  });

  it("custom bos token, custom template and extra variables", () => {
    expect(renderChat([{ role: "user", content: "a" }], { bosToken: "<s>", addGenerationPrompt: false })).toBe(
      "<s><|im_start|>user\na<|im_end|>\n",
    );
    const t = "{{ greeting }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ eos_token }}";
    expect(renderChat([{ role: "user", content: "a" }, { role: "assistant", content: "b" }], { template: t, extra: { greeting: "hi" } })).toBe(
      "hi[user:a][assistant:b]<|im_end|>",
    );
  });

  it("custom template that handles tool_calls gets them structured", () => {
    const t = "{% for m in messages %}{{ m.role }}|{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}|{{ m.content }};{% endfor %}";
    const out = renderChat([{ role: "assistant", content: "x", toolCalls: [{ name: "f", arguments: { a: 1 }, id: "c1" }] }], { template: t });
    expect(out).toBe('assistant|[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]|x;');
  });

  it("rejects bad input with Lfm2Error BAD_INPUT", () => {
    const codes: string[] = [];
    const attempt = (f: () => unknown) => {
      try { f(); codes.push("none"); } catch (e) { codes.push(e instanceof Lfm2Error ? e.code : "other"); }
    };
    attempt(() => renderChat([]));
    attempt(() => renderChat([{ role: "robot" as never, content: "x" }]));
    attempt(() => renderChat([{ role: "user", content: "x", toolCalls: [{ name: "f", arguments: {} }] }]));
    attempt(() => renderChat([{ role: "user", content: "x" }], { template: "{% if %}" }));
    attempt(() => renderChat([{ role: "user", content: undefined }]));
    expect(codes).toEqual(["BAD_INPUT", "BAD_INPUT", "BAD_INPUT", "BAD_INPUT", "BAD_INPUT"]);
  });
});

// ---------------------------------------------------------------------------------------------------
// An independent renderer written from spec §4.3 (no Jinja), compared on random conversations.

function pyJson(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return "[" + v.map(pyJson).join(", ") + "]";
  return "{" + Object.entries(v as object).map(([k, x]) => JSON.stringify(k) + ": " + pyJson(x)).join(", ") + "}";
}

function referenceRender(messages: Array<{ role: string; content: unknown }>, tools: unknown[] | undefined, gen: boolean): string {
  let out = "<|startoftext|>";
  let system = "";
  let rest = messages;
  if (messages[0]?.role === "system") { system = messages[0].content as string; rest = messages.slice(1); }
  if (tools && tools.length > 0) {
    system += (system ? "\n" : "") + "List of tools: <|tool_list_start|>[" +
      tools.map((t) => (typeof t === "string" ? t : pyJson(t))).join(", ") + "]<|tool_list_end|>";
  }
  if (system) out += "<|im_start|>system\n" + system + "<|im_end|>\n";
  for (const m of rest) {
    let c = typeof m.content === "string" ? m.content : pyJson(m.content);
    if (m.role === "tool") c = "<|tool_response_start|>" + c + "<|tool_response_end|>";
    out += "<|im_start|>" + m.role + "\n" + c + "<|im_end|>\n";
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

describe("renderChat — agrees with an independent renderer", () => {
  it("on 300 random conversations", () => {
    const r = rng(12345);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    const texts = ["", "hi", "multi\nline", "quotes \" and ' and \\", "ünïcødé ✓ 日本", "{{ not jinja }}", "<|im_end|>"];
    const contents: unknown[] = [...texts, { a: 1 }, [1, "two", null], { nested: { list: [true, false] } }, 3.25];
    const toolsPool: unknown[] = [weatherTool, { type: "function", function: { name: "x", description: "d" } }, "plain"];
    for (let iter = 0; iter < 300; iter++) {
      const msgs: Array<{ role: "system" | "user" | "assistant" | "tool"; content: unknown }> = [];
      if (r() < 0.5) msgs.push({ role: "system", content: pick(texts) });
      const n = 1 + Math.floor(r() * 6);
      for (let i = 0; i < n; i++) msgs.push({ role: pick(["user", "assistant", "tool", "user"] as const), content: pick(contents) });
      const tools = r() < 0.4 ? toolsPool.slice(0, 1 + Math.floor(r() * 3)) : undefined;
      const gen = r() < 0.7;
      const got = renderChat(msgs, { tools: tools as ToolDefinition[] | undefined, addGenerationPrompt: gen });
      expect(got).toBe(referenceRender(msgs, tools, gen));
    }
  });
});
