// Text generation over a session: prompt → (prefix reuse) → prefill → sample/decode loop with stop
// rules, streamed as deltas. Chat = template rendering + generation + tool-call parsing.
import { Lfm2Error, abortError } from "../errors.js";
import type { Tokenizer } from "../text/tokenizer.js";
import { LFM2_CHAT_TEMPLATE, renderChatProtected, type ChatMessage, type ToolDefinition } from "../text/chat-template.js";
import { TOOL_CALL_END, TOOL_CALL_START, ToolCallStreamParser, type ToolCall } from "../text/tool-calls.js";
import { LFM2_DEFAULT_SAMPLING, Sampler, type SamplingOptions } from "./sampler.js";
import { StopStringMatcher } from "./stop.js";
import { JsonSchemaMatcher, TokenConstraint, sampleConstrained, type JsonSchema } from "./json-schema.js";

/** What generation needs from a session (src/session.ts implements it). */
export interface GenerationTarget {
  readonly contextLength: number;
  readonly tokens: readonly number[];
  forward(tokens: ArrayLike<number>, opts?: { signal?: AbortSignal }): Promise<Float32Array>;
  rewindToPrefix(tokens: readonly number[]): number;
  checkpoint(): void;
  /** Ids past the vocabulary this target accepts (LFM2-VL image rows, fed as embeddings). */
  isExtraId?(id: number): boolean;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 256). Generation also ends when the context is full. */
  maxTokens?: number;
  /** Strings that end generation (not included in the output). */
  stop?: string[];
  /** Extra token ids that end generation, besides the model's end-of-generation tokens. */
  stopTokens?: number[];
  signal?: AbortSignal;
  /** Constrain output to JSON matching this schema. */
  jsonSchema?: JsonSchema;
  /** Add BOS when encoding a string prompt (default: the tokenizer's setting). */
  addBos?: boolean;
  /** Special tokens whose text is kept in the output (others are dropped), e.g. tool-call markers. */
  keepSpecialTokens?: string[];
}

export type FinishReason = "stop" | "length" | "context";

export interface GenerateDelta { token: number; text: string }

export interface Usage { promptTokens: number; completionTokens: number; /** prompt tokens served from the cache */ cachedTokens: number }

export interface GenerateResult { text: string; tokens: number[]; finishReason: FinishReason; usage: Usage; timings: { prefillMs: number; decodeMs: number } }

/**
 * Generate from a prompt (text, or token ids). Yields a delta per token (text may be "" while a UTF-8
 * sequence or a possible stop string is held back) and returns the result. An aborted signal throws
 * Lfm2Error("ABORTED"); the session keeps every token it accepted and stays usable.
 */
export async function* generate(target: GenerationTarget, tok: Tokenizer, prompt: string | ArrayLike<number>, opts: GenerateOptions = {}): AsyncGenerator<GenerateDelta, GenerateResult> {
  if (opts === null || typeof opts !== "object") throw new Lfm2Error("BAD_INPUT", "generate options must be an object");
  const ids = promptIds(tok, prompt, opts.addBos, target.isExtraId?.bind(target));
  if (ids.length === 0) throw new Lfm2Error("BAD_INPUT", "the prompt is empty");
  if (ids.length >= target.contextLength) {
    throw new Lfm2Error("CONTEXT_OVERFLOW", `the prompt has ${ids.length} tokens; the session's context holds ${target.contextLength} (one more is needed to generate)`);
  }
  const maxTokens = opts.maxTokens ?? 256;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new Lfm2Error("BAD_INPUT", `maxTokens must be a non-negative integer, got ${maxTokens}`);
  const sampler = new Sampler(resolveSamplingOptions(opts), tok.vocabSize);
  if (opts.stopTokens !== undefined && !(Array.isArray(opts.stopTokens) && opts.stopTokens.every(Number.isInteger))) {
    throw new Lfm2Error("BAD_INPUT", "stopTokens must be a list of token ids");
  }
  if (opts.keepSpecialTokens !== undefined && !(Array.isArray(opts.keepSpecialTokens) && opts.keepSpecialTokens.every((t) => typeof t === "string"))) {
    throw new Lfm2Error("BAD_INPUT", "keepSpecialTokens must be a list of strings");
  }
  const stopIds = new Set([...tok.eogIds, ...(opts.stopTokens ?? [])]);
  const stops = new StopStringMatcher(opts.stop ?? []);
  const decoder = tok.createDecoder({ skipSpecial: false });
  const keep = new Set(opts.keepSpecialTokens ?? []);
  const visible = (id: number) => !tok.isSpecial(id) || keep.has(tok.tokenText(id));
  const constraint = opts.jsonSchema === undefined ? null : new TokenConstraint(new JsonSchemaMatcher(opts.jsonSchema), {
    vocabSize: tok.vocabSize, eogIds: tok.eogIds, isSpecial: (id) => tok.isSpecial(id), tokenText: (id) => tok.decode([id]),
  });
  const signal = opts.signal;
  if (signal?.aborted) throw abortError(signal);

  const t0 = performance.now();
  const cached = target.rewindToPrefix(ids);
  let logits = await target.forward(ids.slice(cached), { signal });
  target.checkpoint();
  const t1 = performance.now();
  const out: number[] = [];
  let text = "";
  let finishReason: FinishReason = "length";
  const history = () => target.tokens;
  let sliceStart = performance.now();
  while (out.length < maxTokens) {
    // decoding never leaves the microtask queue on its own: give timers and events (an abort() from
    // a timeout or a Stop button) a turn every ABORT_SLICE_MS, or the signal is only seen at the end
    if (signal && performance.now() - sliceStart >= ABORT_SLICE_MS) { await macrotask(); sliceStart = performance.now(); }
    if (signal?.aborted) throw abortError(signal);
    const id = constraint ? sampleConstrained(sampler, logits, history(), constraint) : sampler.sample(logits, history());
    constraint?.advance(id);
    if (stopIds.has(id)) { finishReason = "stop"; break; }
    out.push(id);
    const piece = stops.push(visible(id) ? decoder.push(id) : "");
    text += piece.text;
    yield { token: id, text: piece.text };
    if (piece.stopped || constraint?.finished) { finishReason = "stop"; break; }
    if (target.tokens.length >= target.contextLength) { finishReason = "context"; break; }
    if (out.length === maxTokens) break;
    logits = await target.forward([id], { signal });
  }
  if (!stops.stopped) {
    const tail = stops.push(decoder.flush()).text + stops.flush();
    if (tail) { text += tail; yield { token: -1, text: tail }; }
  }
  target.checkpoint();
  return {
    text, tokens: out, finishReason,
    usage: { promptTokens: ids.length, completionTokens: out.length, cachedTokens: cached },
    timings: { prefillMs: t1 - t0, decodeMs: performance.now() - t1 },
  };
}

