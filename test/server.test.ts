// The OpenAI-compatible server, driven by the official `openai` client over real HTTP (plus raw fetch for
// malformed requests): shapes, streaming = non-streaming, forced tool calls, JSON schema output, client
// aborts, FIFO queueing without cross-talk, error statuses, and `lfm2 serve` through the CLI.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { loadModel, type Model } from "../src/index.js";
import { createOpenAIHandler } from "../src/server/openai.js";
import { serveOpenAI, type RunningServer } from "../src/server/node.js";
import { tinyModelBytes } from "./helpers/models.js";

let model: Model;
let server: RunningServer;
let client: OpenAI;
const logs: string[] = [];
const NAME = "tiny-lfm2";
const CTX = 1024;

beforeAll(async () => {
  model = await loadModel(tinyModelBytes({ weightType: "Q8_0", seed: 3 }), { threads: 1 });
  server = await serveOpenAI(model, { port: 0, modelName: NAME, contextLength: CTX, log: (l) => logs.push(l) });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  model?.dispose();
});

const user = (content: string) => [{ role: "user" as const, content }];

/** What the library itself produces for the same request (a fresh session, no server). */
async function libraryChat(content: string, opts: Parameters<Model["chat"]>[1]) {
  const s = model.createSession({ contextLength: CTX });
  try { return await s.chat(user(content), opts); } finally { s.dispose(); }
}

async function collectChat(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let text = "";
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  const calls: { id?: string; type?: string; name: string; arguments: string }[] = [];
  for await (const ch of stream) {
    chunks.push(ch);
    const d = ch.choices[0]?.delta;
    if (d?.content) text += d.content;
    for (const tc of d?.tool_calls ?? []) {
      const c = (calls[tc.index] ??= { name: "", arguments: "" });
      if (tc.id) c.id = tc.id;
      if (tc.type) c.type = tc.type;
      if (tc.function?.name) c.name += tc.function.name;
      if (tc.function?.arguments) c.arguments += tc.function.arguments;
    }
  }
  const finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
  return { text, chunks, calls, finish };
}

