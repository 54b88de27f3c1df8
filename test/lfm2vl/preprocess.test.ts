// LFM2-VL preprocessing vs transformers.js 4.3.1's Lfm2VlImageProcessor (grids, tile shapes, prompt text,
// normalised patches) and, where it and Python differ, vs hand-derived Python values.
import { describe, expect, it } from "vitest";
import { Lfm2VlImageProcessor, Lfm2VlProcessor, RawImage } from "@huggingface/transformers";
import { encode as encodePng } from "fast-png";
import {
  expandImagePrompt, planImage, prepareTiles, resizeBilinear, roundHalfEven, smartResize, resolveImageOptions,
} from "../../src/models/lfm2vl/preprocess.js";
import { bytesFromDataUrl, decodeImageBytes, loadImage, rgbFromPixels } from "../../src/models/lfm2vl/image.js";
import { mulberry32 } from "../../src/models/synthetic.js";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const hfConfig = { do_normalize: true, do_rescale: true, rescale_factor: 1 / 255, image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5], do_resize: false };

async function hf(width: number, height: number, data?: Uint8Array, extra: Record<string, unknown> = {}) {
  const p = new Lfm2VlImageProcessor({ ...hfConfig, ...extra });
  const img = new RawImage(data ? new Uint8ClampedArray(data) : new Uint8ClampedArray(width * height * 3), width, height, 3);
  const r = await p(img, { return_row_col_info: true });
  return { p, r, rows: r.image_rows[0] as number, cols: r.image_cols[0] as number,
    shapes: (r.spatial_shapes.tolist() as bigint[][]).map((a) => a.map(Number)) };
}

function randomRgb(width: number, height: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const out = new Uint8Array(width * height * 3);
  // smooth gradients + noise, so resizes see structure and not just white noise
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    out[(y * width + x) * 3 + c] = Math.min(255, Math.floor(((x * (c + 1) + y * 2) % 200) + rand() * 55));
  }
  return out;
}

// Sizes where transformers.js is not Python: it uses Math.round (Python rounds half to even) and clamps each
// side up to 32 px before smart_resize (Python does not). Values: Python's, derived by hand from HF's code.
const PYTHON_ONLY: Record<string, { rows: number; cols: number; shapes: number[][] }> = {
  // 720/32 = 22.5 → 22 → 704² < 2·256·32² → one tile; then 704² > 256·32² → β = 720/512 → 512x512
  "720x720": { rows: 1, cols: 1, shapes: [[32, 32]] },
  // 336/32 = 10.5 → 10, 240/32 = 7.5 → 8: 320x256 (transformers.js and llama.cpp: 352x256)
  "336x240": { rows: 1, cols: 1, shapes: [[16, 20]] },
  "240x336": { rows: 1, cols: 1, shapes: [[20, 16]] },
  // 736/32 = 23, 720/32 = 22.5 → 22: 704·736 < 524288 → untiled, β = sqrt(720·736/262144) → 480x512
  "720x736": { rows: 1, cols: 1, shapes: [[32, 30]] },
  // 10 px side: h̄ = 32, w̄ = 992 < 64·32² → β = sqrt(65536/10000) → 32 x 2560 (transformers.js clamps 10 → 32 first)
  "10x1000": { rows: 1, cols: 1, shapes: [[160, 2]] },
  "1000x10": { rows: 1, cols: 1, shapes: [[2, 160]] },
};

const SIZES = [[1024, 768], [768, 1024], [2000, 500], [720, 720], [336, 240], [240, 336], [1, 1], [10, 10], [10, 1000],
  [1000, 10], [6000, 4000], [512, 512], [513, 512], [1000, 1000], [3000, 2000], [100, 3000], [48, 48], [80, 80],
  [800, 600], [1280, 720], [1920, 1080], [704, 704], [705, 705], [736, 736], [720, 736], [4000, 4000], [3000, 300]];

