// LFM2-VL on top of a loaded LFM2 text model: images become rows of projected embeddings fed to the text
// tower in place of token embeddings. Each encoded image owns a range of "image ids" past the vocabulary, one
// per row, so a session's token history names image rows like any token: a later turn carrying the same
// image (same pixels and options → same ids) finds them in the prefix cache and is not re-run.
import { Lfm2Error } from "../../errors.js";
import type { Lfm2Forward, StepInput } from "../lfm2/forward.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import { renderChatProtected, type ChatMessage } from "../../text/chat-template.js";
import { LFM2_CHAT_TEMPLATE } from "../../text/chat-template.js";
import { bytesFromDataUrl, loadImage, type ImageInput, type RgbImage } from "./image.js";
import type { Lfm2VlImageOptions } from "./preprocess.js";
import type { VisionEncoder } from "./encoder.js";
import type { Session } from "../../runtime/session.js";
import type { ChatDelta, ChatOptions, ChatResult } from "../../generate/generate.js";
import { TOOL_CALL_END, TOOL_CALL_START, ToolCallStreamParser, type ToolCall } from "../../text/tool-calls.js";

/** What `model.encodeImage` returns. */
export interface ImageEmbedding {
  /** This image's prompt tokens in order: markers as their ids, one `<image>` id per embeddings row. */
  tokens: number[];
  /** rows × the text model's hidden size. */
  embeddings: Float32Array;
  rows: number;
  /** Tiles (cols × rows) and whether a thumbnail follows them. */
  grid: { cols: number; rows: number; thumbnail: boolean };
}

interface Entry { first: number; rows: number; embeddings: Float32Array; tokens: number[]; sessionTokens: number[] }

/** Image ids start here above the vocabulary (far past any real id). */
const IMAGE_ID_SPAN = 1 << 26;

/** FNV-1a over the pixels and the options: the identity of an encoded image. */
function imageKey(img: RgbImage, opts: Lfm2VlImageOptions): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ img.width;
  const d = img.data;
  for (let i = 0; i < d.length; i++) { h1 = Math.imul(h1 ^ d[i], 0x01000193); h2 = Math.imul(h2 ^ d[i] ^ (i & 0xff), 0x5bd1e995); }
  return `${img.width}x${img.height}:${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}:${JSON.stringify(opts)}`;
}

export class VisionLanguage {
  private entries = new Map<string, Entry>();
  private byId: Entry[] = [];
  private nextId: number;
  /** The text forward as sessions see it: image ids accepted and turned into their embedding rows. */
  readonly forward: Lfm2Forward;

