// LFM2-MoE (LFM2-8B-A1B, LFM2-24B-A2B; spec §1.6, §3.3): the LFM2 trunk whose FFN, after the first
// `leading_dense_block_count` layers, is a mixture of SwiGLU experts with a sigmoid router.
import { Lfm2Error } from "../../errors.js";
import { metaNumber, type GgufValue } from "../../formats/gguf.js";
import { rowSlice, type MoeFfnWeights } from "../../graph/blocks.js";
import type { Matrix } from "../../core/quant-types.js";
import type { PlacedTensors, TensorSpec } from "../../core/tensor-spec.js";
import { configFromGguf as lfm2Config, configFromHf as lfm2ConfigFromHf, type Lfm2Config, type MoeConfig } from "../lfm2/config.js";
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

/**
 * HF lfm2_moe config.json (spec §2.2): the LFM2 keys plus num_experts, num_experts_per_tok,
 * moe_intermediate_size, num_dense_layers. The routing this runtime implements is the published one
 * (normalised top-k, expert bias, scale 1); a checkpoint asking for another is refused, not approximated.
 */
export function moeConfigFromHf(j: Record<string, any>): Lfm2Config {
  const c = lfm2ConfigFromHf({ ...j, model_type: "lfm2", block_auto_adjust_ff_dim: j.block_auto_adjust_ff_dim ?? false });
  c.architecture = "lfm2moe";
  if (j.norm_topk_prob === false) throw new Lfm2Error("BAD_METADATA", "norm_topk_prob false (unnormalised expert weights) is not supported");
  if (j.use_expert_bias === false) throw new Lfm2Error("BAD_METADATA", "use_expert_bias false is not supported (LFM2-MoE selects experts with a bias)");
  if (j.routed_scaling_factor != null && j.routed_scaling_factor !== 1) {
    throw new Lfm2Error("BAD_METADATA", `routed_scaling_factor ${j.routed_scaling_factor} is not supported (only 1)`);
  }
  const moe: HfMoeConfig = { nExperts: j.num_experts, nUsed: j.num_experts_per_tok, expertFfDim: j.moe_intermediate_size,
    leadingDense: j.num_dense_layers ?? 0, perExpertTensors: true };
  validateMoe(moe, c.nLayers);
  c.moe = moe;
  return c;
}

/** HF checkpoints keep every expert as its own tensor (`<stacked GGUF name>.<j>` after name mapping). */
interface HfMoeConfig extends MoeConfig { perExpertTensors?: boolean }
const perExpert = (c: Lfm2Config) => (c.moe as HfMoeConfig).perExpertTensors === true;

const isMoeLayer = (c: Lfm2Config, l: number) => l >= c.moe!.leadingDense;
const STACKS = ["ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"] as const;

function moeFfnTensors(c: Lfm2Config, l: number): TensorSpec[] {
  const p = `blk.${l}.`, D = c.hiddenSize, { nExperts: E, expertFfDim: F } = c.moe!;
  const specs: TensorSpec[] = [{ name: p + "ffn_gate_inp.weight", kind: "matrix", shape: [D, E], group: l },
    { name: p + "exp_probs_b.bias", kind: "vector", shape: [E], group: l }];
  STACKS.forEach((stack, i) => {
    const shape = i < 2 ? [D, F] : [F, D];
    // one expert after another, in order: the binding reads them as one stacked matrix
    if (perExpert(c)) for (let e = 0; e < E; e++) specs.push({ name: `${p}${stack}.${e}`, kind: "matrix", shape, group: l });
    else specs.push({ name: p + stack, kind: "matrix", shape: [...shape, E], group: l });
  });
  return specs;
}

/** A stacked expert tensor; from per-expert tensors, which must have been placed back to back. */
function stacked(c: Lfm2Config, t: PlacedTensors, name: string): Matrix {
  if (!perExpert(c)) return t.matrix(name);
  const E = c.moe!.nExperts, first = t.matrix(`${name}.0`);
  const span = first.nOut > 0 ? rowSlice(first, first.nOut, 0).ptr - first.ptr : 0;
  for (let e = 1; e < E; e++) {
    const m = t.matrix(`${name}.${e}`);
    if (m.ptr !== first.ptr + e * span || m.type !== first.type || m.x4 !== first.x4) {
      throw new Lfm2Error("SHAPE_MISMATCH", `experts of ${name} do not form one stack (expert ${e} differs in type or placement)`);
    }
  }
  return { ...first, nOut: first.nOut * E };
}

function bindMoeFfn(c: Lfm2Config, t: PlacedTensors, l: number): MoeFfnWeights {
  const p = `blk.${l}.`, m = c.moe!;
  return { kind: "moe", router: t.matrix(p + "ffn_gate_inp.weight"), expertBias: t.vector(p + "exp_probs_b.bias"),
    nExperts: m.nExperts, nUsed: m.nUsed, expertFfDim: m.expertFfDim,
    gate: stacked(c, t, p + STACKS[0]), up: stacked(c, t, p + STACKS[1]), down: stacked(c, t, p + STACKS[2]) };
}

export function lfm2moeTensors(c: Lfm2Config): TensorSpec[] {
  return lfm2Tensors(c, (l) => (isMoeLayer(c, l) ? moeFfnTensors(c, l) : denseFfnTensors(c, l)));
}

export function bindLfm2moe(c: Lfm2Config, t: PlacedTensors): Lfm2Weights {
  return bindLfm2(c, t, (l) => (isMoeLayer(c, l) ? bindMoeFfn(c, t, l) : bindDenseFfn(t, l)));
}