const ABORT_SLICE_MS = 30;
const macrotask = () => new Promise<void>((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));

/** A string prompt encoded, or token ids checked against the vocabulary. */
function promptIds(tok: Tokenizer, prompt: unknown, addBos: boolean | undefined, isExtraId?: (id: number) => boolean): number[] {
  if (typeof prompt === "string") return tok.encode(prompt, { addBos });
  const isIds = Array.isArray(prompt) || (ArrayBuffer.isView(prompt) && !(prompt instanceof DataView));
  if (!isIds) throw new Lfm2Error("BAD_INPUT", `a prompt must be a string or a list of token ids, got ${prompt === null ? "null" : typeof prompt}`);
  const ids = Array.from(prompt as ArrayLike<number>, Number);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || (id >= tok.vocabSize && !isExtraId?.(id))) {
      throw new Lfm2Error("BAD_INPUT", `prompt token id ${id} is outside the vocabulary (0..${tok.vocabSize - 1})`);
    }
  }
  return ids;
}

/**
 * The sampling options a generation uses: the model card's recommendation (LFM2_DEFAULT_SAMPLING)
 * with every option the caller set laid over it. Unset and explicitly `undefined` options keep the
 * default, so `{ seed: 42 }` alone still samples at temperature 0.3 with min-p 0.15.
 */
export function resolveSamplingOptions(o: SamplingOptions): SamplingOptions {
  const { temperature, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed } = o;
  const given: SamplingOptions = { temperature, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty, penaltyLastN, logitBias, seed };
  const merged: Record<string, unknown> = { ...LFM2_DEFAULT_SAMPLING };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) merged[k] = v;
  return merged as SamplingOptions;
}

// ---- chat ------------------------------------------------------------------------------------------

export interface ChatOptions extends GenerateOptions {
  tools?: ToolDefinition[];
  /** A Jinja chat template (default: the model file's, else the official LFM2 template). */
  template?: string;
  /**
   * Let message contents, tool-call arguments and tool definitions that spell a special token (say
   * `<|im_end|><|im_start|>system`) become that control token, as before. Default false: only the
   * template's own markup is special, so message text cannot inject turns or tool calls.
   */
  allowSpecialTokensInContent?: boolean;
}

export interface ChatDelta { text: string; toolCalls: ToolCall[] }

export interface ChatResult { text: string; toolCalls: ToolCall[]; finishReason: FinishReason; usage: Usage; timings: GenerateResult["timings"] }

/**
 * Content parts other than text (images, audio) → the ids a session holds for them (media rows past the
 * vocabulary, with their marker tokens); null for a part this model cannot take.
 */
export type MediaResolver = (part: unknown, signal?: AbortSignal) => Promise<number[] | null>;

/** Whether any message carries content parts (an array) rather than a string. */
export const hasContentParts = (messages: ChatMessage[]) => Array.isArray(messages) && messages.some((m) => Array.isArray(m?.content));

/** The template applied to the messages: its text, and the spans of caller data in it (tokenized as text). */
function renderText(tok: Tokenizer, messages: ChatMessage[], opts: ChatOptions, fileTemplate?: string) {
  if (opts === null || typeof opts !== "object") throw new Lfm2Error("BAD_INPUT", "chat options must be an object");
  const bos = tok.bosId === null ? "" : tok.tokenText(tok.bosId);
  const eos = tok.eosId === null ? "" : tok.tokenText(tok.eosId);
  const protect = opts.allowSpecialTokensInContent === true ? [] : tok.controlTokenTexts();
  return renderChatProtected(messages, { template: opts.template ?? fileTemplate ?? LFM2_CHAT_TEMPLATE, tools: opts.tools, bosToken: bos, eosToken: eos }, protect);
}

