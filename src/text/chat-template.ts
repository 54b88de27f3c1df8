// LFM2 chat prompt rendering (spec §4.3) with @huggingface/jinja.
import { Environment as JinjaEnvironment, Interpreter as JinjaInterpreter, Template } from "@huggingface/jinja";
import { Lfm2Error } from "../errors.js";
import { formatToolCalls, type ToolCallInput } from "./tool-calls.js";

/**
 * The official LFM2 text-model chat template (`chat_template.jinja` shipped in the LiquidAI LFM2 model
 * repositories), embedded verbatim — tabs, spaces and the missing final newline included.
 * Copyright Liquid AI, Inc.; distributed under the LFM Open License v1.0 (not this project's Apache-2.0).
 * The template is unmodified.
 */
export const LFM2_CHAT_TEMPLATE: string = [
  "{{- bos_token -}}",
  "{%- set system_prompt = \"\" -%}",
  "{%- set ns = namespace(system_prompt=\"\") -%}",
  "{%- if messages[0][\"role\"] == \"system\" -%}",
  "\t{%- set ns.system_prompt = messages[0][\"content\"] -%}",
  "\t{%- set messages = messages[1:] -%}",
  "{%- endif -%}",
  "{%- if tools -%}",
  "\t{%- set ns.system_prompt = ns.system_prompt + (\"\\n\" if ns.system_prompt else \"\") + \"List of tools: <|tool_list_start|>[\" -%}",
  "\t{%- for tool in tools -%}",
  "\t\t{%- if tool is not string -%}",
  "            {%- set tool = tool | tojson -%}",
  "\t\t{%- endif -%}",
  "\t\t{%- set ns.system_prompt = ns.system_prompt + tool -%}",
  "        {%- if not loop.last -%}",
  "            {%- set ns.system_prompt = ns.system_prompt + \", \" -%}",
  "        {%- endif -%}",
  "\t{%- endfor -%}",
  "\t{%- set ns.system_prompt = ns.system_prompt + \"]<|tool_list_end|>\" -%}",
  "{%- endif -%}",
  "{%- if ns.system_prompt -%}",
  "\t{{- \"<|im_start|>system\\n\" + ns.system_prompt + \"<|im_end|>\\n\" -}}",
  "{%- endif -%}",
  "{%- for message in messages -%}",
  "\t{{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" -}}",
  "\t{%- set content = message[\"content\"] -%}",
  "\t{%- if content is not string -%}",
  "\t\t{%- set content = content | tojson -%}",
  "\t{%- endif -%}",
  "\t{%- if message[\"role\"] == \"tool\" -%}",
  "\t\t{%- set content = \"<|tool_response_start|>\" + content + \"<|tool_response_end|>\" -%}",
  "\t{%- endif -%}",
  "\t{{- content + \"<|im_end|>\\n\" -}}",
  "{%- endfor -%}",
  "{%- if add_generation_prompt -%}",
  "\t{{- \"<|im_start|>assistant\\n\" -}}",
  "{%- endif -%}",
].join("\n");

export const LFM2_BOS_TOKEN = "<|startoftext|>";
export const LFM2_EOS_TOKEN = "<|im_end|>";

export type ChatRole = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  role: ChatRole;
  /** A string, or any JSON-able value (rendered with `tojson`, as the template does). */
  content: string | unknown;
  /** Calls made by an assistant turn; rendered into the content the way LFM2 writes them. */
  toolCalls?: ToolCallInput[];
}

export interface ToolFunction {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  [key: string]: unknown;
}

/** OpenAI style `{type: "function", function: {...}}` or the bare function object. Rendered as given. */
export type ToolDefinition = { type: "function"; function: ToolFunction } | ToolFunction;

export interface RenderChatOptions {
  /** A Jinja chat template; default the official LFM2 one. */
  template?: string;
  /** Tool definitions (or pre-serialised strings), listed in the system turn. */
  tools?: Array<ToolDefinition | string>;
  /** Append `<|im_start|>assistant\n` (default true). */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Further template variables (cannot override messages, tools, add_generation_prompt, bos/eos). */
  extra?: Record<string, unknown>;
  /** Work limits for the template (defaults in TEMPLATE_LIMITS); exceeding one is Lfm2Error BAD_TEMPLATE. */
  limits?: Partial<TemplateLimits>;
}

/**
 * A chat template comes from the model file, so it is untrusted code: without bounds
 * `range(1000000000)` aborts the process (V8 cannot grow the array and that error cannot be caught)
 * and a long loop blocks the thread with no way to stop it.
 */
