// loadModel's `speechOut` option → a SpeechOut: where the audio head, the code decoder and the detokenizer's code
// table come from (a vocoder GGUF + detokenizer | mimi, or an LFM2-Audio Hugging Face checkpoint holding them all),
// and the detokenizer's weights requantized once loaded when asked.
import { Lfm2Error } from "../../errors.js";
import { ggmlTypeByName, type GgmlTypeName, type Matrix } from "../../core/quant-types.js";
import { openSource, type SourceInput } from "../../io/source.js";
import type { MediaResolver } from "../../generate/generate.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { Lfm2Forward } from "../lfm2/forward.js";
import type { HfModelInput, ModelInput } from "../../runtime/model.js";
import { placeMatrix, type AudioHead } from "./audio-head.js";
import { readHfCodeEmbeddings } from "./hf-detokenizer.js";
import { SpeechOut, type OwnedModel } from "./speech-out.js";

export interface SpeechOutOptions {
  /** Vocoder GGUF bytes (llama.cpp layout): the audio head and, for LFM2.5, the code table. Optional for HF. */
  vocoder?: Uint8Array;
  /** LFM2.5-Audio's detokenizer backbone (GGUF or HF); an HF checkpoint's `audio_detokenizer/` when left out. */
  detokenizer?: ModelInput;
  /** LFM2-Audio-1.5B: its Mimi codec safetensors bytes, decoding the codes instead of a detokenizer. */
  mimi?: Uint8Array;
  /** Weight type of the depthformer on the engine (default Q8_0). */
  headWeightType?: GgmlTypeName;
  /** Requantize the detokenizer's matrices to this type once loaded (default: the file's types). */
  detokenizerWeightType?: GgmlTypeName;
}

/** What an LFM2-Audio HF checkpoint offers for speech out. */
export interface HfSpeechOutParts {
  /** The audio head from its model.safetensors. */
  head(): Promise<AudioHead>;
  /** Its `audio_detokenizer/` folder (LFM2.5-Audio), if it has one. */
  detokenizer?: HfModelInput;
}

interface Context {
  fwd: Lfm2Forward; tok: Tokenizer; media?: MediaResolver; hf?: HfSpeechOutParts; signal?: AbortSignal; threads?: number;
  /** Loads a side model (detokenizer, depthformer) with the text model's threads. */
  load(input: ModelInput, chunkSize: number): Promise<OwnedModel>;
}

export async function loadSpeechOut(options: true | SpeechOutOptions, cx: Context): Promise<SpeechOut> {
  if (options !== true && (typeof options !== "object" || options === null || Array.isArray(options))) {
    throw new Lfm2Error("BAD_INPUT", "speechOut must be true or an object");
  }
  const o: SpeechOutOptions = options === true ? {} : options;
  const { vocoder, detokenizer, mimi } = o;
  if (detokenizer !== undefined && mimi !== undefined) {
    throw new Lfm2Error("BAD_INPUT",
      "speechOut takes either detokenizer (LFM2.5-Audio) or mimi (LFM2-Audio-1.5B), not both");
  }
  const hfDetok = detokenizer === undefined && mimi === undefined ? cx.hf?.detokenizer : undefined;
  if (detokenizer === undefined && mimi === undefined && !hfDetok) {
    throw new Lfm2Error("BAD_INPUT", "speechOut needs a code decoder: detokenizer (LFM2.5-Audio), " +
      "mimi (LFM2-Audio-1.5B), " +
      "or an LFM2.5-Audio HF checkpoint with its audio_detokenizer/ folder");
  }
  if (vocoder === undefined && !cx.hf) {
    throw new Lfm2Error("BAD_INPUT",
      "speechOut needs the vocoder GGUF (audio head) unless the model is an LFM2-Audio HF checkpoint");
  }
  if (vocoder === undefined && detokenizer !== undefined) {
    throw new Lfm2Error("BAD_INPUT",
      "without a vocoder the code table comes from the checkpoint's audio_detokenizer/: " +
      "leave detokenizer out or pass the vocoder");
  }
  const detokType = o.detokenizerWeightType === undefined ? undefined : ggmlTypeByName(o.detokenizerWeightType);
  if (detokType && mimi !== undefined) {
    throw new Lfm2Error("BAD_INPUT", "detokenizerWeightType applies to the LFM2.5 detokenizer, not Mimi");
  }
  const head = vocoder === undefined ? await cx.hf!.head() : undefined;
  let codeTable: Float32Array | undefined, detokInput: ModelInput | undefined = detokenizer;
  if (hfDetok) {
    if (Array.isArray(hfDetok.safetensors)) {
      throw new Lfm2Error("BAD_INPUT", "a sharded audio_detokenizer/ is not supported");
    }
    // read once: the code table and the backbone come from the same (small) file
    const bytes = await sourceBytes(hfDetok.safetensors, cx.signal);
    if (vocoder === undefined) codeTable = readHfCodeEmbeddings(bytes).table;
    detokInput = { ...hfDetok, safetensors: bytes };
  }
  const detok = detokInput === undefined ? null : await cx.load(detokInput, 8);
  try {
    if (detok && o.detokenizerWeightType) requantizeMatrices(detok.forwardPass, o.detokenizerWeightType);
  } catch (e) { detok?.dispose(); throw e; }
  const files = { vocoder, mimi, head, codeTable, headWeightType: o.headWeightType, threads: cx.threads };
  return SpeechOut.create(cx.fwd, cx.tok, detok, files, cx.media,
    (gguf) => cx.load(gguf, 1));
}

