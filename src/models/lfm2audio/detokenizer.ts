// LFM2.5-Audio's detokenizer (docs/lfm2-audio-out.md §3): 8 codes per 80 ms frame → mean of the codebooks'
// embedding rows → repeated ×6 in time → a causal LFM2 backbone with sliding-window attention (the engine's own
// forward, `slidingWindow` in its config) → final norm → `lin` (512 → 1282, the backbone file's dense_2) →
// exp(log-magnitude)·e^{i·phase} → streaming ISTFT (n_fft 1280, hop 320, "same") → 24 kHz samples.
// The backbone keeps its state across frames, so audio comes out frame by frame (1920 samples each once running).
import { Lfm2Error } from "../../errors.js";
import { StreamingIstft } from "../../audio/istft-stream.js";
import { parseGguf } from "../../formats/gguf.js";
import { f16ToF32 } from "../../formats/fp16.js";
import type { Lfm2Forward, Lfm2State } from "../lfm2/forward.js";

export const DETOK_CODEBOOKS = 8;
/** Codes per codebook the detokenizer embeds (2048; the head's end-of-audio code 2048 never reaches it). */
export const DETOK_CODES = 2048;
export const DETOK_UPSAMPLE = 6;
export const DETOK_N_FFT = 1280;
export const DETOK_HOP = 320;
export const AUDIO_OUT_RATE = 24000;
/** Samples per code frame: 6 STFT frames × hop 320 = 1920 = 80 ms at 24 kHz. */
export const SAMPLES_PER_FRAME = DETOK_UPSAMPLE * DETOK_HOP;

/** `emb.emb.weight` (8·2048 rows × D) from a vocoder GGUF (llama.cpp `convert_vocoder_to_gguf.py` layout), F32 or F16. */
export function readCodeEmbeddings(gguf: Uint8Array): { table: Float32Array; dim: number } {
  const f = parseGguf(gguf);
  const t = f.tensors.find((x) => x.name === "emb.emb.weight");
  if (!t) throw new Lfm2Error("MISSING_TENSOR", "the vocoder file has no emb.emb.weight (the detokenizer's code embeddings)");
  const [dim, rows] = t.shape;
  if (t.shape.length !== 2 || rows !== DETOK_CODEBOOKS * DETOK_CODES) {
    throw new Lfm2Error("SHAPE_MISMATCH", `emb.emb.weight must be {D, ${DETOK_CODEBOOKS * DETOK_CODES}}, got {${t.shape.join(", ")}}`);
  }
  const n = dim * rows, table = new Float32Array(n);
  const dv = new DataView(gguf.buffer, gguf.byteOffset + t.offset, t.byteLength);
  if (t.type.name === "F32") for (let i = 0; i < n; i++) table[i] = dv.getFloat32(4 * i, true);
  else if (t.type.name === "F16") for (let i = 0; i < n; i++) table[i] = f16ToF32(dv.getUint16(2 * i, true));
  else throw new Lfm2Error("UNSUPPORTED_TYPE", `emb.emb.weight of type ${t.type.name} (F32 or F16 expected)`);
  return { table, dim };
}

export class AudioDetokenizer {
  readonly dim: number;

  constructor(readonly fwd: Lfm2Forward, readonly codeTable: Float32Array) {
    const c = fwd.cfg;
    this.dim = c.hiddenSize;
    if (c.embeddingOut !== 2 * (DETOK_N_FFT / 2 + 1) || (c.pooling ?? 0) !== 0 || !fwd.w.denseOut) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the detokenizer backbone must end in a ${2 * (DETOK_N_FFT / 2 + 1)}-wide per-token ` +
        `projection (dense_2, pooling none), got ${c.embeddingOut ?? "none"}`);
    }
    if (!c.causal) throw new Lfm2Error("SHAPE_MISMATCH", "the detokenizer backbone must be causal");
    if (codeTable.length !== DETOK_CODEBOOKS * DETOK_CODES * this.dim) {
      throw new Lfm2Error("SHAPE_MISMATCH", `code embeddings are ${codeTable.length} floats, expected ${DETOK_CODEBOOKS}·${DETOK_CODES}·${this.dim}`);
    }
    if (fwd.maxTok < DETOK_UPSAMPLE) throw new Lfm2Error("BAD_INPUT", `the backbone's step size must be ≥ ${DETOK_UPSAMPLE}`);
  }

