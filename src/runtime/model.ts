// loadModel(): source → parsed header → the architecture's tensors placed across one or more shards
// (WebAssembly memories) as the weights stream in → a Model that creates sessions. GGUF and Hugging
// Face safetensors are both accepted.
import type { GgmlTypeName } from "../core/quant-types.js";
import { INTERLEAVED_SYSTEM_PROMPT, SpeechOut, TTS_SYSTEM_PROMPT, type SpeechEvent, type SpeechMode, type SpeechOptions, type SpeechResult } from "../models/lfm2audio/speech-out.js";
import { fmt, MAX_BYTES } from "../../bindings/arena.js";
import { Shard } from "../../bindings/shard.js";
import { canShareMemory, chooseVariant, compileVariant, type WasmOptions, type WasmVariant } from "../../bindings/wasm.js";
import { Lfm2Error, throwIfAborted } from "../errors.js";
import { NeedMoreBytes, parseGguf, type GgufValue, type TensorInfo } from "../formats/gguf.js";
import { openSafetensorsShards, parseSafetensors, safetensorsShardNames } from "../formats/safetensors.js";
import { hfSource, isHfSpec } from "../io/hub.js";
import { assertWholeGguf, isSplitSource, openSplitParts, parseSplitName, splitSource, streamSplitGguf } from "../io/split.js";
import { cachedUrlSource, type ModelCacheMode } from "../io/browser-cache.js";
import { openSource, streamSource, type ByteSource, type ProgressCallback, type SourceInput } from "../io/source.js";
import { optionsObject, Session, type SessionOptions } from "./session.js";
import { checkSignal, drain, exclusive, FifoLock } from "./lock.js";
import type { Lfm2Config } from "../models/lfm2/config.js";
import { architecture, configFromGguf, configFromHf } from "../models/registry.js";
import { Lfm2Forward } from "../models/lfm2/forward.js";
import { assertVocabFits, Tokenizer } from "../text/tokenizer.js";
import type { ChatMessage } from "../text/chat-template.js";
import { hasContentParts, renderMediaPrompt, renderPrompt, type ChatDelta, type ChatOptions, type ChatResult, type MediaResolver } from "../generate/generate.js";
import { groupBytes, packGroups, planWeights } from "../graph/placement.js";
import {
  Encoder, embeddingInfoOf, maxSim, type EmbedOptions, type Embedding, type EmbeddingInfo, type RetrievalConfig,
} from "../models/colbert/encoder.js";
import { encoderConfigJson, encoderParts, readSentenceTransformersFolder, type SentenceTransformersInput } from "../models/colbert/hf.js";
import { VisionLanguage, type ImageEmbedding } from "../models/lfm2vl/vlm.js";
import { MediaRows } from "../models/media.js";
import { AudioLanguage, ASR_SYSTEM_PROMPT, type AudioEmbedding } from "../models/lfm2audio/speech.js";
import { loadAudioMmproj } from "../models/lfm2audio/encoder.js";
import type { AudioInput } from "../audio/input.js";
import { loadVisionEncoder } from "../models/lfm2vl/encoder.js";
import type { ImageInput } from "../models/lfm2vl/image.js";
import type { Lfm2VlImageOptions } from "../models/lfm2vl/preprocess.js";
import type { VisionEncoder, VisionLoadOptions } from "../models/lfm2vl/encoder.js";
import { checkImageToken, isLfm2VlConfig, lfm2VlImageOptions, lfm2VlTextConfig, loadHfVision } from "../models/lfm2vl/hf.js";

