// Inverse STFT and a WAV writer: the last stage of LFM2.5-Audio's detokenizer (Vocos-style ISTFT head:
// n_fft 1280, hop 320, Hann window 1280, "same" padding → 24 kHz) and its output container. The
// "center" mode is torch.istft(center=True)'s, for checking against torch.
import { Lfm2Error } from "../errors.js";
import { fft } from "./fft.js";

export interface IstftOptions {
  nFft: number;
  hop: number;
  /** "same": Vocos' padding (drop (win − hop)/2 each side); "center": torch.istft(center=True) (drop nFft/2). */
  padding: "same" | "center";
}

/** Real inverse DFT of one frame (nFft/2 + 1 bins) by a complex FFT of size nFft (power of two) or a direct sum. */
function irfft(re: Float64Array, im: Float64Array, n: number, out: Float64Array): void {
  const bins = n / 2 + 1;
  if ((n & (n - 1)) === 0) {
    const xr = new Float64Array(n), xi = new Float64Array(n);
    for (let k = 0; k < bins; k++) { xr[k] = re[k]; xi[k] = im[k]; }
    for (let k = bins; k < n; k++) { xr[k] = re[n - k]; xi[k] = -im[n - k]; } // Hermitian
    xi[0] = 0; xi[n / 2] = 0;
    // inverse = conj(FFT(conj(x))) / n
    for (let k = 0; k < n; k++) xi[k] = -xi[k];
    fft(xr, xi);
    for (let i = 0; i < n; i++) out[i] = xr[i] / n;
    return;
  }
  // n = 1280 is not a power of two: direct real sum (the imaginary parts of bins 0 and n/2 are ignored, as irfft does)
  for (let t = 0; t < n; t++) {
    let s = re[0] + (n % 2 === 0 ? re[n / 2] * (t % 2 === 0 ? 1 : -1) : 0);
    for (let k = 1; k < (n % 2 === 0 ? n / 2 : bins); k++) {
      const a = (2 * Math.PI * k * t) / n;
      s += 2 * (re[k] * Math.cos(a) - im[k] * Math.sin(a));
    }
    out[t] = s / n;
  }
}

/**
 * Spectrogram frames (re, im: [frames][nFft/2 + 1]) → samples: inverse FFT per frame, periodic Hann
 * window, overlap-add, divided by the summed squared window, padding trimmed per `padding`.
 */
export function istft(re: Float32Array, im: Float32Array, frames: number, opts: IstftOptions): Float32Array {
  const { nFft: n, hop, padding } = opts, bins = n / 2 + 1;
  if (!Number.isInteger(n) || n < 2 || n % 2 !== 0 || !Number.isInteger(hop) || hop < 1 || hop > n) {
    throw new Lfm2Error("BAD_INPUT", `istft needs an even nFft ≥ 2 and 1 ≤ hop ≤ nFft, got ${n}, ${hop}`);
  }
  if (re.length !== frames * bins || im.length !== frames * bins) throw new Lfm2Error("BAD_INPUT", `istft expects ${frames} × ${bins} bins`);
  const win = new Float64Array(n);
  for (let i = 0; i < n; i++) win[i] = 0.5 * (1 - Math.cos((2 * Math.PI * i) / n));
  const total = (frames - 1) * hop + n, y = new Float64Array(total), env = new Float64Array(total);
  const fr = new Float64Array(bins), fi = new Float64Array(bins), frame = new Float64Array(n);
  for (let f = 0; f < frames; f++) {
    for (let k = 0; k < bins; k++) { fr[k] = re[f * bins + k]; fi[k] = im[f * bins + k]; }
    irfft(fr, fi, n, frame);
    for (let i = 0; i < n; i++) { y[f * hop + i] += frame[i] * win[i]; env[f * hop + i] += win[i] * win[i]; }
  }
  const pad = padding === "same" ? (n - hop) / 2 : n / 2;
  const len = padding === "same" ? total - 2 * pad : (frames - 1) * hop;
  const out = new Float32Array(Math.max(0, len));
  for (let i = 0; i < out.length; i++) {
    const e = env[pad + i];
    out[i] = e > 1e-11 ? y[pad + i] / e : 0;
  }
  return out;
}

/** Mono float samples → a 16-bit PCM WAV file (clipped to [-1, 1]). */
export function encodeWav(samples: Float32Array, sampleRate: number): Uint8Array {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new Lfm2Error("BAD_INPUT", `sample rate must be a positive integer, got ${sampleRate}`);
  const b = new Uint8Array(44 + 2 * samples.length), dv = new DataView(b.buffer);
  const tag = (o: number, s: string) => { for (let i = 0; i < 4; i++) b[o + i] = s.charCodeAt(i); };
  tag(0, "RIFF"); dv.setUint32(4, b.length - 8, true); tag(8, "WAVE");
  tag(12, "fmt "); dv.setUint32(16, 16, true); dv.setUint16(20, 1, true); dv.setUint16(22, 1, true);
  dv.setUint32(24, sampleRate, true); dv.setUint32(28, sampleRate * 2, true); dv.setUint16(32, 2, true); dv.setUint16(34, 16, true);
  tag(36, "data"); dv.setUint32(40, 2 * samples.length, true);
  for (let i = 0; i < samples.length; i++) dv.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767), true);
  return b;
}