describe("chat completions", () => {
  it("non-streaming: OpenAI shape, and the text the library produces for the same request", async () => {
    const r = await client.chat.completions.create({ model: NAME, messages: user("Name three planets."), max_tokens: 16, temperature: 0 });
    const ref = await libraryChat("Name three planets.", { maxTokens: 16, temperature: 0 });
    expect(r.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(r.object).toBe("chat.completion");
    expect(r.model).toBe(NAME);
    expect(typeof r.created).toBe("number");
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.message.role).toBe("assistant");
    expect(r.choices[0]!.message.content).toBe(ref.text);
    expect(r.choices[0]!.finish_reason).toBe(ref.finishReason === "stop" ? "stop" : "length");
    expect(r.usage).toMatchObject({ prompt_tokens: ref.usage.promptTokens, completion_tokens: ref.usage.completionTokens,
      total_tokens: ref.usage.promptTokens + ref.usage.completionTokens });
  });

  it("streaming deltas concatenate to the non-streaming text (greedy and seeded), ending in [DONE] with usage", async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 42, top_k: 50 }]) {
      const body = { model: NAME, messages: user("Tell me a story about a fox."), max_tokens: 40, ...sampling };
      const whole = await client.chat.completions.create(body);
      const s = await collectChat(await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }));
      expect(s.text.length).toBeGreaterThan(0);
      expect(s.text).toBe(whole.choices[0]!.message.content);
      expect(s.chunks[0]!.choices[0]!.delta.role).toBe("assistant");
      expect(s.chunks.every((c) => c.object === "chat.completion.chunk" && c.id === s.chunks[0]!.id && c.id.startsWith("chatcmpl-"))).toBe(true);
      expect(s.finish).toEqual([whole.choices[0]!.finish_reason]);
      const last = s.chunks.at(-1)!;
      expect(last.choices).toEqual([]);
      expect(last.usage).toMatchObject({ prompt_tokens: whole.usage!.prompt_tokens, completion_tokens: whole.usage!.completion_tokens });
    }
    // the raw stream ends with the literal [DONE] event
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: user("Hi"), max_tokens: 3, stream: true }) });
    expect(raw.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect((await raw.text()).trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("stop strings and max_completion_tokens reach generation", async () => {
    const base = { model: NAME, messages: user("Count: one two three"), temperature: 0 };
    const free = await client.chat.completions.create({ ...base, max_completion_tokens: 30 });
    const text = free.choices[0]!.message.content!;
    expect(free.usage!.completion_tokens).toBeLessThanOrEqual(30);
    // stop at a piece of the free text: the reply is cut right before it
    expect(text.length).toBeGreaterThan(8);
    const cut = text.slice(4, 7);
    const stopped = await client.chat.completions.create({ ...base, max_completion_tokens: 30, stop: [cut] });
    expect(stopped.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(cut)));
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
  });
});

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather", description: "Weather forecast for a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer", minimum: 1 } },
      required: ["city", "days"] },
  },
};
const timeTool = { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string", maxLength: 8 } }, required: ["zone"] } } };

describe("tools", () => {
  it("tool_choice required: parsed tool_calls in OpenAI shape, streamed the same way", async () => {
    const body = { model: NAME, messages: user("What's the weather in Paris?"), tools: [weatherTool, timeTool],
      tool_choice: "required" as const, max_tokens: 120, temperature: 0.7, seed: 5 };
    const r = await client.chat.completions.create(body);
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!;
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) {
      if (c.type !== "function") throw new Error("not a function call");
      expect(c.id).toMatch(/^chatcmpl-tool-/);
      const args = JSON.parse(c.function.arguments);
      if (c.function.name === "get_weather") {
        expect(typeof args.city).toBe("string");
        expect(Number.isInteger(args.days)).toBe(true);
      } else {
        expect(c.function.name).toBe("get_time");
        expect(typeof args.zone).toBe("string");
      }
    }
    const s = await collectChat(await client.chat.completions.create({ ...body, stream: true }));
    expect(s.finish).toEqual(["tool_calls"]);
    expect(s.calls.map((c) => [c.type, c.name, c.arguments])).toEqual(calls.map((c) => c.type === "function" && [c.type, c.function.name, c.function.arguments]));
    expect(s.calls.every((c) => c.id?.startsWith("chatcmpl-tool-"))).toBe(true);
  });

  it("a named tool_choice calls that function with arguments matching its schema", async () => {
    const r = await client.chat.completions.create({ model: NAME, messages: user("Time in Tokyo?"), tools: [weatherTool, timeTool],
      tool_choice: { type: "function", function: { name: "get_time" } }, max_tokens: 60, temperature: 0 });
    const c = r.choices[0]!.message.tool_calls![0]!;
    if (c.type !== "function") throw new Error("not a function call");
    expect(c.function.name).toBe("get_time");
    expect(Object.keys(JSON.parse(c.function.arguments))).toEqual(["zone"]);
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("tool_choice none keeps the model from opening a tool-call block that auto lets through", async () => {
    // token 10 is <|tool_call_start|>: a +100 bias makes the model write it at once
    const body = { model: NAME, messages: user("Weather?"), tools: [weatherTool], max_tokens: 4, temperature: 0, logit_bias: { 10: 100 } };
    const auto = await client.chat.completions.create({ ...body, tool_choice: "auto" });
    expect(auto.choices[0]!.message.content).toContain("<|tool_call_start|>"); // unterminated block: kept as text
    const none = await client.chat.completions.create({ ...body, tool_choice: "none" });
    expect(none.choices[0]!.message.content).not.toContain("<|tool_call_start|>");
    expect(none.choices[0]!.message.tool_calls ?? []).toEqual([]);
  });

  it("an earlier assistant tool call and the tool's answer are accepted as history", async () => {
    const r = await client.chat.completions.create({ model: NAME, max_tokens: 5, temperature: 0, tools: [weatherTool], messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\",\"days\":1}" } }] },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ] });
    expect(r.usage!.prompt_tokens).toBeGreaterThan(30);
  });
});

