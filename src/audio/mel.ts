// The LFM2-Audio (NeMo FastConformer) log-mel front end, as llama.cpp's libmtmd computes it for the
// `lfm2a` projector (tools/mtmd/mtmd-audio.cpp, conformer preprocessor): 16 kHz, zero "center" padding of
// n_fft/2, pre-emphasis 0.97, periodic Hann window of 400 centred in n_fft 512, hop 160, power spectrum,
// Slaney-normalised Slaney-scale mel filterbank (0–8 kHz), natural log with floor 2^-24, then per-feature
// normalisation over the floor(n/160) valid frames (unbiased variance, (x − mean) / sqrt(var + 1e-5)); the
// frames past those are zero.
import { Lfm2Error } from "../errors.js";
import { fft } from "./fft.js";

export interface MelOptions { nMel?: number; nFft?: number; window?: number; hop?: number; sampleRate?: number }

export interface LogMel {
  /** [nMel][nFrames], frames fastest (libmtmd's layout). */
  data: Float32Array;
  nMel: number;
  nFrames: number;
}

const MEL_FLOOR = 5.960464477539063e-8;
const PREEMPH = Math.fround(0.97);

/** Slaney-scale, Slaney-area-normalised triangular filters: [nMel][nFft/2 + 1] (librosa's default). */
export function slaneyMelFilterbank(nMel: number, nFft: number, sampleRate: number, fMin = 0, fMax = sampleRate / 2): Float32Array {
  const minLogHz = 1000, linSlope = 3 / 200, minLogMel = minLogHz * linSlope, logStep = Math.log(6.4) / 27;
  const hzToMel = (f: number) => (f < minLogHz ? f * linSlope : minLogMel + Math.log(f / minLogHz) / logStep);
  const melToHz = (m: number) => (m < minLogMel ? m / linSlope : minLogHz * Math.exp((m - minLogMel) * logStep));
  // libmtmd converts fmin/fmax through float parameters
  const mLo = hzToMel(Math.fround(fMin)), mHi = hzToMel(Math.fround(fMax));
  const hz = Array.from({ length: nMel + 2 }, (_, i) => melToHz(mLo + (mHi - mLo) * (i / (nMel + 1))));
  const nBins = nFft / 2 + 1, binHz = sampleRate / nFft, out = new Float32Array(nMel * nBins);
  for (let m = 0; m < nMel; m++) {
    const l = hz[m], c = hz[m + 1], r = hz[m + 2];
    const dl = Math.max(1e-30, c - l), dr = Math.max(1e-30, r - c), norm = 2 / Math.max(1e-30, r - l);
    for (let k = 0; k < nBins; k++) {
      const f = k * binHz;
      const w = f >= l && f <= c ? (f - l) / dl : f > c && f <= r ? (r - f) / dr : 0;
      out[m * nBins + k] = w * norm;
    }
  }
  return out;
}


const filterCache = new Map<string, Float32Array>();

/** 16 kHz mono samples → normalised log-mel features. Needs at least 2 hops (320 samples). */
export function logMelSpectrogram(samples: Float32Array, opts: MelOptions = {}): LogMel {
  const { nMel = 128, nFft = 512, window = 400, hop = 160, sampleRate = 16000 } = opts;
  const n = samples.length, valid = Math.floor(n / hop);
  if (valid < 2) throw new Lfm2Error("BAD_AUDIO", `audio of ${n} samples is too short: at least ${2 * hop} are needed`);
  const key = `${nMel}/${nFft}/${sampleRate}`;
  let filters = filterCache.get(key);
  if (!filters) filterCache.set(key, (filters = slaneyMelFilterbank(nMel, nFft, sampleRate)));
  const pad = nFft / 2, x = new Float32Array(n + 2 * pad);
  x.set(samples, pad);
  // pre-emphasis over the real samples only (the first is kept), in f32 as libmtmd does
  for (let i = n - 1; i >= 1; i--) x[pad + i] = x[pad + i] - PREEMPH * x[pad + i - 1];
  const hann = new Float64Array(nFft), off = (nFft - window) >> 1;
  for (let i = 0; i < window; i++) hann[off + i] = Math.fround(0.5 * (1 - Math.cos((2 * Math.PI * i) / window)));
  const nFrames = valid + 1, nBins = nFft / 2 + 1, out = new Float32Array(nMel * nFrames);
  const re = new Float64Array(nFft), im = new Float64Array(nFft), power = new Float64Array(nBins);
  for (let t = 0; t < nFrames; t++) {
    for (let j = 0; j < nFft; j++) { re[j] = hann[j] * x[t * hop + j]; im[j] = 0; }
    fft(re, im);
    for (let k = 0; k < nBins; k++) power[k] = re[k] * re[k] + im[k] * im[k];
    for (let m = 0; m < nMel; m++) {
      let s = 0;
      for (let k = 0, f = m * nBins; k < nBins; k++) s += power[k] * filters[f + k];
      out[m * nFrames + t] = Math.log(Math.max(s, MEL_FLOOR));
    }
  }
  for (let m = 0; m < nMel; m++) {
    const row = out.subarray(m * nFrames, (m + 1) * nFrames);
    let mean = 0;
    for (let t = 0; t < valid; t++) mean += row[t];
    mean /= valid;
    let v = 0;
    for (let t = 0; t < valid; t++) v += (row[t] - mean) ** 2;
    const std = Math.sqrt(v / (valid - 1) + 1e-5);
    for (let t = 0; t < valid; t++) row[t] = (row[t] - mean) / std;
    row.fill(0, valid);
  }
  return { data: out, nMel, nFrames };
}
