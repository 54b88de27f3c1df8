// Worker mode: loadModel(input, { worker: true }) runs the engine in a dedicated Worker (browsers, Deno) or
// worker_thread (Node) and returns a WorkerModel whose methods proxy to it, so forward/generate never block
// the caller's thread. Bytes sources and logits are transferred, not copied; AbortSignals become abort
// messages; errors come back as Lfm2Error with their codes.
import { abortError, Lfm2Error } from "../errors.js";
import type { LoadOptions, ModelInfo, ModelInput } from "../runtime/model.js";
import type { SessionOptions } from "../runtime/session.js";
import type { ChatMessage } from "../text/chat-template.js";
import type { ChatDelta, ChatOptions, ChatResult, GenerateDelta, GenerateOptions, GenerateResult } from "../generate/generate.js";
import type { EncodeOptions, DecodeOptions } from "../text/tokenizer.js";
import { wasmUrl, type WasmVariant } from "../../bindings/wasm.js";
import { STREAMING, type Reply, type Request, type Target } from "./protocol.js";
import { maxSim, type EmbedOptions, type Embedding } from "../models/colbert/encoder.js";
import type { ImageEmbedding } from "../models/lfm2vl/vlm.js";
import type { ImageInput } from "../models/lfm2vl/image.js";
import type { Lfm2VlImageOptions } from "../models/lfm2vl/preprocess.js";
import type { AudioEmbedding } from "../models/lfm2audio/speech.js";
import type { AudioInput } from "../audio/input.js";
import type { SpeechEvent, SpeechMode, SpeechOptions, SpeechResult } from "../models/lfm2audio/speech-out.js";

export interface WorkerLoadOptions extends LoadOptions {
  worker: true;
  /**
   * The worker script (default: dist/worker.js beside this module in Node/Deno, dist/browser-worker.js in
   * browsers; Vite bundles it by itself). esbuild apps add `lfm2-wasm/worker.js` as an entry point and pass its URL.
   */
  workerUrl?: string | URL;
}

interface Port {
  post(m: Request, transfer?: Transferable[]): void;
  /** Keeps a Node process alive while calls are pending, not while the model only sits loaded. */
  hold(busy: boolean): void;
  terminate(): void;
}

const WASM_VARIANTS: WasmVariant[] = ["lfm2-simd", "lfm2-relaxed", "lfm2-simd-mt", "lfm2-relaxed-mt"];
const isDeno = typeof (globalThis as any).Deno?.version?.deno === "string";
const isNode = typeof process !== "undefined" && !!process.versions?.node && !isDeno;
// non-literal so bundlers do not copy the Node worker into a browser build as an asset
const NODE_WORKER_FILE = "./worker.js";

async function spawnWorker(opts: WorkerLoadOptions, onReply: (m: Reply) => void, onFail: (e: Lfm2Error) => void): Promise<Port> {
  const hint = "set the workerUrl option to the URL of lfm2-wasm's worker script (README: Worker mode)";
  if (isNode) {
    const { Worker } = await import("node:worker_threads");
    const url = opts.workerUrl ? new URL(String(opts.workerUrl)) : new URL(NODE_WORKER_FILE, import.meta.url);
    const w = new Worker(url);
    w.on("message", onReply);
    w.on("error", (e: Error) => onFail(new Lfm2Error("IO", `the engine worker ${url.href} failed: ${e.message}; ${hint}`, { cause: e })));
    w.on("exit", (code) => onFail(new Lfm2Error("IO", `the engine worker exited (code ${code})`)));
    return { post: (m, t) => w.postMessage(m, t as any), hold: (busy) => (busy ? w.ref() : w.unref()), terminate: () => void w.terminate() };
  }
  let w: Worker;
  let url: URL;
  if (opts.workerUrl) w = new Worker(url = new URL(String(opts.workerUrl), (globalThis as any).location?.href), { type: "module" });
  else if (isDeno) w = new Worker(url = new URL(NODE_WORKER_FILE, import.meta.url), { type: "module" });
  // written out literally: Vite bundles `new Worker(new URL("<literal>", import.meta.url), …)` as a worker entry
  else w = new Worker(url = new URL("./browser-worker.js", import.meta.url), { type: "module" });
  w.addEventListener("message", (e: MessageEvent) => onReply(e.data));
  w.addEventListener("error", (e: ErrorEvent) => {
    e.preventDefault?.();
    onFail(new Lfm2Error("IO", `the engine worker ${url.href} failed to start or crashed${e.message ? `: ${e.message}` : ""}; ${hint}`));
  });
  return { post: (m, t) => w.postMessage(m, t ?? []), hold: () => {}, terminate: () => w.terminate() };
}

