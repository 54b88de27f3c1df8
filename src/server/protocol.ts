// OpenAI request bodies → library options. Every field is type-checked here so a bad request is a 400
// naming the parameter before it waits in the queue; what the library itself rejects later (a schema it
// cannot enforce, a prompt longer than the context) maps to a status in openai.ts.
import { Lfm2Error } from "../errors.js";
import type { ChatMessage, ToolDefinition } from "../text/chat-template.js";
import type { ToolCallInput } from "../text/tool-calls.js";
import type { GenerateOptions } from "../generate/generate.js";
import type { JsonSchema } from "../generate/json-schema.js";

/** An error with an HTTP status, rendered as OpenAI's `{error: {message, type, param, code}}`. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null,
    readonly code: string | null = null, readonly type = errorType(status)) {
    super(message);
  }
}

export function errorType(status: number): string {
  if (status === 404) return "not_found_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Library error codes → HTTP: the caller's mistakes are 400s, the runtime's failures 500s. */
export function httpErrorOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof Lfm2Error) {
    if (e.code === "CONTEXT_OVERFLOW") return new HttpError(400, e.message, "messages", "context_length_exceeded");
    if (e.code === "BAD_INPUT") return new HttpError(400, e.message, null, "bad_input");
    if (e.code === "ABORTED") return new HttpError(499, e.message, null, "aborted");
    return new HttpError(500, e.message, null, e.code.toLowerCase());
  }
  return new HttpError(500, e instanceof Error ? e.message : String(e), null, "internal_error");
}

export function errorBody(e: HttpError): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const bad = (param: string, message: string) => new HttpError(400, message, param, "invalid_value");

function optNumber(b: Obj, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw bad(key, `'${key}' must be a number`);
  if (v < min || v > max) throw bad(key, `'${key}' must be between ${min} and ${max}, got ${v}`);
  return v;
}

function optInteger(b: Obj, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = optNumber(b, key, min, max);
  if (v !== undefined && !Number.isInteger(v)) throw bad(key, `'${key}' must be an integer, got ${v}`);
  return v;
}

function optBool(b: Obj, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw bad(key, `'${key}' must be a boolean`);
  return v;
}

/** Fields shared by /v1/chat/completions and /v1/completions. */
export interface CommonRequest {
  model?: string;
  stream: boolean;
  includeUsage: boolean;
  /** Undefined: generate until an end token or the context is full (as vLLM does). */
  maxTokens?: number;
  gen: GenerateOptions;
}

function parseCommon(b: Obj, vocabSize: number): CommonRequest {
  if (b.model !== undefined && typeof b.model !== "string") throw bad("model", "'model' must be a string");
  const n = optInteger(b, "n", 1);
  if (n !== undefined && n !== 1) throw bad("n", `only n=1 is supported (one choice per request), got ${n}`);
  if (b.best_of !== undefined && b.best_of !== null && b.best_of !== 1) throw bad("best_of", "only best_of=1 is supported");
  if (b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== false && b.logprobs !== 0) {
    throw bad("logprobs", "logprobs are not supported by this server");
  }
  if (optInteger(b, "top_logprobs", 0, 20)) throw bad("top_logprobs", "logprobs are not supported by this server");
  const stream = optBool(b, "stream") ?? false;
  let includeUsage = false;
  if (b.stream_options !== undefined && b.stream_options !== null) {
    if (!isObj(b.stream_options)) throw bad("stream_options", "'stream_options' must be an object");
    if (!stream) throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    includeUsage = optBool(b.stream_options, "include_usage") ?? false;
  }
  const maxTokens = optInteger(b, "max_completion_tokens", 0) ?? optInteger(b, "max_tokens", 0);
  const gen: GenerateOptions = {
    temperature: optNumber(b, "temperature", 0, 2),
    topP: optNumber(b, "top_p", 0, 1),
    minP: optNumber(b, "min_p", 0, 1),
    presencePenalty: optNumber(b, "presence_penalty", -2, 2),
    frequencyPenalty: optNumber(b, "frequency_penalty", -2, 2),
    repetitionPenalty: optNumber(b, "repetition_penalty", Number.MIN_VALUE, 10),
    seed: optInteger(b, "seed", Number.MIN_SAFE_INTEGER),
  };
  if (gen.topP === 0) throw bad("top_p", "'top_p' must be greater than 0");
  // vLLM: top_k -1 (or 0) = off
  const topK = optInteger(b, "top_k", -1);
  if (topK !== undefined && topK > 0) gen.topK = topK;
  if (gen.seed !== undefined) gen.seed = gen.seed >>> 0; // the PRNG takes 32 bits; negative seeds stay distinct
  gen.stop = parseStop(b.stop);
  if (b.logit_bias !== undefined && b.logit_bias !== null) gen.logitBias = parseLogitBias(b.logit_bias, vocabSize);
  for (const k of Object.keys(gen) as (keyof GenerateOptions)[]) if (gen[k] === undefined) delete gen[k];
  return { model: b.model as string | undefined, stream, includeUsage, maxTokens, gen };
}

