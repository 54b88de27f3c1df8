// Encoder outputs (image tiles, audio clips) spliced into a text prompt. Each encoded item owns a range of
// ids past the vocabulary, one per embedding row, so a session's token history names media rows like any
// token: a later turn carrying the same item (same content → same ids) finds them in the prefix cache and is
// not re-run. The forward pass sessions see is the text trunk's, with those ids turned into their rows.
import { Lfm2Error } from "../errors.js";
import type { Lfm2Forward, StepInput } from "./lfm2/forward.js";

/** One encoded item: ids first … first + rows − 1 name its rows (rows × hiddenSize floats). */
export interface MediaItem { first: number; rows: number; embeddings: Float32Array }

/** Media ids start at the vocabulary size and span this many (far past any real id). */
const MEDIA_ID_SPAN = 1 << 26;

export class MediaRows {
  private byId: MediaItem[] = [];
  private nextId: number;
  private embScratch = 0;
  /** The text forward as sessions see it: media ids accepted and turned into their embedding rows. */
  readonly forward: Lfm2Forward;

  constructor(private fwd: Lfm2Forward) {
    this.nextId = fwd.cfg.vocabSize;
    const cfg = { ...fwd.cfg, vocabSize: fwd.cfg.vocabSize + MEDIA_ID_SPAN };
    const step = (input: StepInput, pos0: number, s: unknown, output?: unknown) => fwd.step(this.resolve(input), pos0, s as never, output as never);
    // every other member runs on the real forward (its own cfg); only the id bound and step differ
    this.forward = new Proxy(fwd, {
      get: (target, prop) => {
        if (prop === "cfg") return cfg;
        if (prop === "step") return step;
        if (prop === "isExtraId") return (id: number) => this.isMediaId(id);
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  get hiddenSize(): number { return this.fwd.cfg.hiddenSize; }

  /** Ids past the vocabulary that name rows of an encoded item. */
  isMediaId(id: number): boolean { return id >= this.fwd.cfg.vocabSize && id < this.nextId; }

  /** Give `rows` embedding rows (rows × hiddenSize floats, kept as given) their ids. */
  add(embeddings: Float32Array, rows: number): MediaItem {
    const D = this.fwd.cfg.hiddenSize, V = this.fwd.cfg.vocabSize;
    if (!(embeddings instanceof Float32Array) || embeddings.length !== rows * D) {
      throw new Lfm2Error("BAD_INPUT", `${rows} media rows need ${rows * D} floats of embeddings, got ${embeddings?.length}`);
    }
    if (this.nextId + rows > V + MEDIA_ID_SPAN) throw new Lfm2Error("OUT_OF_RANGE", "too many distinct images / audio clips for one model");
    const item: MediaItem = { first: this.nextId, rows, embeddings };
    for (let i = 0; i < rows; i++) this.byId[this.nextId - V + i] = item;
    this.nextId += rows;
    return item;
  }

  /** Row `id` of the token embedding matrix as f32 (what step() looks up for a token id). */
  private tokenEmbedding(id: number): Float32Array {
    const shard = this.fwd.place.shards[this.fwd.place.headShard], D = this.fwd.cfg.hiddenSize;
    if (!this.embScratch) this.embScratch = shard.arena.alloc(D * 4);
    shard.ops.rowToF32(this.fwd.w.embed, id, this.embScratch);
    return shard.arena.f32(this.embScratch, D);
  }

  /** A chunk of ids with media ids → its embeddings (token rows looked up in the embedding matrix). */
  private resolve(input: StepInput): StepInput {
    if ("embeddings" in input) return input;
    const ids = input as ArrayLike<number>, V = this.fwd.cfg.vocabSize, D = this.fwd.cfg.hiddenSize;
    let any = false;
    for (let i = 0; i < ids.length && !any; i++) any = ids[i] >= V;
    if (!any) return input;
    const out = new Float32Array(ids.length * D);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id < V) { out.set(this.tokenEmbedding(id), i * D); continue; }
      const item = this.byId[id - V];
      if (!item) throw new Lfm2Error("BAD_INPUT", `token id ${id} is neither in the vocabulary nor an encoded image / audio row`);
      const r = id - item.first;
      out.set(item.embeddings.subarray(r * D, (r + 1) * D), i * D);
    }
    return { embeddings: out };
  }
}

/** FNV-1a-style content hash (two lanes): the identity of an encoded item in a per-model cache. */
export function contentKey(bytes: ArrayLike<number>, salt: number): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ salt;
  for (let i = 0; i < bytes.length; i++) {
    h1 = Math.imul(h1 ^ bytes[i], 0x01000193);
    h2 = Math.imul(h2 ^ bytes[i] ^ (i & 0xff), 0x5bd1e995);
  }
  return `${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`;
}
