// LFM2's tensors (spec §3.3): the list with expected ggml shapes, and the binding of placed tensors to
// the forward pass's weight structure. The FFN part is pluggable so LFM2-MoE reuses the rest.
import { isAttention, type Lfm2Config } from "./config.js";
import type { DenseFfnWeights, FfnWeights } from "../../graph/blocks.js";
import type { LayerWeights, Lfm2Weights } from "./forward.js";
import type { PlacedTensors, TensorSpec } from "../../core/tensor-spec.js";

/** The dense SwiGLU FFN of layer l with `ff` hidden units. */
export function denseFfnTensors(c: Lfm2Config, l: number, ff = c.ffDim): TensorSpec[] {
  const p = `blk.${l}.`, D = c.hiddenSize;
  return [{ name: p + "ffn_gate.weight", kind: "matrix", shape: [D, ff], group: l },
    { name: p + "ffn_up.weight", kind: "matrix", shape: [D, ff], group: l },
    { name: p + "ffn_down.weight", kind: "matrix", shape: [ff, D], group: l }];
}

export function bindDenseFfn(t: PlacedTensors, l: number): DenseFfnWeights {
  const p = `blk.${l}.`;
  return { kind: "dense", gate: t.matrix(p + "ffn_gate.weight"), up: t.matrix(p + "ffn_up.weight"), down: t.matrix(p + "ffn_down.weight") };
}

/** Every tensor of the LFM2 trunk; `ffn(l)` lists layer l's FFN tensors (group = layer, -1 = head). */
export function lfm2Tensors(c: Lfm2Config, ffn: (l: number) => TensorSpec[] = (l) => denseFfnTensors(c, l)): TensorSpec[] {
  const D = c.hiddenSize, dh = c.headDim;
  const w: TensorSpec[] = [{ name: "token_embd.weight", kind: "matrix", shape: [D, c.vocabSize], group: -1 },
    { name: "output.weight", kind: "matrix", shape: [D, c.vocabSize], optional: true, group: -1 },
    // the final norm: llama.cpp's converter names it token_embd_norm, Ollama's output_norm
    { name: "token_embd_norm.weight", kind: "vector", shape: [D], group: -1, oneOf: "final norm" },
    { name: "output_norm.weight", kind: "vector", shape: [D], group: -1, oneOf: "final norm" }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    w.push({ name: p + "attn_norm.weight", kind: "vector", shape: [D], group: l }, { name: p + "ffn_norm.weight", kind: "vector", shape: [D], group: l });
    if (isAttention(c, l)) {
      const kv = c.kvHeads[l] * dh;
      w.push({ name: p + "attn_q.weight", kind: "matrix", shape: [D, c.nHeads * dh], group: l },
        { name: p + "attn_k.weight", kind: "matrix", shape: [D, kv], group: l },
        { name: p + "attn_v.weight", kind: "matrix", shape: [D, kv], group: l },
        { name: p + "attn_output.weight", kind: "matrix", shape: [c.nHeads * dh, D], group: l },
        { name: p + "attn_q_norm.weight", kind: "vector", shape: [dh], group: l },
        { name: p + "attn_k_norm.weight", kind: "vector", shape: [dh], group: l });
    } else {
      w.push({ name: p + "shortconv.in_proj.weight", kind: "matrix", shape: [D, 3 * D], group: l },
        { name: p + "shortconv.conv.weight", kind: "conv", shape: [c.convL, D], group: l },
        { name: p + "shortconv.out_proj.weight", kind: "matrix", shape: [D, D], group: l });
    }
    w.push(...ffn(l));
  }
  // retrieval encoders (LFM2-ColBERT, LFM2.5-Embedding): projection after the final norm (and pooling)
  const out = c.embeddingOut ?? D;
  w.push({ name: "dense_2.weight", kind: "matrix", shape: [D, out], optional: true, group: -1 },
    { name: "dense_2.bias", kind: "vector", shape: [out], optional: true, group: -1 });
  return w;
}

/** Placed tensors → the forward pass's weights; `ffn(l)` binds layer l's FFN. */
export function bindLfm2(c: Lfm2Config, t: PlacedTensors, ffn: (l: number) => FfnWeights = (l) => bindDenseFfn(t, l)): Lfm2Weights {
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    const lw: LayerWeights = { attnNorm: t.vector(p + "attn_norm.weight"), ffnNorm: t.vector(p + "ffn_norm.weight"), ffn: ffn(l) };
    if (isAttention(c, l)) {
      lw.attn = { q: t.matrix(p + "attn_q.weight"), k: t.matrix(p + "attn_k.weight"), v: t.matrix(p + "attn_v.weight"),
        o: t.matrix(p + "attn_output.weight"), qNorm: t.vector(p + "attn_q_norm.weight"), kNorm: t.vector(p + "attn_k_norm.weight") };
    } else {
      lw.conv = { inProj: t.matrix(p + "shortconv.in_proj.weight"), kernelT: t.vector(p + "shortconv.conv.weight"),
        outProj: t.matrix(p + "shortconv.out_proj.weight") };
    }
    layers.push(lw);
  }
  const embed = t.matrix("token_embd.weight");
  const finalNorm = t.has("token_embd_norm.weight") ? t.vector("token_embd_norm.weight") : t.vector("output_norm.weight");
  const w: Lfm2Weights = { embed, output: t.has("output.weight") ? t.matrix("output.weight") : embed, finalNorm, layers };
  if (t.has("dense_2.weight")) w.denseOut = t.matrix("dense_2.weight");
  if (t.has("dense_2.bias")) w.denseOutBias = t.vector("dense_2.bias");
  return w;
}