export interface LoadOptions extends WasmOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Largest prefill chunk (tokens per forward step); default 64. */
  chunkSize?: number;
  /**
   * Threads for matmuls (this one included). Default: the machine's cores, at most 4. Needs shared
   * WebAssembly memory (cross-origin isolation in browsers); falls back to 1 where it is unavailable.
   */
  threads?: number;
  /** Browsers: keep URL downloads in Cache Storage so the next page load reads them locally. */
  cache?: ModelCacheMode;
  /** URL and hub reads that receive no data for this long end in an IO error (default 30 s; Infinity: never). */
  readTimeoutMs?: number;
  /**
   * Most weight bytes one shard (WebAssembly memory) holds; larger models are split across several.
   * Default 85% of 4 GiB, leaving room for the KV cache and scratch beside the weights.
   */
  maxShardBytes?: number;
  /** Bidirectional or pooled encoders take a whole sequence in one step: its most tokens (default 512). */
  encoderLength?: number;
  /** LFM2-VL or LFM2-Audio: the projector file (mmproj GGUF) that pairs with this text model. */
  mmproj?: SourceInput;
  /** LFM2-VL processor options (min/max_image_tokens, tiling) for every image of this model. */
  imageOptions?: Lfm2VlImageOptions;
  /**
   * LFM2.5-Audio speech output: the vocoder GGUF bytes (audio head + code embeddings, llama.cpp layout) and the
   * detokenizer backbone (an lfm2 GGUF with a 1282-wide dense_2 head; docs/lfm2-audio-out.md).
   */
  speechOut?: { vocoder: Uint8Array; detokenizer: ModelInput; headWeightType?: GgmlTypeName };
}

/** Where the weights live: one entry per WebAssembly memory. */
export interface ShardInfo { weightBytes: number; layers: number[]; head: boolean }

export interface ModelInfo {
  architecture: string;
  name?: string;
  format: "gguf" | "safetensors";
  config: Lfm2Config;
  /** Tensor type → number of tensors of that type. */
  tensorTypes: Record<string, number>;
  parameters: number;
  /** Bytes of weights held in WebAssembly memory. */
  weightBytes: number;
  /** Which kernel build runs: relaxed SIMD or plain SIMD, shared memory or not. */
  wasmVariant: WasmVariant;
  /** One entry per WebAssembly memory holding weights (models over one memory's 4 GiB use several). */
  shards: ShardInfo[];
  threads: number;
  /** Why threads are off, when they are. */
  threadsNote?: string;
  metadata: Map<string, GgufValue>;
  /** Embedding / retrieval models only: their vectors' width, pooling and attention (absent on text-generation models). */
  embedding?: EmbeddingInfo;
}

export class Model {
  private chatSession: Session | null = null;
  /** model.chat / chatStream share one session: they queue here (FIFO) and may replace it. */
  private chatLock = new FifoLock();
  constructor(readonly info: ModelInfo, private fwd: Lfm2Forward, private shards: Shard[],
    /** The model's tokenizer (null if the file carries none). */
    readonly tokenizer: Tokenizer | null, readonly chatTemplate: string | undefined,
    /** LFM2-VL: the vision tower and image-row registry (loaded with `mmproj`). */
    readonly vision: VisionLanguage | null = null,
    /** LFM2-Audio: the audio encoder and audio-row registry (loaded with an lfm2a `mmproj`). */
    readonly audio: AudioLanguage | null = null) {}

  /** The model's forward pass (the speech-out detokenizer drives its backbone with embeddings through it). */
  get forwardPass(): Lfm2Forward { return this.fwd; }

  /** LFM2.5-Audio speech output (loaded with `speechOut`). */
  speech: SpeechOut | null = null;

  /** Image and audio content parts → the ids a session holds for them (models loaded with an mmproj). */
  get media(): MediaResolver | undefined {
    const { vision, audio } = this;
    if (!vision && !audio) return undefined;
    return async (part, signal) => (await vision?.resolvePart(part, signal)) ?? (await audio?.resolvePart(part)) ?? null;
  }

  private speechOf(): SpeechOut {
    if (!this.speech) throw new Lfm2Error("BAD_INPUT", "this model has no speech output: load it with { speechOut: { vocoder, detokenizer } }");
    return this.speech;
  }

  /** Text → 24 kHz speech (TTS system prompt, sequential mode; the turn opens with <|audio_start|>). */
  async speak(text: string, opts: SpeechOptions & { system?: string } = {}): Promise<SpeechResult> {
    return drain(this.speakStream(text, opts));
  }

  /** As speak, with each decoded frame's samples (and any text) yielded as they come. */
  speakStream(text: string, opts: SpeechOptions & { system?: string } = {}): AsyncGenerator<SpeechEvent, SpeechResult> {
    if (typeof text !== "string" || text.length === 0) throw new Lfm2Error("BAD_INPUT", "speak needs a non-empty text");
    const sp = this.speechOf();
    const messages: ChatMessage[] = [{ role: "system", content: opts.system ?? TTS_SYSTEM_PROMPT }, { role: "user", content: text }];
    const template = this.chatTemplate;
    return exclusive(this.chatLock, checkSignal(opts.signal), async function* () {
      return yield* sp.generate(await sp.promptIds(messages, template), "sequential", opts, true);
    });
  }

