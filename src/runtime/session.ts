// A generation session: owns the KV cache and conv states of one sequence, runs chunked prefill and
// decode, and keeps conv-state checkpoints so a later call sharing a prefix resumes without
// recomputing it (the conv state cannot be rewound; the KV cache can, by position). Calls on one
// session run one at a time in arrival order (FIFO), each exactly as it would run alone.
import { Lfm2Error, throwIfAborted } from "../errors.js";
import type { Lfm2Forward, Lfm2State } from "../models/lfm2/forward.js";
import type { Tokenizer } from "../text/tokenizer.js";
import type { ChatMessage } from "../text/chat-template.js";
import { assertHolds, checkSignal, drain, exclusive, FifoLock, type Ticket } from "./lock.js";
import { chatStream, generate, type ChatDelta, type ChatOptions, type ChatResult, type GenerateDelta, type GenerateOptions, type GenerateResult, type GenerationTarget, type MediaResolver } from "../generate/generate.js";

export interface SessionOptions {
  /** Positions the KV cache holds (default: min(4096, the model's trained context)). */
  contextLength?: number;
  /** Tokens per prefill chunk: 1 … the model's chunkSize (its default). */
  chunkSize?: number;
}

interface Checkpoint { pos: number; conv: Float32Array[] }

/** An options argument: an object or nothing (null, numbers and strings are caller bugs). */
export function optionsObject<T extends object>(opts: T | undefined, what: string): T {
  if (opts === undefined) return {} as T;
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) throw new Lfm2Error("BAD_INPUT", `${what} must be an object`);
  return opts;
}

/** Token ids: an array or typed array of integers (strings, null, objects and fractions are refused). */
function tokenIds(tokens: unknown, vocabSize: number): number[] {
  const isList = Array.isArray(tokens) || (ArrayBuffer.isView(tokens) && !(tokens instanceof DataView));
  if (!isList) {
    throw new Lfm2Error("BAD_INPUT", `tokens must be an array of token ids, got ${tokens === null ? "null" : typeof tokens}` +
      (typeof tokens === "string" ? " (use generate() or the tokenizer for text)" : ""));
  }
  const ids = Array.from(tokens as ArrayLike<unknown>);
  for (const id of ids) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Lfm2Error("BAD_INPUT", `token id ${String(id)} is outside the vocabulary (0..${vocabSize - 1})`);
    }
  }
  return ids as number[];
}

export class Session {
  readonly contextLength: number;
  /** Tokens per prefill step. */
  readonly chunkSize: number;
  private state: Lfm2State;
  private history: number[] = [];
  private checkpoints: Checkpoint[] = [];
  private lock = new FifoLock();
  private disposed = false;
  private lastLogits: Float32Array | null = null;
  private static readonly MAX_CHECKPOINTS = 8;

