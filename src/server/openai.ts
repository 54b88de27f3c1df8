// The OpenAI-compatible API as a fetch-style handler (Request → Response), so the same routes run under
// Node (src/server/node.ts), Deno.serve or a Cloudflare Worker. Shapes follow vLLM's OpenAI server: an app
// moves between `lfm2 serve` and vLLM by changing its baseURL and model name.
import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import type { Session, SessionOptions } from "../runtime/session.js";
import type { Tokenizer } from "../text/tokenizer.js";
import { TOOL_CALL_START, type ToolCall } from "../text/tool-calls.js";
import type { ChatDelta, ChatOptions, FinishReason, GenerateOptions, Usage } from "../generate/generate.js";
import type { JsonSchema } from "../generate/json-schema.js";
import { queueFor } from "./queue.js";
import {
  HttpError, errorBody, httpErrorOf, parseChatRequest, parseCompletionRequest, parseEmbeddingRequest,
  type ChatRequest, type CommonRequest,
} from "./protocol.js";

/** What the handler needs from a model (a loaded `Model` has it all). */
export interface ServableModel {
  /** `embedding` present (a loaded Model's info.embedding) marks an embedding model: /v1/embeddings serves it. */
  readonly info: { name?: string; config: { vocabSize: number }; embedding?: { dim: number } };
  readonly tokenizer: Tokenizer | null;
  createSession(opts?: SessionOptions): Session;
  /**
   * One vector per text. /v1/embeddings calls it only for models whose info has `embedding`; the others
   * answer that route with a 400 saying the model is not an embedding model.
   */
  embed?(texts: string[], opts?: { signal?: AbortSignal }): Promise<ArrayLike<number>[]>;
  /** Present on models loaded with an mmproj (LFM2-VL, LFM2-Audio): chat takes image_url / input_audio parts. */
  readonly media?: unknown;
}

export interface OpenAIHandlerOptions {
  /** The model id clients send and /v1/models lists (default: the file's name, else "lfm2"). */
  modelName?: string;
  /** Context length of the serving session (default: the model's, at most 4096). */
  contextLength?: number;
  /** Largest request body in bytes (default 4 MiB); bigger ones get 413. */
  maxBodyBytes?: number;
  /** Called once per finished request with a one-line summary (the CLI prints it). */
  log?: (line: string) => void;
}

export type FetchHandler = (request: Request) => Promise<Response>;

const hex = () => crypto.randomUUID().replace(/-/g, "");
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Library finish reasons → OpenAI's: a full context is a length stop. */
const finishOf = (r: FinishReason): "stop" | "length" => (r === "stop" ? "stop" : "length");

function usageOf(u: Usage) {
  return {
    prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

// Schema keywords the constrained decoder enforces (src/generate/json-schema.ts) plus annotations.
// Tool parameter schemas commonly carry others (minimum, pattern, ...): for a forced tool call they are
// dropped, which only loosens the constraint, instead of failing the request.
const CONSTRAINABLE = new Set([
  "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
  "maxLength", "enum", "const", "anyOf", "oneOf", "$ref", "nullable", "title", "description", "default",
  "examples", "$schema", "$id", "$comment", "format", "deprecated", "readOnly", "writeOnly", "$defs", "definitions",
]);

function constrainable(s: JsonSchema): JsonSchema {
  if (typeof s !== "object" || s === null || Array.isArray(s)) return s;
  const out: Record<string, unknown> = {};
  const sub = (v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v) ? constrainable(v as JsonSchema) : v);
  const subMap = (v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sub(x)])) : v);
  for (const [k, v] of Object.entries(s)) {
    if (!CONSTRAINABLE.has(k)) continue;
    if (k === "properties" || k === "$defs" || k === "definitions") out[k] = subMap(v);
    else if (k === "items" || k === "additionalProperties") out[k] = sub(v);
    else if ((k === "anyOf" || k === "oneOf") && Array.isArray(v)) out[k] = v.map(sub);
    else out[k] = v;
  }
  return out;
}

/** The JSON a `tool_choice: "required"` reply must be: a non-empty list of calls to the given tools. */
function requiredCallsSchema(params: Map<string, JsonSchema>): JsonSchema {
  const calls = [...params].map(([name, p]) => ({
    type: "object", properties: { name: { const: name }, arguments: constrainable(p) }, required: ["name", "arguments"],
  }));
  return { type: "array", minItems: 1, items: { anyOf: calls } };
}

interface ToolCallDelta { index: number; id?: string; type?: "function"; function: { name?: string; arguments: string } }
interface ChoiceDelta { content?: string; tool_calls?: ToolCallDelta[] }
interface OpenAIToolCall { id: string; type: "function"; function: { name: string; arguments: string } }

