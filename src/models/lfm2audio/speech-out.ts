// LFM2-Audio speech output (docs/lfm2-audio-out.md §2): the text backbone generates text tokens or audio frames
// per position; an audio frame is 8 codes from the audio head on the backbone's last hidden state, fed back as
// the sum of its codebook embeddings, and decoded to 24 kHz samples by the detokenizer as soon as it is sampled.
// The two loops follow liquid-audio's generate_sequential / generate_interleaved.
import { Lfm2Error } from "../../errors.js";
import type { GgmlTypeName } from "../../core/quant-types.js";
import { mulberry32 } from "../synthetic.js";
import type { Lfm2Forward, Lfm2State, StepInput } from "../lfm2/forward.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { ChatMessage } from "../../text/chat-template.js";
import { renderMediaPrompt, type MediaResolver } from "../../generate/generate.js";
import { AudioHead, END_OF_AUDIO, loadAudioHead, sample } from "./audio-head.js";
import { AUDIO_OUT_RATE, AudioDetokenizer, concat, readCodeEmbeddings } from "./detokenizer.js";
import { MimiDecoder } from "./mimi.js";

/** Codes → 24 kHz samples, frame by frame: LFM2.5-Audio's detokenizer or Mimi (LFM2-Audio-1.5B). */
export interface CodeDecoder {
  stream(): { push(codes: ArrayLike<number>): Float32Array; end(): Float32Array; dispose(): void };
  /** Free what the decoder holds itself (Mimi: its worker threads). */
  dispose?(): void;
}

/** A model speech out loads beside the text model and owns (the engine depthformer, the detokenizer backbone). */
export interface OwnedModel { forwardPass: Lfm2Forward; dispose(): void }

/** Text ids of the switches (LFM2 vocabulary; liquid-audio and llama.cpp hard-code them too). */
export const IM_END = 7, AUDIO_START = 128, TEXT_END = 130;
export const TTS_SYSTEM_PROMPT = "Perform TTS. Use the UK female voice.";
export const INTERLEAVED_SYSTEM_PROMPT = "Respond with interleaved text and audio.";

export type SpeechMode = "sequential" | "interleaved";

export interface SpeechOptions {
  /** Text sampling: ≤ 0 / undefined greedy (liquid-audio's default). */
  textTemperature?: number; textTopK?: number;
  /** Audio sampling per codebook; defaults as llama.cpp: 0.8 with top-k 4 (interleaved) or 64 (sequential). */
  audioTemperature?: number; audioTopK?: number;
  /** Seed of the sampling source (default 0). */
  seed?: number;
  /** Most generated positions (text tokens + audio frames); default 1024. */
  maxTokens?: number;
  /** Most audio frames (80 ms each); default 750 (60 s). */
  maxFrames?: number;
  /** Positions the backbone's cache holds (prompt + generation); default 4096. */
  contextLength?: number;
  signal?: AbortSignal;
}

export type SpeechEvent =
  | { type: "text"; text: string; token: number }
  | { type: "audio"; pcm: Float32Array; sampleRate: number; frame: number; codes: Int32Array };

export interface SpeechResult {
  text: string;
  pcm: Float32Array;
  sampleRate: number;
  /** Every generated frame's 8 codes (end-of-audio frames included). */
  codes: Int32Array[];
  finishReason: "stop" | "length";
}

export interface SpeechOutFiles {
  /** Vocoder GGUF (llama.cpp convert_vocoder_to_gguf.py layout): the audio head and `emb.emb.weight`. */
  vocoder?: Uint8Array;
  /** The audio head already read (an LFM2-Audio HF checkpoint's model.safetensors), in place of the vocoder's. */
  head?: AudioHead;
  /** The detokenizer's code table (an HF `audio_detokenizer/` emb.emb.weight), in place of the vocoder's. */
  codeTable?: Float32Array;
  /**
   * LFM2-Audio-1.5B: its Mimi codec weights (`tokenizer-e351c8d8-checkpoint125.safetensors`, moshi names, or a
   * transformers `kyutai/mimi` model.safetensors) decode the codes instead of the LFM2.5 detokenizer.
   */
  mimi?: Uint8Array;
  /** Weight type of the depthformer on the engine (default Q8_0: about half the F16 time per frame; "F32" keeps the file's values). */
  headWeightType?: GgmlTypeName;
  /** Threads of the Mimi decoder (the text model's; the other side models get theirs through `engine`). */
  threads?: number;
}

