// Kernels of the LFM2-VL vision encoder (SigLIP2) and projector: LayerNorm with bias, bias add, GELU (tanh
// approximation, and the quick sigmoid form for mmproj files without clip.use_gelu).
// Each follows what ggml's CPU backend computes, so the encoder matches llama.cpp's libmtmd closely.
import { f16ToF32, f16x4ToF32, f32ToF16, hsumF32 } from "./common";

/**
 * y = (x − mean) / sqrt(var + eps) ⊙ w + b per row of n (ggml_norm then mul, add: sums in f64, the
 * centred values in f32). w or b = 0: absent.
 */
export function layerNorm(x: usize, w: usize, b: usize, y: usize, n: i32, nRows: i32, eps: f32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>(r * n) * 4, yr = y + <usize>(r * n) * 4;
    let sum: f64 = 0;
    for (let i = 0; i < n; i++) sum += <f64>load<f32>(xr + <usize>(i * 4));
    const mean = <f32>(sum / <f64>n);
    let sum2: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + <usize>(i * 4)) - mean;
      store<f32>(yr + <usize>(i * 4), v);
      sum2 += <f64>(v * v);
    }
    const scale = <f32>1.0 / Mathf.sqrt(<f32>(sum2 / <f64>n) + eps);
    for (let i = 0; i < n; i++) {
      const o = <usize>(i * 4);
      let v = load<f32>(yr + o) * scale;
      if (w) v *= load<f32>(w + o);
      if (b) v += load<f32>(b + o);
      store<f32>(yr + o, v);
    }
  }
}

/** x[r][i] += b[i] for nRows rows of n. */
export function addBias(x: usize, b: usize, n: i32, nRows: i32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>(r * n) * 4;
    let i = 0;
    for (; i + 4 <= n; i += 4) { const o = <usize>(i * 4); v128.store(xr + o, f32x4.add(v128.load(xr + o), v128.load(b + o))); }
    for (; i < n; i++) { const o = <usize>(i * 4); store<f32>(xr + o, load<f32>(xr + o) + load<f32>(b + o)); }
  }
}

const SQRT_2_OVER_PI: f32 = 0.79788456080286535587989211986876;
const GELU_COEF_A: f32 = 0.044715;

// @ts-ignore: decorator
@inline function geluTanh(x: f32): f32 {
  return <f32>0.5 * x * (<f32>1.0 + Mathf.tanh(SQRT_2_OVER_PI * x * (<f32>1.0 + GELU_COEF_A * x * x)));
}

/**
 * GELU, tanh approximation, in place over n floats, as ggml's CPU gelu (GGML_GELU_FP16): the input is
 * rounded to fp16, the result read from a table of fp16 values; x ≤ −10 → 0, x ≥ 10 → x.
 */
export function gelu(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + <usize>(i * 4);
    const v = load<f32>(p);
    if (v <= <f32>-10.0) store<f32>(p, 0);
    else if (v < <f32>10.0) store<f32>(p, f16ToF32(f32ToF16(geluTanh(f16ToF32(f32ToF16(v))))));
  }
}

/** x·sigmoid(1.702·x) in place, as ggml's CPU gelu_quick (fp16 table like gelu). */
export function geluQuick(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + <usize>(i * 4);
    const h = f16ToF32(f32ToF16(load<f32>(p)));
    store<f32>(p, f16ToF32(f32ToF16(h * (<f32>1.0 / (<f32>1.0 + Mathf.exp(<f32>-1.702 * h))))));
  }
}

/**
 * y[t][r] = Σ_i W[r][i]·x[t][i] for F16 weights and many tokens (the encoder's 1024-patch tiles): blocks of
 * 2 rows × 4 tokens, so each converted weight vector serves four tokens and each x load two rows. Same
 * signature and contract as matmulF16 (x already rounded to fp16, n a multiple of 4); rows [r0, r1).
 */
export function matmulF16Tiled(w: usize, x: usize, y: usize, n: i32, nTok: i32, yStride: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>n * 2, xBytes = <usize>n * 4;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const w0 = w + <usize>r * rowBytes, w1 = w0 + rowBytes;
    let t = 0;
    for (; t + 4 <= nTok; t += 4) {
      const x0 = x + <usize>t * xBytes, x1 = x0 + xBytes, x2 = x1 + xBytes, x3 = x2 + xBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
      for (let i = 0; i < n; i += 4) {
        const o = <usize>i * 4, oh = <usize>i * 2;
        const v0 = f16x4ToF32(v128.load16x4_u(w0 + oh)), v1 = f16x4ToF32(v128.load16x4_u(w1 + oh));
        const b0 = v128.load(x0 + o), b1 = v128.load(x1 + o), b2 = v128.load(x2 + o), b3 = v128.load(x3 + o);
        a00 = f32x4.add(a00, f32x4.mul(v0, b0)); a01 = f32x4.add(a01, f32x4.mul(v0, b1));
        a02 = f32x4.add(a02, f32x4.mul(v0, b2)); a03 = f32x4.add(a03, f32x4.mul(v0, b3));
        a10 = f32x4.add(a10, f32x4.mul(v1, b0)); a11 = f32x4.add(a11, f32x4.mul(v1, b1));
        a12 = f32x4.add(a12, f32x4.mul(v1, b2)); a13 = f32x4.add(a13, f32x4.mul(v1, b3));
      }
      const yr = y + <usize>r * 4;
      store<f32>(yr + <usize>(t * yStride) * 4, hsumF32(a00)); store<f32>(yr + <usize>((t + 1) * yStride) * 4, hsumF32(a01));
      store<f32>(yr + <usize>((t + 2) * yStride) * 4, hsumF32(a02)); store<f32>(yr + <usize>((t + 3) * yStride) * 4, hsumF32(a03));
      store<f32>(yr + 4 + <usize>(t * yStride) * 4, hsumF32(a10)); store<f32>(yr + 4 + <usize>((t + 1) * yStride) * 4, hsumF32(a11));
      store<f32>(yr + 4 + <usize>((t + 2) * yStride) * 4, hsumF32(a12)); store<f32>(yr + 4 + <usize>((t + 3) * yStride) * 4, hsumF32(a13));
    }
    for (; t < nTok; t++) for (let rr = r; rr < r + 2; rr++) dotRowF16(w, x, y, n, t, yStride, rr);
  }
  for (; r < r1; r++) for (let t = 0; t < nTok; t++) dotRowF16(w, x, y, n, t, yStride, r);
}

function dotRowF16(w: usize, x: usize, y: usize, n: i32, t: i32, yStride: i32, r: i32): void {
  const wr = w + <usize>r * <usize>n * 2, xt = x + <usize>(t * n) * 4;
  let a = f32x4.splat(0);
  for (let i = 0; i < n; i += 4) a = f32x4.add(a, f32x4.mul(f16x4ToF32(v128.load16x4_u(wr + <usize>(i * 2))), v128.load(xt + <usize>(i * 4))));
  store<f32>(y + <usize>(t * yStride + r) * 4, hsumF32(a));
}
