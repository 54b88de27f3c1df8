// Audio inputs → 16 kHz mono float samples, as the LFM2-Audio front end expects. Accepts WAV bytes
// (PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE; any channel count, averaged to mono),
// `{ samples, sampleRate }` (mono, or `channels` interleaved), or a Web Audio AudioBuffer (duck-typed, so
// no DOM types are needed). Other rates are resampled with a Kaiser-windowed sinc low-pass.
import { Lfm2Error } from "../errors.js";

export const AUDIO_SAMPLE_RATE = 16000;

/** The subset of Web Audio's AudioBuffer that is read. */
export interface AudioBufferLike {
  readonly sampleRate: number;
  readonly numberOfChannels: number;
  readonly length: number;
  getChannelData(channel: number): Float32Array;
}

export interface PcmSamples {
  samples: Float32Array;
  sampleRate: number;
  /** Interleaved channels in `samples` (default 1). */
  channels?: number;
}

export type AudioInput = Uint8Array | ArrayBuffer | PcmSamples | AudioBufferLike;

const isAudioBuffer = (x: unknown): x is AudioBufferLike =>
  typeof x === "object" && x !== null && typeof (x as AudioBufferLike).getChannelData === "function" &&
  typeof (x as AudioBufferLike).numberOfChannels === "number";

/** Any accepted input → mono Float32Array at 16 kHz. */
export function toMono16k(input: AudioInput): Float32Array {
  let mono: Float32Array, rate: number;
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    ({ samples: mono, sampleRate: rate } = decodeWav(input instanceof ArrayBuffer ? new Uint8Array(input) : input));
  } else if (isAudioBuffer(input)) {
    const n = input.length, ch = input.numberOfChannels;
    if (!(ch >= 1)) throw new Lfm2Error("BAD_AUDIO", `an AudioBuffer needs at least one channel, got ${ch}`);
    mono = new Float32Array(n);
    for (let c = 0; c < ch; c++) { const d = input.getChannelData(c); for (let i = 0; i < n; i++) mono[i] += d[i] / ch; }
    rate = input.sampleRate;
  } else if (typeof input === "object" && input !== null && (input as PcmSamples).samples instanceof Float32Array) {
    const { samples, sampleRate, channels = 1 } = input as PcmSamples;
    if (!Number.isInteger(channels) || channels < 1) throw new Lfm2Error("BAD_AUDIO", `channels must be a positive integer, got ${channels}`);
    if (samples.length % channels !== 0) throw new Lfm2Error("BAD_AUDIO", `${samples.length} samples do not split into ${channels} channels`);
    mono = channels === 1 ? samples : mixDown(samples, channels);
    rate = sampleRate;
  } else {
    throw new Lfm2Error("BAD_AUDIO", "audio must be WAV bytes, { samples: Float32Array, sampleRate } or an AudioBuffer");
  }
  if (!Number.isFinite(rate) || rate < 1000 || rate > 768000) throw new Lfm2Error("BAD_AUDIO", `unsupported sample rate ${rate}`);
  for (let i = 0; i < mono.length; i++) {
    if (!Number.isFinite(mono[i])) throw new Lfm2Error("BAD_AUDIO", `sample ${i} is not a finite number`);
  }
  return rate === AUDIO_SAMPLE_RATE ? mono : resample(mono, rate, AUDIO_SAMPLE_RATE);
}

function mixDown(x: Float32Array, ch: number): Float32Array {
  const n = x.length / ch, out = new Float32Array(n);
  for (let i = 0; i < n; i++) { let s = 0; for (let c = 0; c < ch; c++) s += x[i * ch + c]; out[i] = s / ch; }
  return out;
}

const WAVE_PCM = 1, WAVE_FLOAT = 3, WAVE_EXTENSIBLE = 0xfffe;