describe("response_format", () => {
  it("json_schema output parses and matches the schema; json_object is an object", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 16 }, age: { type: "integer" }, tags: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 3 } },
      required: ["name", "age", "tags"], additionalProperties: false };
    for (const seed of [1, 2]) {
      const r = await client.chat.completions.create({ model: NAME, messages: user("A person as JSON"), max_tokens: 300, temperature: 0.8, seed,
        response_format: { type: "json_schema", json_schema: { name: "person", schema } } });
      expect(r.choices[0]!.finish_reason).toBe("stop");
      const v = JSON.parse(r.choices[0]!.message.content!);
      expect(Object.keys(v).sort()).toEqual(["age", "name", "tags"]);
      expect(typeof v.name).toBe("string");
      expect(Number.isInteger(v.age)).toBe(true);
      expect(Array.isArray(v.tags) && v.tags.every((t: unknown) => typeof t === "string")).toBe(true);
    }
    // json_object: any object. Keys and strings are free-length in a random model, so a bias towards '"'
    // and '}' ends strings and the object as soon as the grammar allows
    const enc = (t: string) => model.tokenizer!.encode(t, { addBos: false });
    expect([enc("}"), enc('"')].map((x) => x.length)).toEqual([1, 1]);
    const o = await client.chat.completions.create({ model: NAME, messages: user("JSON please"), max_tokens: 150, temperature: 0.8, seed: 3,
      response_format: { type: "json_object" }, logit_bias: { [enc("}")[0]!]: 15, [enc('"')[0]!]: 15 } });
    expect(o.choices[0]!.finish_reason).toBe("stop");
    const parsed = JSON.parse(o.choices[0]!.message.content!);
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true);
  });
});

describe("completions", () => {
  it("prompt string, non-streaming and streaming agree with session.generate", async () => {
    const body = { model: NAME, prompt: "Once upon a time", max_tokens: 20, temperature: 0 };
    const r = await client.completions.create(body);
    const s = model.createSession({ contextLength: CTX });
    const it = s.generate("Once upon a time", { maxTokens: 20, temperature: 0 });
    let ref = ""; let x = await it.next();
    for (; !x.done; x = await it.next()) ref += x.value.text;
    s.dispose();
    expect(r.id).toMatch(/^cmpl-/);
    expect(r.object).toBe("text_completion");
    expect(r.choices[0]!.text).toBe(ref);
    expect(r.usage!.completion_tokens).toBe(x.value.tokens.length);
    let streamed = "";
    const finish: string[] = [];
    let usage: OpenAI.Completions.CompletionUsage | undefined | null;
    for await (const ch of await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })) {
      streamed += ch.choices[0]?.text ?? "";
      if (ch.choices[0]?.finish_reason) finish.push(ch.choices[0].finish_reason);
      if (ch.usage) usage = ch.usage;
    }
    expect(streamed).toBe(ref);
    expect(finish).toEqual([r.choices[0]!.finish_reason]);
    expect(usage?.completion_tokens).toBe(r.usage!.completion_tokens);
    // logit_bias reaches the sampler: banning the greedy first token changes it
    const first = x.value.tokens[0]!;
    const banned = await client.completions.create({ ...body, logit_bias: { [first]: -100 } });
    expect(banned.choices[0]!.text).not.toBe(ref);
  });
});