  /** The backbone input of one frame: mean of the 8 codebook rows, repeated 6 times (6 × D floats). */
  frameInput(codes: ArrayLike<number>): Float32Array {
    checkFrame(codes);
    const D = this.dim, mean = new Float32Array(D);
    for (let c = 0; c < DETOK_CODEBOOKS; c++) {
      const row = (c * DETOK_CODES + codes[c]) * D;
      for (let j = 0; j < D; j++) mean[j] += this.codeTable[row + j];
    }
    for (let j = 0; j < D; j++) mean[j] /= DETOK_CODEBOOKS;
    const out = new Float32Array(DETOK_UPSAMPLE * D);
    for (let r = 0; r < DETOK_UPSAMPLE; r++) out.set(mean, r * D);
    return out;
  }

  /** A stream over one utterance: frames in, samples out as they become final. */
  stream(): DetokenizerStream { return new DetokenizerStream(this); }

  /** Frames (frames × 8 codes, frame-major) → all samples (frames·1920). */
  decode(codes: ArrayLike<number>): Float32Array {
    if (codes.length % DETOK_CODEBOOKS !== 0) throw new Lfm2Error("BAD_INPUT", `codes come in frames of ${DETOK_CODEBOOKS}`);
    const s = this.stream(), parts: Float32Array[] = [];
    try {
      for (let f = 0; f < codes.length / DETOK_CODEBOOKS; f++) {
        parts.push(s.push(Array.prototype.slice.call(codes, f * DETOK_CODEBOOKS, (f + 1) * DETOK_CODEBOOKS)));
      }
      parts.push(s.end());
    } finally { s.dispose(); }
    return concat(parts);
  }
}

export class DetokenizerStream {
  private state: Lfm2State;
  private pos = 0;
  private istft = new StreamingIstft(DETOK_N_FFT, DETOK_HOP);
  /** The last frame's spectrogram rows (6 × 1282: log-magnitudes then phases), for inspection. */
  lastProjection: Float32Array | null = null;

  constructor(private d: AudioDetokenizer) {
    // sliding-window layers keep a ring; a backbone without a window needs the whole utterance's positions
    this.state = d.fwd.allocState(d.fwd.cfg.slidingWindow ? DETOK_UPSAMPLE : 1 << 14);
    d.fwd.clearState(this.state);
  }

  /** One frame of 8 codes → its final samples (1440 for the first frame, 1920 after). */
  push(codes: ArrayLike<number>): Float32Array {
    const f = this.d.fwd, cap = this.state.capacity;
    if (!f.cfg.slidingWindow && this.pos + DETOK_UPSAMPLE > cap) throw new Lfm2Error("CONTEXT_OVERFLOW", `the detokenizer holds ${cap / DETOK_UPSAMPLE} frames`);
    const y = f.step({ embeddings: this.d.frameInput(codes) }, this.pos, this.state, "embedding")!;
    this.pos += DETOK_UPSAMPLE;
    const W = y.length / DETOK_UPSAMPLE, bins = W / 2;
    this.lastProjection = y.slice();
    const re = new Float64Array(bins), im = new Float64Array(bins), parts: Float32Array[] = [];
    for (let r = 0; r < DETOK_UPSAMPLE; r++) {
      for (let k = 0; k < bins; k++) {
        const mag = Math.exp(y[r * W + k]), ph = y[r * W + bins + k];
        re[k] = mag * Math.cos(ph); im[k] = mag * Math.sin(ph);
      }
      parts.push(this.istft.push(re, im));
    }
    return concat(parts);
  }

  /** The last 480 samples (the end of the "same" padding); the stream can start a new utterance afterwards. */
  end(): Float32Array {
    const tail = this.istft.flush();
    this.pos = 0;
    this.d.fwd.clearState(this.state);
    return tail;
  }

  dispose(): void { this.d.fwd.releaseState(this.state); }
}

function checkFrame(codes: ArrayLike<number>): void {
  if (codes.length !== DETOK_CODEBOOKS) throw new Lfm2Error("BAD_INPUT", `a frame has ${DETOK_CODEBOOKS} codes, got ${codes.length}`);
  for (let c = 0; c < DETOK_CODEBOOKS; c++) {
    const v = codes[c];
    if (!Number.isInteger(v) || v < 0 || v >= DETOK_CODES) throw new Lfm2Error("BAD_INPUT", `code ${v} of codebook ${c} is outside 0..${DETOK_CODES - 1}`);
  }
}

export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