async function sourceBytes(input: SourceInput, signal?: AbortSignal): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input;
  const src = await openSource(input, signal);
  const out = new Uint8Array(src.size);
  let at = 0;
  for await (const c of src.chunks(0, signal)) { out.set(c, at); at += c.length; }
  if (at !== src.size) throw new Lfm2Error("TRUNCATED", `${src.name} ended after ${at} of ${src.size} bytes`);
  return out;
}

/**
 * Re-place every matrix a detokenizer step reads (attention, conv projections, FFN, dense_2) in `typeName`: each
 * dequantized row by row from memory, quantized, placed (x4 where the type has it), the old block freed — the next
 * matrix then fits in the hole, so memory grows by about one matrix, but never shrinks back to the smaller size.
 * The token embedding and LM head are left as they are (the detokenizer feeds embeddings and reads dense_2).
 * Returns how many matrices changed type.
 */
export function requantizeMatrices(fwd: Lfm2Forward, typeName: GgmlTypeName): number {
  const type = ggmlTypeByName(typeName);
  if (fwd.place.shards.length !== 1) {
    throw new Lfm2Error("BAD_INPUT", "requantizing a model placed across several memories is not supported");
  }
  const ops = fwd.ops, a = ops.arena, mats: Matrix[] = [];
  for (const L of fwd.w.layers) {
    if (L.attn) mats.push(L.attn.q, L.attn.k, L.attn.v, L.attn.o);
    if (L.conv) mats.push(L.conv.inProj, L.conv.outProj);
    if (L.ffn.kind !== "dense") throw new Lfm2Error("UNSUPPORTED_ARCH", "requantizing an MoE model is not supported");
    mats.push(L.ffn.gate, L.ffn.up, L.ffn.down);
  }
  if (fwd.w.denseOut) mats.push(fwd.w.denseOut);
  let changed = 0;
  for (const m of mats) {
    if (m.type === type) continue;
    if (m.nIn % type.blockSize !== 0) {
      throw new Lfm2Error("SHAPE_MISMATCH",
        `a ${m.nIn}-wide matrix is not a whole number of ${type.name} blocks (${type.blockSize})`);
    }
    const values = new Float32Array(m.nIn * m.nOut), row = a.alloc(4 * m.nIn);
    for (let r = 0; r < m.nOut; r++) { ops.rowToF32(m, r, row); values.set(a.f32(row, m.nIn), r * m.nIn); }
    a.free(row);
    const placed = placeMatrix(ops, type, values, m.nIn, m.nOut);
    a.free(m.ptr);
    Object.assign(m, placed); // the forward's weights hold this object: it now names the new block
    changed++;
  }
  return changed;
}
