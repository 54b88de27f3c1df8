// One row per weight type: which matmul kernel, which activation format it consumes, and how a
// row is dequantized (embedding lookup). Adding a type touches this table and assembly/ only.
import type { GgmlType } from "../src/formats/ggml-types.js";
import { Lfm2Error } from "../src/errors.js";

/** Activation formats: f32 as is, rounded to fp16 / bf16, or quantized into 32- or 256-blocks. */
export type ActKind = "f32" | "f16" | "bf16" | "q8_0" | "q8_K";

/** A row-interleaved layout made at load time (assembly/matmul-x4.ts): bytes per 32-block per 4 rows. */
export interface X4Kernels { matmul: string; repack: string; dequantRow: string; groupBlockBytes: number }

export interface TypeKernels { matmul: string; act: ActKind; dequantRow: string | null; x4?: X4Kernels }

export const TYPE_KERNELS: Record<string, TypeKernels> = {
  F32: { matmul: "matmulF32", act: "f32", dequantRow: null },
  F16: { matmul: "matmulF16", act: "f16", dequantRow: "dequantRowF16" },
  BF16: { matmul: "matmulBf16", act: "bf16", dequantRow: "dequantRowBf16" },
  Q8_0: { matmul: "matmulQ8_0", act: "q8_0", dequantRow: "dequantRowQ8_0",
    x4: { matmul: "matmulQ8_0x4", repack: "repackQ8_0", dequantRow: "dequantRowQ8_0x4", groupBlockBytes: 144 } },
  Q4_0: { matmul: "matmulQ4_0", act: "q8_0", dequantRow: "dequantRowQ4_0",
    x4: { matmul: "matmulQ4_0x4", repack: "repackQ4_0", dequantRow: "dequantRowQ4_0x4", groupBlockBytes: 80 } },
  Q4_1: { matmul: "matmulQ4_1", act: "q8_0", dequantRow: "dequantRowQ4_1" }, // the q8_0 buffer carries Q8_1's s
  Q5_0: { matmul: "matmulQ5_0", act: "q8_0", dequantRow: "dequantRowQ5_0" },
  Q5_1: { matmul: "matmulQ5_1", act: "q8_0", dequantRow: "dequantRowQ5_1" },
  // 256-weight super-blocks: groupBlockBytes is a record's size / 8 (assembly/matmul-kx4.ts)
  Q4_K: { matmul: "matmulQ4_K", act: "q8_K", dequantRow: "dequantRowQ4_K",
    x4: { matmul: "matmulQ4_Kx4", repack: "repackQ4_K", dequantRow: "dequantRowQ4_Kx4", groupBlockBytes: 608 / 8 } },
  Q5_K: { matmul: "matmulQ5_K", act: "q8_K", dequantRow: "dequantRowQ5_K",
    x4: { matmul: "matmulQ5_Kx4", repack: "repackQ5_K", dequantRow: "dequantRowQ5_Kx4", groupBlockBytes: 864 / 8 } },
  Q6_K: { matmul: "matmulQ6_K", act: "q8_K", dequantRow: "dequantRowQ6_K",
    x4: { matmul: "matmulQ6_Kx4", repack: "repackQ6_K", dequantRow: "dequantRowQ6_Kx4", groupBlockBytes: 848 / 8 } },
};

export function kernelsFor(t: GgmlType, what: string): TypeKernels {
  const k = TYPE_KERNELS[t.name];
  if (!k) throw new Lfm2Error("UNSUPPORTED_TYPE", `${what} has type ${t.name}, which has no kernel in this build`);
  return k;
}

/** Bytes of the activation buffer for nTok rows of n values. */
export function actBytes(kind: ActKind, n: number, nTok: number): number {
  switch (kind) {
    case "f32": return 0;
    case "f16": case "bf16": return n * nTok * 4;
    case "q8_0": return (n + 12 * (n >> 5)) * nTok;
    case "q8_K": return (n + 4 * (n >> 8) + 4 * (n >> 4)) * nTok;
  }
}