function parseStop(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) throw bad("stop", "'stop' must be a string or a list of strings");
  if (list.some((s) => s === "")) throw bad("stop", "'stop' strings must not be empty");
  return list.length ? list : undefined;
}

function parseLogitBias(v: unknown, vocabSize: number): Record<number, number> {
  if (!isObj(v)) throw bad("logit_bias", "'logit_bias' must be an object of token id → bias");
  const out: Record<number, number> = {};
  for (const [k, x] of Object.entries(v)) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || id >= vocabSize) throw bad("logit_bias", `logit_bias: token id ${k} is outside the vocabulary (0..${vocabSize - 1})`);
    if (typeof x !== "number" || !Number.isFinite(x) || x < -100 || x > 100) throw bad("logit_bias", `logit_bias[${k}] must be a number in -100..100`);
    out[id] = x;
  }
  return out;
}

// ---- chat ------------------------------------------------------------------------------------------

export type ToolMode =
  | { kind: "off" }                     // no tools, or tool_choice "none"
  | { kind: "auto" }                    // the model decides; its tool-call markers are parsed
  | { kind: "required" }                // constrained to a JSON list of calls
  | { kind: "named"; name: string };    // constrained to the named function's arguments

export interface ChatRequest extends CommonRequest {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolMode: ToolMode;
  /** The parameter schema of each tool, by name (for the constrained modes). */
  toolParams: Map<string, JsonSchema>;
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

/** Media part kinds a multimodal model (loaded with an mmproj) takes, as vLLM's server names them. */
const MEDIA_PARTS: Record<string, (p: Obj) => boolean> = {
  image_url: (p) => typeof p.image_url === "string" || (isObj(p.image_url) && typeof p.image_url.url === "string"),
  input_audio: (p) => isObj(p.input_audio) && typeof p.input_audio.data === "string",
};

/**
 * OpenAI content: a string or a list of parts. Text parts are joined; image_url (data: URLs) and input_audio
 * parts are kept for multimodal models and refused by text models.
 */
function contentOf(v: unknown, param: string, multimodal: boolean): ChatMessage["content"] {
  if (typeof v === "string") return v;
  if (!Array.isArray(v)) throw bad(param, "message content must be a string or a list of content parts");
  let media = false;
  v.forEach((p, j) => {
    if (!isObj(p) || typeof p.type !== "string") throw bad(`${param}[${j}]`, "content parts must be objects with a 'type'");
    if (p.type === "text") {
      if (typeof p.text !== "string") throw bad(`${param}[${j}].text`, "a text part needs a string 'text'");
      return;
    }
    const valid = MEDIA_PARTS[p.type];
    if (!valid || !multimodal) throw bad(`${param}[${j}]`, `content part type '${p.type}' is not supported by this ${multimodal ? "model" : "text model"}`);
    if (!valid(p)) throw bad(`${param}[${j}].${p.type}`, `a ${p.type} part needs ${p.type === "image_url" ? "image_url.url" : "input_audio.data (base64)"}`);
    media = true;
  });
  return media ? (v as ChatMessage["content"]) : v.map((p) => (p as { text: string }).text).join("");
}

function parseMessages(v: unknown, multimodal: boolean): ChatMessage[] {
  const contentText = (c: unknown, param: string) => contentOf(c, param, multimodal);
  if (v === undefined || v === null) throw new HttpError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!Array.isArray(v)) throw bad("messages", "'messages' must be a list");
  if (v.length === 0) throw bad("messages", "'messages' must not be empty");
  return v.map((m, i): ChatMessage => {
    const p = `messages[${i}]`;
    if (!isObj(m)) throw bad(p, `${p} must be an object`);
    if (typeof m.role !== "string" || !ROLES.has(m.role)) {
      throw bad(`${p}.role`, `${p}.role must be one of system, developer, user, assistant, tool; got ${JSON.stringify(m.role)}`);
    }
    const role = m.role === "developer" ? "system" : (m.role as ChatMessage["role"]);
    if (role === "assistant" && m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) throw bad(`${p}.tool_calls`, `${p}.tool_calls must be a list`);
      const toolCalls: ToolCallInput[] = m.tool_calls.map((c, j) => {
        const fn = isObj(c) ? c.function : undefined;
        if (!isObj(fn) || typeof fn.name !== "string") throw bad(`${p}.tool_calls[${j}]`, "a tool call needs function.name");
        if (fn.arguments !== undefined && typeof fn.arguments !== "string" && !isObj(fn.arguments)) {
          throw bad(`${p}.tool_calls[${j}].function.arguments`, "function.arguments must be a JSON string");
        }
        if (typeof fn.arguments === "string") {
          let parsed: unknown;
          try { parsed = JSON.parse(fn.arguments); } catch { parsed = undefined; }
          if (!isObj(parsed)) throw bad(`${p}.tool_calls[${j}].function.arguments`, "function.arguments must be a JSON object string");
        }
        return { name: fn.name, arguments: fn.arguments as ToolCallInput["arguments"], id: isObj(c) && typeof c.id === "string" ? c.id : undefined };
      });
      const content = m.content === undefined || m.content === null ? undefined : contentText(m.content, `${p}.content`);
      return { role, content: content ?? "", toolCalls };
    }
    if (m.content === undefined || m.content === null) throw bad(`${p}.content`, `${p}.content is required`);
    return { role, content: contentText(m.content, `${p}.content`) };
  });
}

