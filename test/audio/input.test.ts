// Audio inputs: WAV decoding (PCM 16/24, float 32, stereo → mono, extensible, odd chunks), the
// { samples, sampleRate } and AudioBuffer forms, and the band-limited resampler.
import { describe, expect, it } from "vitest";
import { decodeWav, resample, toMono16k } from "../../src/audio/input.js";
import { Lfm2Error } from "../../src/errors.js";

/** A WAV file with the given sample encoder; `extensible` writes WAVE_FORMAT_EXTENSIBLE. */
function wav(frames: number[][], rate: number, bits: number, float: boolean, extensible = false, extraChunk = false): Uint8Array {
  const ch = frames[0].length, bps = bits / 8, dataBytes = frames.length * ch * bps;
  const fmtLen = extensible ? 40 : 16, extra = extraChunk ? 8 + 3 + 1 : 0; // a 3-byte chunk + pad byte
  const buf = new Uint8Array(12 + 8 + fmtLen + extra + 8 + dataBytes), dv = new DataView(buf.buffer);
  const tag = (o: number, s: string) => { for (let i = 0; i < 4; i++) buf[o + i] = s.charCodeAt(i); };
  tag(0, "RIFF"); dv.setUint32(4, buf.length - 8, true); tag(8, "WAVE");
  tag(12, "fmt "); dv.setUint32(16, fmtLen, true);
  dv.setUint16(20, extensible ? 0xfffe : float ? 3 : 1, true); dv.setUint16(22, ch, true); dv.setUint32(24, rate, true);
  dv.setUint32(28, rate * ch * bps, true); dv.setUint16(32, ch * bps, true); dv.setUint16(34, bits, true);
  if (extensible) { dv.setUint16(36, 22, true); dv.setUint16(44, float ? 3 : 1, true); }
  let o = 20 + fmtLen;
  if (extraChunk) { tag(o, "LIST"); dv.setUint32(o + 4, 3, true); o += 12; }
  tag(o, "data"); dv.setUint32(o + 4, dataBytes, true); o += 8;
  for (const f of frames) for (const v of f) {
    if (float) dv.setFloat32(o, v, true);
    else if (bits === 16) dv.setInt16(o, Math.round(v * 32767), true);
    else { const q = Math.round(v * 8388607); buf[o] = q & 255; buf[o + 1] = (q >> 8) & 255; buf[o + 2] = (q >> 16) & 255; }
    o += bps;
  }
  return buf;
}

const tone = (n: number, hz: number, rate: number, amp = 0.5) => Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));
const rms = (x: ArrayLike<number>, from = 0, to = x.length) => { let s = 0; for (let i = from; i < to; i++) s += x[i] ** 2; return Math.sqrt(s / (to - from)); };

describe("WAV decoding", () => {
  const left = tone(1000, 440, 16000), right = tone(1000, 440, 16000, -0.25);
  const stereo = left.map((l, i) => [l, right[i]]);
  it.each([[16, false, 1 / 32767], [24, false, 1 / 8388607], [32, true, 1e-7]] as const)("%i-bit %s stereo → mean of channels", (bits, float, q) => {
    const d = decodeWav(wav(stereo, 16000, bits, float));
    expect(d.sampleRate).toBe(16000);
    expect(d.channels).toBe(2);
    expect(d.samples.length).toBe(1000);
    for (let i = 0; i < 1000; i++) expect(Math.abs(d.samples[i] - (left[i] + right[i]) / 2)).toBeLessThanOrEqual(q);
  });
  it("reads WAVE_FORMAT_EXTENSIBLE and skips unknown chunks with their pad byte", () => {
    const d = decodeWav(wav(left.map((v) => [v]), 16000, 16, false, true, true));
    expect(d.samples.length).toBe(1000);
    expect(Math.abs(d.samples[10] - left[10])).toBeLessThan(1e-4);
  });
  it("rejects what it cannot read with BAD_AUDIO", () => {
    const bad = (b: Uint8Array) => { try { decodeWav(b); } catch (e) { return (e as Lfm2Error).code; } return "ok"; };
    expect(bad(new Uint8Array(10))).toBe("BAD_AUDIO");
    const w = wav([[0.1]], 16000, 16, false);
    w[20] = 2; // ADPCM
    expect(bad(w)).toBe("BAD_AUDIO");
    const noData = wav([[0.1]], 16000, 16, false).slice(0, 36);
    expect(bad(noData)).toBe("BAD_AUDIO");
  });
});

describe("toMono16k", () => {
  it("accepts samples with a rate, interleaved channels, and AudioBuffer-like objects", () => {
    const x = new Float32Array(tone(3200, 300, 16000));
    expect(toMono16k({ samples: x, sampleRate: 16000 })).toEqual(x);
    const inter = new Float32Array(6400); for (let i = 0; i < 3200; i++) { inter[2 * i] = x[i]; inter[2 * i + 1] = -x[i]; }
    expect(rms(toMono16k({ samples: inter, sampleRate: 16000, channels: 2 }))).toBe(0);
    const ab = { sampleRate: 16000, numberOfChannels: 2, length: 3200, getChannelData: (c: number) => (c === 0 ? x : x) };
    expect(toMono16k(ab)).toEqual(x);
    expect(() => toMono16k({ samples: x, sampleRate: 0 })).toThrow(Lfm2Error);
    expect(() => toMono16k({ samples: new Float32Array([NaN, 0]), sampleRate: 16000 })).toThrow(/finite/);
    expect(() => toMono16k("x" as never)).toThrow(Lfm2Error);
  });
  it("resamples a 44.1 kHz WAV to 16 kHz", () => {
    const y = toMono16k(wav(tone(44100, 1000, 44100).map((v) => [v]), 44100, 16, false));
    expect(y.length).toBe(16000);
    // the tone survives at full amplitude and at the right frequency (zero crossings per second)
    expect(rms(y, 1000, 15000)).toBeCloseTo(0.5 / Math.SQRT2, 2);
    let zc = 0; for (let i = 1001; i < 15000; i++) if ((y[i - 1] < 0) !== (y[i] < 0)) zc++;
    expect(Math.abs(zc / (14000 / 16000) - 2000)).toBeLessThan(4);
  });
});

describe("resample", () => {
  it("removes content above the new Nyquist frequency instead of aliasing it", () => {
    // 11 kHz at 48 kHz would fold to 5 kHz at 16 kHz without the low-pass
    const y = resample(new Float32Array(tone(48000, 11000, 48000)), 48000, 16000);
    expect(rms(y, 500, y.length - 500)).toBeLessThan(0.5 * 1e-3); // < −60 dB
  });
  it("upsampling keeps a tone and its length", () => {
    const y = resample(new Float32Array(tone(8000, 500, 8000)), 8000, 16000);
    expect(y.length).toBe(16000);
    const ideal = tone(16000, 500, 16000);
    let err = 0; for (let i = 1000; i < 15000; i++) err = Math.max(err, Math.abs(y[i] - ideal[i]));
    expect(err).toBeLessThan(2e-3);
  });
});
