// LFM2-Audio speech input on top of a loaded LFM2 text model: a clip becomes rows of audio embeddings fed to
// the text tower in place of token embeddings, at the place of the audio part in the prompt (no marker
// tokens: llama.cpp's lfm2a media chunk has none either). src/models/media.ts gives each encoded clip its
// ids past the vocabulary, so a later turn carrying the same clip is served from the prefix cache.
import { Lfm2Error } from "../../errors.js";
import { toMono16k, type AudioInput } from "../../audio/input.js";
import type { AudioEncoder } from "./encoder.js";
import { contentKey, type MediaItem, type MediaRows } from "../media.js";

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

export class AudioLanguage {
  private entries = new Map<string, MediaItem>();

  constructor(readonly encoder: AudioEncoder, private media: MediaRows) {
    if (encoder.config.outDim !== media.hiddenSize) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the audio mmproj projects to ${encoder.config.outDim} but the text model's hidden size is ${media.hiddenSize}`);
    }
  }

  private entry(input: AudioInput): MediaItem {
    const samples = toMono16k(input);
    const key = `${samples.length}:${contentKey(new Uint32Array(samples.buffer, samples.byteOffset, samples.length), samples.length)}`;
    const have = this.entries.get(key);
    if (have) return have;
    const enc = this.encoder.encode({ samples, sampleRate: 16000 });
    const item = this.media.add(enc.embeddings, enc.tokens);
    this.entries.set(key, item);
    return item;
  }

  /** Encode a clip: its session ids and projected embeddings (cached by content). */
  encodeAudio(input: AudioInput): AudioEmbedding {
    const e = this.entry(input);
    return { tokens: Array.from({ length: e.rows }, (_, i) => e.first + i), embeddings: e.embeddings.slice(), rows: e.rows };
  }

  /** An audio content part → the ids a session holds for it; null for parts that are not audio. */
  async resolvePart(part: unknown): Promise<number[] | null> {
    if (!isAudioPart(part)) return null;
    const e = this.entry(audioOf(part));
    return Array.from({ length: e.rows }, (_, i) => e.first + i);
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