interface Pending { resolve(v: unknown): void; reject(e: unknown): void; onDelta?(v: unknown): void; onProgress?(p: any): void; onTokens?(t: number[]): void }

/** One worker and its request ids. */
class Channel {
  private next = 1;
  private pending = new Map<number, Pending>();
  private failed: Lfm2Error | null = null;
  port!: Port;

  fail(e: Lfm2Error): void {
    if (this.failed) return;
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  reply(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === "delta") p.onDelta?.(m.value);
    else if (m.type === "progress") p.onProgress?.(m.progress);
    else {
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.port.hold(false);
      if (m.type === "result") { if (m.tokens) p.onTokens?.(m.tokens); p.resolve(m.value); }
      else {
        const e = m.error;
        p.reject(e.code ? new Lfm2Error(e.code, e.message) : Object.assign(new Error(e.message), { name: e.name }));
      }
    }
  }

  /** Send a request; `signal` turns into an abort message for it. */
  request(make: (id: number) => Request, handlers: Omit<Pending, "resolve" | "reject"> = {}, signal?: AbortSignal,
    transfer?: Transferable[]): { id: number; done: Promise<unknown> } {
    const id = this.next++;
    if (this.failed) return { id, done: Promise.reject(this.failed) };
    if (signal?.aborted) return { id, done: Promise.reject(abortError(signal)) };
    const done = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, ...handlers }));
    this.port.hold(true);
    this.port.post(make(id), transfer);
    if (signal) {
      const onAbort = () => this.abort(id, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      done.then(() => signal.removeEventListener("abort", onAbort), () => signal.removeEventListener("abort", onAbort));
    }
    return { id, done };
  }

  abort(id: number, reason?: unknown): void {
    if (this.pending.has(id)) this.port.post({ type: "abort", id, reason: reason instanceof Error ? reason.message : undefined });
  }

  /** A method call: a promise, or for streaming methods an async generator of deltas returning the result. */
  call(target: Target, method: string, args: unknown[], onTokens?: (t: number[]) => void): any {
    // the options argument holds the signal, which cannot cross threads: it becomes abort messages
    const last = args[args.length - 1] as { signal?: AbortSignal } | undefined;
    const signal = method !== "createSession" && last && typeof last === "object" ? last.signal : undefined;
    if (signal) { const { signal: _, ...rest } = last as any; args = [...args.slice(0, -1), rest]; }
    if (!STREAMING.has(method)) return this.request((id) => ({ type: "call", id, target, method, args }), { onTokens }, signal).done;
    return this.stream(target, method, args, signal, onTokens);
  }

  private async *stream(target: Target, method: string, args: unknown[], signal?: AbortSignal, onTokens?: (t: number[]) => void) {
    const queue: unknown[] = [];
    let wake: (() => void) | null = null;
    const { id, done } = this.request((id) => ({ type: "call", id, target, method, args }), {
      onTokens, onDelta: (v) => { queue.push(v); wake?.(); },
    }, signal);
    let settled = false;
    done.then(() => { settled = true; wake?.(); }, () => { settled = true; wake?.(); });
    try {
      for (;;) {
        while (queue.length) yield queue.shift();
        if (settled) return await done;
        await new Promise<void>((r) => { wake = r; });
        wake = null;
      }
    } finally {
      // the consumer stopped early (break / return()): stop generating in the worker
      if (!settled) this.abort(id, new Error("the stream was closed"));
    }
  }
}

