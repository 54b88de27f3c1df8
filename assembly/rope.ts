// NeoX ("rotate-half") RoPE over whole heads: for i < dh/2, with angle a_i of the token's position,
// x'[i] = x[i]·cos − x[i+dh/2]·sin, x'[i+dh/2] = x[i+dh/2]·cos + x[i]·sin.
// cs holds per token dh/2 cosines then dh/2 sines (computed once per position on the JS side).

export function ropeNeox(x: usize, cs: usize, nHeads: i32, dh: i32, nTok: i32): void {
  const half = dh >> 1;
  for (let t = 0; t < nTok; t++) {
    const c = cs + <usize>(t * dh) * 4, s = c + <usize>half * 4;
    for (let h = 0; h < nHeads; h++) {
      const p = x + <usize>((t * nHeads + h) * dh) * 4, q = p + <usize>half * 4;
      for (let i = 0; i < half; i += 4) {
        const o = <usize>(i * 4);
        const a = v128.load(p + o), b = v128.load(q + o), co = v128.load(c + o), si = v128.load(s + o);
        v128.store(p + o, f32x4.sub(f32x4.mul(a, co), f32x4.mul(b, si)));
        v128.store(q + o, f32x4.add(f32x4.mul(b, co), f32x4.mul(a, si)));
      }
    }
  }
}
