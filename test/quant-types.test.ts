// The one quant-type table: every row names kernels the wasm module exports, and the x4 record sizes
// the TypeScript side plans memory with are the ones the AssemblyScript kernels use.
import { describe, expect, it } from "vitest";
import { GGML, TYPE_KERNELS, rowBytes } from "../src/core/quant-types.js";
import { compileVariant, instantiateKernels } from "../bindings/wasm.js";
import { createMemory } from "../bindings/arena.js";

describe("quant-type table", async () => {
  const kernels = await instantiateKernels(await compileVariant("lfm2-simd"), createMemory(1 << 20, false)) as unknown as
    Record<string, unknown>;

  it("every kernel a row names is exported by the wasm module", () => {
    for (const t of Object.values(GGML)) {
      const k = TYPE_KERNELS[t.name];
      const names = [k.matmul, k.dequantRow, k.x4?.matmul, k.x4?.repack, k.x4?.dequantRow].filter((n): n is string => !!n);
      for (const n of names) expect(typeof kernels[n], `${t.name}: ${n}`).toBe("function");
    }
  });

  it("x4 record sizes equal the kernels' (one 4-row record per 32 weights, or per 256 for K-quants)", () => {
    const rec = (name: string) => (kernels[name] as WebAssembly.Global).value as number;
    expect(GGML.Q4_0.kernels.x4!.groupBlockBytes).toBe(rec("Q4_0X4_REC"));
    expect(GGML.Q8_0.kernels.x4!.groupBlockBytes).toBe(rec("Q8_0X4_REC"));
    expect(GGML.Q4_K.kernels.x4!.groupBlockBytes * 8).toBe(rec("Q4K_REC"));
    expect(GGML.Q5_K.kernels.x4!.groupBlockBytes * 8).toBe(rec("Q5K_REC"));
    expect(GGML.Q6_K.kernels.x4!.groupBlockBytes * 8).toBe(rec("Q6K_REC"));
  });

  it("an x4 record holds at least the four rows' file blocks (the repack works in place)", () => {
    for (const t of Object.values(GGML)) {
      const x4 = TYPE_KERNELS[t.name].x4;
      if (!x4) continue;
      const perRow32 = rowBytes(t, t.blockSize) / (t.blockSize / 32);
      expect(x4.groupBlockBytes, t.name).toBeGreaterThanOrEqual(4 * perRow32);
    }
  });
});