/** The prompt ids for a conversation: the template's markup as special tokens, caller data as text. */
export function renderPrompt(tok: Tokenizer, messages: ChatMessage[], opts: ChatOptions, fileTemplate?: string): number[] {
  const { text, plainSpans } = renderText(tok, messages, opts, fileTemplate);
  return tok.encode(text, { addBos: false, plainSpans }); // the template emits BOS itself
}

/**
 * The prompt ids of a conversation with content parts: text parts joined, each media part rendered as a
 * sentinel, the text around the sentinels tokenized (as llama.cpp's mtmd tokenizes text chunks around media)
 * and the media ids spliced in where the template put them.
 */
export async function renderMediaPrompt(tok: Tokenizer, messages: ChatMessage[], opts: ChatOptions, fileTemplate: string | undefined,
  media: MediaResolver): Promise<number[]> {
  if (!Array.isArray(messages)) throw new Lfm2Error("BAD_INPUT", "messages must be an array");
  const open = `\u{F0000}lfm2-media-${Math.random().toString(36).slice(2)}-`, close = "\u{F0001}";
  const spliced: number[][] = [];
  const flat: ChatMessage[] = [];
  for (const m of messages) {
    if (!Array.isArray(m?.content)) { flat.push(m); continue; }
    let text = "";
    for (const part of m.content as unknown[]) {
      if (part && typeof part === "object" && (part as { type?: unknown }).type === "text") {
        text += String((part as { text?: unknown }).text ?? "");
        continue;
      }
      const ids = await media(part, opts.signal);
      if (!ids) throw new Lfm2Error("BAD_INPUT", `this model cannot take the content part ${JSON.stringify(part)?.slice(0, 80)}`);
      spliced.push(ids);
      text += `${open}${spliced.length - 1}${close}`;
    }
    flat.push({ ...m, content: text });
  }
  const { text, plainSpans } = renderText(tok, flat, opts, fileTemplate);
  const ids: number[] = [];
  const piece = (a: number, b: number) => {
    if (b <= a) return;
    const spans: number[] = [];
    for (let i = 0; i < plainSpans.length; i += 2) {
      const s = Math.max(a, plainSpans[i]), e = Math.min(b, plainSpans[i + 1]);
      if (e > s) spans.push(s - a, e - a);
    }
    ids.push(...tok.encode(text.slice(a, b), { addBos: false, plainSpans: spans }));
  };
  let at = 0, found = 0;
  for (const m of text.matchAll(new RegExp(`${open}(\\d+)${close}`, "gu"))) {
    piece(at, m.index!);
    ids.push(...spliced[Number(m[1])]);
    at = m.index! + m[0].length;
    found++;
  }
  piece(at, text.length);
  if (found !== spliced.length) throw new Lfm2Error("BAD_TEMPLATE", "the chat template dropped or repeated a media part");
  return ids;
}

/**
 * Streaming chat: yields text deltas and completed tool calls; returns the whole result. `media` resolves
 * image / audio parts (models loaded with an mmproj).
 */
export async function* chatStream(target: GenerationTarget, tok: Tokenizer, messages: ChatMessage[], opts: ChatOptions = {}, fileTemplate?: string,
  media?: MediaResolver): AsyncGenerator<ChatDelta, ChatResult> {
  const prompt = hasContentParts(messages)
    ? await renderMediaPrompt(tok, messages, opts, fileTemplate, media ?? (async () => null))
    : renderPrompt(tok, messages, opts, fileTemplate);
  // tool-call markers are special tokens: keep their text so the parser sees them
  const gen = generate(target, tok, prompt, { ...opts, keepSpecialTokens: [TOOL_CALL_START, TOOL_CALL_END] });
  const parser = new ToolCallStreamParser();
  const calls: ToolCall[] = [];
  let text = "";
  let r = await gen.next();
  while (!r.done) {
    const d = parser.push(r.value.text);
    text += d.text;
    calls.push(...d.toolCalls);
    if (d.text || d.toolCalls.length) yield { text: d.text, toolCalls: d.toolCalls };
    r = await gen.next();
  }
  const end = parser.end();
  calls.push(...end.toolCalls);
  text += end.text;
  if (end.text || end.toolCalls.length) yield { text: end.text, toolCalls: end.toolCalls };
  return { text, toolCalls: calls, finishReason: r.value.finishReason, usage: r.value.usage, timings: r.value.timings };
}

export async function chat(target: GenerationTarget, tok: Tokenizer, messages: ChatMessage[], opts: ChatOptions = {}, fileTemplate?: string,
  media?: MediaResolver): Promise<ChatResult> {
  const it = chatStream(target, tok, messages, opts, fileTemplate, media);
  for (;;) { const r = await it.next(); if (r.done) return r.value; }
}
