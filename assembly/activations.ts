// Element-wise kernels: SwiGLU and residual add.

/** out = silu(g) ⊙ u, silu(z) = z / (1 + e^−z). */
export function swiglu(g: usize, u: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>(i * 4);
    const z = load<f32>(g + o);
    store<f32>(out + o, (z / (<f32>1.0 + Mathf.exp(-z))) * load<f32>(u + o));
  }
}

/** a += b */
export function addInPlace(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) { const o = <usize>(i * 4); v128.store(a + o, f32x4.add(v128.load(a + o), v128.load(b + o))); }
  for (; i < n; i++) { const o = <usize>(i * 4); store<f32>(a + o, load<f32>(a + o) + load<f32>(b + o)); }
}