  constructor(private fwd: Lfm2Forward, options: SessionOptions = {}, private tokenizer: Tokenizer | null = null, private chatTemplate?: string,
    /** Image / audio content parts → session ids (models loaded with an mmproj). */
    private media?: MediaResolver) {
    const opts = optionsObject(options, "session options");
    const ctx = opts.contextLength ?? Math.min(4096, fwd.cfg.contextLength);
    if (!Number.isInteger(ctx) || ctx < 1) throw new Lfm2Error("BAD_INPUT", `contextLength must be a positive integer, got ${String(ctx)}`);
    const chunk = opts.chunkSize ?? fwd.maxTok;
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > fwd.maxTok) {
      throw new Lfm2Error("BAD_INPUT", `chunkSize must be an integer in 1..${fwd.maxTok} (the model's chunkSize), got ${String(chunk)}`);
    }
    this.contextLength = ctx;
    this.chunkSize = chunk;
    this.state = fwd.allocState(ctx);
    fwd.clearState(this.state);
  }

  /**
   * Free the session's KV cache for later sessions. A call in flight ends with ABORTED before it
   * touches the cache again, queued calls reject with ABORTED, and later calls with BAD_INPUT.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lock.close("the session was disposed");
    this.history = [];
    this.checkpoints = [];
    this.lastLogits = null;
    this.fwd.releaseState(this.state);
  }

  /** Tokens currently held in the cache, in order. */
  get tokens(): readonly number[] { return this.history; }
  get position(): number { return this.history.length; }

  /**
   * Append tokens to the sequence and return the logits of the last one (a copy). Waits for earlier
   * calls on this session. Throws CONTEXT_OVERFLOW (nothing changed) if they do not fit.
   */
  async forward(tokens: ArrayLike<number>, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    const signal = checkSignal(optionsObject(options, "forward options").signal);
    const ids = tokenIds(tokens, this.fwd.cfg.vocabSize);
    this.assertLive();
    const ticket = await this.lock.acquire(signal);
    try { return await this.forwardHeld(ticket, ids, signal); } finally { this.lock.release(ticket); }
  }

  /** forward() by the lock's holder: every chunk first checks the ticket still holds the state. */
  private async forwardHeld(ticket: Ticket, ids: number[], signal?: AbortSignal): Promise<Float32Array> {
    assertHolds(ticket);
    if (ids.length === 0) {
      if (this.lastLogits) return this.lastLogits.slice();
      throw new Lfm2Error("BAD_INPUT", "forward() needs at least one token");
    }
    if (this.history.length + ids.length > this.contextLength) {
      throw new Lfm2Error("CONTEXT_OVERFLOW", `${this.history.length} cached + ${ids.length} new tokens exceed the context length ${this.contextLength}`);
    }
    const chunk = this.chunkSize;
    let logits: Float32Array | null = null;
    for (let i = 0; i < ids.length; i += chunk) {
      // after the await below the session may have been disposed (its cache already another's)
      assertHolds(ticket);
      throwIfAborted(signal);
      const part = ids.slice(i, i + chunk);
      const last = i + chunk >= ids.length;
      // an abort between chunks leaves a consistent, shorter sequence
      const out = this.fwd.step(part, this.history.length, this.state, last);
      this.history.push(...part);
      if (last) logits = out!.slice();
      if (!last) await yieldToEventLoop();
    }
    this.lastLogits = logits;
    return logits!.slice();
  }

  /** Remember the conv state at the current position so the sequence can later be cut back here. */
  checkpoint(): void {
    this.assertIdle();
    this.checkpointHeld();
  }

  private checkpointHeld(): void {
    const pos = this.history.length;
    if (this.checkpoints.some((c) => c.pos === pos)) return;
    this.checkpoints.push({ pos, conv: this.fwd.snapshotConv(this.state) });
    this.checkpoints.sort((x, y) => x.pos - y.pos);
    if (this.checkpoints.length > Session.MAX_CHECKPOINTS) this.checkpoints.splice(1, 1); // keep the oldest
  }

  /**
   * Cut the sequence back to the longest checkpointed prefix of `tokens` and return how many of
   * `tokens` are now already in the cache; the caller then forwards the rest.
   */
  rewindToPrefix(tokens: readonly number[]): number {
    this.assertIdle();
    return this.rewindHeld(tokenIds(tokens, this.fwd.cfg.vocabSize));
  }

  private rewindHeld(tokens: readonly number[]): number {
    let common = 0;
    while (common < tokens.length && common < this.history.length && tokens[common] === this.history[common]) common++;
    if (common === this.history.length && common < tokens.length) return common;
    // need to cut: the best checkpoint not past the common prefix, and strictly before tokens.length
    // so that at least one token is re-run and fresh logits exist
    const limit = Math.min(common, tokens.length - 1);
    const cp = [...this.checkpoints].reverse().find((c) => c.pos <= limit);
    if (!cp) { this.clear(); return 0; }
    this.fwd.restoreConv(this.state, cp.conv);
    this.history.length = cp.pos;
    this.checkpoints = this.checkpoints.filter((c) => c.pos <= cp.pos);
    this.lastLogits = null;
    return cp.pos;
  }

  /** What generation drives while it holds the lock; every touch first checks it still does. */
  private heldTarget(ticket: Ticket): GenerationTarget {
    const self = this;
    return {
      get contextLength() { return self.contextLength; },
      get tokens() { return self.history; },
      forward: (tokens, o) => this.forwardHeld(ticket, tokenIds(tokens, this.fwd.cfg.vocabSize), o?.signal),
      rewindToPrefix: (tokens) => { assertHolds(ticket); return this.rewindHeld(tokens); },
      checkpoint: () => { assertHolds(ticket); this.checkpointHeld(); },
      isExtraId: (id) => (this.fwd as { isExtraId?: (id: number) => boolean }).isExtraId?.(id) ?? false,
    };
  }

  private tok(): Tokenizer {
    if (!this.tokenizer) throw new Lfm2Error("BAD_INPUT", "this model file has no tokenizer: pass token ids");
    return this.tokenizer;
  }

  /**
   * Generate text (async iterator of per-token deltas; its return value is the full result).
   * A prompt sharing a prefix with what the session already holds resumes from the cache. The
   * session is taken at the first next() and held until the iterator finishes, is returned, or its
   * signal aborts; other calls on the session wait meanwhile.
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<GenerateDelta, GenerateResult> {
    const tok = this.tok();
    return this.held(options, "generate options", (target, opts) => generate(target, tok, prompt, opts));
  }

  /** Chat turn: renders the conversation with the model's template and reuses the cached prefix. */
  chat(messages: ChatMessage[], options: ChatOptions = {}): Promise<ChatResult> {
    return drain(this.chatStream(messages, options));
  }

  chatStream(messages: ChatMessage[], options: ChatOptions = {}): AsyncGenerator<ChatDelta, ChatResult> {
    const tok = this.tok();
    return this.held(options, "chat options", (target, opts) => chatStream(target, tok, messages, opts, this.chatTemplate, this.media));
  }

  /** Checks the options at the first next() (like every other argument error of an iterator), then queues. */
  private async *held<O extends { signal?: AbortSignal }, Y, R>(options: O | undefined, what: string,
    run: (target: GenerationTarget, opts: O) => AsyncGenerator<Y, R>): AsyncGenerator<Y, R> {
    const opts = optionsObject(options, what), signal = checkSignal(opts.signal);
    this.assertLive();
    return yield* exclusive(this.lock, signal, (ticket) => run(this.heldTarget(ticket), opts));
  }

  /** Empty the sequence (the cache is kept, its contents dropped). */
  reset(): void {
    this.assertIdle();
    this.clear();
  }

  private clear(): void {
    this.history = [];
    this.checkpoints = [];
    this.lastLogits = null;
    this.fwd.clearState(this.state);
  }

  private assertLive(): void {
    if (this.disposed) throw new Lfm2Error("BAD_INPUT", "this session was disposed");
  }

  /** The synchronous mutators would cut the sequence under a running call: refuse while one holds it. */
  private assertIdle(): void {
    this.assertLive();
    if (this.lock.busy) throw new Lfm2Error("BAD_INPUT", "this session is busy (a forward, generate or chat call holds it)");
  }
}

const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));