/** RIFF/WAVE → mono float samples in [-1, 1] and the file's sample rate. */
export function decodeWav(bytes: Uint8Array): { samples: Float32Array; sampleRate: number; channels: number } {
  const bad = (m: string) => new Lfm2Error("BAD_AUDIO", `WAV: ${m}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]);
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw bad("not a RIFF/WAVE file");
  let fmt: { format: number; channels: number; rate: number; bits: number; align: number } | undefined;
  let data: Uint8Array | undefined;
  for (let o = 12; o + 8 <= bytes.length;) {
    const id = tag(o);
    // streaming writers leave 0 or 0xFFFFFFFF as the data size: take the rest of the file then
    let size = dv.getUint32(o + 4, true);
    const body = o + 8;
    if (id === "data" && (size === 0 || size === 0xffffffff || body + size > bytes.length)) size = bytes.length - body;
    if (body + size > bytes.length) throw bad(`chunk "${id}" runs past the end of the file`);
    if (id === "fmt ") {
      if (size < 16) throw bad("fmt chunk too short");
      let format = dv.getUint16(body, true);
      if (format === WAVE_EXTENSIBLE) {
        if (size < 26) throw bad("extensible fmt chunk too short");
        format = dv.getUint16(body + 24, true); // first two bytes of the sub-format GUID
      }
      fmt = { format, channels: dv.getUint16(body + 2, true), rate: dv.getUint32(body + 4, true),
        align: dv.getUint16(body + 12, true), bits: dv.getUint16(body + 14, true) };
    } else if (id === "data") data = bytes.subarray(body, body + size);
    o = body + size + (size & 1);
  }
  if (!fmt) throw bad("no fmt chunk");
  if (!data) throw bad("no data chunk");
  const { format, channels, rate, bits } = fmt;
  if (channels < 1) throw bad("zero channels");
  const bytesPer = bits / 8;
  if (!Number.isInteger(bytesPer)) throw bad(`${bits}-bit samples are not supported`);
  const frame = bytesPer * channels;
  const n = Math.floor(data.length / frame);
  const read = sampleReader(format, bits, new DataView(data.buffer, data.byteOffset, data.byteLength));
  if (!read) throw bad(`format ${format} with ${bits} bits per sample is not supported (PCM 8/16/24/32, float 32/64)`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += read(i * frame + c * bytesPer);
    out[i] = s / channels;
  }
  return { samples: out, sampleRate: rate, channels };
}

function sampleReader(format: number, bits: number, dv: DataView): ((o: number) => number) | undefined {
  if (format === WAVE_PCM) {
    switch (bits) {
      case 8: return (o) => (dv.getUint8(o) - 128) / 128;
      case 16: return (o) => dv.getInt16(o, true) / 32768;
      case 24: return (o) => ((dv.getUint8(o) | (dv.getUint8(o + 1) << 8) | (dv.getInt8(o + 2) << 16))) / 8388608;
      case 32: return (o) => dv.getInt32(o, true) / 2147483648;
    }
  } else if (format === WAVE_FLOAT) {
    if (bits === 32) return (o) => dv.getFloat32(o, true);
    if (bits === 64) return (o) => dv.getFloat64(o, true);
  }
  return undefined;
}

/** Zeroth-order modified Bessel function (Kaiser window). */
function besselI0(x: number): number {
  let sum = 1, term = 1;
  for (let k = 1; k < 50; k++) { term *= (x / (2 * k)) ** 2; sum += term; if (term < 1e-12 * sum) break; }
  return sum;
}

/** Kaiser window (β = 8.6) tabulated over |u| ∈ [0, 1]; read with linear interpolation. */
const KAISER_STEPS = 4096;
const kaiserTable = (() => {
  const beta = 8.6, i0b = besselI0(beta), t = new Float64Array(KAISER_STEPS + 2);
  for (let i = 0; i <= KAISER_STEPS; i++) { const u = i / KAISER_STEPS; t[i] = besselI0(beta * Math.sqrt(1 - u * u)) / i0b; }
  return t;
})();

/**
 * Band-limited resampling: each output sample is a Kaiser-windowed sinc interpolation with 32 zero
 * crossings each side, its cut-off at 0.95 × the lower Nyquist frequency so that downsampling does not
 * alias (stop band about −80 dB).
 */
export function resample(x: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return x.slice();
  const ratio = to / from, cutoff = 0.95 * Math.min(1, ratio);
  const half = 32 / cutoff; // filter half-width in input samples
  const nOut = Math.round(x.length * ratio), out = new Float32Array(nOut);
  for (let j = 0; j < nOut; j++) {
    const t = j / ratio; // position in input samples
    const lo = Math.max(0, Math.ceil(t - half)), hi = Math.min(x.length - 1, Math.floor(t + half));
    let acc = 0;
    for (let i = lo; i <= hi; i++) {
      const d = i - t, p = (Math.abs(d) / half) * KAISER_STEPS, k = Math.floor(p);
      if (k >= KAISER_STEPS) continue;
      const w = kaiserTable[k] + (p - k) * (kaiserTable[k + 1] - kaiserTable[k]);
      const a = Math.PI * cutoff * d;
      acc += x[i] * w * (a === 0 ? cutoff : (cutoff * Math.sin(a)) / a);
    }
    out[j] = acc;
  }
  return out;
}
