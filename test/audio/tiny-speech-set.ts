// The tiny synthetic speech-out set several audio tests load: a 64-wide F32 text model, a detokenizer with a
// 30-token window and a vocoder GGUF carrying a 2-layer audio head, written once into a temporary folder.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { syntheticGguf } from "../../src/index.js";
import { syntheticAudioHead, syntheticDetokenizerGguf, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";

export interface TinySpeechSet { textPath: string; detokPath: string; vocoder: Buffer; remove(): void }

export function writeTinySpeechSet(prefix: string): TinySpeechSet {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const write = (name: string, chunks: Uint8Array[]) => {
    const p = join(dir, name);
    writeFileSync(p, Buffer.concat(chunks));
    return p;
  };
  const shape = { hiddenSize: 64, nLayers: 4, nHeads: 4, nKv: 2, ffDim: 128, attn: [1, 3], vocabSize: 2048 };
  const head = syntheticAudioHead({ backboneDim: 64, dim: 256, nLayers: 2, ffDim: 128 });
  return {
    textPath: write("text.gguf", syntheticGguf({ shape, weightType: "F32", seed: 4 })),
    detokPath: write("detok.gguf", syntheticDetokenizerGguf({ slidingWindow: 30 })),
    vocoder: Buffer.concat(syntheticVocoderGguf(64, 5, head.tensors, head.meta)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
