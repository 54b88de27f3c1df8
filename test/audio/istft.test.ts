// The speech-out ISTFT (LFM2.5-Audio detokenizer's last stage: n_fft 1280, hop 320, "same" padding) vs
// independent torch implementations (torch.istft for "center"; torch.fft.irfft + fold for Vocos' "same"),
// and the WAV writer against our decoder.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeWav, istft } from "../../src/audio/istft.js";
import { decodeWav } from "../../src/audio/input.js";
import { mulberry32 } from "../../src/models/synthetic.js";

const python = ["/usr/bin/python3", "python3"].find((py) => {
  try { execFileSync(py, ["-c", "import torch"], { stdio: "ignore" }); return true; } catch { return false; }
});
const dir = mkdtempSync(join(tmpdir(), "lfm2-istft-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function randomSpec(frames: number, bins: number, seed: number) {
  const r = mulberry32(seed), re = new Float32Array(frames * bins), im = new Float32Array(frames * bins);
  // log-magnitude + phase, as the detokenizer head produces them
  for (let i = 0; i < re.length; i++) { const mag = Math.exp(2 * r() - 3), ph = 2 * Math.PI * r(); re[i] = mag * Math.cos(ph); im[i] = mag * Math.sin(ph); }
  return { re, im };
}

describe.skipIf(!python)(`istft vs torch (${python ?? "no python with torch: apt-get install python3-torch"})`, () => {
  it.each([["same", 1280, 320, 12], ["center", 1280, 320, 9], ["center", 512, 128, 20], ["same", 512, 160, 7]] as const)(
    "%s n_fft %i hop %i, %i frames", (mode, nFft, hop, frames) => {
      const bins = nFft / 2 + 1, { re, im } = randomSpec(frames, bins, nFft + frames);
      const both = new Float32Array(2 * frames * bins);
      both.set(re); both.set(im, frames * bins);
      writeFileSync(join(dir, "in.f32"), new Uint8Array(both.buffer));
      execFileSync(python!, [join(__dirname, "torch_istft.py"), join(dir, "in.f32"), String(frames), String(nFft), String(hop), mode, join(dir, "out.f32")]);
      const b = readFileSync(join(dir, "out.f32")), ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      const ours = istft(re, im, frames, { nFft, hop, padding: mode });
      expect(ours.length).toBe(ref.length);
      let d = 0, m = 0;
      for (let i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(ours[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); }
      expect(d / m).toBeLessThan(1e-5);
    }, 60_000);
});

describe("istft and WAV writer", () => {
  it("ISTFT of an STFT gives the signal back (same padding, 80 ms per 4 hops of 320 at 24 kHz)", () => {
    const n = 1280, hop = 320, frames = 40, bins = n / 2 + 1, len = (frames - 1) * hop + n;
    const x = new Float64Array(len);
    for (let i = 0; i < len; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 24000) + 0.1 * Math.sin((2 * Math.PI * 3000 * i) / 24000);
    const re = new Float32Array(frames * bins), im = new Float32Array(frames * bins);
    for (let f = 0; f < frames; f++) for (let k = 0; k < bins; k++) {
      let a = 0, b = 0;
      for (let t = 0; t < n; t++) {
        const w = 0.5 * (1 - Math.cos((2 * Math.PI * t) / n)), ang = (-2 * Math.PI * k * t) / n;
        a += w * x[f * hop + t] * Math.cos(ang); b += w * x[f * hop + t] * Math.sin(ang);
      }
      re[f * bins + k] = a; im[f * bins + k] = b;
    }
    const y = istft(re, im, frames, { nFft: n, hop, padding: "same" });
    const pad = (n - hop) / 2;
    expect(y.length).toBe(len - 2 * pad);
    let err = 0; for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i] - x[pad + i]));
    expect(err).toBeLessThan(1e-4);
  });
  it("encodeWav → decodeWav round trip (16-bit)", () => {
    const x = new Float32Array(1000).map((_, i) => Math.sin(i / 10) * 0.8);
    const d = decodeWav(encodeWav(x, 24000));
    expect(d.sampleRate).toBe(24000);
    for (let i = 0; i < 1000; i++) expect(Math.abs(d.samples[i] - x[i])).toBeLessThan(2 / 32767); // quantisation + the 32767/32768 scales
    expect(() => istft(new Float32Array(3), new Float32Array(3), 1, { nFft: 1280, hop: 320, padding: "same" })).toThrow(/bins/);
  });
});
