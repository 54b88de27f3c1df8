// The WASM module's exports: kernels only. Memory is imported and managed by bindings/arena.ts.
export { quantizeQ8_0, quantizeQ8_K, roundF16, roundBf16, dequantRowF16, dequantRowBf16, dequantRowQ8_0, dequantRowQ4_0 } from "./quant";
export { matmulF32, matmulF16, matmulBf16, matmulQ8_0, matmulQ4_0 } from "./matmul";
export { matmulQ4_1, matmulQ5_0, matmulQ5_1, dequantRowQ4_1, dequantRowQ5_0, dequantRowQ5_1 } from "./matmul-legacy";
export { matmulQ4_K, matmulQ5_K, matmulQ6_K, dequantRowQ4_K, dequantRowQ5_K, dequantRowQ6_K } from "./matmul-kquants";
export { rmsNorm } from "./norm";
export { ropeNeox } from "./rope";
export { kvStore, attention, attentionTiles, attentionTileScratch, attentionDecode, attentionDecodeScratch } from "./attention";
export { shortConv } from "./shortconv";
export { shortConvCentred } from "./shortconv-centred";
export { swiglu, addInPlace } from "./activations";
export { layerNorm, addBias, gelu, geluQuick, matmulF16Tiled } from "./vision";
export { repackQ4_0, repackQ8_0, dequantRowQ4_0x4, dequantRowQ8_0x4, matmulQ4_0x4, matmulQ8_0x4 } from "./matmul-x4";
export { repackQ4_K, repackQ6_K, dequantRowQ4_Kx4, dequantRowQ6_Kx4, matmulQ4_Kx4, matmulQ6_Kx4 } from "./matmul-kx4";
export { repackQ5_K, dequantRowQ5_Kx4, matmulQ5_Kx4 } from "./matmul-k5x4";
export { readBandwidth } from "./membench";
export { maxSimF32, maxSimI8 } from "./maxsim";
export { conv2dS2, gluSigmoid, depthwiseConv1dBnSilu, relPosAttention, relPosAttentionScratch, siluInPlace } from "./conformer";
// x4 record sizes, read by test/quant-types.test.ts against the TypeScript table
export { Q4_0X4_REC, Q8_0X4_REC } from "./matmul-x4";
export { Q4K_REC, Q6K_REC } from "./matmul-kx4";
export { Q5K_REC } from "./matmul-k5x4";
export { matmulF32Strided, eluF32, addRows, ringAttention } from "./conv1d";