function parseTools(b: Obj): { tools?: ToolDefinition[]; params: Map<string, JsonSchema> } {
  const params = new Map<string, JsonSchema>();
  if (b.tools === undefined || b.tools === null) return { params };
  if (!Array.isArray(b.tools)) throw bad("tools", "'tools' must be a list");
  const tools = b.tools.map((t, i): ToolDefinition => {
    if (!isObj(t) || t.type !== "function" || !isObj(t.function) || typeof t.function.name !== "string" || !t.function.name) {
      throw bad(`tools[${i}]`, `tools[${i}] must be {type: "function", function: {name, description?, parameters?}}`);
    }
    const ps = t.function.parameters;
    if (ps !== undefined && !isObj(ps)) throw bad(`tools[${i}].function.parameters`, "function.parameters must be a JSON schema object");
    params.set(t.function.name, (ps as JsonSchema | undefined) ?? { type: "object" });
    return t as ToolDefinition;
  });
  return { tools: tools.length ? tools : undefined, params };
}

function parseToolChoice(v: unknown, tools: ToolDefinition[] | undefined, params: Map<string, JsonSchema>): ToolMode {
  if (v === undefined || v === null) return tools ? { kind: "auto" } : { kind: "off" };
  if (v === "none") return { kind: "off" };
  if (v === "auto") return tools ? { kind: "auto" } : { kind: "off" };
  if (v === "required") {
    if (!tools) throw bad("tool_choice", "tool_choice 'required' needs 'tools'");
    return { kind: "required" };
  }
  if (isObj(v) && v.type === "function" && isObj(v.function) && typeof v.function.name === "string") {
    if (!params.has(v.function.name)) throw bad("tool_choice", `tool_choice names '${v.function.name}', which is not in 'tools'`);
    return { kind: "named", name: v.function.name };
  }
  throw bad("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {type: 'function', function: {name}}");
}