  constructor(readonly encoder: VisionEncoder, private fwd: Lfm2Forward, private tok: Tokenizer, readonly imageOptions: Lfm2VlImageOptions = {}) {
    if (encoder.config.outDim !== fwd.cfg.hiddenSize) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the mmproj projects to ${encoder.config.outDim} but the text model's hidden size is ${fwd.cfg.hiddenSize}`);
    }
    for (const t of ["<image>", "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>"]) {
      if (tok.tokenId(t) === undefined) throw new Lfm2Error("BAD_METADATA", `the text model's vocabulary has no ${t} (not an LFM2-VL text tower)`);
    }
    this.nextId = fwd.cfg.vocabSize;
    const cfg = { ...fwd.cfg, vocabSize: fwd.cfg.vocabSize + IMAGE_ID_SPAN };
    const step = (input: StepInput, pos0: number, s: unknown, output?: unknown) =>
      fwd.step(this.resolve(input), pos0, s as never, output as never);
    // every other member runs on the real forward (its own cfg), only the id bound and step differ
    this.forward = new Proxy(fwd, {
      get: (target, prop) => {
        if (prop === "cfg") return cfg;
        if (prop === "step") return step;
        if (prop === "isExtraId") return (id: number) => this.isImageId(id);
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  /** Ids past the vocabulary that name rows of an encoded image. */
  isImageId(id: number): boolean { return id >= this.fwd.cfg.vocabSize && id < this.nextId; }

  private embScratch = 0;
  /** Row `id` of the token embedding matrix as f32 (what step() looks up for a token id). */
  private tokenEmbedding(id: number): Float32Array {
    const shard = this.fwd.place.shards[this.fwd.place.headShard], D = this.fwd.cfg.hiddenSize;
    if (!this.embScratch) this.embScratch = shard.arena.alloc(D * 4);
    shard.ops.rowToF32(this.fwd.w.embed, id, this.embScratch);
    return shard.arena.f32(this.embScratch, D);
  }

  /** Token ids with image ids → the embeddings of the chunk (token rows looked up in the embedding matrix). */
  private resolve(input: StepInput): StepInput {
    if ("embeddings" in input) return input;
    const ids = input as ArrayLike<number>, V = this.fwd.cfg.vocabSize, D = this.fwd.cfg.hiddenSize;
    let any = false;
    for (let i = 0; i < ids.length; i++) if (ids[i] >= V) { any = true; break; }
    if (!any) return input;
    const out = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id < V) { out.set(this.tokenEmbedding(id), i * D); continue; }
      const e = this.byId[id - V];
      if (!e) throw new Lfm2Error("BAD_INPUT", `token id ${id} is neither in the vocabulary nor an encoded image row`);
      const r = id - e.first;
      out.set(e.embeddings.subarray(r * D, (r + 1) * D), i * D);
    }
    return { embeddings: out };
  }

  private async entry(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<Entry> {
    const img = await loadImage(input);
    const { signal, ...o } = { ...this.imageOptions, ...opts };
    const key = imageKey(img, o);
    const have = this.entries.get(key);
    if (have) return have;
    const enc = await this.encoder.encode(img as never, { ...o, signal });
    const first = this.nextId;
    if (first + enc.rows > this.fwd.cfg.vocabSize + IMAGE_ID_SPAN) throw new Lfm2Error("OUT_OF_RANGE", "too many distinct images for one model");
    const id = (t: string) => this.tok.tokenId(t)!;
    const tokens: number[] = [id("<|image_start|>")], sessionTokens: number[] = [id("<|image_start|>")];
    let row = first;
    for (const t of enc.plan.tiles) {
      if (t.marker) { tokens.push(id(t.marker)); sessionTokens.push(id(t.marker)); }
      for (let i = 0; i < t.tokens; i++) { tokens.push(id("<image>")); sessionTokens.push(row++); }
    }
    tokens.push(id("<|image_end|>")); sessionTokens.push(id("<|image_end|>"));
    const e: Entry = { first, rows: enc.rows, embeddings: enc.embeddings, tokens, sessionTokens };
    this.nextId += enc.rows;
    for (let i = 0; i < enc.rows; i++) this.byId[first - this.fwd.cfg.vocabSize + i] = e;
    this.entries.set(key, e);
    return e;
  }

  /** Encode an image: its prompt tokens and projected embeddings (cached by content). */
  async encodeImage(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<ImageEmbedding> {
    const e = await this.entry(input, opts);
    const marker = (t: number) => this.tok.tokenText(t);
    const tiles = e.tokens.filter((t) => /^<\|img_row_/.test(marker(t))).length;
    const rowMarkers = e.tokens.filter((t) => /^<\|img_row_/.test(marker(t)));
    const last = rowMarkers[rowMarkers.length - 1];
    const m = last === undefined ? null : /^<\|img_row_(\d+)_col_(\d+)\|>$/.exec(marker(last));
    return { tokens: e.tokens.slice(), embeddings: e.embeddings.slice(), rows: e.rows,
      grid: { cols: m ? Number(m[2]) : 1, rows: m ? Number(m[1]) : 1, thumbnail: tiles > 0 && e.tokens.some((t) => marker(t) === "<|img_thumbnail|>") } };
  }

  /** The ids a session holds for this image: markers, then one image id per embedding row. */
  async sessionTokens(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<number[]> {
    return (await this.entry(input, opts)).sessionTokens.slice();
  }

  /**
   * Register precomputed image rows (e.g. stored from an earlier encodeImage, or another encoder's) under the
   * prompt tokens they belong to — `tokens` as encodeImage returns them — and get the ids a session feeds.
   */
  addEmbeddings(tokens: readonly number[], embeddings: Float32Array): number[] {
    const imageId = this.tok.tokenId("<image>")!, D = this.fwd.cfg.hiddenSize;
    const rows = tokens.filter((t) => t === imageId).length;
    if (!(embeddings instanceof Float32Array) || embeddings.length !== rows * D) {
      throw new Lfm2Error("BAD_INPUT", `${rows} <image> tokens need ${rows * D} floats of embeddings, got ${embeddings?.length}`);
    }
    const first = this.nextId;
    let row = first;
    const sessionTokens = tokens.map((t) => (t === imageId ? row++ : t));
    const e: Entry = { first, rows, embeddings: embeddings.slice(), tokens: [...tokens], sessionTokens };
    this.nextId += rows;
    for (let i = 0; i < rows; i++) this.byId[first - this.fwd.cfg.vocabSize + i] = e;
    return sessionTokens.slice();
  }

  /** Whether any message carries an image part. */
  static hasImages(messages: ChatMessage[]): boolean {
    return Array.isArray(messages) && messages.some((m) => Array.isArray(m?.content) && (m.content as unknown[]).some(isImagePart));
  }

  /**
   * The prompt ids of a conversation with image parts: rendered by the chat template with each image as a
   * sentinel, tokenized around the sentinels (as llama.cpp's mtmd tokenizes text chunks around media), and
   * the images' session tokens spliced in. Text parts of a message are joined as HF's template does.
   */
  async promptIds(messages: ChatMessage[], opts: { template?: string; tools?: unknown; allowSpecialTokensInContent?: boolean;
    signal?: AbortSignal } = {}, fileTemplate?: string): Promise<number[]> {
    const nonce = `\u{F0000}lfm2-image-${Math.random().toString(36).slice(2)}-`;
    const images: Entry[] = [];
    const flat: ChatMessage[] = [];
    for (const m of messages) {
      if (!Array.isArray(m?.content)) { flat.push(m); continue; }
      let text = "";
      for (const part of m.content as unknown[]) {
        if (isImagePart(part)) {
          images.push(await this.entry(imageOf(part), { signal: opts.signal }));
          text += `${nonce}${images.length - 1}\u{F0001}`;
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
    const re = new RegExp(`${nonce}(\\d+)\u{F0001}`, "gu");
    const ids: number[] = [];
    let at = 0;
    const piece = (a: number, b: number) => {
      if (b <= a) return;
      const spans: number[] = [];
      for (let i = 0; i < plainSpans.length; i += 2) {
        const s = Math.max(a, plainSpans[i]), e = Math.min(b, plainSpans[i + 1]);
        if (e > s) spans.push(s - a, e - a);
      }
      ids.push(...tok.encode(text.slice(a, b), { addBos: false, plainSpans: spans }));
    };
    let found = 0;
    for (const m of text.matchAll(re)) {
      piece(at, m.index!);
      ids.push(...images[Number(m[1])].sessionTokens);
      at = m.index! + m[0].length;
      found++;
    }
    piece(at, text.length);
    if (found !== images.length) throw new Lfm2Error("BAD_TEMPLATE", "the chat template dropped or repeated an image part");
    return ids;
  }
}

function isImagePart(p: unknown): boolean {
  if (!p || typeof p !== "object") return false;
  const t = (p as { type?: unknown }).type;
  return t === "image" || t === "image_url" || t === "input_image";
}

/** `{type:"image", image}` or OpenAI's `{type:"image_url", image_url:{url:"data:..."}}` → an input. */
function imageOf(p: unknown): ImageInput {
  const part = p as { type: string; image?: unknown; image_url?: unknown };
  if (part.type === "image") {
    if (typeof part.image === "string") return bytesFromDataUrl(part.image);
    if (part.image === undefined || part.image === null) throw new Lfm2Error("BAD_INPUT", "an image part needs `image`");
    return part.image as ImageInput;
  }
  const u = part.image_url;
  const url = typeof u === "string" ? u : (u as { url?: unknown } | undefined)?.url;
  if (typeof url !== "string") throw new Lfm2Error("BAD_INPUT", "an image_url part needs image_url.url");
  return bytesFromDataUrl(url);
}

/** Streaming chat over a session with image parts: the prompt from promptIds, tool calls parsed as text chat does. */
export async function* visionChatStream(vl: VisionLanguage, session: Session, messages: ChatMessage[], opts: ChatOptions,
  fileTemplate?: string): AsyncGenerator<ChatDelta, ChatResult> {
  const ids = await vl.promptIds(messages, opts, fileTemplate);
  const gen = session.generate(ids, { ...opts, keepSpecialTokens: [TOOL_CALL_START, TOOL_CALL_END] });
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
