// The LFM2.5-Audio detokenizer's code-embedding step (mean of the 8 codebooks' rows, then ×6 in time) against
// torch's nn.Embedding + mean + F.interpolate("nearest-exact"), as liquid-audio's detokenizer applies them.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { AudioDetokenizer, readCodeEmbeddings } from "../../src/models/lfm2audio/detokenizer.js";
import { syntheticDetokenizerGguf, syntheticVocoderGguf } from "../../src/models/lfm2audio/synthetic-out.js";
import { mulberry32 } from "../../src/models/synthetic.js";

const python = ["/usr/bin/python3", "python3"].find((py) => {
  try { execFileSync(py, ["-c", "import torch"], { stdio: "ignore" }); return true; } catch { return false; }
});
const dir = mkdtempSync(join(tmpdir(), "lfm2-codeemb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!python)(`detokenizer code embedding vs torch (${python ?? "no python with torch: apt-get install python3-torch"})`, () => {
  it("mean of the 8 codebook rows, each frame repeated 6 times in order: = torch within f32 rounding", async () => {
    const detokPath = join(dir, "detok.gguf");
    writeFileSync(detokPath, Buffer.concat(syntheticDetokenizerGguf({})));
    const { table, dim } = readCodeEmbeddings(Buffer.concat(syntheticVocoderGguf(64)));
    const m = await loadModel(detokPath, { threads: 1 });
    try {
      const d = new AudioDetokenizer(m.forwardPass, table);
      const frames = 7, r = mulberry32(5), codes = Int32Array.from({ length: frames * 8 }, () => Math.floor(r() * 2048));
      codes[3] = 0; codes[8 + 7] = 2047; // first and last rows of a codebook
      const ours = new Float32Array(frames * 6 * dim);
      for (let f = 0; f < frames; f++) ours.set(d.frameInput(codes.subarray(f * 8, f * 8 + 8)), f * 6 * dim);
      writeFileSync(join(dir, "table.f32"), new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
      writeFileSync(join(dir, "codes.i32"), new Uint8Array(codes.buffer));
      execFileSync(python!, [join(__dirname, "torch_code_embedding.py"), join(dir, "table.f32"), String(dim),
        join(dir, "codes.i32"), String(frames), join(dir, "out.f32")]);
      const b = readFileSync(join(dir, "out.f32")), ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      expect(ref.length).toBe(ours.length);
      let worst = 0, peak = 0;
      for (let i = 0; i < ref.length; i++) { worst = Math.max(worst, Math.abs(ours[i] - ref[i])); peak = Math.max(peak, Math.abs(ref[i])); }
      expect(peak).toBeGreaterThan(0.05);
      expect(worst).toBeLessThan(1e-6 * Math.max(1, peak));
    } finally { m.dispose(); }
  }, 60_000);
});