export interface TemplateLimits {
  /** Largest `range()` (Jinja's own sandbox uses 100,000). */
  maxRange: number;
  /** Expression / statement evaluations per render; each number a range() builds counts as one too. */
  maxSteps: number;
  /** Longest string and longest list any expression may produce. */
  maxStringLength: number;
  maxListLength: number;
  /** Nesting of evaluations (runaway macro recursion). */
  maxDepth: number;
  /** Wall-clock budget for one render, checked every 1024 evaluations. */
  timeoutMs: number;
}

export const TEMPLATE_LIMITS: Readonly<TemplateLimits> = Object.freeze({
  maxRange: 100_000, maxSteps: 1_000_000, maxStringLength: 16 << 20, maxListLength: 1 << 20, maxDepth: 400, timeoutMs: 1500,
});

const ROLES = new Set<string>(["system", "user", "assistant", "tool"]);
const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (!t) {
    if (typeof template !== "string") throw new Lfm2Error("BAD_INPUT", "the chat template must be a string");
    try {
      t = new Template(template);
    } catch (e) {
      if (e instanceof RangeError) throw new Lfm2Error("BAD_TEMPLATE", `chat template is too deeply nested: ${e.message}`, { cause: e });
      throw new Lfm2Error("BAD_INPUT", `chat template does not parse: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (compiled.size > 16) compiled.clear();
    compiled.set(template, t);
  }
  return t;
}

/** Deep copy to plain JSON data (drops `undefined` members and functions, as JSON does). */
function plain(v: unknown, what: string): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(v));
  } catch (e) {
    throw new Lfm2Error("BAD_INPUT", `${what} is not JSON-serialisable`, { cause: e });
  }
}

/**
 * Render a conversation into the prompt text LFM2 expects (BOS included: tokenize the result without
 * adding another BOS). Assistant `toolCalls` are written into the content as
 * `<|tool_call_start|>[name(arg="x", n=2)]<|tool_call_end|>` before any text, because the official
 * template only knows raw content. With a custom template that mentions `tool_calls`, the calls are
 * passed as OpenAI-style `tool_calls` instead and the content is left alone.
 */
export function renderChat(messages: ChatMessage[], opts: RenderChatOptions = {}): string {
  return renderChatInternal(messages, opts, null).text;
}

export interface ProtectedRender {
  /** The prompt, exactly as renderChat returns it. */
  text: string;
  /**
   * Flat [start, end) pairs (UTF-16 offsets into `text`) where message, tool or tool-call text spells
   * a special token: tokenize those as plain text (Tokenizer.encode `plainSpans`).
   */
  plainSpans: number[];
}

/**
 * renderChat that also reports where caller data (message contents, tool-call arguments, tool
 * definitions) spells one of `specialTexts`, so that text cannot become a control token: before
 * rendering, each such occurrence is swapped for a placeholder the template cannot produce (a private
 * use character and a per-render random nonce); afterwards the placeholders are turned back into
 * the text and their positions recorded. Template operations on the strings (slicing, `tojson`,
 * splitting on other text) keep working because only the special-token spellings are replaced.
 */
export function renderChatProtected(messages: ChatMessage[], opts: RenderChatOptions, specialTexts: readonly string[]): ProtectedRender {
  return renderChatInternal(messages, opts, specialTexts.length > 0 ? new SpecialTextEscaper(specialTexts) : null);
}

function renderChatInternal(messages: ChatMessage[], opts: RenderChatOptions, esc: SpecialTextEscaper | null): ProtectedRender {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new Lfm2Error("BAD_INPUT", "renderChat needs at least one message");
  }
  if (opts === null || typeof opts !== "object") throw new Lfm2Error("BAD_INPUT", "renderChat options must be an object");
  const template = opts.template ?? LFM2_CHAT_TEMPLATE;
  const passToolCalls = opts.template !== undefined && template.includes("tool_calls");
  const data = <T>(v: T): T => (esc ? esc.deep(v) as T : v);
  const rendered = messages.map((m, i) => {
    if (m === null || typeof m !== "object" || !ROLES.has(m.role)) {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: role must be system, user, assistant or tool`);
    }
    if (m.toolCalls !== undefined && m.toolCalls !== null && !Array.isArray(m.toolCalls)) {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: toolCalls must be a list`);
    }
    const calls = data(m.toolCalls ?? []);
    if (calls.length > 0 && m.role !== "assistant") {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: only assistant messages can carry toolCalls`);
    }
    calls.forEach((c, j) => {
      if (c === null || typeof c !== "object" || typeof c.name !== "string") {
        throw new Lfm2Error("BAD_INPUT", `message ${i}: tool call ${j} needs a string name`);
      }
    });
    if (m.content === undefined && calls.length === 0) {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: content is missing`);
    }
    let content: unknown = typeof m.content === "string" ? data(m.content) : data(plain(m.content, `message ${i} content`));
    const out: Record<string, unknown> = { role: m.role };
    if (calls.length > 0) {
      if (passToolCalls) {
        out.tool_calls = calls.map((c, j) => {
          let args: unknown = c.arguments ?? {};
          if (typeof args === "string") {
            try { args = JSON.parse(args); } catch (e) {
              throw new Lfm2Error("BAD_INPUT", `message ${i}: tool call ${j} arguments are not JSON`, { cause: e });
            }
          }
          return { id: c.id ?? `call_${j}`, type: "function", function: { name: c.name, arguments: plain(args, "tool call arguments") } };
        });
        if (content === undefined) content = null;
      } else {
        let callText: string;
        try {
          callText = formatToolCalls(calls);
        } catch (e) {
          throw new Lfm2Error("BAD_INPUT", `message ${i}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        const rest = content === undefined || content === null ? ""
          : typeof content === "string" ? content : jsonLikeTojson(content);
        content = callText + rest;
      }
    }
    out.content = content === undefined ? null : content;
    return out;
  });
  const tools = checkTools(opts.tools)?.map((t, i) => data(typeof t === "string" ? t : plain(t, `tool ${i}`)));
  const ctx: Record<string, unknown> = {
    ...(opts.extra ?? {}),
    messages: rendered,
    tools: tools && tools.length > 0 ? tools : undefined,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    bos_token: opts.bosToken ?? LFM2_BOS_TOKEN,
    eos_token: opts.eosToken ?? LFM2_EOS_TOKEN,
  };
  const text = renderBounded(compile(template), ctx, { ...TEMPLATE_LIMITS, ...(opts.limits ?? {}) });
  return esc ? esc.restore(text) : { text, plainSpans: [] };
}