/** Conv-state snapshot after the first `pos` prompt positions (the KV cache is cut back by position). */
interface PrefixCheckpoint { pos: number; conv: Float32Array[] }

/** The backbone state kept between calls: the prompt positions it holds and checkpoints inside them. */
interface PrefixCache { state: Lfm2State; ids: number[]; checkpoints: PrefixCheckpoint[]; busy: boolean }

const MAX_PREFIX_CHECKPOINTS = 8;

export class SpeechOut {
  private cache: PrefixCache | null = null;
  private owned: OwnedModel[] = [];
  private disposed = false;
  /** Prompt positions of the last call taken from the cache and computed (for tests and benchmarks). */
  lastPrefill = { reused: 0, computed: 0 };

  constructor(private fwd: Lfm2Forward, private tok: Tokenizer, readonly head: AudioHead, readonly detok: CodeDecoder,
    private media: MediaResolver | undefined = undefined, readonly interleave = { text: 6, audio: 12 }) {
    if (head.backboneDim !== fwd.cfg.hiddenSize) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the audio head takes ${head.backboneDim}-wide states but the text model's are ${fwd.cfg.hiddenSize}`);
    }
  }

  /** `engine` loads the depthformer as an lfm2 model on the engine's kernels (else the plain-JS reference runs). */
  /** Takes ownership of `detokBackbone` and the engine's model: dispose() frees them (so does a failure here). */
  static async create(fwd: Lfm2Forward, tok: Tokenizer, detokBackbone: OwnedModel | null, files: SpeechOutFiles,
    media?: MediaResolver, engine?: (gguf: Uint8Array) => Promise<OwnedModel>): Promise<SpeechOut> {
    const owned = detokBackbone ? [detokBackbone] : [];
    let detok: CodeDecoder | undefined;
    try {
      const head = files.head ?? (files.vocoder && loadAudioHead(files.vocoder));
      if (!head) {
        throw new Lfm2Error("BAD_INPUT", "speech out needs the audio head: a vocoder GGUF or an LFM2-Audio HF checkpoint");
      }
      if (engine) {
        const e = await engine(concat8(head.engineGguf(files.headWeightType ?? "Q8_0")));
        owned.push(e);
        head.useEngine(e.forwardPass);
      }
      if (files.mimi) detok = await MimiDecoder.load(files.mimi, { threads: files.threads });
      else if (detokBackbone) {
        const table = files.codeTable ?? (files.vocoder && readCodeEmbeddings(files.vocoder).table);
        if (!table) {
          throw new Lfm2Error("BAD_INPUT",
            "the detokenizer's code table comes from the vocoder GGUF or an HF audio_detokenizer/");
        }
        detok = new AudioDetokenizer(detokBackbone.forwardPass, table);
      } else {
        throw new Lfm2Error("BAD_INPUT",
          "speech out needs a detokenizer backbone (LFM2.5-Audio) or Mimi weights (LFM2-Audio-1.5B)");
      }
      const sp = new SpeechOut(fwd, tok, head, detok, media);
      sp.owned = owned;
      return sp;
    } catch (e) {
      detok?.dispose?.();
      for (const m of owned) m.dispose();
      throw e;
    }
  }

  /**
   * Free everything speech out holds: the kept backbone state (in the text model's memory; a call still running
   * gives it back when it stops) and the depthformer's, detokenizer's or Mimi's models and worker threads. Calls
   * afterwards fail with BAD_INPUT.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.cache && !this.cache.busy) { this.fwd.releaseState(this.cache.state); this.cache = null; }
    this.detok.dispose?.();
    for (const m of this.owned) m.dispose();
    this.owned = [];
  }

  private checkLive(): void {
    if (this.disposed) throw new Lfm2Error("BAD_INPUT", "this model was disposed");
  }

  /** The kept state if free (re-made when too small), marked busy; null while another call holds it. */
  private takeCache(ctx: number): PrefixCache | null {
    let c = this.cache;
    if (c?.busy) return null;
    if (!c || c.state.capacity < ctx) {
      if (c) this.fwd.releaseState(c.state);
      this.cache = null; // allocState may throw: never keep a released state
      const state = this.fwd.allocState(ctx);
      this.fwd.clearState(state);
      this.cache = c = { state, ids: [], checkpoints: [], busy: false };
    }
    c.busy = true;
    return c;
  }

  /**
   * Run `ids` through the backbone into `state`, resuming from the cache's longest checkpointed prefix of them.
   * Checkpoints are taken before each turn (`<|im_start|>`) and at the end, so every speak() with the same
   * system prompt resumes after the system turn, and a repeated prompt after all of it. Returns ids.length.
   */
  private prefill(ids: number[], state: Lfm2State, cache: PrefixCache | null): number {
    const f = this.fwd;
    let pos = 0;
    if (cache) {
      let common = 0;
      while (common < ids.length && common < cache.ids.length && ids[common] === cache.ids[common]) common++;
      const cp = [...cache.checkpoints].reverse().find((c) => c.pos <= common);
      if (cp) { f.restoreConv(state, cp.conv); pos = cp.pos; } else f.clearState(state);
      cache.ids = ids.slice(0, pos);
      cache.checkpoints = cache.checkpoints.filter((c) => c.pos <= pos);
    } else f.clearState(state);
    this.lastPrefill = { reused: pos, computed: ids.length - pos };
    const turn = this.tok.tokenId("<|im_start|>");
    const stops = ids.flatMap((id, i) => (i > pos && id === turn ? [i] : []));
    stops.push(ids.length);
    for (const stop of stops) {
      for (; pos < stop; pos = Math.min(pos + f.maxTok, stop)) f.step(ids.slice(pos, Math.min(pos + f.maxTok, stop)), pos, state, "none");
      if (!cache || pos === 0 || cache.checkpoints.some((c) => c.pos === pos)) continue;
      cache.ids = ids.slice(0, pos);
      cache.checkpoints.push({ pos, conv: f.snapshotConv(state) });
      // keep the earliest (the system turn every call shares) and the latest
      if (cache.checkpoints.length > MAX_PREFIX_CHECKPOINTS) cache.checkpoints.splice(1, 1);
    }
    return pos;
  }

  /** Prompt ids of a conversation (audio parts through the speech-in encoder when loaded), ending in the assistant header. */
  promptIds(messages: ChatMessage[], template?: string): Promise<number[]> {
    return renderMediaPrompt(this.tok, messages, {}, template, this.media ?? (async () => null));
  }

  /**
   * Generate from prompt ids in a mode; text and audio events as they come (audio: the samples each frame made
   * final). `startAudio` feeds `<|audio_start|>` after the prompt (TTS: the turn opens with speech).
   */
  async *generate(promptIds: number[], mode: SpeechMode, opts: SpeechOptions = {}, startAudio = false): AsyncGenerator<SpeechEvent, SpeechResult> {
    this.checkLive();
    const f = this.fwd, D = f.cfg.hiddenSize;
    const maxTokens = opts.maxTokens ?? 1024, maxFrames = opts.maxFrames ?? 750, ctx = opts.contextLength ?? 4096;
    for (const [k, v] of [["maxTokens", maxTokens], ["maxFrames", maxFrames], ["contextLength", ctx]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Lfm2Error("BAD_INPUT", `${k} must be a positive integer, got ${v}`);
    }
    const ids = startAudio ? [...promptIds, AUDIO_START] : promptIds;
    if (ids.length === 0) throw new Lfm2Error("BAD_INPUT", "an empty prompt");
    if (ids.length + maxTokens > ctx) throw new Lfm2Error("CONTEXT_OVERFLOW", `prompt ${ids.length} + ${maxTokens} new positions exceed the context of ${ctx}`);
    const rand = mulberry32(opts.seed ?? 0);
    const audioT = opts.audioTemperature ?? 0.8, audioK = opts.audioTopK ?? (mode === "interleaved" ? 4 : 64);
    // a call overlapping another (two streams pulled in turn) gets a state of its own instead of the cache
    const cache = this.takeCache(ctx), state = cache?.state ?? f.allocState(ctx);
    const stream = this.detok.stream();
    const textIds: number[] = [], pcm: Float32Array[] = [], codes: Int32Array[] = [];
    let shown = "", finish: "stop" | "length" = "length";
    try {
      let audio = startAudio;
      let left = mode === "interleaved" ? this.interleave.text : Infinity, textDone = false;
      // prefill all but the last prompt position, which is evaluated by the first loop step
      let pos = this.prefill(ids.slice(0, ids.length - 1), state, cache);
      let input: StepInput = [ids[ids.length - 1]];
      for (let n = 0; n < maxTokens; n++) {
        if (opts.signal?.aborted) throw new Lfm2Error("ABORTED", "speech generation aborted");
        this.checkLive();
        left -= 1;
        const out = f.step(input, pos, state, audio ? "hidden" : "logits")!;
        pos += "embeddings" in input ? input.embeddings.length / D : input.length;
        if (!audio) {
          const t = opts.textTemperature !== undefined && opts.textTemperature > 0 && opts.textTopK !== 1
            ? sample(out, opts.textTemperature, opts.textTopK, rand) : argmax(out);
          if (t === IM_END || t === this.tok.eosId) { finish = "stop"; break; }
          textIds.push(t);
          const all = this.tok.decode(textIds);
          // every token is an event (for counting and timing); its text waits while a UTF-8 sequence is incomplete
          const whole = !all.endsWith("\uFFFD");
          yield { type: "text", text: whole ? all.slice(shown.length) : "", token: t };
          if (whole) shown = all;
          if (mode === "interleaved") {
            if (t === TEXT_END) textDone = true;
            if (left <= 0 || textDone) { audio = true; left = this.interleave.audio; }
          } else if (t === AUDIO_START) audio = true;
          input = [t];
        } else {
          const frame = this.head.sampleFrame(out.slice(out.length - D), { temperature: audioT, topK: audioK, random: rand });
          codes.push(frame);
          if (mode === "interleaved" && left <= 0 && !textDone) { audio = false; left = this.interleave.text; }
          if (frame[0] === END_OF_AUDIO) {
            audio = false;
            const tail = stream.end();
            if (tail.length) { pcm.push(tail); yield { type: "audio", pcm: tail, sampleRate: AUDIO_OUT_RATE, frame: codes.length - 1, codes: frame }; }
          } else {
            const chunk = stream.push(frame);
            pcm.push(chunk);
            yield { type: "audio", pcm: chunk, sampleRate: AUDIO_OUT_RATE, frame: codes.length - 1, codes: frame };
            if (codes.length >= maxFrames) { finish = "length"; break; }
          }
          input = { embeddings: this.head.frameEmbedding(frame) };
        }
        await Promise.resolve(); // let consumers (and abort handlers) run between positions
      }
      const tail = stream.end();
      if (tail.length) { pcm.push(tail); yield { type: "audio", pcm: tail, sampleRate: AUDIO_OUT_RATE, frame: codes.length - 1, codes: codes[codes.length - 1] }; }
    } catch (e) {
      if (cache) { cache.ids = []; cache.checkpoints = []; } // a step may have stopped half-way: trust nothing
      throw e;
    } finally {
      stream.dispose();
      if (cache) cache.busy = false;
      // disposed while this call ran: its state goes back now
      if (!cache || this.disposed) f.releaseState(state);
      if (cache && this.disposed) this.cache = null;
    }
    return { text: this.tok.decode(textIds), pcm: concat(pcm), sampleRate: AUDIO_OUT_RATE, codes, finishReason: finish };
  }
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

function concat8(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