describe("LFM2-VL tile plan", () => {
  it("equals transformers.js' grids and tile shapes, and Python's where the two differ", async () => {
    for (const [w, h] of SIZES) {
      const plan = planImage(w, h);
      const ours = { rows: plan.rows, cols: plan.cols, shapes: plan.tiles.map((t) => [t.patchesH, t.patchesW]) };
      const ref = await hf(w, h);
      const key = `${w}x${h}`;
      if (PYTHON_ONLY[key]) {
        expect(ours, key).toEqual(PYTHON_ONLY[key]);
        expect({ rows: ref.rows, cols: ref.cols, shapes: ref.shapes }, `${key} is a known transformers.js difference`).not.toEqual(ours);
      } else {
        expect(ours, key).toEqual({ rows: ref.rows, cols: ref.cols, shapes: ref.shapes });
      }
      expect(plan.tokens).toBe(plan.tiles.reduce((s, t) => s + (t.patchesH / 2) * (t.patchesW / 2), 0));
    }
  }, 120_000);

  it("documents the headline sizes", () => {
    const summary = (w: number, h: number) => { const p = planImage(w, h); return `${p.cols}x${p.rows}:${p.tiles.length}:${p.tokens}`; };
    expect(summary(1024, 768)).toBe("3x2:7:1770");   // 6 tiles of 256 + a 576x416 thumbnail (234)
    expect(summary(2000, 500)).toBe("4x1:5:1280");
    expect(summary(720, 720)).toBe("1x1:1:256");
    expect(summary(336, 240)).toBe("1x1:1:80");
    expect(summary(1, 1)).toBe("1x1:1:64");
    expect(summary(16384, 16384)).toBe("3x3:10:2560");
  });

  it("honours the processor options like transformers.js", async () => {
    const cases: Array<Record<string, unknown>> = [
      { max_image_tokens: 128 }, { min_image_tokens: 32, max_image_tokens: 64 }, { do_image_splitting: false },
      { use_thumbnail: false }, { min_tiles: 1, max_tiles: 4 }, { max_tiles: 4 }, { max_pixels_tolerance: 1.0 },
    ];
    for (const opts of cases) {
      for (const [w, h] of [[1024, 768], [2000, 500], [300, 200], [1000, 1000]]) {
        const plan = planImage(w, h, opts);
        const ref = await hf(w, h, undefined, opts);
        expect({ rows: plan.rows, cols: plan.cols, shapes: plan.tiles.map((t) => [t.patchesH, t.patchesW]) },
          `${w}x${h} ${JSON.stringify(opts)}`).toEqual({ rows: ref.rows, cols: ref.cols, shapes: ref.shapes });
      }
    }
  }, 120_000);

  it("rejects bad options with BAD_INPUT", () => {
    for (const o of [{ min_image_tokens: 0 }, { min_image_tokens: 300 }, { min_tiles: 5, max_tiles: 2 }, { tile_size: 500 },
      { max_pixels_tolerance: 0 }, { image_std: [0.5, 0, 0.5] }]) {
      expect(() => planImage(100, 100, o), JSON.stringify(o)).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    }
  });

  it("rounds half to even like Python", () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, 10.5, 7.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -0, 10, 8, 2, 3]);
    expect(smartResize(240, 336, resolveImageOptions())).toEqual({ width: 320, height: 256 });
  });
});

describe("LFM2-VL prompt expansion", () => {
  it("is the text transformers.js' Lfm2VlProcessor writes", async () => {
    for (const [w, h] of [[1024, 768], [2000, 500], [512, 512], [100, 3000]]) {
      const { p } = await hf(w, h);
      const fake = { image_processor: p, config: {}, tokenizer: (text: string[]) => ({ text }) };
      const img = new RawImage(new Uint8ClampedArray(w * h * 3), w, h, 3);
      const out = await (Lfm2VlProcessor.prototype as any)._call.call(fake, img, "A<image>B");
      expect(out.text[0]).toBe(`A${expandImagePrompt(planImage(w, h))}B`);
    }
    const s = expandImagePrompt(planImage(1024, 768));
    expect(s.startsWith("<|image_start|><|img_row_1_col_1|><image>")).toBe(true);
    expect(s.split("<image>").length - 1).toBe(1770);
    expect(s).toContain("<|img_row_2_col_3|>");
    expect(s.endsWith("<image><|image_end|>")).toBe(true);
  }, 60_000);
});

