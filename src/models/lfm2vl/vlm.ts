// LFM2-VL on top of a loaded LFM2 text model: images become rows of projected embeddings fed to the text
// tower in place of token embeddings (src/models/media.ts gives each encoded image its ids past the
// vocabulary, one per row, so a later turn carrying the same image is served from the prefix cache).
import { Lfm2Error } from "../../errors.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import { bytesFromDataUrl, loadImage, type ImageInput, type RgbImage } from "./image.js";
import type { Lfm2VlImageOptions } from "./preprocess.js";
import type { VisionEncoder } from "./encoder.js";
import { contentKey, type MediaItem, type MediaRows } from "../media.js";

/** What `model.encodeImage` returns. */
export interface ImageEmbedding {
  /** This image's prompt tokens in order: markers as their ids, one `<image>` id per embeddings row. */
  tokens: number[];
  /** rows × the text model's hidden size. */
  embeddings: Float32Array;
  rows: number;
  /** Tiles (cols × rows) and whether a thumbnail follows them. */
  grid: { cols: number; rows: number; thumbnail: boolean };
}

interface Entry { item: MediaItem; tokens: number[]; sessionTokens: number[] }

/** The identity of an encoded image: its pixels and the options it was encoded with. */
const imageKey = (img: RgbImage, opts: Lfm2VlImageOptions) =>
  `${img.width}x${img.height}:${contentKey(img.data, img.width)}:${JSON.stringify(opts)}`;

export class VisionLanguage {
  private entries = new Map<string, Entry>();

  constructor(readonly encoder: VisionEncoder, private media: MediaRows, private tok: Tokenizer, readonly imageOptions: Lfm2VlImageOptions = {}) {
    if (encoder.config.outDim !== media.hiddenSize) {
      throw new Lfm2Error("SHAPE_MISMATCH", `the mmproj projects to ${encoder.config.outDim} but the text model's hidden size is ${media.hiddenSize}`);
    }
    for (const t of ["<image>", "<|image_start|>", "<|image_end|>", "<|img_thumbnail|>"]) {
      if (tok.tokenId(t) === undefined) throw new Lfm2Error("BAD_METADATA", `the text model's vocabulary has no ${t} (not an LFM2-VL text tower)`);
    }
  }

  private async entry(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<Entry> {
    const img = await loadImage(input);
    const { signal, ...o } = { ...this.imageOptions, ...opts };
    const key = imageKey(img, o);
    const have = this.entries.get(key);
    if (have) return have;
    const enc = await this.encoder.encode(img as never, { ...o, signal });
    const item = this.media.add(enc.embeddings, enc.rows);
    const id = (t: string) => this.tok.tokenId(t)!;
    const tokens: number[] = [id("<|image_start|>")], sessionTokens: number[] = [id("<|image_start|>")];
    let row = item.first;
    for (const t of enc.plan.tiles) {
      if (t.marker) { tokens.push(id(t.marker)); sessionTokens.push(id(t.marker)); }
      for (let i = 0; i < t.tokens; i++) { tokens.push(id("<image>")); sessionTokens.push(row++); }
    }
    tokens.push(id("<|image_end|>")); sessionTokens.push(id("<|image_end|>"));
    const e: Entry = { item, tokens, sessionTokens };
    this.entries.set(key, e);
    return e;
  }

  /** Encode an image: its prompt tokens and projected embeddings (cached by content). */
  async encodeImage(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<ImageEmbedding> {
    const e = await this.entry(input, opts);
    const marker = (t: number) => this.tok.tokenText(t);
    const tiles = e.tokens.filter((t) => /^<\|img_row_/.test(marker(t))).length;
    const rowMarkers = e.tokens.filter((t) => /^<\|img_row_/.test(marker(t)));
    const last = rowMarkers[rowMarkers.length - 1];
    const m = last === undefined ? null : /^<\|img_row_(\d+)_col_(\d+)\|>$/.exec(marker(last));
    return { tokens: e.tokens.slice(), embeddings: e.item.embeddings.slice(), rows: e.item.rows,
      grid: { cols: m ? Number(m[2]) : 1, rows: m ? Number(m[1]) : 1, thumbnail: tiles > 0 && e.tokens.some((t) => marker(t) === "<|img_thumbnail|>") } };
  }

  /** The ids a session holds for this image: markers, then one image id per embedding row. */
  async sessionTokens(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<number[]> {
    return (await this.entry(input, opts)).sessionTokens.slice();
  }

  /**
   * Register precomputed image rows (e.g. stored from an earlier encodeImage, or another encoder's) under the
   * prompt tokens they belong to — `tokens` as encodeImage returns them — and get the ids a session feeds.
   */
  addEmbeddings(tokens: readonly number[], embeddings: Float32Array): number[] {
    const imageId = this.tok.tokenId("<image>")!;
    const item = this.media.add(embeddings instanceof Float32Array ? embeddings.slice() : embeddings, tokens.filter((t) => t === imageId).length);
    let row = item.first;
    return tokens.map((t) => (t === imageId ? row++ : t));
  }

  /** An image content part → the ids a session holds for it; null for parts that are not images. */
  async resolvePart(part: unknown, signal?: AbortSignal): Promise<number[] | null> {
    if (!isImagePart(part)) return null;
    return (await this.entry(imageOf(part), { signal })).sessionTokens.slice();
  }
}

function isImagePart(p: unknown): boolean {
  if (!p || typeof p !== "object") return false;
  const t = (p as { type?: unknown }).type;
  return t === "image" || t === "image_url" || t === "input_image";
}

/** `{type:"image", image}` or OpenAI's `{type:"image_url", image_url:{url:"data:..."}}` → an input. */
function imageOf(p: unknown): ImageInput {
  const part = p as { type: string; image?: unknown; image_url?: unknown };
  if (part.type === "image") {
    if (typeof part.image === "string") return bytesFromDataUrl(part.image);
    if (part.image === undefined || part.image === null) throw new Lfm2Error("BAD_INPUT", "an image part needs `image`");
    return part.image as ImageInput;
  }
  const u = part.image_url;
  const url = typeof u === "string" ? u : (u as { url?: unknown } | undefined)?.url;
  if (typeof url !== "string") throw new Lfm2Error("BAD_INPUT", "an image_url part needs image_url.url");
  return bytesFromDataUrl(url);
}
