// Synthetic LFM2-Audio mmproj GGUFs (projector lfm2a) with seeded random weights in the real layout and
// shapes: test fixtures and benchmark inputs. Defaults are the published encoder's sizes (512 wide,
// 17 layers, 8 heads, FF 2048, 256 subsampling channels, adapter 512→2048→2048); tests pass small ones
// (the width must stay 512). Scales keep activations O(1) through every layer.
import { encodeGguf, concatChunks, type GgufWriteTensor, type GgufWriteValue } from "../../formats/gguf-writer.js";
import { GGML, ggmlTypeByName, type GgmlTypeName } from "../../core/quant-types.js";
import { quantizeTensor } from "../../formats/quantize.js";
import { mulberry32, randomTensor } from "../synthetic.js";
import { audioTensorSpecs, type AudioEncoderConfig } from "./config.js";

export interface SyntheticAudioOptions {
  nLayers?: number; nHeads?: number; ffDim?: number; subChannels?: number; adapterHidden?: number; outDim?: number;
  /** Rows of a.position_embd (llama.cpp needs ≥ mel frames / 2: 1500 covers 30 s). */
  posRows?: number;
  /** Type of the linear layers' matrices (convs, norms and biases stay F32). */
  weightType?: GgmlTypeName;
  seed?: number;
}

export function syntheticAudioConfig(o: SyntheticAudioOptions = {}): AudioEncoderConfig {
  return {
    dModel: 512, nLayers: o.nLayers ?? 17, nHeads: o.nHeads ?? 8, ffDim: o.ffDim ?? 2048, nMel: 128,
    subChannels: o.subChannels ?? 256, convKernel: 9, adapterHidden: o.adapterHidden ?? 2048, outDim: o.outDim ?? 2048,
    posRows: o.posRows ?? 1500,
  };
}

/** The mmproj file's bytes. */
export function syntheticAudioMmproj(o: SyntheticAudioOptions = {}): Uint8Array {
  const c = syntheticAudioConfig(o);
  const rand = mulberry32(o.seed ?? 1234);
  const wType = ggmlTypeByName(o.weightType ?? "F32");
  const tensors: GgufWriteTensor[] = [];
  for (const spec of audioTensorSpecs(c)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const base = spec.name.replace(/^a\.blk\.\d+\./, "");
    let values: Float32Array;
    if (spec.kind === "matrix") values = randomTensor(rand, n, 1 / Math.sqrt(spec.shape[0]));
    else if (/norm.*\.weight$|^ln[12]\.weight$|mlp\.0\.weight$/.test(base)) values = randomTensor(rand, n, 0.1, 1);
    else if (/conv1d\.[0]\.weight$/.test(spec.name)) values = randomTensor(rand, n, 1 / 3);
    else if (/conv1d\.[25]\.weight$/.test(spec.name)) values = randomTensor(rand, n, 1 / 3);
    else if (/conv1d\.[36]\.weight$/.test(spec.name)) values = randomTensor(rand, n, 1 / Math.sqrt(c.subChannels));
    else if (base === "conv_dw.weight") values = randomTensor(rand, n, 1 / 3);
    else if (base.startsWith("pos_bias")) values = randomTensor(rand, n, 0.1);
    else values = randomTensor(rand, n, 0.05); // biases
    const type = spec.kind === "matrix" ? wType : GGML.F32;
    tensors.push({ name: spec.name, shape: spec.shape, type, data: quantizeTensor(type, values, spec.shape[0]) });
  }
  const pos = randomTensor(rand, c.outDim * c.posRows, 0.02);
  tensors.push({ name: "a.position_embd.weight", shape: [c.outDim, c.posRows], type: GGML.F32, data: quantizeTensor(GGML.F32, pos, c.outDim) });
  const u32 = (value: number): GgufWriteValue => ({ type: "u32", value });
  const meta: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: "clip" },
    "general.name": { type: "string", value: "synthetic LFM2-Audio mmproj" },
    "clip.has_audio_encoder": { type: "bool", value: true },
    "clip.projector_type": { type: "string", value: "lfm2a" },
    "clip.audio.embedding_length": u32(c.dModel),
    "clip.audio.feed_forward_length": u32(c.ffDim),
    "clip.audio.block_count": u32(c.nLayers),
    "clip.audio.attention.head_count": u32(c.nHeads),
    "clip.audio.attention.layer_norm_epsilon": { type: "f32", value: 1e-5 },
    "clip.audio.projection_dim": u32(c.outDim),
    "clip.audio.num_mel_bins": u32(c.nMel),
  };
  return concatChunks(encodeGguf(meta, tensors));
}