/** Tokenizer of a worker-mode model: the same ids, but encode/decode are asynchronous (they run in the worker). */
export class WorkerTokenizer {
  readonly vocabSize!: number;
  readonly bosId!: number | null;
  readonly eosId!: number | null;
  readonly eotId!: number | null;
  readonly padId!: number | null;
  readonly eogIds: ReadonlySet<number>;
  readonly addBos!: boolean;
  readonly addEos!: boolean;
  constructor(private ch: Channel, fields: Record<string, any>) {
    Object.assign(this, fields);
    this.eogIds = new Set(fields.eogIds);
  }
  encode(text: string, opts?: EncodeOptions): Promise<number[]> { return this.ch.call("model", "encode", opts ? [text, opts] : [text]); }
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): Promise<string> {
    return this.ch.call("model", "decode", opts ? [Array.from(ids), opts] : [Array.from(ids)]);
  }
}

/** A Session whose KV cache lives in the worker. */
export class WorkerSession {
  private cached: number[] = [];
  private readonly sync = (t: number[]) => { this.cached = t; };
  constructor(private ch: Channel, private id: number, readonly contextLength: number) {}
  get tokens(): readonly number[] { return this.cached; }
  get position(): number { return this.cached.length; }
  /** Logits of the last token; the buffer is transferred from the worker, not copied. */
  forward(tokens: ArrayLike<number>, opts: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.ch.call(this.id, "forward", [Array.from(tokens), opts], this.sync);
  }
  generate(prompt: string | ArrayLike<number>, opts: GenerateOptions = {}): AsyncGenerator<GenerateDelta, GenerateResult> {
    return this.ch.call(this.id, "generate", [typeof prompt === "string" ? prompt : Array.from(prompt), opts], this.sync);
  }
  chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> { return this.ch.call(this.id, "chat", [messages, opts], this.sync); }
  chatStream(messages: ChatMessage[], opts: ChatOptions = {}): AsyncGenerator<ChatDelta, ChatResult> {
    return this.ch.call(this.id, "chatStream", [messages, opts], this.sync);
  }
  async reset(): Promise<void> { await this.ch.call(this.id, "reset", [], this.sync); }
  async dispose(): Promise<void> { await this.ch.call(this.id, "dispose", []); }
}

/** A model loaded in a worker: Model's API, asynchronous where the in-process one is synchronous. */
export class WorkerModel {
  private constructor(private ch: Channel, readonly info: ModelInfo, readonly tokenizer: WorkerTokenizer | null,
    readonly chatTemplate: string | undefined) {}

  static async load(input: ModelInput, opts: WorkerLoadOptions): Promise<WorkerModel> {
    const ch = new Channel();
    const { signal, onProgress, worker: _w, workerUrl: _u, ...rest } = opts;
    const { input: sent, transfer } = wireInput(input);
    const loadOpts = absoluteWasmLocations(rest);
    ch.port = await spawnWorker(opts, (m) => ch.reply(m), (e) => ch.fail(e));
    try {
      const v = await ch.request((id) => ({ type: "load", id, input: sent, opts: loadOpts }), { onProgress }, signal, transfer).done as any;
      const tok = v.tokenizer ? new WorkerTokenizer(ch, v.tokenizer) : null;
      return new WorkerModel(ch, v.info, tok, v.chatTemplate);
    } catch (e) {
      ch.port.terminate();
      throw e;
    }
  }

  chat(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): Promise<ChatResult> {
    return this.ch.call("model", "chat", [messages, opts]);
  }
  chatStream(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): AsyncGenerator<ChatDelta, ChatResult> {
    return this.ch.call("model", "chatStream", [messages, opts]);
  }
  async createSession(opts: SessionOptions = {}): Promise<WorkerSession> {
    const id = await this.ch.call("model", "createSession", [opts]) as number;
    return new WorkerSession(this.ch, id, opts.contextLength ?? Math.min(4096, this.info.config.contextLength));
  }
  /** Bytes of WebAssembly memory in use in the worker. */
  memoryBytes(): Promise<number> { return this.ch.call("model", "memoryBytes", []); }
  /** The prompt ids chat feeds for these messages (see Model.renderPrompt). */
  renderPrompt(messages: ChatMessage[], opts: ChatOptions = {}): Promise<number[]> { return this.ch.call("model", "renderPrompt", [messages, opts]); }

