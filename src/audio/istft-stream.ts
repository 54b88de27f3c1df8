// Streaming inverse STFT with "same" padding (the detokenizer's last stage): frames in, final samples out as soon
// as no later frame can add to them. Gives the same samples as istft(…, { padding: "same" }) over the whole
// spectrogram (src/audio/istft.ts, checked against torch), split across calls. The inverse FFT handles
// n = m·2^k (1280 = 5·256) by m radix-2 FFTs and one radix-m pass, so a frame costs O(n log n), not O(n²).
import { Lfm2Error } from "../errors.js";
import { fft } from "./fft.js";

/** Complex FFT plan for n = m·2^k (m odd and small): decimation in time by m, radix-2 below. */
class MixedFft {
  readonly m: number; readonly p: number;
  private cos: Float64Array; private sin: Float64Array;
  private br: Float64Array; private bi: Float64Array;

  constructor(readonly n: number) {
    let p = n;
    while (p % 2 === 0) p /= 2;
    this.m = p; this.p = n / p;
    this.cos = new Float64Array(n); this.sin = new Float64Array(n);
    for (let i = 0; i < n; i++) { this.cos[i] = Math.cos((2 * Math.PI * i) / n); this.sin[i] = Math.sin((2 * Math.PI * i) / n); }
    this.br = new Float64Array(n); this.bi = new Float64Array(n);
  }

  /** The sub-sequence gathered at br/bi[dst … dst + p) transformed in place (sign +1: the conjugate trick). */
  private radix2(dst: number, sign: number): void {
    const br = this.br.subarray(dst, dst + this.p), bi = this.bi.subarray(dst, dst + this.p);
    if (sign > 0) for (let i = 0; i < bi.length; i++) bi[i] = -bi[i];
    fft(br, bi);
    if (sign > 0) for (let i = 0; i < bi.length; i++) bi[i] = -bi[i];
  }

  /** X[k] = Σ_j x[j]·e^{sign·2πi·jk/n}, in place. */
  transform(re: Float64Array, im: Float64Array, sign: 1 | -1): void {
    const { n, m, p, br, bi } = this;
    // sub-sequence r = x[m·j + r], transformed at br/bi[r·p …]
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < p; j++) { br[r * p + j] = re[m * j + r]; bi[r * p + j] = im[m * j + r]; }
      this.radix2(r * p, sign);
    }
    for (let k = 0; k < n; k++) {
      const kk = k % p;
      let sr = 0, si = 0;
      for (let r = 0; r < m; r++) {
        const idx = (r * k) % n, wr = this.cos[idx], wi = sign * this.sin[idx];
        const xr = br[r * p + kk], xi = bi[r * p + kk];
        sr += xr * wr - xi * wi; si += xr * wi + xi * wr;
      }
      re[k] = sr; im[k] = si;
    }
  }
}

export class StreamingIstft {
  readonly bins: number;
  private fft: MixedFft;
  private win: Float64Array;
  private acc: Float64Array; private env: Float64Array;
  private xr: Float64Array; private xi: Float64Array;
  /** Samples of the untrimmed signal still to drop at the start ("same" padding). */
  private toDrop: number;
  private frames = 0;

  constructor(readonly nFft: number, readonly hop: number) {
    if (!Number.isInteger(nFft) || nFft < 2 || nFft % 2 !== 0 || !Number.isInteger(hop) || hop < 1 || hop > nFft || (nFft - hop) % 2 !== 0) {
      throw new Lfm2Error("BAD_INPUT", `streaming istft needs an even nFft, 1 ≤ hop ≤ nFft and an even nFft − hop, got ${nFft}, ${hop}`);
    }
    this.bins = nFft / 2 + 1;
    this.fft = new MixedFft(nFft);
    this.win = new Float64Array(nFft);
    for (let i = 0; i < nFft; i++) this.win[i] = 0.5 * (1 - Math.cos((2 * Math.PI * i) / nFft));
    this.acc = new Float64Array(nFft); this.env = new Float64Array(nFft);
    this.xr = new Float64Array(nFft); this.xi = new Float64Array(nFft);
    this.toDrop = (nFft - hop) / 2;
  }

  /** Frames given so far. */
  get frameCount(): number { return this.frames; }

  /** One frame's bins (re, im: nFft/2 + 1 each) → the samples that became final (hop per frame after a start-up). */
  push(re: ArrayLike<number>, im: ArrayLike<number>): Float32Array {
    const { nFft: n, hop, bins, xr, xi, acc, env, win } = this;
    if (re.length !== bins || im.length !== bins) throw new Lfm2Error("BAD_INPUT", `a frame has ${bins} bins`);
    for (let k = 0; k < bins; k++) { xr[k] = re[k]; xi[k] = im[k]; }
    xi[0] = 0; xi[n / 2] = 0; // irfft ignores the imaginary parts of the DC and Nyquist bins
    for (let k = bins; k < n; k++) { xr[k] = xr[n - k]; xi[k] = -xi[n - k]; }
    this.fft.transform(xr, xi, 1);
    for (let i = 0; i < n; i++) { acc[i] += (xr[i] / n) * win[i]; env[i] += win[i] * win[i]; }
    this.frames++;
    return this.emit(hop);
  }

  /** The samples no further frame would complete (the end of a "same"-padded signal); resets the stream. */
  flush(): Float32Array {
    const out = this.frames ? this.emit((this.nFft - this.hop) / 2) : new Float32Array(0);
    this.reset();
    return out;
  }

  reset(): void {
    this.acc.fill(0); this.env.fill(0); this.frames = 0; this.toDrop = (this.nFft - this.hop) / 2;
  }

  /** Take `count` samples from the head of the overlap-add buffer, drop the start padding, shift the rest. */
  private emit(count: number): Float32Array {
    const { acc, env } = this, drop = Math.min(this.toDrop, count);
    this.toDrop -= drop;
    const out = new Float32Array(count - drop);
    for (let i = drop; i < count; i++) out[i - drop] = env[i] > 1e-11 ? acc[i] / env[i] : 0;
    acc.copyWithin(0, count); env.copyWithin(0, count);
    acc.fill(0, acc.length - count); env.fill(0, env.length - count);
    return out;
  }
}
