// LFM2-Audio's audio head (docs/lfm2-audio-out.md §1) read from the Hugging Face checkpoint itself: the main
// model.safetensors holds depthformer.*, depth_linear.*, depth_embeddings.N.* and audio_embedding.* beside the text
// tower. llama.cpp's tools/liquid-audio/convert_vocoder_to_gguf.py copies exactly these (prefix filter) into the
// vocoder GGUF, unchanged but for one rename — `bounded_attention` → `attention` (liquid-audio's MHA keeps its
// q/k norms under `operator.bounded_attention.`; the converter shortens the name for ggml) — and the dtype
// (F16 / F32 kept, others as F32); shapes are the torch shapes reversed, the bytes as they are. So the head
// built here from the checkpoint equals the one built from a vocoder GGUF converted at F32.
import { Lfm2Error } from "../../errors.js";
import { metaNumber, parseGguf, type TensorInfo } from "../../formats/gguf.js";
import { openSafetensorsShards } from "../../formats/safetensors.js";
import type { SafetensorsWriteTensor } from "../../formats/safetensors-writer.js";
import { dequantizeTensor } from "../../formats/quantize.js";
import { GGML } from "../../core/quant-types.js";
import type { ByteSource } from "../../io/source.js";
import { AudioHead, type F32Tensor } from "./audio-head.js";
import { detokenizerHfFolder } from "./hf-detokenizer.js";
import { lfm2AudioHfFolder, type HfAudioWriteOptions } from "./hf.js";

type Json = Record<string, any>;

/** The converter's prefix filter (`_is_decoder_tensor`): the audio-out tensors of the main checkpoint. */
const HEAD_PREFIXES = ["depthformer", "depth_embeddings", "depth_linear", "audio_embedding"];

/** HF name → the vocoder GGUF name the head binds (undefined: not an audio-head tensor). */
export function hfAudioHeadName(name: string): string | undefined {
  if (!HEAD_PREFIXES.some((p) => name.startsWith(p))) return undefined;
  return name.replace("bounded_attention", "attention");
}

/** Vocoder GGUF name → the checkpoint's name (for messages and the writer). */
export function audioHeadHfName(name: string): string {
  return name.replace(/\.operator\.attention\./, ".operator.bounded_attention.");
}

/** `depthformer.layers` and `depthformer.dim` of config.json (the converter's two metadata keys). */
function depthformerConfig(j: Json): { layers: number; dim: number } {
  const d = j.depthformer;
  const ok = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v > 0;
  if (typeof d !== "object" || d === null || !ok(d.layers) || !ok(d.dim)) {
    throw new Lfm2Error("BAD_METADATA", `LFM2-Audio config.json depthformer is ${JSON.stringify(d)}: ` +
      "speech out needs its layers and dim");
  }
  return { layers: d.layers, dim: d.dim };
}

/**
 * The audio head from the checkpoint's safetensors (one file or its parts, in order): only the head's tensors are
 * read (a range of the stream), converted to f32 as the vocoder path holds them.
 */
export async function readHfAudioHead(parts: ByteSource[], config: Json, signal?: AbortSignal): Promise<AudioHead> {
  const { layers, dim } = depthformerConfig(config);
  const { src, file } = await openSafetensorsShards(parts, signal, hfAudioHeadName);
  const wanted = file.tensors;
  if (!wanted.length) {
    throw new Lfm2Error("MISSING_TENSOR", "the checkpoint has no audio head (depthformer.*, depth_linear.*, " +
      "depth_embeddings.*, audio_embedding.*): speech out needs a vocoder GGUF");
  }
  const bufs = await readRanges(src, wanted, signal);
  const tensors = new Map<string, F32Tensor>();
  for (const t of wanted) {
    const n = t.shape.reduce((a, b) => a * b, 1), b = bufs.get(t)!;
    if (t.type !== GGML.F32 && t.type !== GGML.F16 && t.type !== GGML.BF16) {
      throw new Lfm2Error("UNSUPPORTED_TYPE", `${audioHeadHfName(t.name)}: ${t.type.name} (F32, F16 or BF16 expected)`);
    }
    tensors.set(t.name, { shape: t.shape, data: dequantizeTensor(t.type, b, n) });
  }
  const head = new AudioHead(tensors, layers, { file: "the checkpoint", name: audioHeadHfName });
  if (head.dim !== dim) {
    throw new Lfm2Error("SHAPE_MISMATCH", `config depthformer.dim ${dim} disagrees with depth_linear (${head.dim})`);
  }
  return head;
}

