// Image inputs for LFM2-VL: anything a caller may hold → 8-bit RGB pixels. PNG and JPEG are decoded in pure
// JavaScript (fast-png, jpeg-js: no native code, so the same path runs in Node, Deno, workers and browsers);
// browser objects (ImageData, ImageBitmap, Blob) are read through the platform. Alpha is dropped, not
// composited, as PIL's convert("RGB") (HF) and stb_image's 3-channel load (llama.cpp) both do.
import { decode as decodePng, convertIndexedToRgb } from "fast-png";
import jpeg from "jpeg-js";
import { Lfm2Error } from "../../errors.js";

/** 8-bit RGB, row-major, 3 bytes a pixel. */
export interface RgbImage { data: Uint8Array; width: number; height: number }

/** Raw pixels: RGB (3 bytes a pixel) or RGBA (4), e.g. a browser ImageData. */
export interface RawPixels { data: Uint8Array | Uint8ClampedArray; width: number; height: number }

/** What `encodeImage` and chat image parts accept. */
export type ImageInput = RawPixels | Uint8Array | ArrayBuffer | Blob | ImageBitmapLike;

interface ImageBitmapLike { width: number; height: number; close(): void }

/** Largest side accepted (both decoders allocate the full image before we can refuse it). */
export const MAX_IMAGE_SIDE = 16384;

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Lfm2Error("BAD_INPUT", `image size must be positive integers, got ${width}x${height}`);
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new Lfm2Error("BAD_INPUT", `image ${width}x${height} exceeds ${MAX_IMAGE_SIDE} px per side`);
  }
}

/** RGB or RGBA pixels → RGB (alpha dropped). */
export function rgbFromPixels(px: RawPixels): RgbImage {
  const { width, height, data } = px;
  checkSize(width, height);
  const n = width * height;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw new Lfm2Error("BAD_INPUT", "image data must be a Uint8Array or Uint8ClampedArray");
  }
  if (data.length === n * 3) return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
  if (data.length !== n * 4) {
    throw new Lfm2Error("BAD_INPUT", `image data has ${data.length} bytes; ${width}x${height} needs ${n * 3} (RGB) or ${n * 4} (RGBA)`);
  }
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[i * 3] = data[j]; out[i * 3 + 1] = data[j + 1]; out[i * 3 + 2] = data[j + 2];
  }
  return { data: out, width, height };
}

const isPng = (b: Uint8Array) => b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** PNG (any bit depth, palette, grey, alpha) or JPEG (baseline/progressive) bytes → RGB. */
export function decodeImageBytes(bytes: Uint8Array): RgbImage {
  if (isPng(bytes)) {
    let png;
    try { png = decodePng(bytes); } catch (e) { throw new Lfm2Error("BAD_INPUT", `invalid PNG: ${(e as Error).message}`, { cause: e }); }
    checkSize(png.width, png.height);
    let data: ArrayLike<number> = png.data;
    let channels = png.channels;
    if (png.palette) { data = convertIndexedToRgb(png); channels = png.palette[0].length; }
    const n = png.width * png.height;
    const out = new Uint8Array(n * 3);
    // 16-bit samples → 8 bit as PIL does (high byte); grey → replicated
    const shift = png.depth === 16 ? 8 : 0;
    const scale = png.depth < 8 && !png.palette ? 255 / ((1 << png.depth) - 1) : 1;
    for (let i = 0; i < n; i++) {
      const s = i * channels;
      for (let c = 0; c < 3; c++) {
        const v = data[s + (channels >= 3 ? c : 0)];
        out[i * 3 + c] = scale === 1 ? v >> shift : Math.round(v * scale);
      }
    }
    return { data: out, width: png.width, height: png.height };
  }
  if (isJpeg(bytes)) {
    let img;
    try {
      img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 270, maxMemoryUsageInMB: 1024 });
    } catch (e) { throw new Lfm2Error("BAD_INPUT", `invalid JPEG: ${(e as Error).message}`, { cause: e }); }
    checkSize(img.width, img.height);
    return { data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.width * img.height * 3), width: img.width, height: img.height };
  }
  throw new Lfm2Error("BAD_INPUT", "image bytes are neither PNG nor JPEG");
}

/** Any accepted input → RGB. Blob and ImageBitmap need a browser-like platform (OffscreenCanvas for bitmaps). */
export async function loadImage(input: ImageInput): Promise<RgbImage> {
  if (input instanceof Uint8Array) return decodeImageBytes(input);
  if (input instanceof ArrayBuffer) return decodeImageBytes(new Uint8Array(input));
  if (typeof Blob !== "undefined" && input instanceof Blob) return decodeImageBytes(new Uint8Array(await input.arrayBuffer()));
  if (input && typeof input === "object" && "data" in input) return rgbFromPixels(input);
  if (input && typeof input === "object" && "close" in input && typeof OffscreenCanvas !== "undefined") {
    const { width, height } = input;
    checkSize(width, height);
    const ctx = new OffscreenCanvas(width, height).getContext("2d");
    if (!ctx) throw new Lfm2Error("BAD_INPUT", "no 2d canvas context to read the ImageBitmap");
    ctx.drawImage(input as unknown as CanvasImageSource, 0, 0);
    return rgbFromPixels(ctx.getImageData(0, 0, width, height));
  }
  throw new Lfm2Error("BAD_INPUT", "image must be PNG/JPEG bytes, a Blob, an ImageBitmap or { data, width, height } pixels");
}

/** `data:image/png;base64,...` (OpenAI image_url) → bytes. */
export function bytesFromDataUrl(url: string): Uint8Array {
  const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(url);
  if (!m) throw new Lfm2Error("BAD_INPUT", "image_url must be a data: URL (remote URLs are not fetched)");
  if (!m[2]) return new TextEncoder().encode(decodeURIComponent(m[3]));
  const bin = atob(m[3].replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
