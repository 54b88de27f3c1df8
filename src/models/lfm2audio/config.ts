// LFM2-Audio's audio encoder (FastConformer + adapter) from an mmproj GGUF (`clip.projector_type =
// "lfm2a"`), with the tensor list and shapes llama.cpp's clip loader requires (tools/mtmd/clip.cpp).
import { Lfm2Error } from "../../errors.js";
import { metaNumber, metaString, type GgufValue, type TensorInfo } from "../../formats/gguf.js";
import type { TensorSpec } from "../../core/tensor-spec.js";

export interface AudioEncoderConfig {
  /** Conformer width: 512 (llama.cpp hard-codes the relative-position table at 512). */
  dModel: number;
  nLayers: number;
  nHeads: number;
  ffDim: number;
  nMel: number;
  /** Channels of the ×8 conv subsampling. */
  subChannels: number;
  /** Depthwise kernel of the conv module (9). */
  convKernel: number;
  /** Adapter hidden width (mm.a.mlp.1) and output width = the text model's embedding width. */
  adapterHidden: number;
  outDim: number;
  /** Rows of a.position_embd (llama.cpp requires ≥ mel frames / 2). */
  posRows: number;
}

/** Subsampled length: three stride-2 convs with kernel 3, padding 1. */
export const audioTokensForFrames = (nFrames: number) => Math.floor((Math.floor((Math.floor((nFrames + 1) / 2) + 1) / 2) + 1) / 2);

/** The mmproj is not an LFM2-Audio one (e.g. LFM2-VL's): callers may try another loader. */
export class NotAudioMmproj extends Lfm2Error {}

export function audioConfigFromGguf(meta: Map<string, GgufValue>, tensors: TensorInfo[]): AudioEncoderConfig {
  const proj = metaString(meta, "clip.projector_type") ?? metaString(meta, "clip.audio.projector_type");
  if (proj !== "lfm2a") throw new NotAudioMmproj("UNSUPPORTED_ARCH", `not an LFM2-Audio mmproj (clip.projector_type is ${proj ?? "missing"}, expected lfm2a)`);
  const num = (k: string) => {
    const v = metaNumber(meta, `clip.audio.${k}`);
    if (v === undefined || !Number.isInteger(v) || v < (k === "block_count" ? 0 : 1)) throw new Lfm2Error("BAD_METADATA", `clip.audio.${k} is missing or out of range`);
    return v;
  };
  const shape = (name: string) => {
    const t = tensors.find((x) => x.name === name);
    if (!t) throw new Lfm2Error("MISSING_TENSOR", `mmproj lacks tensor ${name}`);
    return t.shape;
  };
  const dModel = num("embedding_length");
  if (dModel !== 512) throw new Lfm2Error("SHAPE_MISMATCH", `clip.audio.embedding_length must be 512 (the relative-position width), got ${dModel}`);
  const nHeads = num("attention.head_count");
  if (dModel % nHeads !== 0) throw new Lfm2Error("BAD_METADATA", `${nHeads} heads do not divide width ${dModel}`);
  const nMel = num("num_mel_bins");
  if (nMel % 8 !== 0) throw new Lfm2Error("BAD_METADATA", `num_mel_bins ${nMel} is not a multiple of 8`);
  const pos = shape("a.position_embd.weight");
  const subChannels = shape("a.conv1d.0.weight")[3] ?? 0;
  // the kernels put channels in 4-wide vector lanes
  if (subChannels % 4 !== 0 || subChannels === 0) throw new Lfm2Error("SHAPE_MISMATCH", `subsampling channels ${subChannels} are not a multiple of 4`);
  const cfgOut = {
    dModel, nHeads, nMel, nLayers: num("block_count"),
    // the converter writes feed_forward_length = d_model; the FFN width is read from the weights
    ffDim: tensors.some((t) => t.name === "a.blk.0.ffn_up.weight") ? shape("a.blk.0.ffn_up.weight")[1] : num("feed_forward_length"),
    subChannels,
    convKernel: tensors.some((t) => t.name === "a.blk.0.conv_dw.weight") ? shape("a.blk.0.conv_dw.weight")[0] : 9,
    adapterHidden: shape("mm.a.mlp.1.weight")[1],
    outDim: pos[0], posRows: pos[1] ?? 1,
  };
  if (cfgOut.ffDim % 4 !== 0) throw new Lfm2Error("SHAPE_MISMATCH", `FFN width ${cfgOut.ffDim} is not a multiple of 4`);
  return cfgOut;
}

