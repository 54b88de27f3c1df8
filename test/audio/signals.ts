// Test signals for the audio front end and encoder parity: tones, seeded noise, and espeak-ng speech
// when the espeak-ng binary is installed (apt-get install espeak-ng).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../src/models/synthetic.js";
import { toMono16k } from "../../src/audio/input.js";

export function tones(seconds: number): Float32Array {
  const n = Math.round(16000 * seconds), x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / 16000;
    x[i] = 0.3 * Math.sin(2 * Math.PI * 440 * t) + 0.1 * Math.sin(2 * Math.PI * 3100 * t) * Math.min(1, t * 4);
  }
  return x;
}

export function noise(seconds: number, seed = 5): Float32Array {
  const r = mulberry32(seed), n = Math.round(16000 * seconds), x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.2 * (r() - 0.5);
  return x;
}

/** espeak-ng's speech for `text` at 16 kHz (its 22.05 kHz WAV decoded and resampled), or why not. */
export function speech(text: string): Float32Array | string {
  const dir = mkdtempSync(join(tmpdir(), "lfm2-speech-"));
  try {
    execFileSync("espeak-ng", ["-w", join(dir, "s.wav"), text], { stdio: "ignore" });
    return toMono16k(new Uint8Array(readFileSync(join(dir, "s.wav"))));
  } catch (e) {
    return `espeak-ng is not available (${(e as Error).message.split("\n")[0]})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
