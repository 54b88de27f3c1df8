// LFM2-VL vision encoder + projector vs llama.cpp v0.5.0's libmtmd (scripts/build-llama-tools.mjs → mtmd-dump) on the
// same synthetic mmproj and the same raw RGB pixels: token layout and projected embeddings per row.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concatChunks } from "../../src/formats/gguf-writer.js";
import { syntheticGguf } from "../../src/models/synthetic.js";
import { syntheticMmproj, visionConfigFromGguf } from "../../src/models/lfm2vl/mmproj.js";
import { loadVisionEncoder, type VisionEncoder } from "../../src/models/lfm2vl/encoder.js";
import { planImage } from "../../src/models/lfm2vl/preprocess.js";
import { parseGguf } from "../../src/formats/gguf.js";
import { Tokenizer } from "../../src/text/tokenizer.js";
import { llamaTool } from "../../scripts/build-llama-tools.mjs";

const mtmdDump = llamaTool("mtmd-dump");
const dump = mtmdDump.path ?? "";
const skipReason = mtmdDump.reason ?? null;
const TEXT = { hiddenSize: 64, nLayers: 2, nHeads: 4, nKv: 2, ffDim: 128, attn: [1], vocabSize: 2048 };
const VISION = { hiddenSize: 64, ffDim: 128, nLayers: 2, nHeads: 4, projHidden: 96, outDim: 64 };

function pixels(w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  // a hash pattern with a slow gradient: every resize tap and patch sees different values
  for (let i = 0; i < rgb.length; i++) rgb[i] = ((Math.imul(i, 2654435761) >>> 24) ^ ((i / 3 / w) & 0xff)) & 0xff;
  return rgb;
}

interface Ref { chunks: Array<{ type: string; tokens?: number[]; n_tokens?: number }>; embd: Float32Array }

