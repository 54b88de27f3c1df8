// A generation session: owns the KV cache and conv states of one sequence, runs chunked prefill and
// decode, and keeps conv-state checkpoints so a later call sharing a prefix resumes without
// recomputing it (the conv state cannot be rewound; the KV cache can, by position).
import { Lfm2Error, throwIfAborted } from "../errors.js";
import type { Lfm2Forward, Lfm2State } from "../models/lfm2/forward.js";
import type { Tokenizer } from "../text/tokenizer.js";
import type { ChatMessage } from "../text/chat-template.js";
import { chat, chatStream, generate, type ChatDelta, type ChatOptions, type ChatResult, type GenerateDelta, type GenerateOptions, type GenerateResult } from "../generate/generate.js";

export interface SessionOptions {
  /** Positions the KV cache holds (default: min(4096, the model's trained context)). */
  contextLength?: number;
  /** Tokens per prefill chunk (default 64). */
  chunkSize?: number;
}

interface Checkpoint { pos: number; conv: Float32Array[] }

export class Session {
  readonly contextLength: number;
  private state: Lfm2State;
  private history: number[] = [];
  private checkpoints: Checkpoint[] = [];
  private busy = false;
  private lastLogits: Float32Array | null = null;
  private static readonly MAX_CHECKPOINTS = 8;

  constructor(private fwd: Lfm2Forward, opts: SessionOptions = {}, private tokenizer: Tokenizer | null = null, private chatTemplate?: string) {
    const ctx = opts.contextLength ?? Math.min(4096, fwd.cfg.contextLength);
    if (!Number.isInteger(ctx) || ctx < 1) throw new Lfm2Error("BAD_INPUT", `contextLength must be a positive integer, got ${ctx}`);
    this.contextLength = ctx;
    this.state = fwd.allocState(ctx);
    fwd.clearState(this.state);
  }

  private disposed = false;

  /** Give the session's KV cache back to the model for later sessions. The session is unusable after. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.reset();
    this.fwd.releaseState(this.state);
  }

  /** Tokens currently held in the cache, in order. */
  get tokens(): readonly number[] { return this.history; }
  get position(): number { return this.history.length; }

  /**
   * Append tokens to the sequence and return the logits of the last one (a copy).
   * Throws CONTEXT_OVERFLOW (nothing changed) if they do not fit.
   */
  async forward(tokens: ArrayLike<number>, opts: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    const ids = Array.from(tokens);
    if (ids.length === 0) {
      if (this.lastLogits) return this.lastLogits.slice();
      throw new Lfm2Error("BAD_INPUT", "forward() needs at least one token");
    }
    const V = this.fwd.cfg.vocabSize;
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Lfm2Error("BAD_INPUT", `token id ${id} is outside the vocabulary (0..${V - 1})`);
    if (this.history.length + ids.length > this.contextLength) {
      throw new Lfm2Error("CONTEXT_OVERFLOW", `${this.history.length} cached + ${ids.length} new tokens exceed the context length ${this.contextLength}`);
    }
    if (this.busy) throw new Lfm2Error("BAD_INPUT", "this session is already running a forward pass");
    if (this.disposed) throw new Lfm2Error("BAD_INPUT", "this session was disposed");
    this.busy = true;
    try {
      const chunk = this.fwd.maxTok;
      let logits: Float32Array | null = null;
      for (let i = 0; i < ids.length; i += chunk) {
        throwIfAborted(opts.signal);
        const part = ids.slice(i, i + chunk);
        const last = i + chunk >= ids.length;
        const before = this.history.length;
        // an abort between chunks leaves a consistent, shorter sequence
        const out = this.fwd.step(part, before, this.state, last);
        this.history.push(...part);
        if (last) logits = out!.slice();
        if (!last) await yieldToEventLoop();
      }
      this.lastLogits = logits;
      return logits!.slice();
    } finally { this.busy = false; }
  }

  /** Remember the conv state at the current position so the sequence can later be cut back here. */
  checkpoint(): void {
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
    let common = 0;
    while (common < tokens.length && common < this.history.length && tokens[common] === this.history[common]) common++;
    if (common === this.history.length && common < tokens.length) return common;
    // need to cut: the best checkpoint not past the common prefix, and strictly before tokens.length
    // so that at least one token is re-run and fresh logits exist
    const limit = Math.min(common, tokens.length - 1);
    const cp = [...this.checkpoints].reverse().find((c) => c.pos <= limit);
    if (!cp) { this.reset(); return 0; }
    this.fwd.restoreConv(this.state, cp.conv);
    this.history.length = cp.pos;
    this.checkpoints = this.checkpoints.filter((c) => c.pos <= cp.pos);
    this.lastLogits = null;
    return cp.pos;
  }

  private tok(): Tokenizer {
    if (!this.tokenizer) throw new Lfm2Error("BAD_INPUT", "this model file has no tokenizer: pass token ids");
    return this.tokenizer;
  }

  /**
   * Generate text (async iterator of per-token deltas; its return value is the full result).
   * A prompt sharing a prefix with what the session already holds resumes from the cache.
   */
  generate(prompt: string | ArrayLike<number>, opts: GenerateOptions = {}): AsyncGenerator<GenerateDelta, GenerateResult> {
    return generate(this, this.tok(), prompt, opts);
  }

  /** Chat turn: renders the conversation with the model's template and reuses the cached prefix. */
  chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    return chat(this, this.tok(), messages, opts, this.chatTemplate);
  }

  chatStream(messages: ChatMessage[], opts: ChatOptions = {}): AsyncGenerator<ChatDelta, ChatResult> {
    return chatStream(this, this.tok(), messages, opts, this.chatTemplate);
  }

  reset(): void {
    this.history = [];
    this.checkpoints = [];
    this.lastLogits = null;
    this.fwd.clearState(this.state);
  }
}

const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));
