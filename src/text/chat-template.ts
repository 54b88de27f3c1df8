// LFM2 chat prompt rendering (spec §4.3) with @huggingface/jinja.
import { Template } from "@huggingface/jinja";
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
}

const ROLES = new Set<string>(["system", "user", "assistant", "tool"]);
const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
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
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new Lfm2Error("BAD_INPUT", "renderChat needs at least one message");
  }
  const template = opts.template ?? LFM2_CHAT_TEMPLATE;
  const passToolCalls = opts.template !== undefined && template.includes("tool_calls");
  const rendered = messages.map((m, i) => {
    if (m === null || typeof m !== "object" || !ROLES.has(m.role)) {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: role must be system, user, assistant or tool`);
    }
    const calls = m.toolCalls ?? [];
    if (calls.length > 0 && m.role !== "assistant") {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: only assistant messages can carry toolCalls`);
    }
    if (m.content === undefined && calls.length === 0) {
      throw new Lfm2Error("BAD_INPUT", `message ${i}: content is missing`);
    }
    let content: unknown = typeof m.content === "string" ? m.content : plain(m.content, `message ${i} content`);
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
  const tools = opts.tools?.map((t, i) => (typeof t === "string" ? t : plain(t, `tool ${i}`)));
  const ctx: Record<string, unknown> = {
    ...(opts.extra ?? {}),
    messages: rendered,
    tools: tools && tools.length > 0 ? tools : undefined,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    bos_token: opts.bosToken ?? LFM2_BOS_TOKEN,
    eos_token: opts.eosToken ?? LFM2_EOS_TOKEN,
  };
  try {
    return compile(template).render(ctx);
  } catch (e) {
    if (e instanceof Lfm2Error) throw e;
    throw new Lfm2Error("BAD_INPUT", `chat template failed to render: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** `tojson` as the template prints it (", " and ": " separators, non-ASCII kept). */
function jsonLikeTojson(v: unknown): string {
  return compile("{{ v | tojson }}").render({ v });
}
