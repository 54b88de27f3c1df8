// RMSNorm: y = w ⊙ x / sqrt(mean(x²) + eps), per row of n values (also used per attention head).
import { hsumF32 } from "./common";

export function rmsNorm(x: usize, w: usize, y: usize, n: i32, nRows: i32, eps: f32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>(r * n) * 4, yr = y + <usize>(r * n) * 4;
    let acc = f32x4.splat(0);
    for (let i = 0; i < n; i += 4) { const v = v128.load(xr + <usize>(i * 4)); acc = f32x4.add(acc, f32x4.mul(v, v)); }
    const scale = f32x4.splat(<f32>(1.0 / Math.sqrt(<f64>hsumF32(acc) / <f64>n + <f64>eps)));
    for (let i = 0; i < n; i += 4) {
      const o = <usize>(i * 4);
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), scale), v128.load(w + o)));
    }
  }
}