/** Tools must be a list of tool objects (with a string name, bare or under `function`) or strings. */
function checkTools(tools: unknown): Array<ToolDefinition | string> | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw new Lfm2Error("BAD_INPUT", "tools must be a list of tool definitions");
  tools.forEach((t, i) => {
    if (typeof t === "string") return;
    if (t === null || typeof t !== "object" || Array.isArray(t)) {
      throw new Lfm2Error("BAD_INPUT", `tool ${i} must be a tool definition object or a string`);
    }
    const fn = (t as { function?: unknown }).function;
    const named = fn !== undefined ? fn : t;
    if (named === null || typeof named !== "object" || typeof (named as { name?: unknown }).name !== "string") {
      throw new Lfm2Error("BAD_INPUT", `tool ${i} needs a string name (or function.name)`);
    }
  });
  return tools as Array<ToolDefinition | string>;
}

// ---- bounded rendering -----------------------------------------------------------------------------

class TemplateLimitError extends Error {}

// The package's .d.ts re-exports these from an extensionless path that NodeNext resolution does not
// follow, so spell out the part of their API used here.
interface Environment { set(name: string, value: unknown): unknown }
interface RuntimeValue { value: unknown }
interface InterpreterApi { evaluate(statement: unknown, environment: Environment): RuntimeValue; run(program: unknown): RuntimeValue }
const Environment = JinjaEnvironment as unknown as new () => Environment;
const Interpreter = JinjaInterpreter as unknown as new (env: Environment) => InterpreterApi;

/** The interpreter with a budget: every evaluation is counted and its result's size checked. */
class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private depth = 0;
  private readonly deadline: number;
  constructor(env: Environment, private readonly limits: TemplateLimits) {
    super(env);
    this.deadline = performance.now() + limits.timeoutMs;
  }
  /** Count `n` units of work (range() charges what it builds: its loops cost a step per item anyway). */
  charge(n: number): void {
    this.steps += n;
    if (this.steps > this.limits.maxSteps) throw new TemplateLimitError(`it took more than ${this.limits.maxSteps} steps`);
  }
  override evaluate(statement: unknown, environment: Environment): RuntimeValue {
    const l = this.limits;
    if (++this.steps > l.maxSteps) throw new TemplateLimitError(`it took more than ${l.maxSteps} steps`);
    if ((this.steps & 1023) === 0 && performance.now() > this.deadline) throw new TemplateLimitError(`it ran longer than ${l.timeoutMs} ms`);
    if (++this.depth > l.maxDepth) throw new TemplateLimitError(`it nests deeper than ${l.maxDepth} levels (recursion?)`);
    let v: RuntimeValue;
    try { v = super.evaluate(statement, environment); } finally { this.depth--; }
    const val: unknown = v.value;
    if (typeof val === "string" && val.length > l.maxStringLength) throw new TemplateLimitError(`it built a string longer than ${l.maxStringLength}`);
    if (Array.isArray(val) && val.length > l.maxListLength) throw new TemplateLimitError(`it built a list longer than ${l.maxListLength}`);
    return v;
  }
}

