// A loaded model of the LFM2 family (src/runtime/load.ts makes it): sessions, chat with a FIFO-shared
// session, embeddings for encoder models, images and audio for models loaded with an mmproj, speech out.
import { INTERLEAVED_SYSTEM_PROMPT, TTS_SYSTEM_PROMPT, type SpeechOut, type SpeechEvent, type SpeechMode, type SpeechOptions, type SpeechResult } from "../models/lfm2audio/speech-out.js";
import type { Shard } from "../../bindings/shard.js";
import type { WasmOptions, WasmVariant } from "../../bindings/wasm.js";
import { Lfm2Error } from "../errors.js";
import type { GgufValue } from "../formats/gguf.js";
import type { ModelCacheMode } from "../io/browser-cache.js";
import type { ProgressCallback, SourceInput } from "../io/source.js";
import type { SentenceTransformersInput } from "../models/colbert/hf.js";
import type { SpeechOutOptions } from "../models/lfm2audio/speech-load.js";
import { optionsObject, Session, type SessionOptions } from "./session.js";
import { checkSignal, drain, exclusive, FifoLock } from "./lock.js";
import type { Lfm2Config } from "../models/lfm2/config.js";
import type { Lfm2Forward } from "../models/lfm2/forward.js";
import type { Tokenizer } from "../text/tokenizer.js";
import type { ChatMessage } from "../text/chat-template.js";
import { hasContentParts, renderMediaPrompt, renderPrompt, type ChatDelta, type ChatOptions, type ChatResult, type MediaResolver } from "../generate/generate.js";
import { Encoder, maxSim, type EmbedOptions, type Embedding, type EmbeddingInfo, type RetrievalConfig } from "../models/colbert/encoder.js";
import type { ImageEmbedding, VisionLanguage } from "../models/lfm2vl/vlm.js";
import { ASR_SYSTEM_PROMPT, type AudioEmbedding, type AudioLanguage } from "../models/lfm2audio/speech.js";
import type { AudioInput } from "../audio/input.js";
import type { ImageInput } from "../models/lfm2vl/image.js";
import type { Lfm2VlImageOptions } from "../models/lfm2vl/preprocess.js";

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
   * LFM2-Audio speech output: the vocoder GGUF bytes (audio head, + code embeddings for LFM2.5, llama.cpp layout) and
   * one code decoder — LFM2.5-Audio's detokenizer backbone (an lfm2 GGUF with a 1282-wide dense_2 head) or, for the
   * original LFM2-Audio-1.5B, `mimi`: the bytes of its Mimi codec safetensors (docs/lfm2-audio-out.md §3, §5).
   * An LFM2.5-Audio HF checkpoint (folder or file map with `audioDetokenizer`) holds them all: `speechOut: true`
   * (or an object without vocoder / detokenizer) reads the head from its model.safetensors and the detokenizer
   * and its code table from audio_detokenizer/. `detokenizerWeightType` requantizes the detokenizer once loaded.
   */
  speechOut?: true | SpeechOutOptions;
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
  /** LFM2.5-Audio: the `audio_detokenizer/` subfolder (its config.json and model.safetensors), for speech out. */
  audioDetokenizer?: HfModelInput;
}

export type ModelInput = SourceInput | HfModelInput;

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

  private speechDisposed = false;

  private speechOf(): SpeechOut {
    if (this.speechDisposed) throw new Lfm2Error("BAD_INPUT", "this model was disposed");
    if (!this.speech) throw new Lfm2Error("BAD_INPUT", "this model has no speech output: load it with { speechOut: { vocoder, detokenizer | mimi } }");
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
    // speech out's own models, threads and kept state; dropped so their memories can be collected
    if (this.speech) { this.speech.dispose(); this.speech = null; this.speechDisposed = true; }
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