/**
 * Turns the library's chat deltas into OpenAI message deltas for one tool mode. Auto mode reports calls
 * the model wrote in its own format; the forced modes read the constrained JSON the model produced.
 */
class ChoiceAssembler {
  content = "";
  readonly calls: OpenAIToolCall[] = [];
  private json = "";

  constructor(private req: ChatRequest) {}

  push(d: ChatDelta): ChoiceDelta | null {
    const mode = this.req.toolMode;
    if (mode.kind === "named") {
      if (!d.text) return null;
      const first = this.calls.length === 0;
      if (first) this.calls.push({ id: `chatcmpl-tool-${hex()}`, type: "function", function: { name: mode.name, arguments: "" } });
      this.calls[0]!.function.arguments += d.text;
      const call = this.calls[0]!;
      return { tool_calls: [first
        ? { index: 0, id: call.id, type: "function", function: { name: mode.name, arguments: d.text } }
        : { index: 0, function: { arguments: d.text } }] };
    }
    if (mode.kind === "required") { this.json += d.text; return null; } // a list is only known when closed
    const out: ChoiceDelta = {};
    if (d.text) { this.content += d.text; out.content = d.text; }
    if (d.toolCalls.length) out.tool_calls = d.toolCalls.flatMap((c) => this.addCall(c.name, c.arguments));
    return out.content !== undefined || out.tool_calls ? out : null;
  }

  /** At the end of generation: the forced list of calls (required mode). */
  end(): ChoiceDelta | null {
    if (this.req.toolMode.kind !== "required" || !this.json) return null;
    let list: unknown;
    try { list = JSON.parse(this.json); } catch { list = null; }
    // the constraint only stops short of a whole list when max_tokens cut it: report the text as is
    if (!Array.isArray(list)) { this.content += this.json; return { content: this.json }; }
    const deltas = list.flatMap((c: { name: string; arguments: Record<string, unknown> }) => this.addCall(c.name, c.arguments));
    return { tool_calls: deltas };
  }

  private addCall(name: string, args: ToolCall["arguments"]): ToolCallDelta[] {
    const call: OpenAIToolCall = { id: `chatcmpl-tool-${hex()}`, type: "function", function: { name, arguments: JSON.stringify(args) } };
    const index = this.calls.push(call) - 1;
    // as OpenAI streams a call: id, type and name first, then the arguments
    return [
      { index, id: call.id, type: "function", function: { name, arguments: "" } },
      { index, function: { arguments: call.function.arguments } },
    ];
  }

  finishReason(r: FinishReason): "stop" | "length" | "tool_calls" {
    return this.calls.length && r === "stop" ? "tool_calls" : finishOf(r);
  }
}

function chatOptions(req: ChatRequest, tok: Tokenizer | null, maxTokens: number): ChatOptions {
  const o: ChatOptions = { ...req.gen, maxTokens: req.maxTokens ?? maxTokens };
  const mode = req.toolMode;
  if (mode.kind !== "off") o.tools = req.tools;
  if (mode.kind === "required") o.jsonSchema = requiredCallsSchema(req.toolParams);
  if (mode.kind === "named") o.jsonSchema = constrainable(req.toolParams.get(mode.name)!);
  if (mode.kind === "off" && tok) {
    // tool_choice "none" (or no tools): the model cannot open a tool-call block
    const start = tok.encode(TOOL_CALL_START, { addBos: false });
    if (start.length === 1) o.logitBias = { ...o.logitBias, [start[0]!]: -Infinity };
  }
  return o;
}

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" };

/**
 * A server-sent-events body fed by `produce`. A cancelled body (the client went away) aborts `ctl`,
 * which stops generation; `done` runs once whatever happens.
 */
function sseStream(ctl: AbortController, produce: (send: (data: unknown) => void) => Promise<void>, done: () => void): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let open = true;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (data: unknown) => {
        if (open) controller.enqueue(enc.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
      };
      void (async () => {
        try {
          await produce(send);
        } catch (e) {
          // errors after the headers went out travel as an error event, as vLLM sends them
          if (!ctl.signal.aborted) send(errorBody(httpErrorOf(e)));
        } finally {
          done();
          send("[DONE]");
          if (open) { open = false; controller.close(); }
        }
      })();
    },
    cancel(reason) {
      open = false;
      ctl.abort(reason ?? new Error("client disconnected"));
    },
  });
}

/** An AbortController that also fires when the request's own signal does (client disconnect). */
function linkedAbort(request: Request): AbortController {
  const ctl = new AbortController();
  const s = request.signal;
  if (s.aborted) ctl.abort(s.reason);
  else s.addEventListener("abort", () => ctl.abort(s.reason), { once: true });
  return ctl;
}

