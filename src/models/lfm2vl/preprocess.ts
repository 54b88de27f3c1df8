// LFM2-VL image preprocessing, as Hugging Face's Lfm2VlImageProcessor (Python) does it: smart resize to
// multiples of patch × downsample, the tile decision and grid (512-px tiles + a thumbnail), the resize itself
// (PIL's antialiased bilinear on 8-bit pixels, which llama.cpp v0.5.0 ports bit for bit), normalisation,
// patchify and the prompt expansion. Rounding follows Python (round half to even); llama.cpp rounds half
// away from zero (std::round in float) and transformers.js uses Math.round, so exact .5 cases (e.g. 336x240)
// differ there — see test/lfm2vl-preprocess.test.ts.
import { Lfm2Error } from "../../errors.js";
import type { RgbImage } from "./image.js";

/** Processor options, named as in HF's preprocessor_config.json. */
export interface Lfm2VlImageOptions {
  /** Fewest tokens a single (non-tiled) image or thumbnail gets (64). */
  min_image_tokens?: number;
  /** Most tokens a single image or thumbnail gets (256); also the tiling threshold. */
  max_image_tokens?: number;
  do_image_splitting?: boolean;
  min_tiles?: number;
  max_tiles?: number;
  use_thumbnail?: boolean;
  tile_size?: number;
  /** Tile when the rounded size exceeds max_image_tokens' pixels by this factor (2.0). */
  max_pixels_tolerance?: number;
  encoder_patch_size?: number;
  downsample_factor?: number;
  image_mean?: number[];
  image_std?: number[];
}

export type ResolvedImageOptions = Required<Lfm2VlImageOptions>;

export const DEFAULT_IMAGE_OPTIONS: ResolvedImageOptions = {
  min_image_tokens: 64, max_image_tokens: 256, do_image_splitting: true, min_tiles: 2, max_tiles: 10,
  use_thumbnail: true, tile_size: 512, max_pixels_tolerance: 2.0, encoder_patch_size: 16, downsample_factor: 2,
  image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
};

export function resolveImageOptions(opts: Lfm2VlImageOptions = {}): ResolvedImageOptions {
  const o = { ...DEFAULT_IMAGE_OPTIONS };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  const posInt = (k: keyof ResolvedImageOptions) => {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < 1) throw new Lfm2Error("BAD_INPUT", `${k} must be a positive integer, got ${v}`);
  };
  for (const k of ["min_image_tokens", "max_image_tokens", "min_tiles", "max_tiles", "tile_size",
    "encoder_patch_size", "downsample_factor"] as const) posInt(k);
  if (o.min_image_tokens > o.max_image_tokens) throw new Lfm2Error("BAD_INPUT", "min_image_tokens > max_image_tokens");
  if (o.min_tiles > o.max_tiles) throw new Lfm2Error("BAD_INPUT", "min_tiles > max_tiles");
  if (o.tile_size % (o.encoder_patch_size * o.downsample_factor) !== 0) {
    throw new Lfm2Error("BAD_INPUT", "tile_size must be a multiple of encoder_patch_size * downsample_factor");
  }
  if (!(o.max_pixels_tolerance > 0)) throw new Lfm2Error("BAD_INPUT", "max_pixels_tolerance must be > 0");
  if (o.image_mean.length < 3 || o.image_std.length < 3 || o.image_std.some((s) => !(s > 0))) {
    throw new Lfm2Error("BAD_INPUT", "image_mean/image_std need 3 values (std > 0)");
  }
  return o;
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** HF smart_resize: both sides multiples of patch·downsample, pixel count within the token bounds. */
export function smartResize(height: number, width: number, o: ResolvedImageOptions): { width: number; height: number } {
  const f = o.encoder_patch_size * o.downsample_factor;
  const minPixels = o.min_image_tokens * f * f;
  const maxPixels = o.max_image_tokens * f * f;
  let h = Math.max(f, roundHalfEven(height / f) * f);
  let w = Math.max(f, roundHalfEven(width / f) * f);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(f, Math.floor(height / beta / f) * f);
    w = Math.max(f, Math.floor(width / beta / f) * f);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / f) * f;
    w = Math.ceil((width * beta) / f) * f;
  }
  return { width: w, height: h };
}

function isTooLarge(height: number, width: number, o: ResolvedImageOptions): boolean {
  const f = o.encoder_patch_size * o.downsample_factor;
  const h = Math.max(o.encoder_patch_size, roundHalfEven(height / f) * f);
  const w = Math.max(o.encoder_patch_size, roundHalfEven(width / f) * f);
  return h * w > o.max_image_tokens * f * f * o.max_pixels_tolerance;
}

