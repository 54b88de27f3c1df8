// The one quant-type table (ggml's type_traits habit): each tensor type described once — block
// geometry, the matmul kernel and the activation format it consumes, the row dequantizer (embedding
// lookup) and the load-time x4 layout. TypeScript reads only this table; test/quant-types.test.ts checks
// the x4 record sizes against the ones the AssemblyScript kernels report.
import { Lfm2Error } from "../errors.js";

/** Activation formats: f32 as is, rounded to fp16 / bf16, or quantized into 32- or 256-blocks. */
export type ActKind = "f32" | "f16" | "bf16" | "q8_0" | "q8_K";

/** A row-interleaved layout made at load time (assembly/matmul-*x4.ts): bytes per 32 weights per 4 rows. */
export interface X4Kernels { matmul: string; repack: string; dequantRow: string; groupBlockBytes: number }

export interface TypeKernels { matmul: string; act: ActKind; dequantRow: string | null; x4?: X4Kernels }

/** A ggml tensor type: weights per block, bytes per block, and its kernels. */
export interface GgmlType { id: number; name: string; blockSize: number; blockBytes: number; kernels: TypeKernels }

const x4 = (name: string, groupBlockBytes: number): X4Kernels =>
  ({ matmul: `matmul${name}x4`, repack: `repack${name}`, dequantRow: `dequantRow${name}x4`, groupBlockBytes });
const k = (name: string, act: ActKind, x?: X4Kernels): TypeKernels =>
  ({ matmul: `matmul${name}`, act, dequantRow: name === "F32" ? null : `dequantRow${name}`, x4: x });

export const GGML = {
  F32: { id: 0, name: "F32", blockSize: 1, blockBytes: 4, kernels: k("F32", "f32") },
  F16: { id: 1, name: "F16", blockSize: 1, blockBytes: 2, kernels: k("F16", "f16") },
  Q4_0: { id: 2, name: "Q4_0", blockSize: 32, blockBytes: 18, kernels: k("Q4_0", "q8_0", x4("Q4_0", 80)) },
  // Q4_1/Q5_1 read Q8_1's block sum, which the q8_0 activation buffer carries
  Q4_1: { id: 3, name: "Q4_1", blockSize: 32, blockBytes: 20, kernels: k("Q4_1", "q8_0") },
  Q5_0: { id: 6, name: "Q5_0", blockSize: 32, blockBytes: 22, kernels: k("Q5_0", "q8_0") },
  Q5_1: { id: 7, name: "Q5_1", blockSize: 32, blockBytes: 24, kernels: k("Q5_1", "q8_0") },
  Q8_0: { id: 8, name: "Q8_0", blockSize: 32, blockBytes: 34, kernels: k("Q8_0", "q8_0", x4("Q8_0", 144)) },
  // 256-weight super-blocks: groupBlockBytes is the 4-row record's size / 8
  Q4_K: { id: 12, name: "Q4_K", blockSize: 256, blockBytes: 144, kernels: k("Q4_K", "q8_K", x4("Q4_K", 608 / 8)) },
  Q5_K: { id: 13, name: "Q5_K", blockSize: 256, blockBytes: 176, kernels: k("Q5_K", "q8_K", x4("Q5_K", 864 / 8)) },
  Q6_K: { id: 14, name: "Q6_K", blockSize: 256, blockBytes: 210, kernels: k("Q6_K", "q8_K", x4("Q6_K", 848 / 8)) },
  BF16: { id: 30, name: "BF16", blockSize: 1, blockBytes: 2, kernels: k("Bf16", "bf16") },
} as const satisfies Record<string, GgmlType>;

export type GgmlTypeName = keyof typeof GGML;

const byId = new Map<number, GgmlType>(Object.values(GGML).map((t) => [t.id, t]));

export function ggmlType(id: number): GgmlType | undefined {
  return byId.get(id);
}

export function ggmlTypeByName(name: string): GgmlType {
  const t = (GGML as Record<string, GgmlType>)[name.toUpperCase()];
  if (!t) throw new Lfm2Error("UNSUPPORTED_TYPE", `unknown tensor type ${name}`);
  return t;
}

/** Bytes of a row of `n` elements; throws if `n` is not a whole number of blocks. */
export function rowBytes(t: GgmlType, n: number): number {
  if (n % t.blockSize !== 0) {
    throw new Lfm2Error("SHAPE_MISMATCH", `${t.name} rows need a multiple of ${t.blockSize} elements, got ${n}`);
  }
  return (n / t.blockSize) * t.blockBytes;
}

export function kernelsFor(t: GgmlType, what: string): TypeKernels {
  const kern = (byId.get(t.id) ?? t).kernels as TypeKernels | undefined;
  if (!kern) throw new Lfm2Error("UNSUPPORTED_TYPE", `${what} has type ${t.name}, which has no kernel in this build`);
  return kern;
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

/** A weight matrix in WebAssembly memory: nOut rows of nIn weights of one type. */
export interface Matrix {
  ptr: number; type: GgmlType; nIn: number; nOut: number; rowBytes: number;
  /** Rows interleaved by four at load time (the type's x4 layout). */
  x4: boolean;
}

/** Type name → kernels (a view of the table, for tests and benchmarks that iterate over types). */
export const TYPE_KERNELS: Record<string, TypeKernels> = Object.fromEntries(Object.values(GGML).map((t) => [t.name, t.kernels]));
