// LFM2-Audio speech input on top of a loaded LFM2 text model: a clip becomes rows of audio embeddings fed to
// the text tower in place of token embeddings, at the place of the audio part in the prompt (no marker
// tokens: llama.cpp's lfm2a media chunk has none either). As LFM2-VL does for images (src/models/lfm2vl),
// each encoded clip owns a range of ids past the vocabulary, one per row, so a session's history names
// audio rows like tokens and a later turn carrying the same clip is served from the prefix cache.
import { Lfm2Error } from "../../errors.js";
import type { Lfm2Forward, StepInput } from "../lfm2/forward.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import { LFM2_CHAT_TEMPLATE, renderChatProtected, type ChatMessage } from "../../text/chat-template.js";
import type { Session } from "../../runtime/session.js";
import type { ChatDelta, ChatOptions, ChatResult } from "../../generate/generate.js";
import { toMono16k, type AudioInput } from "../../audio/input.js";
import type { AudioEncoder } from "./encoder.js";

/** What `model.encodeAudio` returns. */
export interface AudioEmbedding {
  /** The ids a session holds for this clip: one id past the vocabulary per embedding row. */
  tokens: number[];
  /** rows × the text model's hidden size. */
  embeddings: Float32Array;
  rows: number;
}

/** The system prompt LFM2-Audio is trained with for speech recognition. */
export const ASR_SYSTEM_PROMPT = "Perform ASR.";

interface Entry { first: number; rows: number; embeddings: Float32Array }

const AUDIO_ID_SPAN = 1 << 26;

function clipKey(x: Float32Array): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ x.length;
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < u.length; i++) { h1 = Math.imul(h1 ^ u[i], 0x01000193); h2 = Math.imul(h2 ^ u[i] ^ (i & 0xff), 0x5bd1e995); }
  return `${x.length}:${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`;
}

export class AudioLanguage {
  private entries = new Map<string, Entry>();
  private byId: Entry[] = [];
  private nextId: number;
  /** The text forward as sessions see it: audio ids accepted and turned into their embedding rows. */
  readonly forward: Lfm2Forward;