  /**
   * Chat with text and speech out: "interleaved" (default; 6 text tokens, 12 frames, …) or "sequential". Without a
   * system message the interleaved prompt gets "Respond with interleaved text and audio.".
   */
  chatAudioStream(messages: ChatMessage[], opts: SpeechOptions & { mode?: SpeechMode } = {}): AsyncGenerator<SpeechEvent, SpeechResult> {
    const sp = this.speechOf(), mode = opts.mode ?? "interleaved";
    if (mode !== "interleaved" && mode !== "sequential") throw new Lfm2Error("BAD_INPUT", `mode must be "interleaved" or "sequential", got ${String(mode)}`);
    const msgs = mode === "interleaved" && messages[0]?.role !== "system" ? [{ role: "system", content: INTERLEAVED_SYSTEM_PROMPT } as ChatMessage, ...messages] : messages;
    const template = this.chatTemplate;
    return exclusive(this.chatLock, checkSignal(opts.signal), async function* () {
      return yield* sp.generate(await sp.promptIds(msgs, template), mode, opts);
    });
  }

  chatAudio(messages: ChatMessage[], opts: SpeechOptions & { mode?: SpeechMode } = {}): Promise<SpeechResult> {
    return drain(this.chatAudioStream(messages, opts));
  }

  /**
   * Chat with the model (OpenAI-style messages); turns reuse one internal session's cache. Calls are
   * queued in arrival order; each returns what it would alone after the earlier ones.
   */
  chat(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): Promise<ChatResult> {
    return drain(this.chatStream(messages, opts));
  }

  /** Streaming chat; holds the model's chat session from the first next() until it ends or is returned. */
  chatStream(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): AsyncGenerator<ChatDelta, ChatResult> {
    return this.chatHeld(messages, opts);
  }

  private async *chatHeld(messages: ChatMessage[], options: ChatOptions & { contextLength?: number } | undefined): AsyncGenerator<ChatDelta, ChatResult> {
    const { contextLength, ...opts } = optionsObject(options, "chat options");
    const signal = checkSignal(opts.signal);
    const vl = this.vision;
    const al = this.audio;
    return yield* exclusive(this.chatLock, signal, () => this.defaultSession(contextLength).chatStream(messages, opts));
  }

  /**
   * The prompt ids `chat` feeds for these messages (the template applied; image / audio parts as their rows'
   * ids past the vocabulary), e.g. to run them through a session of one's own.
   */
  async renderPrompt(messages: ChatMessage[], opts: ChatOptions = {}): Promise<number[]> {
    if (!this.tokenizer) throw new Lfm2Error("BAD_INPUT", "this model file has no tokenizer");
    return hasContentParts(messages)
      ? renderMediaPrompt(this.tokenizer, messages, opts, this.chatTemplate, this.media ?? (async () => null))
      : renderPrompt(this.tokenizer, messages, opts, this.chatTemplate);
  }

