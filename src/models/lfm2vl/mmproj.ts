// The LFM2-VL vision projector file (mmproj GGUF) as llama.cpp v0.5.0 reads it: general.architecture "clip",
// clip.projector_type "lfm2", clip.vision.* hyper-parameters, a SigLIP2 NaFlex encoder (v.*) and the
// pixel-unshuffle + 2-layer MLP projector (mm.*). Config, tensor specs for placement, and a synthetic writer.
import { Lfm2Error } from "../../errors.js";
import { metaNumber, metaNumbers, metaString, type GgufValue } from "../../formats/gguf.js";
import { encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../../formats/gguf-writer.js";
import { GGML, ggmlTypeByName, type GgmlType, type GgmlTypeName } from "../../core/quant-types.js";
import type { TensorSpec } from "../../core/tensor-spec.js";
import { quantizeTensor } from "../../formats/quantize.js";
import { mulberry32, randomTensor } from "../synthetic.js";

export interface VisionConfig {
  hiddenSize: number; ffDim: number; nLayers: number; nHeads: number; headDim: number; eps: number;
  patchSize: number; imageSize: number;
  /** Learned position grid side (n_pos = side²), resized per image. */
  posSide: number;
  /** Pixel-unshuffle factor per side (clip.vision.projector.scale_factor). */
  scaleFactor: number;
  /** Projector hidden width (mm.1 rows) and output width (= the text model's hidden size). */
  projHidden: number; outDim: number;
  /** FFN activation: clip.use_gelu → tanh GELU, else GELU quick (as llama.cpp). */
  activation: "gelu" | "gelu_quick";
  imageMean: number[]; imageStd: number[];
  hasInputNorm: boolean; hasPostNorm: boolean;
}

const need = (m: Map<string, GgufValue>, key: string): number => {
  const v = metaNumber(m, key);
  if (v === undefined) throw new Lfm2Error("BAD_METADATA", `mmproj lacks ${key}`);
  return v;
};

/** Read and check the vision config; tensor shapes come from the file's tensor list. */
export function visionConfigFromGguf(m: Map<string, GgufValue>, tensors: { name: string; shape: number[] }[]): VisionConfig {
  const arch = metaString(m, "general.architecture");
  if (arch !== "clip") throw new Lfm2Error("UNSUPPORTED_ARCH", `mmproj general.architecture is ${arch ?? "missing"}, expected "clip"`);
  const proj = metaString(m, "clip.projector_type") ?? metaString(m, "clip.vision.projector_type");
  if (proj !== "lfm2") throw new Lfm2Error("UNSUPPORTED_ARCH", `mmproj projector type ${proj ?? "missing"} is not "lfm2" (LFM2-VL)`);
  if (m.get("clip.has_vision_encoder") === false) throw new Lfm2Error("BAD_METADATA", "mmproj has no vision encoder");
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const hiddenSize = need(m, "clip.vision.embedding_length");
  const nHeads = need(m, "clip.vision.attention.head_count");
  const mean = metaNumbers(m, "clip.vision.image_mean"), std = metaNumbers(m, "clip.vision.image_std");
  if (!mean || !std || mean.length < 3 || std.length < 3) {
    throw new Lfm2Error("BAD_METADATA", "mmproj clip.vision.image_mean/image_std need at least 3 values (llama.cpp refuses the file too)");
  }
  const scaleFactor = need(m, "clip.vision.projector.scale_factor");
  const pos = byName.get("v.position_embd.weight");
  const mm1 = byName.get("mm.1.weight"), mm2 = byName.get("mm.2.weight");
  if (!pos || !mm1 || !mm2) throw new Lfm2Error("MISSING_TENSOR", "mmproj lacks v.position_embd.weight, mm.1.weight or mm.2.weight");
  const posSide = Math.round(Math.sqrt(pos.shape[1]));
  if (posSide * posSide !== pos.shape[1]) throw new Lfm2Error("SHAPE_MISMATCH", `v.position_embd has ${pos.shape[1]} positions, not a square grid`);
  const c: VisionConfig = {
    hiddenSize, nHeads, headDim: hiddenSize / nHeads,
    ffDim: need(m, "clip.vision.feed_forward_length"), nLayers: need(m, "clip.vision.block_count"),
    eps: metaNumber(m, "clip.vision.attention.layer_norm_epsilon") ?? 1e-6,
    patchSize: need(m, "clip.vision.patch_size"), imageSize: metaNumber(m, "clip.vision.image_size") ?? 256,
    posSide, scaleFactor, projHidden: mm1.shape[1], outDim: mm2.shape[1],
    activation: m.get("clip.use_gelu") === true ? "gelu" : "gelu_quick",
    imageMean: mean.slice(0, 3), imageStd: std.slice(0, 3),
    hasInputNorm: byName.has("mm.input_norm.weight"), hasPostNorm: byName.has("v.post_ln.weight"),
  };
  const ints = [c.hiddenSize, c.ffDim, c.nHeads, c.patchSize, c.scaleFactor];
  const layersOk = Number.isInteger(c.nLayers) && c.nLayers >= 0 && c.nLayers <= 256;
  if (!ints.every((v) => Number.isInteger(v) && v > 0) || !Number.isInteger(c.headDim) || c.scaleFactor < 2 || !layersOk) {
    throw new Lfm2Error("BAD_METADATA", `mmproj hyper-parameters are inconsistent: ${JSON.stringify(c)}`);
  }
  if (c.hiddenSize % 4 !== 0 || c.ffDim % 4 !== 0 || c.projHidden % 4 !== 0 || c.outDim % 4 !== 0) {
    throw new Lfm2Error("SHAPE_MISMATCH", "mmproj widths must be multiples of 4");
  }
  return c;
}

/** Every tensor the encoder and projector read (all in one placement group). */
export function visionTensorSpecs(c: VisionConfig): TensorSpec[] {
  const C = c.hiddenSize, p = c.patchSize, inP = C * c.scaleFactor * c.scaleFactor;
  const mat = (name: string, shape: number[]): TensorSpec => ({ name, kind: "matrix", shape, group: 0 });
  const vec = (name: string, n: number, optional = false): TensorSpec => ({ name, kind: "vector", shape: [n], group: 0, optional });
  const specs: TensorSpec[] = [
    // the conv kernel {p, p, 3, C} is C rows of 3·p·p in (channel, y, x) order: a matrix over patchified pixels
    mat("v.patch_embd.weight", [p, p, 3, C]), vec("v.patch_embd.bias", C, true),
    { name: "v.position_embd.weight", kind: "vector", shape: [C, c.posSide * c.posSide], group: 0 },
  ];
  for (let l = 0; l < c.nLayers; l++) {
    const b = `v.blk.${l}`;
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_out"]) specs.push(mat(`${b}.${n}.weight`, [C, C]), vec(`${b}.${n}.bias`, C));
    specs.push(vec(`${b}.ln1.weight`, C), vec(`${b}.ln1.bias`, C), vec(`${b}.ln2.weight`, C), vec(`${b}.ln2.bias`, C));
    specs.push(mat(`${b}.ffn_up.weight`, [C, c.ffDim]), vec(`${b}.ffn_up.bias`, c.ffDim));
    specs.push(mat(`${b}.ffn_down.weight`, [c.ffDim, C]), vec(`${b}.ffn_down.bias`, C));
  }
  specs.push(vec("v.post_ln.weight", C, true), vec("v.post_ln.bias", C, true));
  specs.push(vec("mm.input_norm.weight", inP, true), vec("mm.input_norm.bias", inP, true));
  specs.push(mat("mm.1.weight", [inP, c.projHidden]), vec("mm.1.bias", c.projHidden));
  specs.push(mat("mm.2.weight", [c.projHidden, c.outDim]), vec("mm.2.bias", c.outDim));
  return specs;
}

/** Shapes of published encoders (SigLIP2 NaFlex base, 86M: LFM2-VL-450M; so400m: LFM2-VL-1.6B/3B). */
export const VISION_SHAPES = {
  "siglip2-base": { hiddenSize: 768, ffDim: 3072, nLayers: 12, nHeads: 12, projHidden: 2560, outDim: 1024 },
  "siglip2-so400m": { hiddenSize: 1152, ffDim: 4304, nLayers: 26, nHeads: 16, projHidden: 2560, outDim: 2048 },
  tiny: { hiddenSize: 64, ffDim: 128, nLayers: 2, nHeads: 4, projHidden: 96, outDim: 64 },
} as const;

export interface SyntheticMmprojOptions {
  shape?: keyof typeof VISION_SHAPES | { hiddenSize: number; ffDim: number; nLayers: number; nHeads: number; projHidden: number; outDim: number };
  /** Type of the 2-D matrices (patch embedding stays F16, as llama.cpp's converter writes it). */
  weightType?: GgmlTypeName;
  patchEmbdType?: GgmlTypeName;
  inputNorm?: boolean;
  useGelu?: boolean;
  posSide?: number;
  seed?: number;
}

/** A synthetic LFM2-VL mmproj with seeded random weights in real shapes (llama.cpp v0.5.0 loads it). */
export function syntheticMmproj(opts: SyntheticMmprojOptions = {}): Uint8Array[] {
  const s = typeof opts.shape === "object" ? opts.shape : VISION_SHAPES[opts.shape ?? "siglip2-base"];
  const rand = mulberry32(opts.seed ?? 7);
  const C = s.hiddenSize, F = s.ffDim, p = 16, side = opts.posSide ?? 16, sf = 2, inP = C * sf * sf;
  const wType = ggmlTypeByName(opts.weightType ?? "F16");
  const tensors: GgufWriteTensor[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0, type: GgmlType = GGML.F32) => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, type, data: quantizeTensor(type, randomTensor(rand, n, std, mean), type === GGML.F32 ? n : shape[0]) });
  };
  const pe = ggmlTypeByName(opts.patchEmbdType ?? "F16");
  tensors.push({ name: "v.patch_embd.weight", shape: [p, p, 3, C], type: pe,
    data: quantizeTensor(pe, randomTensor(rand, 3 * p * p * C, 1 / Math.sqrt(3 * p * p)), pe === GGML.F32 ? 3 * p * p * C : 3 * p * p) });
  add("v.patch_embd.bias", [C], 0.02);
  add("v.position_embd.weight", [C, side * side], 0.5);
  for (let l = 0; l < s.nLayers; l++) {
    const b = `v.blk.${l}`;
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_out"]) { add(`${b}.${n}.weight`, [C, C], 1 / Math.sqrt(C), 0, wType); add(`${b}.${n}.bias`, [C], 0.02); }
    add(`${b}.ln1.weight`, [C], 0.1, 1); add(`${b}.ln1.bias`, [C], 0.05);
    add(`${b}.ln2.weight`, [C], 0.1, 1); add(`${b}.ln2.bias`, [C], 0.05);
    add(`${b}.ffn_up.weight`, [C, F], 1 / Math.sqrt(C), 0, wType); add(`${b}.ffn_up.bias`, [F], 0.02);
    add(`${b}.ffn_down.weight`, [F, C], 0.5 / Math.sqrt(F), 0, wType); add(`${b}.ffn_down.bias`, [C], 0.02);
  }
  add("v.post_ln.weight", [C], 0.1, 1); add("v.post_ln.bias", [C], 0.05);
  if (opts.inputNorm ?? true) { add("mm.input_norm.weight", [inP], 0.1, 1); add("mm.input_norm.bias", [inP], 0.05); }
  add("mm.1.weight", [inP, s.projHidden], 1 / Math.sqrt(inP), 0, wType); add("mm.1.bias", [s.projHidden], 0.02);
  add("mm.2.weight", [s.projHidden, s.outDim], 1 / Math.sqrt(s.projHidden), 0, wType); add("mm.2.bias", [s.outDim], 0.02);
  const meta: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: "clip" },
    "general.name": { type: "string", value: "LFM2-VL mmproj synthetic (random weights)" },
    "general.alignment": { type: "u32", value: 32 },
    "clip.has_vision_encoder": { type: "bool", value: true },
    "clip.projector_type": { type: "string", value: "lfm2" },
    "clip.use_gelu": { type: "bool", value: opts.useGelu ?? true },
    "clip.vision.image_size": { type: "u32", value: 256 },
    "clip.vision.patch_size": { type: "u32", value: p },
    "clip.vision.embedding_length": { type: "u32", value: C },
    "clip.vision.feed_forward_length": { type: "u32", value: F },
    "clip.vision.block_count": { type: "u32", value: s.nLayers },
    "clip.vision.attention.head_count": { type: "u32", value: s.nHeads },
    "clip.vision.attention.layer_norm_epsilon": { type: "f32", value: 1e-6 },
    "clip.vision.projection_dim": { type: "u32", value: s.outDim },
    "clip.vision.image_mean": { type: "f32[]", value: [0.5, 0.5, 0.5] },
    "clip.vision.image_std": { type: "f32[]", value: [0.5, 0.5, 0.5] },
    "clip.vision.projector.scale_factor": { type: "u32", value: sf },
  };
  return encodeGguf(meta, tensors);
}
