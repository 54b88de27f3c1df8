// loadModel(): source → parsed header → weights streamed into WebAssembly memory → a Model that
// creates sessions. GGUF and Hugging Face safetensors are both accepted.
import { Arena, createMemory, fmt, MAX_BYTES } from "../../bindings/arena.js";
import { Ops } from "../../bindings/ops.js";
import { WorkerPool } from "../../bindings/threads.js";
import { canShareMemory, chooseVariant, compileVariant, instantiateKernels, type WasmOptions, type WasmVariant } from "../../bindings/wasm.js";
import { Lfm2Error, throwIfAborted } from "../errors.js";
import { NeedMoreBytes, parseGguf, type GgufFile, type GgufValue } from "../formats/gguf.js";
import { openSource, streamSource, type ProgressCallback, type SourceInput } from "../io/source.js";
import { Session, type SessionOptions } from "../session.js";
import { configFromGguf, type Lfm2Config } from "./config.js";
import { Lfm2Forward } from "./lfm2.js";
import { Tokenizer } from "../text/tokenizer.js";
import type { ChatMessage } from "../text/chat-template.js";
import type { ChatDelta, ChatOptions, ChatResult } from "../generate/generate.js";
import { planWeights, weightArenaBytes } from "./weights.js";

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
}

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
  threads: number;
  /** Why threads are off, when they are. */
  threadsNote?: string;
  metadata: Map<string, GgufValue>;
}

export class Model {
  private chatSession: Session | null = null;
  constructor(readonly info: ModelInfo, private fwd: Lfm2Forward, private arena: Arena, private pool: WorkerPool | null,
    /** The model's tokenizer (null if the file carries none). */
    readonly tokenizer: Tokenizer | null, readonly chatTemplate: string | undefined) {}

  /** Chat with the model (OpenAI-style messages); turns reuse one internal session's cache. */
  chat(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): Promise<ChatResult> {
    return this.defaultSession(opts.contextLength).chat(messages, opts);
  }

  chatStream(messages: ChatMessage[], opts: ChatOptions & { contextLength?: number } = {}): AsyncGenerator<ChatDelta, ChatResult> {
    return this.defaultSession(opts.contextLength).chatStream(messages, opts);
  }

  private defaultSession(ctx?: number): Session {
    if (!this.chatSession || (ctx !== undefined && ctx !== this.chatSession.contextLength)) this.chatSession = this.createSession({ contextLength: ctx });
    return this.chatSession;
  }

  /** Stop worker threads. The model must not be used afterwards. */
  dispose(): void { this.pool?.terminate(); this.pool = null; }

  createSession(opts: SessionOptions = {}): Session {
    const ctx = opts.contextLength ?? Math.min(4096, this.info.config.contextLength);
    return new Session(this.fwd, { ...opts, contextLength: ctx }, this.tokenizer, this.chatTemplate);
  }

  /** Bytes of WebAssembly memory in use (weights, scratch, sessions). */
  get memoryBytes(): number { return this.arena.memory.buffer.byteLength; }
}

export async function loadModel(input: SourceInput, opts: LoadOptions = {}): Promise<Model> {
  throwIfAborted(opts.signal);
  const src = await openSource(input, opts.signal);
  const parse = (prefix: Uint8Array): GgufFile | undefined => {
    try { return parseGguf(prefix, src.size); } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
  };
  const cores = (globalThis as any).navigator?.hardwareConcurrency ?? 2;
  let threads = Math.max(1, Math.floor(opts.threads ?? Math.min(4, cores)));
  let threadsNote: string | undefined;
  if (threads > 1 && !canShareMemory()) {
    threads = 1;
    threadsNote = "shared WebAssembly memory is unavailable here (no SharedArrayBuffer or not cross-origin isolated)";
  }
  const shared = threads > 1;
  const variant = chooseVariant(shared, opts);
  const modulePromise = compileVariant(variant, opts);
  let plan: ReturnType<typeof planWeights> | undefined;
  let cfg: Lfm2Config | undefined;
  let arena: Arena | undefined;
  const chunk = opts.chunkSize ?? 64;
  const file = await streamSource(src, parse, (h, offset, bytes) => {
    if (!plan) {
      cfg = configFromGguf(h.metadata);
      const need = weightArenaBytes(cfg, h.tensors);
      if (need > MAX_BYTES * 0.95) {
        throw new Lfm2Error("MODEL_TOO_LARGE", `${src.name} holds ${fmt(need)} of weights; one WebAssembly memory holds at most ${fmt(MAX_BYTES)}`);
      }
      arena = new Arena(createMemory(need + (64 << 20), shared));
      plan = planWeights(cfg, h.tensors, arena);
    }
    plan.sink(offset, bytes);
  }, { signal: opts.signal, onProgress: opts.onProgress });
  const kernels = await instantiateKernels(await modulePromise, arena!.memory);
  const weights = plan!.finish(kernels);
  const c = cfg!;
  const ops = new Ops(kernels, arena!, Math.max(c.hiddenSize * 3, c.ffDim, c.nHeads * c.headDim), chunk);
  const fwd = new Lfm2Forward(c, weights, ops, chunk);
  let pool: WorkerPool | null = null;
  if (threads > 1) {
    try {
      pool = await WorkerPool.create(threads, await modulePromise, kernels, arena!);
      ops.executor = pool;
    } catch (e) {
      threadsNote = `worker threads could not start: ${(e as Error).message}`;
      threads = 1;
    }
  }
  const types: Record<string, number> = {};
  let params = 0;
  for (const t of file.tensors) { types[t.type.name] = (types[t.type.name] ?? 0) + 1; params += t.shape.reduce((a, b) => a * b, 1); }
  const name = file.metadata.get("general.name");
  const tokenizer = file.metadata.has("tokenizer.ggml.tokens") ? Tokenizer.fromGguf(file.metadata) : null;
  const template = file.metadata.get("tokenizer.chat_template");
  return new Model({
    architecture: "lfm2", name: typeof name === "string" ? name : undefined, format: "gguf", config: c,
    tensorTypes: types, parameters: params, weightBytes: plan!.weightBytes, wasmVariant: variant, threads, threadsNote, metadata: file.metadata,
  }, fwd, arena!, pool, tokenizer, typeof template === "string" ? template : undefined);
}