describe.skipIf(skipReason !== null)(`LFM2-VL encoder vs llama.cpp libmtmd${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  let dir: string;
  let tok: Tokenizer;
  const encoders = new Map<string, VisionEncoder>();
  const textPath = () => join(dir, "text.gguf");

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lfm2vl-enc-"));
    const text = concatChunks(syntheticGguf({ shape: TEXT, weightType: "F32", seed: 3 }));
    writeFileSync(textPath(), text);
    tok = Tokenizer.fromGguf(parseGguf(text).metadata);
  });
  afterAll(() => { for (const e of encoders.values()) e.dispose(); rmSync(dir, { recursive: true, force: true }); });

  async function mmproj(weightType: "F32" | "F16" | "Q8_0", nLayers = VISION.nLayers) {
    const key = `${weightType}-${nLayers}`;
    const path = join(dir, `mmproj-${key}.gguf`);
    if (!encoders.has(key)) {
      const bytes = concatChunks(syntheticMmproj({ shape: { ...VISION, nLayers }, weightType, seed: 5 }));
      writeFileSync(path, bytes);
      encoders.set(key, await loadVisionEncoder(bytes));
    }
    return { path, enc: encoders.get(key)! };
  }

  function reference(mm: string, w: number, h: number): Ref {
    const img = join(dir, `img-${w}x${h}.rgb`);
    writeFileSync(img, pixels(w, h));
    const out = join(dir, `out-${w}x${h}`);
    execFileSync(dump, [textPath(), mm, img, String(w), String(h), out, "1"], { stdio: "ignore" });
    const js = JSON.parse(readFileSync(`${out}.json`, "utf8"));
    const bin = readFileSync(`${out}.bin`);
    return { chunks: js.chunks, embd: new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4) };
  }

  /** llama.cpp's layout as text token ids with each image chunk as that many <image> ids. */
  function refLayout(r: Ref): number[] {
    const image = tok.tokenId("<image>")!;
    return r.chunks.flatMap((c) => (c.type === "text" ? c.tokens! : Array(c.n_tokens!).fill(image)));
  }
  const ourLayout = (w: number, h: number) => {
    const plan = planImage(w, h);
    const ids: number[] = [tok.tokenId("<|image_start|>")!];
    for (const t of plan.tiles) {
      if (t.marker) ids.push(tok.tokenId(t.marker)!);
      for (let i = 0; i < t.tokens; i++) ids.push(tok.tokenId("<image>")!);
    }
    ids.push(tok.tokenId("<|image_end|>")!);
    return ids;
  };

  function maxDiff(a: Float32Array, b: Float32Array) {
    let abs = 0, scale = 0;
    for (let i = 0; i < b.length; i++) { abs = Math.max(abs, Math.abs(a[i] - b[i])); scale = Math.max(scale, Math.abs(b[i])); }
    return { abs, scale };
  }

  // F32/F16 weights: what remains is fp16 rounding of the patch-embedding input (both), of K/V and Q in attention
  // (ours: the fp16 cache; llama.cpp: flash attention casts), GELU through an fp16 table (both), and summation order
  const TOL = { F32: 4e-3, F16: 4e-3, Q8_0: 8e-2 } as const;
  const cases: Array<[number, number, string]> = [
    [512, 512, "one tile, position grid 16→32"], [256, 256, "one tile, position grid as stored"],
    [1152, 768, "3x2 tiles + thumbnail"], [2048, 512, "4x1 tiles + thumbnail"], [100, 300, "small, upscaled"],
  ];
  for (const [w, h, what] of cases) {
    it(`${w}x${h} (${what}): same token layout, embeddings within ${TOL.F32}`, async () => {
      const { path, enc } = await mmproj("F32");
      const ref = reference(path, w, h);
      expect(ourLayout(w, h)).toEqual(refLayout(ref));
      const ours = await enc.encode({ data: pixels(w, h), width: w, height: h });
      expect(ours.rows * 64).toBe(ref.embd.length);
      const d = maxDiff(ours.embeddings, ref.embd);
      console.log(`${w}x${h} F32: max |diff| ${d.abs.toExponential(2)} (values up to ${d.scale.toFixed(2)})`);
      expect(d.abs).toBeLessThan(TOL.F32);
    }, 120_000);
  }

  for (const wt of ["F16", "Q8_0"] as const) {
    it(`${wt} weights through Ops.matmul: embeddings within ${TOL[wt]}`, async () => {
      const { path, enc } = await mmproj(wt);
      const ref = reference(path, 512, 512);
      const ours = await enc.encode({ data: pixels(512, 512), width: 512, height: 512 });
      const d = maxDiff(ours.embeddings, ref.embd);
      console.log(`512x512 ${wt}: max |diff| ${d.abs.toExponential(2)} (values up to ${d.scale.toFixed(2)})`);
      expect(d.abs).toBeLessThan(TOL[wt]);
    }, 120_000);
  }

  it("documents where llama.cpp v0.5.0 is not HF: rounding at .5 (336x240) and letterboxed tiles (1024x768)", async () => {
    const { path, enc } = await mmproj("F32");
    // 336x240: llama.cpp rounds 10.5 up (352x256, 88 tokens); HF/Python rounds to even (320x256, 80 tokens)
    const r1 = reference(path, 336, 240);
    expect(r1.chunks.find((c) => c.type === "image")!.n_tokens).toBe(88);
    expect(planImage(336, 240).tokens).toBe(80);
    // 1024x768 → 3x2 grid: same layout, but llama.cpp pads the refined image (aspect kept, PAD_CEIL) where HF
    // stretches it to 1536x1024, so tile pixels differ; the thumbnail (no padding in either) still matches
    const r2 = reference(path, 1024, 768);
    expect(ourLayout(1024, 768)).toEqual(refLayout(r2));
    const ours = await enc.encode({ data: pixels(1024, 768), width: 1024, height: 768 });
    const thumb = 6 * 256 * 64;
    expect(maxDiff(ours.embeddings.subarray(thumb), r2.embd.subarray(thumb)).abs).toBeLessThan(TOL.F32);
    expect(maxDiff(ours.embeddings.subarray(0, thumb), r2.embd.subarray(0, thumb)).abs).toBeGreaterThan(0.1);
  }, 120_000);
});

describe("LFM2-VL mmproj metadata", () => {
  it("reads the synthetic file's config and rejects wrong architectures and missing keys", () => {
    const f = parseGguf(concatChunks(syntheticMmproj({ shape: VISION, weightType: "F32" })));
    const c = visionConfigFromGguf(f.metadata, f.tensors);
    expect(c).toMatchObject({ hiddenSize: 64, nLayers: 2, nHeads: 4, headDim: 16, scaleFactor: 2, projHidden: 96, outDim: 64,
      activation: "gelu", posSide: 16, hasInputNorm: true, hasPostNorm: true });
    const bad = (edit: (m: Map<string, unknown>) => void, code: string) => {
      const m = new Map(f.metadata as Map<string, unknown>);
      edit(m);
      expect(() => visionConfigFromGguf(m as never, f.tensors)).toThrow(expect.objectContaining({ code }));
    };
    bad((m) => m.set("general.architecture", "lfm2"), "UNSUPPORTED_ARCH");
    bad((m) => m.set("clip.projector_type", "idefics3"), "UNSUPPORTED_ARCH");
    bad((m) => m.delete("clip.vision.image_mean"), "BAD_METADATA");
    bad((m) => m.delete("clip.vision.projector.scale_factor"), "BAD_METADATA");
    bad((m) => m.set("clip.vision.attention.head_count", 5), "BAD_METADATA");
    expect(() => visionConfigFromGguf(f.metadata, f.tensors.filter((t) => t.name !== "mm.2.weight")))
      .toThrow(expect.objectContaining({ code: "MISSING_TENSOR" }));
  });
});