describe("LFM2-VL pixels", () => {
  it("normalised patches equal transformers.js' where no resize is involved (conv order c,dy,dx vs HF dy,dx,c)", async () => {
    // 512x512: one untiled tile at its own size; 1024x1024: a 2x2 grid cut without resizing (thumbnail skipped)
    for (const [w, h] of [[512, 512], [1024, 1024]]) {
      const data = randomRgb(w, h, w);
      const { r } = await hf(w, h, data);
      const tiles = prepareTiles({ data, width: w, height: h }, planImage(w, h));
      const hfPixels = r.pixel_values.data as Float32Array;
      const [, maxPatches, dim] = r.pixel_values.dims as number[];
      const gridTiles = tiles.filter((t) => t.marker !== "<|img_thumbnail|>");
      for (let ti = 0; ti < gridTiles.length; ti++) {
        const t = gridTiles[ti];
        let maxDiff = 0;
        for (let pi = 0; pi < t.patchesH * t.patchesW; pi++) {
          for (let c = 0; c < 3; c++) for (let dy = 0; dy < 16; dy++) for (let dx = 0; dx < 16; dx++) {
            const ours = t.patches[pi * dim + c * 256 + dy * 16 + dx];
            const theirs = hfPixels[(ti * maxPatches + pi) * dim + (dy * 16 + dx) * 3 + c];
            maxDiff = Math.max(maxDiff, Math.abs(ours - theirs));
          }
        }
        expect(maxDiff, `${w}x${h} tile ${ti}`).toBeLessThan(1e-6);
      }
    }
  }, 60_000);

  it("resize: identity copies, constant images stay constant, shrink and enlarge keep the mean", () => {
    const src = { data: randomRgb(64, 48, 3), width: 64, height: 48 };
    expect(resizeBilinear(src, 64, 48).data).toEqual(src.data);
    const flat = { data: new Uint8Array(50 * 30 * 3).fill(77), width: 50, height: 30 };
    for (const [w, h] of [[17, 9], [128, 100], [50, 7], [3, 30]]) expect(resizeBilinear(flat, w, h).data.every((v) => v === 77)).toBe(true);
    const mean = (a: Uint8Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(Math.abs(mean(resizeBilinear(src, 32, 24).data) - mean(src.data))).toBeLessThan(1.5);
  });
});

describe("LFM2-VL image inputs", () => {
  it("decodes PNG (RGB, RGBA, grey, 16-bit, palette) to RGB", () => {
    const w = 7, h = 5;
    const rgb = randomRgb(w, h, 9);
    expect(decodeImageBytes(encodePng({ width: w, height: h, data: rgb, channels: 3, depth: 8 })).data).toEqual(rgb);
    const rgba = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 10 : rgb[Math.floor(i / 4) * 3 + (i % 4)]));
    expect(decodeImageBytes(encodePng({ width: w, height: h, data: rgba, channels: 4, depth: 8 })).data).toEqual(rgb);
    const grey = new Uint8Array(w * h).map((_, i) => i * 7);
    expect(decodeImageBytes(encodePng({ width: w, height: h, data: grey, channels: 1, depth: 8 })).data)
      .toEqual(new Uint8Array(w * h * 3).map((_, i) => grey[Math.floor(i / 3)]));
    const deep = new Uint16Array(w * h * 3).map((_, i) => rgb[i] * 257);
    expect(decodeImageBytes(encodePng({ width: w, height: h, data: deep, channels: 3, depth: 16 })).data).toEqual(rgb);
    const palette = [[255, 0, 0], [0, 128, 255], [9, 9, 9]];
    const idx = new Uint8Array(w * h).map((_, i) => i % 3);
    const pal = decodeImageBytes(encodePng({ width: w, height: h, data: idx, channels: 1, depth: 8, palette }));
    expect(Array.from(pal.data.subarray(0, 9))).toEqual([255, 0, 0, 0, 128, 255, 9, 9, 9]);
  });

  it("accepts RGBA pixels (ImageData), Blobs and data: URLs; rejects junk with BAD_INPUT", async () => {
    const rgba = { data: new Uint8ClampedArray([1, 2, 3, 255, 4, 5, 6, 0]), width: 2, height: 1 };
    expect(Array.from(rgbFromPixels(rgba).data)).toEqual([1, 2, 3, 4, 5, 6]);
    const png = encodePng({ width: 2, height: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6]), channels: 3, depth: 8 });
    expect(Array.from((await loadImage(new Blob([png as Uint8Array<ArrayBuffer>]))).data)).toEqual([1, 2, 3, 4, 5, 6]);
    const url = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
    expect(bytesFromDataUrl(url)).toEqual(png);
    const bad = [() => decodeImageBytes(new Uint8Array([1, 2, 3, 4])), () => decodeImageBytes(png.subarray(0, 30)),
      () => rgbFromPixels({ data: new Uint8Array(5), width: 2, height: 1 }), () => rgbFromPixels({ data: new Uint8Array(0), width: 0, height: 0 }),
      () => bytesFromDataUrl("https://example.com/a.png"), () => decodeImageBytes(new Uint8Array([0xff, 0xd8, 0xff, 0, 1, 2]))];
    for (const f of bad) expect(f).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
  });
});