describe("models and health", () => {
  it("lists and retrieves the served model; other ids are 404", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => [m.id, m.object])).toEqual([[NAME, "model"]]);
    expect((await client.models.retrieve(NAME)).id).toBe(NAME);
    await expect(client.models.retrieve("gpt-4o")).rejects.toMatchObject({ status: 404 });
    const h = await fetch(`${server.url}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: "ok" });
  });
});

describe("queueing, aborts and isolation", () => {
  const a = { model: NAME, messages: user("The quick brown fox"), max_tokens: 24, temperature: 0.9, seed: 11 };
  const b = { model: NAME, messages: user("Lorem ipsum dolor sit amet, a different prompt"), max_tokens: 24, temperature: 1.1, seed: 12, top_p: 0.9 };

  it("concurrent seeded requests return exactly their solo results", async () => {
    const soloA = (await client.chat.completions.create(a)).choices[0]!.message.content;
    const soloB = (await client.chat.completions.create(b)).choices[0]!.message.content;
    expect(soloA).not.toBe(soloB);
    const [ra, rb, sa] = await Promise.all([
      client.chat.completions.create(a),
      client.chat.completions.create(b),
      client.chat.completions.create({ ...a, stream: true }).then(collectChat),
    ]);
    expect(ra.choices[0]!.message.content).toBe(soloA);
    expect(rb.choices[0]!.message.content).toBe(soloB);
    expect(sa.text).toBe(soloA);
  });

  it("a client that aborts mid-stream stops its generation; the next queued request runs and is unaffected", async () => {
    const solo = (await client.chat.completions.create(b)).choices[0]!.message.content;
    logs.length = 0;
    const ac = new AbortController();
    // end-of-text banned and a long budget: this generation only ends by the abort
    const long = { model: NAME, messages: user("Go on forever"), max_tokens: 1000, temperature: 0, logit_bias: { 2: -100, 7: -100 } };
    const stream = await client.chat.completions.create({ ...long, stream: true }, { signal: ac.signal });
    const queued = client.chat.completions.create(b); // waits behind the long one
    let seen = 0;
    for await (const _ of stream) if (++seen === 5) ac.abort(); // the client ends the iteration quietly on abort
    expect(seen).toBeGreaterThanOrEqual(5);
    expect(seen).toBeLessThan(1000);
    const next = await queued;
    expect(next.choices[0]!.message.content).toBe(solo);
    // only completed requests are logged: the aborted one never finished its 1000 tokens
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/24 completion tokens|completion tokens, stop/);
    const h = await (await fetch(`${server.url}/health`)).json();
    expect(h).toMatchObject({ status: "ok", busy: false, queued: 0 });
  });
});

describe("errors", () => {
  const post = (path: string, body: unknown, init: RequestInit = {}) => fetch(`${server.url}${path}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body), ...init });
  const expectError = async (res: Response, status: number, param?: string | null, code?: string) => {
    expect(res.status).toBe(status);
    const j = await res.json();
    expect(Object.keys(j)).toEqual(["error"]);
    expect(Object.keys(j.error).sort()).toEqual(["code", "message", "param", "type"]);
    expect(typeof j.error.message).toBe("string");
    if (param !== undefined) expect(j.error.param).toBe(param);
    if (code !== undefined) expect(j.error.code).toBe(code);
    return j.error;
  };

  it("malformed bodies and wrong fields are 400s naming the parameter", async () => {
    await expectError(await post("/v1/chat/completions", "{not json"), 400, null, "invalid_json");
    await expectError(await post("/v1/chat/completions", ""), 400, null, "invalid_json");
    await expectError(await post("/v1/chat/completions", [1, 2]), 400);
    await expectError(await post("/v1/chat/completions", { model: NAME }), 400, "messages", "missing_required_parameter");
    await expectError(await post("/v1/chat/completions", { messages: [] }), 400, "messages");
    await expectError(await post("/v1/chat/completions", { messages: [{ role: "wizard", content: "hi" }] }), 400, "messages[0].role");
    await expectError(await post("/v1/chat/completions", { messages: [{ role: "user" }] }), 400, "messages[0].content");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), n: 2 }), 400, "n");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), temperature: "hot" }), 400, "temperature");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), max_tokens: -1 }), 400, "max_tokens");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), stop: [1] }), 400, "stop");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), logit_bias: { 999999: 1 } }), 400, "logit_bias");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), tool_choice: "required" }), 400, "tool_choice");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), tools: [weatherTool], tool_choice: { type: "function", function: { name: "nope" } } }), 400, "tool_choice");
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), response_format: { type: "xml" } }), 400, "response_format.type");
    await expectError(await post("/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), 400, "messages[0].content[0]");
    await expectError(await post("/v1/completions", { max_tokens: 3 }), 400, "prompt");
    await expectError(await post("/v1/completions", { prompt: ["a", "b"] }), 400, "prompt");
  });

  it("the openai client sees the same errors as APIError with status", async () => {
    await expect(client.chat.completions.create({ model: NAME, messages: user("hi"), n: 3 })).rejects.toMatchObject({ status: 400, param: "n" });
    await expect(client.chat.completions.create({ model: "gpt-4o", messages: user("hi") })).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("library errors map to statuses: a prompt longer than the context is a 400 before any stream starts", async () => {
    const long = "word ".repeat(CTX * 2);
    await expectError(await post("/v1/chat/completions", { messages: user(long), max_tokens: 2 }), 400, "messages", "context_length_exceeded");
    await expectError(await post("/v1/chat/completions", { messages: user(long), max_tokens: 2, stream: true }), 400, "messages", "context_length_exceeded");
    // a schema keyword the constrained decoder cannot enforce
    await expectError(await post("/v1/chat/completions", { messages: user("hi"), response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } } }), 400);
    // the server is fine afterwards
    expect((await client.chat.completions.create({ model: NAME, messages: user("hi"), max_tokens: 2 })).choices).toHaveLength(1);
  });

  it("unknown routes 404, wrong methods 405, oversized bodies 413", async () => {
    await expectError(await fetch(`${server.url}/v1/nothing`), 404);
    const r = await fetch(`${server.url}/v1/chat/completions`);
    await expectError(r, 405, null, "method_not_allowed");
    expect(r.headers.get("allow")).toBe("POST");
    await expectError(await post("/v1/models", {}), 405);
    const small = createOpenAIHandler(model, { modelName: NAME, maxBodyBytes: 1024 });
    await expectError(await small(new Request("http://x/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages: user("x".repeat(2000)) }) })), 413);
  });

  it("/v1/embeddings: a 400 for a text-generation model; an embed() method is served in OpenAI shape", async () => {
    await expectError(await post("/v1/embeddings", { model: NAME, input: "hello" }), 400, "model", "model_not_embedding");
    // a text-generation Model has embed() too (it throws): the descriptor decides
    expect(model.info.embedding).toBeUndefined();
    await expect(model.embed(["hello"])).rejects.toMatchObject({ code: "BAD_INPUT" });
    // an embedding model (info.embedding): here the last position's logits (first 8) as the vector
    const embedder = Object.assign(Object.create(model) as Model, {
      info: { ...model.info, embedding: { dim: 8, pooling: "last", causal: true } },
      async embed(texts: string[]) {
        return Promise.all(texts.map(async (t) => {
          const s = model.createSession({ contextLength: 256 });
          try { return (await s.forward(model.tokenizer!.encode(t))).slice(0, 8); } finally { s.dispose(); }
        }));
      },
    });
    const h = createOpenAIHandler(embedder, { modelName: "emb" });
    const local = new OpenAI({ baseURL: "http://local/v1", apiKey: "x", fetch: (url, init) => h(new Request(url as string, init as RequestInit)) });
    const r = await local.embeddings.create({ model: "emb", input: ["hello", "world"] }); // the client asks for base64
    expect(r.data.map((d) => d.index)).toEqual([0, 1]);
    const ref = await embedder.embed(["hello", "world"]);
    expect(r.data[0]!.embedding).toEqual(Array.from(ref[0]!));
    expect(r.data[1]!.embedding).toEqual(Array.from(ref[1]!));
    expect(r.usage.prompt_tokens).toBe(model.tokenizer!.encode("hello").length + model.tokenizer!.encode("world").length);
  });
});

describe("lfm2 serve (CLI)", () => {
  const cli = new URL("../dist/cli.js", import.meta.url).pathname;
  it.skipIf(!existsSync(cli))("starts on a free port with the demo model, answers the openai client, stops on SIGTERM", async () => {
    const child: ChildProcess = spawn(process.execPath, [cli, "serve", "--port", "0", "-t", "1"],
      { env: { ...process.env, LFM2_NO_RELAUNCH: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "", err = "";
        child.stdout!.on("data", (d) => { out += d; const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out); if (m) resolve(m[1]!); });
        child.stderr!.on("data", (d) => { err += d; });
        child.on("exit", (code) => reject(new Error(`lfm2 serve exited (${code}): ${out}${err}`)));
      });
      const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
      expect((await c.models.list()).data[0]!.id).toBe("lfm2-demo");
      const r = await c.chat.completions.create({ model: "lfm2-demo", messages: user("Hello"), max_tokens: 5, temperature: 0 });
      expect(r.choices[0]!.message.role).toBe("assistant");
      expect(r.usage!.completion_tokens).toBeLessThanOrEqual(5);
      const code = await new Promise<number | null>((resolve) => { child.once("exit", resolve); child.kill("SIGTERM"); });
      expect(code).toBe(0);
    } finally { if (child.exitCode === null) child.kill("SIGKILL"); }
  });
});
