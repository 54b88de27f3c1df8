// Which part of an LFM2-Audio Hugging Face checkpoint a config.json describes, for loadModel's input resolution:
// the main model (text tower under lfm.* + the speech-in encoder, ./hf.ts) or the LFM2.5 detokenizer
// (audio_detokenizer/, ./hf-detokenizer.ts).
import { configFromHf, type Lfm2Config } from "../lfm2/config.js";
import { isLfm2AudioConfig, lfm2AudioTextConfig, lfm2AudioTextName } from "./hf.js";
import { detokenizerConfigFromHf, detokenizerTensorName, isLfm2AudioDetokenizerConfig } from "./hf-detokenizer.js";

export interface Lfm2AudioCheckpoint {
  /** HF tensor name → the engine's name of the text / backbone tensors (others are skipped). */
  rename(name: string): string | undefined;
  config: Lfm2Config;
  /** The file also holds the speech-in encoder (loadHfAudio reads it). */
  speechIn: boolean;
}

/** The LFM2-Audio reading of a config.json, or undefined for any other model. */
export function lfm2AudioCheckpoint(j: Record<string, any>): Lfm2AudioCheckpoint | undefined {
  if (isLfm2AudioDetokenizerConfig(j)) {
    return { rename: detokenizerTensorName, config: detokenizerConfigFromHf(j), speechIn: false };
  }
  if (isLfm2AudioConfig(j)) return { rename: lfm2AudioTextName, config: configFromHf(lfm2AudioTextConfig(j)), speechIn: true };
  return undefined;
}