// Pillow (Debian python3-pil, /usr/bin/python3) as the independent reference for the resize and decoders.
const PY = "/usr/bin/python3";
const pilReason = (() => {
  try { execFileSync(PY, ["-c", "import PIL"], { stdio: "ignore" }); return null; } catch { return `no Pillow for ${PY} (apt-get install python3-pil)`; }
})();
const photo = join(process.cwd(), ".cache/llama-tools/src/tools/mtmd/test-1.jpeg");

describe.skipIf(pilReason !== null)(`LFM2-VL vs Pillow ${pilReason ? `(skipped: ${pilReason})` : ""}`, () => {
  const pil = (script: string, ...args: string[]) => execFileSync(PY, ["-c", script, ...args], { maxBuffer: 1 << 28 });
  const RESIZE = `import sys; from PIL import Image
w,h,W,H=map(int,sys.argv[2:6]); im=Image.frombytes("RGB",(w,h),open(sys.argv[1],"rb").read())
sys.stdout.buffer.write(im.resize((W,H), Image.Resampling.BILINEAR).tobytes())`;

  it("resize is bit-identical to Image.resize(BILINEAR) on synthetic and real images", () => {
    const dir = mkdtempSync(join(tmpdir(), "lfm2vl-"));
    const inputs: Array<{ name: string; img: { data: Uint8Array; width: number; height: number } }> = [
      { name: "gradient 333x211", img: { data: randomRgb(333, 211, 5), width: 333, height: 211 } },
      { name: "noise 40x1000", img: { data: new Uint8Array(40 * 1000 * 3).map((_, i) => (i * 7919 + (i >> 5) * 31) % 256), width: 40, height: 1000 } },
    ];
    if (existsSync(photo)) {
      const raw = pil(`import sys; from PIL import Image; im=Image.open(sys.argv[1]).convert("RGB"); print(im.size[0], im.size[1]); sys.stdout.flush(); sys.stdout.buffer.write(im.tobytes())`, photo);
      const nl = raw.indexOf(10);
      const [w, h] = raw.subarray(0, nl).toString().split(" ").map(Number);
      inputs.push({ name: `photo ${w}x${h}`, img: { data: new Uint8Array(raw.subarray(nl + 1)), width: w, height: h } });
    }
    for (const { name, img } of inputs) {
      const file = join(dir, "in.rgb");
      writeFileSync(file, img.data);
      const plan = planImage(img.width, img.height);
      const targets = new Set([...plan.tiles.map((t) => `${t.resizeWidth}x${t.resizeHeight}`), "512x512", "17x301", "1000x37"]);
      for (const t of targets) {
        const [W, H] = t.split("x").map(Number);
        const ref = new Uint8Array(pil(RESIZE, file, String(img.width), String(img.height), String(W), String(H)));
        const ours = resizeBilinear(img, W, H).data;
        let diff = 0;
        for (let i = 0; i < ref.length; i++) if (ref[i] !== ours[i]) diff++;
        expect(diff, `${name} → ${t}: bytes differing from Pillow`).toBe(0);
      }
    }
  }, 120_000);

  it.skipIf(!existsSync(photo))("jpeg-js decodes llama.cpp's test-1.jpeg close to libjpeg (Pillow): mean |diff| < 1", () => {
    const raw = pil(`import sys; from PIL import Image; sys.stdout.buffer.write(Image.open(sys.argv[1]).convert("RGB").tobytes())`, photo);
    const ours = decodeImageBytes(new Uint8Array(readFileSync(photo)));
    expect(ours.data.length).toBe(raw.length);
    let max = 0, sum = 0;
    for (let i = 0; i < raw.length; i++) { const d = Math.abs(raw[i] - ours.data[i]); max = Math.max(max, d); sum += d; }
    // JPEG decoders legitimately differ in IDCT rounding and chroma upsampling (measured: max 14, mean 0.70)
    console.log(`jpeg-js vs libjpeg on ${ours.width}x${ours.height}: max |diff| ${max}, mean ${(sum / raw.length).toFixed(4)}`);
    expect(sum / raw.length).toBeLessThan(1);
  }, 60_000);
});