/** The bytes of `tensors` from one pass over the source, from the first one's offset to the last one's end. */
async function readRanges(src: ByteSource, tensors: TensorInfo[],
  signal?: AbortSignal): Promise<Map<TensorInfo, Uint8Array>> {
  const bufs = new Map(tensors.map((t) => [t, new Uint8Array(t.byteLength)]));
  const start = Math.min(...tensors.map((t) => t.offset));
  const end = Math.max(...tensors.map((t) => t.offset + t.byteLength));
  let at = start;
  for await (const chunk of src.chunks(start, signal)) {
    const chunkEnd = at + chunk.length;
    for (const t of tensors) {
      const from = Math.max(at, t.offset), to = Math.min(chunkEnd, t.offset + t.byteLength);
      if (to > from) bufs.get(t)!.set(chunk.subarray(from - at, to - at), from - t.offset);
    }
    at = chunkEnd;
    if (at >= end) break;
  }
  if (at < end) throw new Lfm2Error("TRUNCATED", `the checkpoint ends at byte ${at}, before the audio head (${end})`);
  return bufs;
}

// ---------------------------------------------------------------- synthetic writer (tests, tooling)

/** The head tensors of a vocoder GGUF (F32) under the checkpoint's names and torch shapes. */
export function hfAudioHeadTensors(vocoder: Uint8Array): SafetensorsWriteTensor[] {
  const out: SafetensorsWriteTensor[] = [];
  for (const t of parseGguf(vocoder).tensors) {
    if (!HEAD_PREFIXES.some((p) => t.name.startsWith(p))) continue;
    if (t.type !== GGML.F32) {
      throw new Lfm2Error("UNSUPPORTED_TYPE", `the HF writer needs F32 tensors; ${t.name} is ${t.type.name}`);
    }
    out.push({ name: audioHeadHfName(t.name), dtype: "F32", shape: [...t.shape].reverse(),
      data: vocoder.slice(t.offset, t.offset + t.byteLength) });
  }
  return out;
}

/**
 * A whole LFM2.5-Audio checkpoint folder (file name → contents, `audio_detokenizer/…` included) from the GGUF set:
 * text model + lfm2a mmproj (speech in), vocoder with the audio head and code table, detokenizer backbone; all F32.
 */
export function lfm2AudioSpeechHfFolder(textGguf: Uint8Array, mmproj: Uint8Array, vocoder: Uint8Array,
  detokenizer: Uint8Array, opts: HfAudioWriteOptions = {}): Map<string, Uint8Array | string> {
  const meta = parseGguf(vocoder).metadata;
  const layers = metaNumber(meta, "depthformer_n_layer"), dim = metaNumber(meta, "depthformer_n_embd");
  if (layers === undefined || dim === undefined) {
    throw new Lfm2Error("BAD_METADATA", "the vocoder GGUF lacks depthformer_n_layer / depthformer_n_embd");
  }
  const audioOut = { tensors: hfAudioHeadTensors(vocoder), layers, dim };
  const files = lfm2AudioHfFolder(textGguf, mmproj, { ...opts, audioOut });
  for (const [name, data] of detokenizerHfFolder(detokenizer, vocoder)) files.set(`audio_detokenizer/${name}`, data);
  return files;
}
