// LFM2-MoE (LFM2-8B-A1B, LFM2-24B-A2B; spec §1.6, §3.3): the LFM2 trunk whose FFN, after the first
// `leading_dense_block_count` layers, is a mixture of SwiGLU experts with a sigmoid router.
import { Lfm2Error } from "../../errors.js";
import { metaNumber, type GgufValue } from "../../formats/gguf.js";
import type { MoeFfnWeights } from "../../graph/blocks.js";
import type { PlacedTensors, TensorSpec } from "../../core/tensor-spec.js";
import { configFromGguf as lfm2Config, type Lfm2Config, type MoeConfig } from "../lfm2/config.js";
import { bindDenseFfn, bindLfm2, denseFfnTensors, lfm2Tensors } from "../lfm2/tensors.js";
import type { Lfm2Weights } from "../lfm2/forward.js";

const SIGMOID_GATING = 2; // llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID

export function moeConfigFromGguf(meta: Map<string, GgufValue>): Lfm2Config {
  const c = lfm2Config(meta, "lfm2moe");
  const num = (key: string) => {
    const v = metaNumber(meta, `lfm2moe.${key}`);
    if (v === undefined) throw new Lfm2Error("BAD_METADATA", `missing metadata lfm2moe.${key}`);
    return v;
  };
  // required, as in llama.cpp: LFM2-MoE routes with sigmoid scores; a softmax router would load and be wrong
  const gating = num("expert_gating_func");
  if (gating !== SIGMOID_GATING) throw new Lfm2Error("BAD_METADATA", `lfm2moe.expert_gating_func ${gating} is not sigmoid (2)`);
  c.moe = { nExperts: num("expert_count"), nUsed: num("expert_used_count"), expertFfDim: num("expert_feed_forward_length"),
    leadingDense: num("leading_dense_block_count") };
  validateMoe(c.moe, c.nLayers);
  return c;
}

export function validateMoe(m: MoeConfig, nLayers: number): void {
  const ints: [string, number, number, number][] = [["expert count", m.nExperts, 1, 4096], ["experts used", m.nUsed, 1, 4096],
    ["expert feed-forward size", m.expertFfDim, 8, 1 << 18], ["leading dense layers", m.leadingDense, 0, nLayers]];
  for (const [what, v, min, max] of ints) {
    if (!Number.isInteger(v) || v < min || v > max) throw new Lfm2Error("BAD_METADATA", `${what} ${v} is out of range`);
  }
  if (m.nUsed > m.nExperts) throw new Lfm2Error("BAD_METADATA", `${m.nUsed} experts used per token but only ${m.nExperts} exist`);
  if (m.expertFfDim % 8 !== 0) throw new Lfm2Error("BAD_METADATA", `expert feed-forward size ${m.expertFfDim} is not a multiple of 8`);
}

const isMoeLayer = (c: Lfm2Config, l: number) => l >= c.moe!.leadingDense;

function moeFfnTensors(c: Lfm2Config, l: number): TensorSpec[] {
  const p = `blk.${l}.`, D = c.hiddenSize, { nExperts: E, expertFfDim: F } = c.moe!;
  return [{ name: p + "ffn_gate_inp.weight", kind: "matrix", shape: [D, E], group: l },
    { name: p + "exp_probs_b.bias", kind: "vector", shape: [E], group: l },
    { name: p + "ffn_gate_exps.weight", kind: "matrix", shape: [D, F, E], group: l },
    { name: p + "ffn_up_exps.weight", kind: "matrix", shape: [D, F, E], group: l },
    { name: p + "ffn_down_exps.weight", kind: "matrix", shape: [F, D, E], group: l }];
}

function bindMoeFfn(c: Lfm2Config, t: PlacedTensors, l: number): MoeFfnWeights {
  const p = `blk.${l}.`, m = c.moe!;
  return { kind: "moe", router: t.matrix(p + "ffn_gate_inp.weight"), expertBias: t.vector(p + "exp_probs_b.bias"),
    nExperts: m.nExperts, nUsed: m.nUsed, expertFfDim: m.expertFfDim,
    gate: t.matrix(p + "ffn_gate_exps.weight"), up: t.matrix(p + "ffn_up_exps.weight"), down: t.matrix(p + "ffn_down_exps.weight") };
}

export function lfm2moeTensors(c: Lfm2Config): TensorSpec[] {
  return lfm2Tensors(c, (l) => (isMoeLayer(c, l) ? moeFfnTensors(c, l) : denseFfnTensors(c, l)));
}

export function bindLfm2moe(c: Lfm2Config, t: PlacedTensors): Lfm2Weights {
  return bindLfm2(c, t, (l) => (isMoeLayer(c, l) ? bindMoeFfn(c, t, l) : bindDenseFfn(t, l)));
}