/** Template.render with the same globals, a size-checked `range` and the interpreter budget. */
function renderBounded(template: Template, ctx: Record<string, unknown>, limits: TemplateLimits): string {
  const env = new Environment();
  const interpreter = new BoundedInterpreter(env, limits);
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (msg: unknown) => { throw new Error(String(msg)); },
    range: (start: number, stop?: number, step = 1) => {
      const r = boundedRange(limits.maxRange, start, stop, step);
      interpreter.charge(r.length);
      return r;
    },
    strftime_now: (format: string) => strftime(new Date(), String(format)),
  };
  for (const [k, v] of Object.entries(globals)) env.set(k, v);
  for (const [k, v] of Object.entries(ctx)) env.set(k, v);
  try {
    const out = interpreter.run(template.parsed).value;
    if (typeof out !== "string") throw new Error("the template did not produce text");
    return out;
  } catch (e) {
    if (e instanceof Lfm2Error) throw e;
    if (e instanceof TemplateLimitError || e instanceof RangeError) {
      // RangeError: V8's own limits (call stack, string length) reached inside the interpreter
      throw new Lfm2Error("BAD_TEMPLATE", `chat template stopped: ${e.message}`, { cause: e });
    }
    throw new Lfm2Error("BAD_INPUT", `chat template failed to render: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Jinja's range(), refusing to build more than `max` numbers. */
function boundedRange(max: number, start: number, stop: number | undefined, step: number): number[] {
  if (stop === undefined) { stop = start; start = 0; }
  if (![start, stop, step].every((x) => typeof x === "number" && Number.isFinite(x))) throw new Error("range() needs finite numbers");
  if (step === 0) throw new Error("range() step must not be zero");
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > max) throw new TemplateLimitError(`range() of ${count} numbers exceeds ${max}`);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = start + i * step;
  return out;
}

/** strftime_now's formats, as the renderer supports them (%Y %m %d %b %B %H %M %%). */
function strftime(d: Date, format: string): string {
  const pad2 = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%[YmdbBHM%]/g, (t) => {
    switch (t) {
      case "%Y": return String(d.getFullYear());
      case "%m": return pad2(d.getMonth() + 1);
      case "%d": return pad2(d.getDate());
      case "%b": return new Intl.DateTimeFormat(undefined, { month: "short" }).format(d);
      case "%B": return new Intl.DateTimeFormat(undefined, { month: "long" }).format(d);
      case "%H": return pad2(d.getHours());
      case "%M": return pad2(d.getMinutes());
      default: return "%";
    }
  });
}

// ---- special-token spellings in caller data ------------------------------------------------------

const PLACEHOLDER_MARK = "\uE000";
const escaperRegex = new WeakMap<readonly string[], RegExp>();

class SpecialTextEscaper {
  private readonly re: RegExp;
  private readonly texts: readonly string[];
  private readonly nonce: string;
  constructor(specialTexts: readonly string[]) {
    let re = escaperRegex.get(specialTexts);
    if (!re) {
      // longest first, so the leftmost match is also the longest spelling at that position
      const alts = [...new Set(specialTexts)].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
      re = new RegExp(alts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|") || "(?!)", "g");
      escaperRegex.set(specialTexts, re);
    }
    this.re = re;
    this.texts = specialTexts;
    this.nonce = randomNonce();
  }
  private escapeString(s: string): string {
    return s.replace(this.re, (m) => `${PLACEHOLDER_MARK}${this.nonce}${this.texts.indexOf(m)}${PLACEHOLDER_MARK}`);
  }
  /** A copy of plain data with every string (keys included) escaped. */
  deep(v: unknown): unknown {
    if (typeof v === "string") return this.escapeString(v);
    if (Array.isArray(v)) return v.map((x) => this.deep(x));
    if (v !== null && typeof v === "object") {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[this.escapeString(k)] = this.deep(x);
      return o;
    }
    return v;
  }
  restore(rendered: string): ProtectedRender {
    const re = new RegExp(`${PLACEHOLDER_MARK}${this.nonce}(\\d+)${PLACEHOLDER_MARK}`, "g");
    const spans: number[] = [];
    let text = "", last = 0;
    for (let m = re.exec(rendered); m; m = re.exec(rendered)) {
      const spelled = this.texts[Number(m[1])] ?? m[0];
      text += rendered.slice(last, m.index);
      spans.push(text.length, text.length + spelled.length);
      text += spelled;
      last = m.index + m[0].length;
    }
    return { text: text + rendered.slice(last), plainSpans: spans };
  }
}

function randomNonce(): string {
  const b = new Uint8Array(9);
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(36).padStart(2, "0")).join("");
}

/** `tojson` as the template prints it (", " and ": " separators, non-ASCII kept). */
function jsonLikeTojson(v: unknown): string {
  return compile("{{ v | tojson }}").render({ v });
}