  // embedding / retrieval models (Model.embed …); vectors come back as copies
  embed(text: string, opts?: EmbedOptions): Promise<Embedding>;
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array[]>;
  embed(input: string | string[], opts?: EmbedOptions): Promise<Embedding | Float32Array[]> {
    return this.ch.call("model", "embed", opts ? [input, opts] : [input]);
  }
  embedQuery(text: string): Promise<Embedding> { return this.ch.call("model", "embedQuery", [text]); }
  embedDocuments(texts: string[]): Promise<Embedding[]> { return this.ch.call("model", "embedDocuments", [texts]); }
  maxSim(q: Embedding, d: Embedding): number { return maxSim(q, d); }

  // images and audio (models loaded with an mmproj; inputs must be structured-cloneable: bytes, Blobs, pixels)
  encodeImage(image: ImageInput, opts: Lfm2VlImageOptions = {}): Promise<ImageEmbedding> { return this.ch.call("model", "encodeImage", [image, opts]); }
  encodeAudio(audio: AudioInput): Promise<AudioEmbedding> { return this.ch.call("model", "encodeAudio", [audio]); }
  transcribe(audio: AudioInput, opts: ChatOptions = {}): Promise<string> { return this.ch.call("model", "transcribe", [audio, opts]); }

  // speech out (LFM2.5-Audio, loaded with speechOut)
  speak(text: string, opts: SpeechOptions & { system?: string } = {}): Promise<SpeechResult> { return this.ch.call("model", "speak", [text, opts]); }
  speakStream(text: string, opts: SpeechOptions & { system?: string } = {}): AsyncGenerator<SpeechEvent, SpeechResult> {
    return this.ch.call("model", "speakStream", [text, opts]);
  }
  chatAudio(messages: ChatMessage[], opts: SpeechOptions & { mode?: SpeechMode } = {}): Promise<SpeechResult> {
    return this.ch.call("model", "chatAudio", [messages, opts]);
  }
  chatAudioStream(messages: ChatMessage[], opts: SpeechOptions & { mode?: SpeechMode } = {}): AsyncGenerator<SpeechEvent, SpeechResult> {
    return this.ch.call("model", "chatAudioStream", [messages, opts]);
  }
  /** Free the model and end the worker (and its thread pool). */
  async dispose(): Promise<void> {
    try { await this.ch.call("model", "dispose", []); } catch { /* a dead worker has nothing left to free */ }
    this.ch.fail(new Lfm2Error("BAD_INPUT", "this model was disposed"));
    this.ch.port.terminate();
  }
}

/** What crosses to the worker: bytes are transferred (the caller's buffer is detached), URLs become strings. */
function wireInput(input: ModelInput): { input: unknown; transfer: Transferable[] } {
  if (input instanceof URL) return { input: input.href, transfer: [] };
  if (input instanceof ArrayBuffer) return { input, transfer: [input] };
  if (input instanceof Uint8Array) {
    const whole = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength && input.buffer instanceof ArrayBuffer;
    return { input, transfer: whole ? [input.buffer as ArrayBuffer] : [] };
  }
  if (typeof input === "object" && input !== null && typeof (input as any).chunks === "function") {
    throw new Lfm2Error("BAD_INPUT", "a ByteSource object cannot be sent to a worker; pass a path, URL, bytes or a Blob");
  }
  if (typeof input === "object" && input !== null && "safetensors" in input) {
    const hf = input as any;
    const inner = wireInput(hf.safetensors);
    return { input: { ...hf, safetensors: inner.input }, transfer: inner.transfer };
  }
  if (typeof input === "string" && /^(\.{0,2}\/|blob:)/.test(input) && typeof (globalThis as any).location !== "undefined" && !isNode && !isDeno) {
    return { input: new URL(input, (globalThis as any).location.href).href, transfer: [] }; // relative to the page, not the worker
  }
  return { input, transfer: [] };
}

/**
 * The worker reads the .wasm from where this module would: relative options mean "relative to the page", and a
 * bundler rewrites the package's own wasm URLs in the main bundle (Vite does not in the worker's bundle).
 */
function absoluteWasmLocations(o: Record<string, any>): Record<string, any> {
  const { wasmBaseUrl: _, ...out } = o;
  out.wasmUrls = Object.fromEntries(WASM_VARIANTS.map((v) => [v, wasmUrl(v, o).href]));
  return out;
}
