import { Lfm2Error } from "../errors.js";

/** ggml tensor types this runtime knows: block size (weights per block) and bytes per block. */
export interface GgmlType { id: number; name: string; blockSize: number; blockBytes: number }

export const GGML = {
  F32: { id: 0, name: "F32", blockSize: 1, blockBytes: 4 },
  F16: { id: 1, name: "F16", blockSize: 1, blockBytes: 2 },
  Q4_0: { id: 2, name: "Q4_0", blockSize: 32, blockBytes: 18 },
  Q4_1: { id: 3, name: "Q4_1", blockSize: 32, blockBytes: 20 },
  Q5_0: { id: 6, name: "Q5_0", blockSize: 32, blockBytes: 22 },
  Q5_1: { id: 7, name: "Q5_1", blockSize: 32, blockBytes: 24 },
  Q8_0: { id: 8, name: "Q8_0", blockSize: 32, blockBytes: 34 },
  Q4_K: { id: 12, name: "Q4_K", blockSize: 256, blockBytes: 144 },
  Q5_K: { id: 13, name: "Q5_K", blockSize: 256, blockBytes: 176 },
  Q6_K: { id: 14, name: "Q6_K", blockSize: 256, blockBytes: 210 },
  BF16: { id: 30, name: "BF16", blockSize: 1, blockBytes: 2 },
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