  /** LFM2-VL (loaded with `mmproj`): an image's prompt tokens and projected embeddings (cached by content). */
  async encodeImage(image: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<ImageEmbedding> {
    if (!this.vision) throw new Lfm2Error("BAD_INPUT", "this model has no vision tower: load it with { mmproj }");
    return this.vision.encodeImage(image, opts);
  }

  /** LFM2-Audio (loaded with an lfm2a `mmproj`): a clip's session ids and projected embeddings (cached by content). */
  encodeAudio(audio: AudioInput): AudioEmbedding {
    if (!this.audio) throw new Lfm2Error("BAD_INPUT", "this model has no audio encoder: load it with an LFM2-Audio { mmproj }");
    return this.audio.encodeAudio(audio);
  }

  /** Speech recognition: a chat turn with LFM2-Audio's ASR system prompt; greedy unless `opts` say otherwise. */
  async transcribe(audio: AudioInput, opts: ChatOptions = {}): Promise<string> {
    if (!this.audio) throw new Lfm2Error("BAD_INPUT", "this model has no audio encoder: load it with an LFM2-Audio { mmproj }");
    const messages: ChatMessage[] = [{ role: "system", content: ASR_SYSTEM_PROMPT }, { role: "user", content: [{ type: "audio", audio }] }];
    return (await this.chat(messages, { temperature: 0, ...opts })).text;
  }

  private defaultSession(ctx?: number): Session {
    if (!this.chatSession || (ctx !== undefined && ctx !== this.chatSession.contextLength)) {
      if (ctx !== undefined && (!Number.isInteger(ctx) || ctx < 1)) {
        throw new Lfm2Error("BAD_INPUT", `contextLength must be a positive integer, got ${String(ctx)}`);
      }
      // free the old cache first, so the new one can take its place in memory
      this.chatSession?.dispose();
      this.chatSession = null;
      this.chatSession = this.createSession({ contextLength: ctx });
    }
    return this.chatSession;
  }

  private enc: Encoder | null = null;
  private get encoder(): Encoder { return (this.enc ??= new Encoder(this.fwd, this.tokenizer)); }
  /** True for retrieval / embedding models (those with info.embedding). */
  get isEncoder(): boolean { return this.info.embedding !== undefined; }
  /** The encoder, or BAD_INPUT on a text-generation model. */
  private encoderFor(method: string): Encoder {
    if (!this.info.embedding) {
      throw new Lfm2Error("BAD_INPUT", `${this.info.name ?? "this model"} is a text-generation model, not an embedding model: ` +
        `${method} needs a retrieval / embedding model (dense_2 projection, pooling type or bidirectional trunk)`);
    }
    return this.encoder;
  }
  /** Query/document prefixes, lengths, expansion and skiplist used by embedQuery / embedDocuments. */
  get retrieval(): RetrievalConfig { return this.encoder.retrieval; }
  set retrieval(r: RetrievalConfig) { this.encoder.retrieval = { ...r }; }
  /**
   * Embedding models (info.embedding) only; text-generation models reject it with BAD_INPUT. A text's raw
   * vectors, one row per token (BOS included) or one row for a pooled model. An array of texts (the
   * OpenAI /v1/embeddings seam) gives one vector per text and needs a pooled model.
   */
  embed(text: string, opts?: EmbedOptions): Promise<Embedding>;
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array[]>;
  async embed(input: string | string[], opts?: EmbedOptions): Promise<Embedding | Float32Array[]> {
    const enc = this.encoderFor("embed");
    if (!Array.isArray(input)) return enc.embed(input, opts);
    if (!enc.pooled) throw new Lfm2Error("BAD_INPUT", "a per-token (ColBERT) model gives one vector per token: call embed(text)");
    return input.map((t) => enc.embed(t, opts).vectors);
  }
  /** A retrieval query: prefixed, length-limited, L2-normalised rows. */
  async embedQuery(text: string): Promise<Embedding> { return this.encoderFor("embedQuery").embedQuery(text); }
  /** Retrieval documents: prefixed, length-limited, skiplist dropped, L2-normalised rows. */
  async embedDocuments(texts: string[]): Promise<Embedding[]> { return this.encoderFor("embedDocuments").embedDocuments(texts); }
  /** ColBERT MaxSim score of a query against a document. */
  maxSim(q: Embedding, d: Embedding): number { return maxSim(q, d); }

  /** Stop worker threads and free the chat session. Idle threads never keep a process alive. */
  dispose(): void {
    this.vision?.encoder.dispose();
    this.audio?.encoder.dispose();
    this.chatSession?.dispose();
    this.chatSession = null;
    for (const s of this.shards) s.stopThreads();
  }

  createSession(opts: SessionOptions = {}): Session {
    const o = optionsObject(opts, "session options");
    const ctx = o.contextLength ?? Math.min(4096, this.info.config.contextLength);
    return new Session(this.fwd, { ...o, contextLength: ctx }, this.tokenizer, this.chatTemplate, this.media);
  }

  /** Bytes of WebAssembly memory reserved (weights, scratch, sessions), over all shards; never shrinks. */
  get memoryBytes(): number { return this.shards.reduce((a, s) => a + s.bytes, 0); }
}

/** A Hugging Face model: config.json + model.safetensors (+ tokenizer files), each as data or a source. */
/** sentence-transformers / PyLate parts (1_Dense, 1_Pooling, config_sentence_transformers.json) make it an encoder. */
export interface HfModelInput extends SentenceTransformersInput {
  config: Record<string, unknown> | string;
  /** model.safetensors, or the parts of a sharded checkpoint in order (model-00001-of-0000n, …). */
  safetensors: SourceInput | SourceInput[];
  tokenizer?: Record<string, unknown> | string;
  tokenizerConfig?: Record<string, unknown> | string;
  chatTemplate?: string;
  /** LFM2-VL: preprocessor_config.json (image processor options). */
  preprocessorConfig?: Record<string, unknown> | string;
}

export type ModelInput = SourceInput | HfModelInput;

interface Header { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: Lfm2Config }

interface Resolved {
  src: ByteSource;
  format: "gguf" | "safetensors";
  parse(prefix: Uint8Array, size: number): Header;
  tokenizer(h: Header): Tokenizer | null;
  chatTemplate(h: Header): string | undefined;
  /** Retrieval settings read beside the weights (PyLate's config_sentence_transformers.json). */
  retrieval?: RetrievalConfig;
  /** An LFM2-VL checkpoint: its vision tower (read from the same safetensors) and processor options. */
  vision?: { load(tok: Tokenizer, o: VisionLoadOptions): Promise<VisionEncoder>; imageOptions: Lfm2VlImageOptions };
}

const asJson = (v: Record<string, unknown> | string | undefined, what: string): Record<string, any> | undefined => {
  if (v === undefined) return undefined;
  let j: unknown = v;
  if (typeof v === "string") {
    try { j = JSON.parse(v); } catch (e) { throw new Lfm2Error("BAD_INPUT", `${what} is not valid JSON`, { cause: e }); }
  }
  // null, arrays and scalars would surface later as TypeErrors (or odd errors) in the config readers
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Lfm2Error("BAD_INPUT", `${what} must be a JSON object`);
  return j as Record<string, any>;
};

function isHfInput(x: unknown): x is HfModelInput {
  return typeof x === "object" && x !== null && "config" in x && "safetensors" in x;
}

/** A folder holding config.json + model.safetensors (Node, Deno). */
async function readHfFolder(path: string): Promise<HfModelInput | null> {
  if (typeof process === "undefined" && typeof (globalThis as any).Deno === "undefined") return null;
  const fs = await import("node:fs/promises");
  const st = await fs.stat(path).catch(() => null);
  if (!st?.isDirectory()) return null;
  const read = (f: string) => fs.readFile(`${path}/${f}`, "utf8").catch(() => undefined);
  const config = await read("config.json");
  if (config === undefined) throw new Lfm2Error("BAD_INPUT", `${path} is a folder without config.json`);
  const names = await fs.readdir(path);
  let safetensors: string | string[] = `${path}/model.safetensors`;
  if (!names.includes("model.safetensors")) {
    if (!names.some((n) => n.endsWith(".safetensors"))) throw new Lfm2Error("BAD_INPUT", `${path} has no model.safetensors`);
    safetensors = safetensorsShardNames(names, await read("model.safetensors.index.json")).map((n) => `${path}/${n}`);
  }
  return { config, safetensors, tokenizer: await read("tokenizer.json"), tokenizerConfig: await read("tokenizer_config.json"),
    chatTemplate: await read("chat_template.jinja"), preprocessorConfig: await read("preprocessor_config.json"),
    ...(await readSentenceTransformersFolder(path)) };
}

/** The byte source of a GGUF input: hub specs, split files, cached URLs, or anything openSource takes. */
async function ggufSource(input: SourceInput, opts: LoadOptions): Promise<ByteSource> {
  const { signal } = opts;
  const readTimeoutMs = opts.readTimeoutMs;
  if (typeof input === "string" && isHfSpec(input)) return hfSource(input, { signal, onProgress: opts.onProgress, readTimeoutMs });
  const isUrl = (v: string) => /^(https?|blob|data|file):/i.test(v);
  if (typeof input === "string" && !isUrl(input) && parseSplitName(input)) return splitSource(await openSplitParts(input));
  if (opts.cache && (input instanceof URL || (typeof input === "string" && /^https?:/i.test(input)))) return cachedUrlSource(input, { cache: opts.cache, signal, readTimeoutMs });
  return openSource(input, signal, { readTimeoutMs });
}

async function resolveInput(input: ModelInput, opts: LoadOptions): Promise<Resolved> {
  const { signal, readTimeoutMs } = opts;
  if (typeof input === "string" && !isHfSpec(input)) {
    const folder = await readHfFolder(input);
    if (folder) input = folder;
  }
  if (isHfInput(input)) {
    const hf = input;
    const cfgJson = asJson(hf.config, "config.json")!;
    const tokJson = asJson(hf.tokenizer, "tokenizer.json");
    const tokCfg = asJson(hf.tokenizerConfig, "tokenizer_config.json");
    const parts = Array.isArray(hf.safetensors)
      ? await Promise.all(hf.safetensors.map((p) => openSource(p, signal, { readTimeoutMs }))) : undefined;
    const sharded = parts ? await openSafetensorsShards(parts, signal) : undefined;
    const trunk = sharded?.src ?? await openSource(hf.safetensors as SourceInput, signal, { readTimeoutMs });
    // a retrieval encoder: the Dense module's file follows the trunk's bytes, its tensors named dense_2.*
    const enc = await encoderParts(trunk, hf, cfgJson, (s) => openSource(s, signal, { readTimeoutMs }), signal);
    const vl = isLfm2VlConfig(cfgJson), preJson = vl ? asJson(hf.preprocessorConfig, "preprocessor_config.json") : undefined;
    // LFM2-VL: the vision tower streams from the same safetensors (its text tensors skipped)
    const vision = vl ? {
      imageOptions: lfm2VlImageOptions(cfgJson, preJson),
      load: (tok: Tokenizer, o: VisionLoadOptions) => { checkImageToken(cfgJson, tok); return loadHfVision(parts ?? [trunk], cfgJson, preJson, o); },
    } : undefined;
    return {
      src: enc?.src ?? trunk, format: "safetensors", retrieval: enc?.retrieval, vision,
      parse(prefix, size) {
        const f = sharded?.file ?? parseSafetensors(prefix, enc ? trunk.size : size);
        const metadata = new Map<string, GgufValue>(Object.entries(f.metadata));
        const config = configFromHf(encoderConfigJson(vl ? lfm2VlTextConfig(cfgJson) : cfgJson));
        return enc ? { tensors: [...f.tensors, ...enc.tensors], metadata, config: enc.config(config, cfgJson) } : { tensors: f.tensors, metadata, config };
      },
      tokenizer: () => (tokJson ? Tokenizer.fromHfJson(tokJson, tokCfg) : null),
      chatTemplate: () => hf.chatTemplate ?? (typeof tokCfg?.chat_template === "string" ? tokCfg.chat_template : undefined),
    };
  }
  const src = await ggufSource(input, opts);
  return {
    src, format: "gguf",
    parse(prefix, size) {
      const f = parseGguf(prefix, size);
      assertWholeGguf(f.metadata, src.name); // one part of a split model alone: a clear error
      return { tensors: f.tensors, metadata: f.metadata, config: configFromGguf(f.metadata) };
    },
    tokenizer: (h) => (h.metadata.has("tokenizer.ggml.tokens") ? Tokenizer.fromGguf(h.metadata) : null),
    chatTemplate: (h) => { const t = h.metadata.get("tokenizer.chat_template"); return typeof t === "string" ? t : undefined; },
  };
}

/** Hardware threads of this machine (Node 20 has no navigator: ask node:os). */
async function hardwareThreads(): Promise<number> {
  const n = (globalThis as any).navigator?.hardwareConcurrency;
  if (Number.isInteger(n) && n > 0) return n;
  if (typeof process !== "undefined" && process.versions?.node) {
    try {
      const os = await import("node:os");
      return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
    } catch { /* no node:os (a bundler stub): fall through */ }
  }
  return 2;
}

/** Default weight bytes per shard: the rest of the 4 GiB holds the KV cache, scratch and growth. */
const SHARD_CAPACITY = Math.floor(MAX_BYTES * 0.85);

/**
 * Load a model of the LFM2 family: a GGUF (path, URL, bytes, Blob) or a Hugging Face model (folder
 * path, or `{ config, safetensors, tokenizer?, tokenizerConfig?, chatTemplate? }`). Weights stream
 * straight into WebAssembly memory — several memories when they exceed one; every malformed input
 * ends in an Lfm2Error.
 */
export async function loadModel(input: ModelInput, options: LoadOptions = {}): Promise<Model> {
  const opts = optionsObject(options, "load options");
  checkSignal(opts.signal);
  throwIfAborted(opts.signal);
  if (opts.threads !== undefined && !(typeof opts.threads === "number" && Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new Lfm2Error("BAD_INPUT", `threads must be a positive integer, got ${String(opts.threads)}`);
  }
  const cores = await hardwareThreads();
  const r = await resolveInput(input, opts);
  const src = r.src;
  const parse = (prefix: Uint8Array): Header | undefined => {
    try { return r.parse(prefix, src.size); } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
  };
  let threads = opts.threads ?? Math.min(4, cores);
  let threadsNote: string | undefined;
  if (threads > cores) {
    // more threads than cores only time-slice: each hand-off waits for a descheduled worker
    threadsNote = `threads capped at this machine's ${cores} hardware threads (asked for ${threads})`;
    threads = cores;
  }
  if (threads > 1 && !canShareMemory()) {
    threads = 1;
    threadsNote = "shared WebAssembly memory is unavailable here (no SharedArrayBuffer or not cross-origin isolated)";
  }
  const shared = threads > 1;
  const variant = chooseVariant(shared, opts);
  const modulePromise = compileVariant(variant, opts);
  const capacity = opts.maxShardBytes ?? SHARD_CAPACITY;
  if (!(capacity > 0)) throw new Lfm2Error("BAD_INPUT", `maxShardBytes must be a positive number, got ${opts.maxShardBytes}`);
  const chunk = opts.chunkSize ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 4096) throw new Lfm2Error("BAD_INPUT", `chunkSize must be an integer in 1..4096, got ${chunk}`);
  let plan: ReturnType<typeof planWeights> | undefined;
  const shards: Shard[] = [];
  let shardOf = new Map<number, number>();
  const sink = (h: Header, offset: number, bytes: Uint8Array) => {
    if (!plan) {
      const specs = architecture(h.config.architecture).tensors(h.config);
      const groups = groupBytes(specs, h.tensors);
      const total = [...groups.values()].reduce((a, b) => a + b, 0);
      const largest = Math.max(...groups.values());
      if (largest > Math.min(capacity, MAX_BYTES * 0.95)) {
        throw new Lfm2Error("MODEL_TOO_LARGE", `${src.name} holds ${fmt(total)} of weights; one WebAssembly memory holds at most ` +
          `${fmt(MAX_BYTES)} and one layer (or the embedding) alone needs ${fmt(largest)}`);
      }
      const packed = packGroups(groups, capacity);
      shardOf = packed.shardOf;
      packed.shardBytes.forEach((b, i) => shards.push(Shard.create(i, b, shared)));
      plan = planWeights(specs, h.tensors, (g) => shards[shardOf.get(g)!].arena);
    }
    plan.sink(offset, bytes);
  };
  let header: Header;
  if (r.format === "gguf" && isSplitSource(src)) {
    // parts of a split GGUF: one virtual file, tensors addressed across parts
    let h: Header | undefined;
    const f = await streamSplitGguf([...src.parts], (file, offset, bytes) =>
      sink(h ??= { tensors: file.tensors, metadata: file.metadata, config: configFromGguf(file.metadata) }, offset, bytes),
    { signal: opts.signal, onProgress: opts.onProgress });
    header = h ?? { tensors: f.tensors, metadata: f.metadata, config: configFromGguf(f.metadata) };
  } else header = await streamSource(src, parse, sink, { signal: opts.signal, onProgress: opts.onProgress });
  const module = await modulePromise;
  for (const s of shards) await s.instantiate(module);
  throwIfAborted(opts.signal); // an abort during the last chunk (or the compile) still counts
  const c = header.config;
  const placed = plan!.finish((arena) => shards.find((s) => s.arena === arena)!.kernels);
  const weights = architecture(c.architecture).bind(c, placed);
  const widest = Math.max(c.hiddenSize * 3, c.ffDim, c.moe?.expertFfDim ?? 0, c.kvHeads.some((h) => h > 0) ? c.nHeads * c.headDim : 0);
  // a bidirectional or pooled encoder sees the whole sequence in one step
  const encLen = opts.encoderLength ?? 512;
  if (!Number.isInteger(encLen) || encLen < 1 || encLen > 8192) throw new Lfm2Error("BAD_INPUT", `encoderLength must be an integer in 1..8192, got ${encLen}`);
  const stepTokens = !c.causal || (c.pooling ?? 0) !== 0 ? Math.max(chunk, encLen) : chunk;
  for (const s of shards) s.initOps(widest, stepTokens);
  const layerShard = Array.from({ length: c.nLayers }, (_, l) => shardOf.get(l)!);
  const tokenizer = r.tokenizer(header);
  // a vocabulary past the embedding rows would load, then fail (or read out of bounds) on every prompt
  if (tokenizer) assertVocabFits(tokenizer, c.vocabSize);
  const fwd = new Lfm2Forward(c, weights, { shards, headShard: shardOf.get(-1)!, layerShard }, stepTokens);
  if (threads > 1) {
    try {
      for (const s of shards) await s.startThreads(threads, module);
    } catch (e) {
      for (const s of shards) s.stopThreads();
      threadsNote = `worker threads could not start: ${(e as Error).message}`;
      threads = 1;
    }
  }
  let vision: VisionLanguage | null = null, audio: AudioLanguage | null = null, media: MediaRows | null = null;
  if (opts.mmproj !== undefined || r.vision) {
    if (!tokenizer) throw new Lfm2Error("BAD_INPUT", "an mmproj needs a text model with a tokenizer");
    media = new MediaRows(fwd);
    // an LFM2-VL HF checkpoint carries its vision tower (an explicit mmproj replaces it)
    const audioEncoder = opts.mmproj === undefined ? null : await loadAudioMmproj(opts.mmproj, { ...opts, threads });
    if (opts.mmproj === undefined) {
      const encoder = await r.vision!.load(tokenizer, { ...opts, threads });
      const imageOptions = { ...r.vision!.imageOptions, ...opts.imageOptions };
      try { vision = new VisionLanguage(encoder, media, tokenizer, imageOptions); } catch (e) { encoder.dispose(); throw e; }
    } else if (audioEncoder) {
      try { audio = new AudioLanguage(audioEncoder, media); } catch (e) { audioEncoder.dispose(); throw e; }
    } else {
      const encoder = await loadVisionEncoder(opts.mmproj, { ...opts, threads });
      try { vision = new VisionLanguage(encoder, media, tokenizer, opts.imageOptions); } catch (e) { encoder.dispose(); throw e; }
    }
  }
  const types: Record<string, number> = {};
  let params = 0;
  for (const t of header.tensors) { types[t.type.name] = (types[t.type.name] ?? 0) + 1; params += t.shape.reduce((a, b) => a * b, 1); }
  const name = header.metadata.get("general.name");
  const embedding = embeddingInfoOf(fwd);
  const shardInfo: ShardInfo[] = shards.map((s) => ({ weightBytes: 0, layers: [], head: false }));
  for (const [g, s] of shardOf) if (g < 0) shardInfo[s].head = true; else shardInfo[s].layers.push(g);
  const gb = groupBytes(architecture(c.architecture).tensors(c), header.tensors);
  for (const [g, b] of gb) shardInfo[shardOf.get(g)!].weightBytes += b;
  const model = new Model({
    architecture: c.architecture, name: typeof name === "string" ? name : undefined, format: r.format, config: c,
    tensorTypes: types, parameters: params, weightBytes: plan!.weightBytes, wasmVariant: variant, shards: shardInfo,
    threads, threadsNote, metadata: header.metadata, ...(embedding ? { embedding } : {}),
  }, media?.forward ?? fwd, shards, tokenizer, r.chatTemplate(header), vision, audio);
  if (r.retrieval) model.retrieval = r.retrieval;
  if (opts.speechOut) {
    if (!tokenizer) throw new Lfm2Error("BAD_INPUT", "speech output needs a text model with a tokenizer");
    const detok = await loadModel(opts.speechOut.detokenizer, { threads, signal: opts.signal, chunkSize: 8 });
    model.speech = await SpeechOut.create(media?.forward ?? fwd, tokenizer, detok.forwardPass, opts.speechOut, model.media,
      async (gguf) => (await loadModel(gguf, { threads, signal: opts.signal, chunkSize: 1 })).forwardPass);
  }
  return model;
}
