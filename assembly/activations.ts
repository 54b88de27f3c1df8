// Element-wise kernels: a vector e^x, SwiGLU and residual add.

/**
 * e^x for four floats: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial (Cephes' expf
 * coefficients, ~1 ulp), 2^n assembled in the exponent bits. Inputs are clamped to ±88.
 */
// @ts-ignore: decorator
@inline export function expF32x4(v: v128): v128 {
  const x0 = clampF32x4(v, -87.3, 88.3);
  const n = f32x4.floor(f32x4.add(f32x4.mul(x0, f32x4.splat(1.44269504088896341)), f32x4.splat(0.5)));
  const x = f32x4.sub(f32x4.sub(x0, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, x), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(x, x)), x), f32x4.splat(1));
  // n is a whole number in [-126, 128]: the relaxed conversion (one cvttps2dq) gives the same integer
  const ni = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(n) : i32x4.trunc_sat_f32x4_s(n);
  return f32x4.mul(y, i32x4.shl(i32x4.add(ni, i32x4.splat(127)), 23));
}

/**
 * min(max(v, lo), hi) per lane. The relaxed min/max are one instruction each where wasm's NaN- and
 * zero-sign-exact ones cost several; with nonzero bounds they agree on every number, and v goes second
 * so a NaN in v stays NaN (x86 minps/maxps return their second operand when one is NaN).
 */
// @ts-ignore: decorator
@inline export function clampF32x4(v: v128, lo: f32, hi: f32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_min(f32x4.splat(hi), f32x4.relaxed_max(f32x4.splat(lo), v));
  return f32x4.min(f32x4.max(v, f32x4.splat(lo)), f32x4.splat(hi));
}

/** out = silu(g) ⊙ u, silu(z) = z / (1 + e^−z). n is a multiple of 4. */
export function swiglu(g: usize, u: usize, out: usize, n: i32): void {
  const one = f32x4.splat(1);
  for (let i = 0; i < n; i += 4) {
    const o = <usize>(i * 4);
    const z = v128.load(g + o);
    v128.store(out + o, f32x4.mul(f32x4.div(z, f32x4.add(one, expF32x4(f32x4.neg(z)))), v128.load(u + o)));
  }
}

/** a += b */
export function addInPlace(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) { const o = <usize>(i * 4); v128.store(a + o, f32x4.add(v128.load(a + o), v128.load(b + o))); }
  for (; i < n; i++) { const o = <usize>(i * 4); store<f32>(a + o, load<f32>(a + o) + load<f32>(b + o)); }
}