async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (!text.trim()) throw new HttpError(400, "the request body is empty; send a JSON object", null, "invalid_json");
  try { return JSON.parse(text); } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`, null, "invalid_json");
  }
}

function b64(v: ArrayLike<number>): string {
  const f = Float32Array.from(v);
  const bytes = new Uint8Array(f.buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * The OpenAI-compatible routes for one model: /v1/chat/completions, /v1/completions, /v1/models,
 * /v1/models/{id}, /v1/embeddings, /health. Requests run one at a time per model in arrival order; a
 * request whose client disconnects stops generating and the next one starts.
 */
export function createOpenAIHandler(model: ServableModel, opts: OpenAIHandlerOptions = {}): FetchHandler {
  const modelName = opts.modelName ?? model.info.name ?? "lfm2";
  const created = nowSeconds();
  const queue = queueFor(model);
  const vocabSize = model.tokenizer?.vocabSize ?? model.info.config.vocabSize;
  let session: Session | null = null;
  // one session per handler: consecutive requests sharing a prefix (multi-turn chats) reuse its cache
  const servingSession = () => (session ??= model.createSession({ contextLength: opts.contextLength }));
  const log = opts.log;

  const checkModel = (name: string | undefined) => {
    if (name !== undefined && name !== "" && name !== modelName) {
      throw new HttpError(404, `The model '${name}' does not exist. This server serves '${modelName}'.`, "model", "model_not_found");
    }
  };

  const modelCard = () => ({ id: modelName, object: "model", created, owned_by: "lfm2-wasm", root: modelName, parent: null,
    max_model_len: servingSession().contextLength });

  const app = new Hono();
  app.use("*", bodyLimit({
    maxSize: opts.maxBodyBytes ?? 4 * 2 ** 20,
    onError: (c) => c.json(errorBody(new HttpError(413, `the request body exceeds ${opts.maxBodyBytes ?? 4 * 2 ** 20} bytes`, null, "request_too_large")), 413),
  }));

  /**
   * Wait for the model, start generating, and take the first step (prefill + first token) before any
   * header goes out, so a prompt that does not fit or a bad schema is still an ordinary error status.
   */
  async function begin<D, R>(request: Request, start: (signal: AbortSignal) => AsyncGenerator<D, R>) {
    const ctl = linkedAbort(request);
    const release = await queue.acquire(ctl.signal);
    try {
      const it = start(ctl.signal);
      const first = await it.next();
      return { ctl, release, it, first };
    } catch (e) { release(); throw e; }
  }

  async function drain<D, R>(it: AsyncGenerator<D, R>, first: IteratorResult<D, R>, onDelta: (d: D) => void): Promise<R> {
    let r = first;
    for (; !r.done; r = await it.next()) onDelta(r.value);
    return r.value;
  }

  app.post("/v1/chat/completions", async (c) => {
    const req = parseChatRequest(await readJson(c.req.raw), vocabSize, model.media !== undefined);
    checkModel(req.model);
    const s = servingSession();
    const options = chatOptions(req, model.tokenizer, s.contextLength);
    const { ctl, release, it, first } = await begin(c.req.raw, (signal) => s.chatStream(req.messages, { ...options, signal }));
    const id = `chatcmpl-${hex()}`, createdAt = nowSeconds();
    const asm = new ChoiceAssembler(req);
    if (!req.stream) {
      try {
        const result = await drain(it, first, (d) => asm.push(d));
        asm.end();
        log?.(`chat ${id}: ${result.usage.promptTokens} prompt + ${result.usage.completionTokens} completion tokens, ${result.finishReason}`);
        return c.json({
          id, object: "chat.completion", created: createdAt, model: modelName,
          choices: [{
            index: 0, logprobs: null, finish_reason: asm.finishReason(result.finishReason),
            message: { role: "assistant", content: asm.calls.length && !asm.content ? null : asm.content, ...(asm.calls.length ? { tool_calls: asm.calls } : {}) },
          }],
          usage: usageOf(result.usage),
        });
      } finally { release(); }
    }
    const chunk = (delta: ChoiceDelta | { role: "assistant"; content: string } | Record<string, never>, finish: string | null) => ({
      id, object: "chat.completion.chunk", created: createdAt, model: modelName,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(req.includeUsage ? { usage: null } : {}),
    });
    const body = sseStream(ctl, async (send) => {
      send(chunk({ role: "assistant", content: "" }, null));
      const result = await drain(it, first, (d) => { const out = asm.push(d); if (out) send(chunk(out, null)); });
      const tail = asm.end();
      if (tail) send(chunk(tail, null));
      send(chunk({}, asm.finishReason(result.finishReason)));
      if (req.includeUsage) send({ id, object: "chat.completion.chunk", created: createdAt, model: modelName, choices: [], usage: usageOf(result.usage) });
      log?.(`chat ${id} (stream): ${result.usage.promptTokens} prompt + ${result.usage.completionTokens} completion tokens, ${result.finishReason}`);
    }, release);
    return new Response(body, { headers: SSE_HEADERS });
  });

  app.post("/v1/completions", async (c) => {
    const req = parseCompletionRequest(await readJson(c.req.raw), vocabSize);
    checkModel(req.model);
    const s = servingSession();
    const options: GenerateOptions = { ...req.gen, maxTokens: req.maxTokens ?? s.contextLength };
    const { ctl, release, it, first } = await begin(c.req.raw, (signal) => s.generate(req.prompt, { ...options, signal }));
    const id = `cmpl-${hex()}`, createdAt = nowSeconds();
    const chunk = (text: string, finish: string | null, common: CommonRequest) => ({
      id, object: "text_completion", created: createdAt, model: modelName,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], ...(common.includeUsage ? { usage: null } : {}),
    });
    if (!req.stream) {
      try {
        let text = "";
        const result = await drain(it, first, (d) => { text += d.text; });
        log?.(`completion ${id}: ${result.usage.promptTokens} prompt + ${result.usage.completionTokens} completion tokens, ${result.finishReason}`);
        return c.json({ ...chunk(text, finishOf(result.finishReason), { ...req, includeUsage: false }), usage: usageOf(result.usage) });
      } finally { release(); }
    }
    const body = sseStream(ctl, async (send) => {
      const result = await drain(it, first, (d) => { if (d.text) send(chunk(d.text, null, req)); });
      send(chunk("", finishOf(result.finishReason), req));
      if (req.includeUsage) send({ id, object: "text_completion", created: createdAt, model: modelName, choices: [], usage: usageOf(result.usage) });
    }, release);
    return new Response(body, { headers: SSE_HEADERS });
  });

  app.post("/v1/embeddings", async (c) => {
    const req = parseEmbeddingRequest(await readJson(c.req.raw));
    checkModel(req.model);
    const embed = model.embed;
    if (!model.info.embedding || typeof embed !== "function") {
      throw new HttpError(400, `The model '${modelName}' is not an embedding model: /v1/embeddings needs a model with embeddings.`,
        "model", "model_not_embedding");
    }
    const ctl = linkedAbort(c.req.raw);
    const release = await queue.acquire(ctl.signal);
    try {
      const vectors = await embed.call(model, req.input, { signal: ctl.signal });
      if (req.dimensions !== undefined && vectors.some((v) => v.length < req.dimensions!)) {
        throw new HttpError(400, `'dimensions' ${req.dimensions} exceeds the model's embedding size`, "dimensions");
      }
      const cut = (v: ArrayLike<number>) => (req.dimensions === undefined ? Array.from(v) : Array.from(v).slice(0, req.dimensions));
      const promptTokens = model.tokenizer ? req.input.reduce((n, t) => n + model.tokenizer!.encode(t).length, 0) : 0;
      return c.json({
        object: "list", model: modelName,
        data: vectors.map((v, index) => ({ object: "embedding", index, embedding: req.base64 ? b64(cut(v)) : cut(v) })),
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      });
    } finally { release(); }
  });

  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelCard()] }));
  app.get("/v1/models/:id{.+}", (c) => {
    const name = decodeURIComponent(c.req.param("id"));
    if (name !== modelName) throw new HttpError(404, `The model '${name}' does not exist.`, "model", "model_not_found");
    return c.json(modelCard());
  });
  app.get("/health", (c) => c.json({ status: "ok", model: modelName, busy: queue.busy, queued: queue.pending }));

  const allowed: Record<string, string> = {
    "/v1/chat/completions": "POST", "/v1/completions": "POST", "/v1/embeddings": "POST",
    "/v1/models": "GET", "/v1/models/*": "GET", "/health": "GET",
  };
  for (const [path, method] of Object.entries(allowed)) {
    app.all(path, (c) => c.json(errorBody(new HttpError(405, `${c.req.method} is not allowed on ${c.req.path}; use ${method}`, null, "method_not_allowed")),
      405, { allow: method }));
  }
  app.notFound((c) => c.json(errorBody(new HttpError(404, `no route ${c.req.method} ${c.req.path}`, null, "not_found")), 404));
  app.onError((e, c) => {
    const h = httpErrorOf(e);
    return c.json(errorBody(h), h.status as 400);
  });
  return (request: Request) => Promise.resolve(app.fetch(request));
}