function parseResponseFormat(v: unknown): JsonSchema | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || typeof v.type !== "string") throw bad("response_format", "'response_format' must be an object with a 'type'");
  if (v.type === "text") return undefined;
  if (v.type === "json_object") return { type: "object" };
  if (v.type === "json_schema") {
    const js = v.json_schema;
    if (!isObj(js) || (js.schema !== undefined && typeof js.schema !== "boolean" && !isObj(js.schema))) {
      throw bad("response_format.json_schema", "response_format.json_schema must be {name, schema}");
    }
    return (js.schema as JsonSchema | undefined) ?? { type: "object" };
  }
  throw bad("response_format.type", `response_format type '${v.type}' is not supported (text, json_object, json_schema)`);
}

/** `multimodal`: the model takes image_url / input_audio content parts (loaded with an mmproj). */
export function parseChatRequest(body: unknown, vocabSize: number, multimodal = false): ChatRequest {
  if (!isObj(body)) throw bad("", "the request body must be a JSON object");
  const common = parseCommon(body, vocabSize);
  const messages = parseMessages(body.messages, multimodal);
  const { tools, params } = parseTools(body);
  const toolMode = parseToolChoice(body.tool_choice, tools, params);
  const schema = parseResponseFormat(body.response_format);
  if (schema !== undefined) {
    if (toolMode.kind === "required" || toolMode.kind === "named") {
      throw bad("response_format", "response_format cannot be combined with a forced tool_choice");
    }
    common.gen.jsonSchema = schema;
  }
  return { ...common, messages, tools, toolMode, toolParams: params };
}

// ---- completions -----------------------------------------------------------------------------------

export interface CompletionRequest extends CommonRequest { prompt: string | number[] }

export function parseCompletionRequest(body: unknown, vocabSize: number): CompletionRequest {
  if (!isObj(body)) throw bad("", "the request body must be a JSON object");
  const common = parseCommon(body, vocabSize);
  let prompt = body.prompt;
  if (prompt === undefined || prompt === null) throw new HttpError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  // one prompt per request: a list holding one string (or one token list) is that prompt
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === "string" || Array.isArray(prompt[0]))) prompt = prompt[0];
  const isIds = Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize);
  if (typeof prompt !== "string" && !isIds) {
    throw bad("prompt", "'prompt' must be a string or a list of token ids (one prompt per request)");
  }
  if (body.echo === true) throw bad("echo", "'echo' is not supported");
  if (typeof body.suffix === "string" && body.suffix) throw bad("suffix", "'suffix' is not supported");
  return { ...common, prompt: prompt as string | number[] };
}

// ---- embeddings ------------------------------------------------------------------------------------

export interface EmbeddingRequest { model?: string; input: string[]; base64: boolean; dimensions?: number }

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  if (!isObj(body)) throw bad("", "the request body must be a JSON object");
  if (body.model !== undefined && typeof body.model !== "string") throw bad("model", "'model' must be a string");
  const input = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((s) => typeof s === "string")) {
    throw bad("input", "'input' must be a string or a non-empty list of strings");
  }
  const fmt = body.encoding_format ?? "float";
  if (fmt !== "float" && fmt !== "base64") throw bad("encoding_format", "'encoding_format' must be 'float' or 'base64'");
  return { model: body.model as string | undefined, input, base64: fmt === "base64", dimensions: optInteger(body, "dimensions", 1) };
}