/** (cols, rows) pairs with min_tiles ≤ cols·rows ≤ max_tiles, in HF's order (stable sort by area). */
function targetRatios(minTiles: number, maxTiles: number): Array<[number, number]> {
  const seen = new Set<string>();
  const out: Array<[number, number]> = [];
  for (let n = minTiles; n <= maxTiles; n++) {
    for (let w = 1; w <= n; w++) {
      for (let h = 1; h <= n; h++) {
        if (w * h >= minTiles && w * h <= maxTiles && !seen.has(`${w},${h}`)) { seen.add(`${w},${h}`); out.push([w, h]); }
      }
    }
  }
  return out.sort((a, b) => a[0] * a[1] - b[0] * b[1]);
}

function gridLayout(height: number, width: number, o: ResolvedImageOptions): { cols: number; rows: number } {
  const aspect = width / height;
  const area = width * height;
  let bestDiff = Infinity;
  let best: [number, number] = [1, 1];
  for (const r of targetRatios(o.min_tiles, o.max_tiles)) {
    const diff = Math.abs(aspect - r[0] / r[1]);
    if (diff < bestDiff) { bestDiff = diff; best = r; } else if (diff === bestDiff && area > 0.5 * o.tile_size * o.tile_size * r[0] * r[1]) best = r;
  }
  return { cols: best[0], rows: best[1] };
}

/** One encoder input: a crop of a resized image, its prompt marker, and its token grid. */
export interface TilePlan {
  /** `<|img_row_R_col_C|>`, `<|img_thumbnail|>`, or null for a single untiled image. */
  marker: string | null;
  /** The resized image this tile is cut from, and the crop. */
  resizeWidth: number; resizeHeight: number; x: number; y: number; width: number; height: number;
  /** Encoder patches (height/patch × width/patch) and output tokens after the ×downsample unshuffle. */
  patchesH: number; patchesW: number; tokensH: number; tokensW: number; tokens: number;
}

export interface ImagePlan { rows: number; cols: number; tiles: TilePlan[]; tokens: number }

/** The tile decision, grid, thumbnail and token counts for an image of this size (no pixels touched). */
export function planImage(width: number, height: number, opts: Lfm2VlImageOptions | ResolvedImageOptions = {}): ImagePlan {
  const o = resolveImageOptions(opts);
  const p = o.encoder_patch_size, d = o.downsample_factor;
  const tile = (marker: string | null, rw: number, rh: number, x: number, y: number, w: number, h: number): TilePlan => {
    const patchesH = Math.floor(h / p), patchesW = Math.floor(w / p);
    const tokensH = Math.ceil(patchesH / d), tokensW = Math.ceil(patchesW / d);
    return { marker, resizeWidth: rw, resizeHeight: rh, x, y, width: w, height: h, patchesH, patchesW, tokensH, tokensW,
      tokens: tokensH * tokensW };
  };
  const thumb = smartResize(height, width, o);
  const splitting = o.do_image_splitting && !(o.min_tiles === 1 && o.max_tiles === 1);
  let tiles: TilePlan[];
  let rows = 1, cols = 1;
  if (splitting && isTooLarge(height, width, o)) {
    ({ rows, cols } = gridLayout(height, width, o));
    const tw = o.tile_size * cols, th = o.tile_size * rows;
    tiles = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        tiles.push(tile(`<|img_row_${r + 1}_col_${c + 1}|>`, tw, th, c * o.tile_size, r * o.tile_size, o.tile_size, o.tile_size));
      }
    }
    if (o.use_thumbnail && rows * cols !== 1) tiles.push(tile("<|img_thumbnail|>", thumb.width, thumb.height, 0, 0, thumb.width, thumb.height));
  } else {
    tiles = [tile(null, thumb.width, thumb.height, 0, 0, thumb.width, thumb.height)];
  }
  // a 1x1 grid (min_tiles 1) carries its row/col marker in HF only when tiled; keep HF's text exactly
  if (rows === 1 && cols === 1 && tiles.length === 1) tiles[0].marker = null;
  return { rows, cols, tiles, tokens: tiles.reduce((s, t) => s + t.tokens, 0) };
}

/** The prompt text HF's Lfm2VlProcessor puts in place of one `<image>`: markers plus one `<image>` per token. */
export function expandImagePrompt(plan: ImagePlan, imageToken = "<image>"): string {
  let s = "<|image_start|>";
  for (const t of plan.tiles) s += (t.marker ?? "") + imageToken.repeat(t.tokens);
  return s + "<|image_end|>";
}

/**
 * PIL's Image.resize(BILINEAR) on 8-bit RGB (Resample.c): separable, triangle filter widened by the scale when
 * shrinking (antialiasing), weights normalised then fixed-point with 22 fractional bits, horizontal pass first.
 */