  constructor(readonly encoder: AudioEncoder, private fwd: Lfm2Forward, private tok: Tokenizer) {
    if (encoder.config.outDim !== fwd.cfg.hiddenSize) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the audio mmproj projects to ${encoder.config.outDim} but the text model's hidden size is ${fwd.cfg.hiddenSize}`);
    }
    this.nextId = fwd.cfg.vocabSize;
    const cfg = { ...fwd.cfg, vocabSize: fwd.cfg.vocabSize + AUDIO_ID_SPAN };
    const step = (input: StepInput, pos0: number, s: unknown, output?: unknown) => fwd.step(this.resolve(input), pos0, s as never, output as never);
    this.forward = new Proxy(fwd, {
      get: (target, prop) => {
        if (prop === "cfg") return cfg;
        if (prop === "step") return step;
        if (prop === "isExtraId") return (id: number) => this.isAudioId(id);
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  isAudioId(id: number): boolean { return id >= this.fwd.cfg.vocabSize && id < this.nextId; }

  private embScratch = 0;
  private tokenEmbedding(id: number): Float32Array {
    const shard = this.fwd.place.shards[this.fwd.place.headShard], D = this.fwd.cfg.hiddenSize;
    if (!this.embScratch) this.embScratch = shard.arena.alloc(D * 4);
    shard.ops.rowToF32(this.fwd.w.embed, id, this.embScratch);
    return shard.arena.f32(this.embScratch, D);
  }

  /** A chunk with audio ids → its embeddings (token rows from the embedding matrix). */
  private resolve(input: StepInput): StepInput {
    if ("embeddings" in input) return input;
    const ids = input as ArrayLike<number>, V = this.fwd.cfg.vocabSize, D = this.fwd.cfg.hiddenSize;
    let any = false;
    for (let i = 0; i < ids.length && !any; i++) any = ids[i] >= V;
    if (!any) return input;
    const out = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id < V) { out.set(this.tokenEmbedding(id), i * D); continue; }
      const e = this.byId[id - V];
      if (!e) throw new Lfm2Error("BAD_INPUT", `token id ${id} is neither in the vocabulary nor an encoded audio row`);
      const r = id - e.first;
      out.set(e.embeddings.subarray(r * D, (r + 1) * D), i * D);
    }
    return { embeddings: out };
  }

  private entry(input: AudioInput): Entry {
    const samples = toMono16k(input);
    const key = clipKey(samples);
    const have = this.entries.get(key);
    if (have) return have;
    const enc = this.encoder.encode({ samples, sampleRate: 16000 });
    const first = this.nextId;
    if (first + enc.tokens > this.fwd.cfg.vocabSize + AUDIO_ID_SPAN) throw new Lfm2Error("OUT_OF_RANGE", "too many distinct audio clips for one model");
    const e: Entry = { first, rows: enc.tokens, embeddings: enc.embeddings };
    this.nextId += enc.tokens;
    for (let i = 0; i < enc.tokens; i++) this.byId[first - this.fwd.cfg.vocabSize + i] = e;
    this.entries.set(key, e);
    return e;
  }

  /** Encode a clip: its session ids and projected embeddings (cached by content). */
  encodeAudio(input: AudioInput): AudioEmbedding {
    const e = this.entry(input);
    return { tokens: Array.from({ length: e.rows }, (_, i) => e.first + i), embeddings: e.embeddings.slice(), rows: e.rows };
  }

  static hasAudio(messages: ChatMessage[]): boolean {
    return Array.isArray(messages) && messages.some((m) => Array.isArray(m?.content) && (m.content as unknown[]).some(isAudioPart));
  }

  /**
   * The prompt ids of a conversation with audio parts: rendered by the chat template with each clip as a
   * sentinel, the text around the sentinels tokenized (as llama.cpp's mtmd tokenizes text chunks around
   * media) and the clips' ids spliced in. Text parts of a message are joined.
   */
  promptIds(messages: ChatMessage[], opts: { template?: string; tools?: unknown; allowSpecialTokensInContent?: boolean } = {},
    fileTemplate?: string): number[] {
    const nonce = `\u{F0000}lfm2-audio-${Math.random().toString(36).slice(2)}-`;
    const clips: Entry[] = [];
    const flat: ChatMessage[] = [];
    for (const m of messages) {
      if (!Array.isArray(m?.content)) { flat.push(m); continue; }
      let text = "";
      for (const part of m.content as unknown[]) {
        if (isAudioPart(part)) {
          clips.push(this.entry(audioOf(part)));
          text += `${nonce}${clips.length - 1}\u{F0001}`;
        } else if (part && typeof part === "object" && (part as { type?: unknown }).type === "text") {
          text += String((part as { text?: unknown }).text ?? "");
        } else throw new Lfm2Error("BAD_INPUT", `unsupported content part ${JSON.stringify(part)?.slice(0, 80)}`);
      }
      flat.push({ ...m, content: text });
    }
    const tok = this.tok;
    const bos = tok.bosId === null ? "" : tok.tokenText(tok.bosId);
    const eos = tok.eosId === null ? "" : tok.tokenText(tok.eosId);
    const protect = opts.allowSpecialTokensInContent === true ? [] : tok.controlTokenTexts();
    const { text, plainSpans } = renderChatProtected(flat,
      { template: opts.template ?? fileTemplate ?? LFM2_CHAT_TEMPLATE, tools: opts.tools as never, bosToken: bos, eosToken: eos }, protect);
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
    for (const m of text.matchAll(new RegExp(`${nonce}(\\d+)\u{F0001}`, "gu"))) {
      piece(at, m.index!);
      const c = clips[Number(m[1])];
      for (let i = 0; i < c.rows; i++) ids.push(c.first + i);
      at = m.index! + m[0].length;
      found++;
    }
    piece(at, text.length);
    if (found !== clips.length) throw new Lfm2Error("BAD_TEMPLATE", "the chat template dropped or repeated an audio part");
    return ids;
  }
}

function isAudioPart(p: unknown): boolean {
  if (!p || typeof p !== "object") return false;
  const t = (p as { type?: unknown }).type;
  return t === "audio" || t === "input_audio";
}

/** `{type:"audio", audio}` or OpenAI's `{type:"input_audio", input_audio:{data: base64, format:"wav"}}` → input. */
function audioOf(p: unknown): AudioInput {
  const part = p as { type: string; audio?: unknown; input_audio?: { data?: unknown; format?: unknown } };
  if (part.type === "audio") {
    if (part.audio === undefined || part.audio === null) throw new Lfm2Error("BAD_INPUT", "an audio part needs `audio`");
    return part.audio as AudioInput;
  }
  const ia = part.input_audio;
  if (!ia || typeof ia.data !== "string") throw new Lfm2Error("BAD_INPUT", "an input_audio part needs input_audio.data (base64)");
  if (ia.format !== undefined && ia.format !== "wav") throw new Lfm2Error("BAD_AUDIO", `input_audio format ${String(ia.format)} is not supported (wav only)`);
  return base64Bytes(ia.data);
}

function base64Bytes(s: string): Uint8Array {
  const clean = s.replace(/^data:[^,]*,/, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new Lfm2Error("BAD_AUDIO", "input_audio.data is not base64");
  const bin = atob(clean), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Streaming chat over a session with audio parts: the prompt from promptIds, generation as text chat does. */
export async function* audioChatStream(al: AudioLanguage, session: Session, messages: ChatMessage[], opts: ChatOptions,
  fileTemplate?: string): AsyncGenerator<ChatDelta, ChatResult> {
  const ids = al.promptIds(messages, opts, fileTemplate);
  const gen = session.generate(ids, opts);
  let text = "";
  let r = await gen.next();
  while (!r.done) {
    text += r.value.text;
    if (r.value.text) yield { text: r.value.text, toolCalls: [] };
    r = await gen.next();
  }
  return { text, toolCalls: [], finishReason: r.value.finishReason, usage: r.value.usage, timings: r.value.timings };
}
