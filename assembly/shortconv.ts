// LFM2's double-gated short convolution (spec §1.3) over a chunk of tokens.
// bcx: [nTok][3D] = (B, C, x) from in_proj. v = B ⊙ x; s_t = Σ_k w[k] ⊙ v_{t−(L−1)+k}; y = C ⊙ s.
// wT: kernel transposed to [L][D]. state: the last L−1 vectors v ([L−1][D], oldest first), updated.

export function shortConv(bcx: usize, wT: usize, state: usize, y: usize, d: i32, L: i32, nTok: i32): void {
  const rowB = <usize>d * 4;
  for (let t = 0; t < nTok; t++) {
    const b = bcx + <usize>(t * 3 * d) * 4, c = b + rowB, x = c + rowB, yt = y + <usize>(t * d) * 4;
    for (let i = 0; i < d; i += 4) {
      const o = <usize>(i * 4);
      const v = f32x4.mul(v128.load(b + o), v128.load(x + o));
      let s = f32x4.splat(0);
      for (let k = 0; k < L - 1; k++) s = f32x4.add(s, f32x4.mul(v128.load(state + <usize>k * rowB + o), v128.load(wT + <usize>k * rowB + o)));
      s = f32x4.add(s, f32x4.mul(v, v128.load(wT + <usize>(L - 1) * rowB + o)));
      for (let k = 0; k < L - 2; k++) v128.store(state + <usize>k * rowB + o, v128.load(state + <usize>(k + 1) * rowB + o));
      v128.store(state + <usize>(L - 2) * rowB + o, v);
      v128.store(yt + o, f32x4.mul(v128.load(c + o), s));
    }
  }
}
