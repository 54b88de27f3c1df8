// The log-mel front end checked on its own against an independent implementation: torch.stft +
// torchaudio's Slaney filterbank (Debian python3-torch / python3-torchaudio), run through
// test/audio/torch_mel.py. Skipped, with the reason, where no python with torchaudio exists.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { logMelSpectrogram, slaneyMelFilterbank } from "../../src/audio/mel.js";
import { noise, speech, tones } from "./signals.js";

function findTorchPython(): string | undefined {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try { execFileSync(py, ["-c", "import torch, torchaudio"], { stdio: "ignore" }); return py; } catch { /* next */ }
  }
  return undefined;
}
const python = findTorchPython();
const dir = mkdtempSync(join(tmpdir(), "lfm2-mel-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function torchMel(x: Float32Array): Float32Array {
  writeFileSync(join(dir, "in.f32"), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  execFileSync(python!, [join(__dirname, "torch_mel.py"), join(dir, "in.f32"), join(dir, "out.f32")]);
  const b = readFileSync(join(dir, "out.f32"));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const spoken = speech("Turn left at the second light, then keep going for two miles.");
const signals: [string, Float32Array | string][] = [
  ["tones 1.5 s + 37 samples", tones(1.5 + 37 / 16000)], ["noise 0.73 s", noise(0.73)], ["espeak-ng speech", spoken],
];

describe.skipIf(!python)(`log-mel vs torch.stft + torchaudio (${python ?? "no python with torch + torchaudio: apt-get install python3-torchaudio"})`, () => {
  it.for(signals)("%s", ([name, x], ctx) => {
    if (typeof x === "string") return ctx.skip(x);
    const ours = logMelSpectrogram(x), ref = torchMel(x);
    expect(ours.nMel).toBe(128);
    expect(ours.nFrames).toBe(Math.floor(x.length / 160) + 1);
    expect(ref.length).toBe(ours.data.length);
    let maxDiff = 0;
    for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours.data[i] - ref[i]));
    // normalised features (unit variance per bin): f32 vs f64 spectra agree to ~1e-4
    console.log(`${name}: max |ours − torch| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(5e-4);
  });
});

describe("log-mel basics", () => {
  it("filterbank: 128 non-negative, non-empty Slaney filters; the 0 Hz bin is in none", () => {
    const fb = slaneyMelFilterbank(128, 512, 16000);
    // every filter is non-negative and non-empty; the 0 Hz bin belongs to no filter (left edge of filter 0)
    for (let m = 0; m < 128; m++) {
      let s = 0; for (let k = 0; k < 257; k++) { expect(fb[m * 257 + k]).toBeGreaterThanOrEqual(0); s += fb[m * 257 + k]; }
      expect(s).toBeGreaterThan(0);
    }
    expect(fb[0]).toBe(0);
  });
  it("normalises each bin over the valid frames and zeroes the last frame", () => {
    const mel = logMelSpectrogram(tones(0.5));
    const T = mel.nFrames, valid = T - 1;
    for (const m of [0, 40, 127]) {
      const row = mel.data.subarray(m * T, (m + 1) * T);
      let mean = 0; for (let t = 0; t < valid; t++) mean += row[t];
      expect(Math.abs(mean / valid)).toBeLessThan(1e-5);
      expect(row[T - 1]).toBe(0);
    }
  });
  it("rejects clips shorter than two hops", () => {
    expect(() => logMelSpectrogram(new Float32Array(319))).toThrow(/too short/);
  });
});
