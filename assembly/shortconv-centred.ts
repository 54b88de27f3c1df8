// The bidirectional encoders' short convolution (LFM2.5-ColBERT / Embedding; spec §1.3): the same double
// gate as shortconv.ts, but the window is centred on the token and the whole sequence is one chunk:
// v = B ⊙ x; s_t = Σ_k w[k] ⊙ v_{t−pad+k}, pad = (L−1)/2, v outside [0, nTok) = 0; y = C ⊙ s.
// (llama.cpp pads the gated input with `pad` zero columns on each side when attention is non-causal.)
// bcx: [nTok][3D] = (B, C, x); the B part is overwritten with v. wT: kernel transposed to [L][D]. L odd.

export function shortConvCentred(bcx: usize, wT: usize, y: usize, d: i32, L: i32, nTok: i32): void {
  const rowB = <usize>d * 4, stride = <usize>(3 * d) * 4, pad = (L - 1) >> 1;
  for (let t = 0; t < nTok; t++) {
    const b = bcx + <usize>t * stride, x = b + 2 * rowB;
    for (let i = 0; i < d; i += 4) {
      const o = <usize>(i * 4);
      v128.store(b + o, f32x4.mul(v128.load(b + o), v128.load(x + o)));
    }
  }
  for (let t = 0; t < nTok; t++) {
    const c = bcx + <usize>t * stride + rowB, yt = y + <usize>(t * d) * 4;
    for (let i = 0; i < d; i += 4) {
      const o = <usize>(i * 4);
      let s = f32x4.splat(0);
      for (let k = 0; k < L; k++) {
        const src = t - pad + k;
        if (src < 0 || src >= nTok) continue; // zero padding adds nothing
        s = f32x4.add(s, f32x4.mul(v128.load(bcx + <usize>src * stride + o), v128.load(wT + <usize>k * rowB + o)));
      }
      v128.store(yt + o, f32x4.mul(v128.load(c + o), s));
    }
  }
}
