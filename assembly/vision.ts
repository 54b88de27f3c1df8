// Kernels of the LFM2-VL vision encoder (SigLIP2) and projector: LayerNorm with bias, bias add, GELU (tanh
// approximation, and the quick sigmoid form for mmproj files without clip.use_gelu).
// Each follows what ggml's CPU backend computes, so the encoder matches llama.cpp's libmtmd closely.
import { f16ToF32, f32ToF16 } from "./common";

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
