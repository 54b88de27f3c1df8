// The contract between an architecture (which tensors it needs, src/models/) and the loader that
// places them in WebAssembly memory (src/graph/placement.ts).
import type { Matrix } from "./quant-types.js";

/**
 * A tensor an architecture needs: ggml shape (ne order), kind, and its placement group (a layer index;
 * -1 = the head: embedding, final norm, LM head). Of specs sharing `oneOf`, the first present is used.
 * A matrix of shape [nIn, nOut, nExperts] is a stack of experts, placed as nOut·nExperts rows.
 */
export interface TensorSpec {
  name: string; kind: "matrix" | "vector" | "conv"; shape: number[]; group: number;
  optional?: boolean; oneOf?: string;
}

/** Placed tensors by name, for an architecture's binding to its weight structure. */
export interface PlacedTensors {
  has(name: string): boolean;
  matrix(name: string): Matrix;
  /** Pointer to an f32 vector (norm weights, biases, conv kernels transposed to [L][D]). */
  vector(name: string): number;
}