/** Every tensor the encoder reads, in ggml (ne) order; group -1 = front end and adapter, l = layer l. */
export function audioTensorSpecs(c: AudioEncoderConfig): TensorSpec[] {
  const { dModel: d, ffDim: ff, subChannels: C, convKernel: K, adapterHidden: H, outDim: O } = c;
  const fOut = c.nMel / 8;
  const specs: TensorSpec[] = [];
  const vec = (name: string, shape: number[], group = -1) => specs.push({ name, kind: "vector", shape, group });
  const mat = (name: string, nIn: number, nOut: number, group = -1) => specs.push({ name, kind: "matrix", shape: [nIn, nOut], group });
  // conv biases are [1, 1, C] (the converter's data[:, None, None]) so ggml broadcasts them over channels
  vec("a.conv1d.0.weight", [3, 3, 1, C]); vec("a.conv1d.0.bias", [1, 1, C]);
  for (const i of [2, 5]) { vec(`a.conv1d.${i}.weight`, [3, 3, 1, C]); vec(`a.conv1d.${i}.bias`, [1, 1, C]); }
  // pointwise 1×1 convs are matmuls over channels; placed as f32 vectors (their 4-D shape) and wrapped
  for (const i of [3, 6]) { vec(`a.conv1d.${i}.weight`, [1, 1, C, C]); vec(`a.conv1d.${i}.bias`, [1, 1, C]); }
  mat("a.pre_encode.out.weight", C * fOut, d); vec("a.pre_encode.out.bias", [d]);
  // a.position_embd is required by llama.cpp but never read (its width gives the output width): not placed
  for (let l = 0; l < c.nLayers; l++) {
    const p = `a.blk.${l}.`;
    for (const n of ["ffn_norm", "ln1", "norm_conv", "ffn_norm_1", "ln2"]) { vec(`${p}${n}.weight`, [d], l); vec(`${p}${n}.bias`, [d], l); }
    for (const [n, i, o] of [["ffn_up", d, ff], ["ffn_down", ff, d], ["ffn_up_1", d, ff], ["ffn_down_1", ff, d],
      ["attn_q", d, d], ["attn_k", d, d], ["attn_v", d, d], ["attn_out", d, d], ["conv_pw1", d, 2 * d], ["conv_pw2", d, d]] as const) {
      mat(`${p}${n}.weight`, i, o, l); vec(`${p}${n}.bias`, [o], l);
    }
    mat(`${p}linear_pos.weight`, d, d, l);
    vec(`${p}pos_bias_u`, [d / c.nHeads, c.nHeads], l); vec(`${p}pos_bias_v`, [d / c.nHeads, c.nHeads], l);
    specs.push({ name: `${p}conv_dw.weight`, kind: "conv", shape: [K, d], group: l }); // placed as [K][d]
    vec(`${p}conv_dw.bias`, [d], l);
    vec(`${p}conv_norm.weight`, [d], l); vec(`${p}conv_norm.bias`, [d], l);
  }
  vec("mm.a.mlp.0.weight", [d]); vec("mm.a.mlp.0.bias", [d]);
  mat("mm.a.mlp.1.weight", d, H); vec("mm.a.mlp.1.bias", [H]);
  mat("mm.a.mlp.3.weight", H, O); vec("mm.a.mlp.3.bias", [O]);
  return specs;
}