export function resizeBilinear(src: RgbImage, width: number, height: number): RgbImage {
  if (width === src.width && height === src.height) return { data: src.data.slice(), width, height };
  const PREC = 22;
  const coeffs = (inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    const filterscale = Math.max(1, scale);
    const support = filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const k = new Int32Array(outSize * ksize);
    const pre = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xcnt = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      let ww = 0;
      for (let x = 0; x < xcnt; x++) {
        const t = Math.abs((x + xmin - center + 0.5) * ss);
        pre[x] = t < 1 ? 1 - t : 0;
        ww += pre[x];
      }
      for (let x = 0; x < xcnt; x++) {
        const w = ww !== 0 ? pre[x] / ww : pre[x];
        k[xx * ksize + x] = Math.trunc(w * 2 ** PREC + (w < 0 ? -0.5 : 0.5));
      }
      bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xcnt;
    }
    return { ksize, bounds, k };
  };
  const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  const half = 1 << (PREC - 1);
  let cur = src.data, curW = src.width;
  if (width !== src.width) {
    const { ksize, bounds, k } = coeffs(src.width, width);
    const out = new Uint8Array(width * src.height * 3);
    for (let y = 0; y < src.height; y++) {
      const row = y * src.width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2], xcnt = bounds[xx * 2 + 1], kk = xx * ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0, p = row + xmin * 3; x < xcnt; x++, p += 3) {
          const w = k[kk + x];
          s0 += cur[p] * w; s1 += cur[p + 1] * w; s2 += cur[p + 2] * w;
        }
        const o = (y * width + xx) * 3;
        out[o] = clip8(s0 >> PREC); out[o + 1] = clip8(s1 >> PREC); out[o + 2] = clip8(s2 >> PREC);
      }
    }
    cur = out; curW = width;
  }
  if (height !== src.height) {
    const { ksize, bounds, k } = coeffs(src.height, height);
    const rowLen = curW * 3;
    const out = new Uint8Array(rowLen * height);
    const acc = new Int32Array(rowLen);
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2], ycnt = bounds[yy * 2 + 1], kk = yy * ksize;
      acc.fill(half);
      for (let y = 0; y < ycnt; y++) {
        const w = k[kk + y], r = (ymin + y) * rowLen;
        for (let i = 0; i < rowLen; i++) acc[i] += cur[r + i] * w;
      }
      for (let i = 0, o = yy * rowLen; i < rowLen; i++) out[o + i] = clip8(acc[i] >> PREC);
    }
    cur = out;
  }
  return { data: cur, width, height };
}

/** One tile ready for the encoder: normalised patches, each 3·p·p values in conv-kernel order (c, dy, dx). */
export interface PreparedTile extends TilePlan { patches: Float32Array }

/**
 * Resize, crop, normalise and patchify every tile of `plan`. Patch values are ordered (channel, row, col) — the
 * order of the GGUF patch-embedding kernel {p, p, 3, C}, so the embedding is one matmul; patches run row-major.
 */
export function prepareTiles(img: RgbImage, plan: ImagePlan, opts: Lfm2VlImageOptions | ResolvedImageOptions = {}): PreparedTile[] {
  const o = resolveImageOptions(opts);
  const p = o.encoder_patch_size;
  const resized = new Map<string, RgbImage>();
  return plan.tiles.map((t) => {
    const key = `${t.resizeWidth}x${t.resizeHeight}`;
    let r = resized.get(key);
    if (!r) { r = resizeBilinear(img, t.resizeWidth, t.resizeHeight); resized.set(key, r); }
    // (v/255 − mean)/std in f32, the order HF and llama.cpp use; one table per channel and byte value
    const lut = [0, 1, 2].map((c) => {
      const mean = Math.fround(o.image_mean[c]), std = Math.fround(o.image_std[c]);
      return Float32Array.from({ length: 256 }, (_, v) => Math.fround(Math.fround(v / 255) - mean) / std);
    });
    const dim = 3 * p * p;
    const patches = new Float32Array(t.patchesH * t.patchesW * dim);
    for (let py = 0; py < t.patchesH; py++) {
      for (let px = 0; px < t.patchesW; px++) {
        const base = (py * t.patchesW + px) * dim;
        for (let c = 0; c < 3; c++) {
          for (let dy = 0; dy < p; dy++) {
            const src = ((t.y + py * p + dy) * r.width + t.x + px * p) * 3 + c;
            const dst = base + c * p * p + dy * p;
            const table = lut[c];
            for (let dx = 0; dx < p; dx++) patches[dst + dx] = table[r.data[src + dx * 3]];
          }
        }
      }
    }
    return { ...t, patches };
  });
}
