// An in-memory late-interaction index: every document's per-token vectors (f32, or int8 with one scale
// per row), searched by MaxSim against a query's vectors (exhaustive, exact for f32). Pooled models
// store one row per document, so MaxSim is the dot product. save()/load() round-trip the bytes.
import { Lfm2Error } from "../../errors.js";
import type { Embedding } from "./encoder.js";

/** What an index needs from a model (Model implements it). */
export interface RetrievalEncoder {
  embedQuery(text: string): Promise<Embedding> | Embedding;
  embedDocuments(texts: string[]): Promise<Embedding[]> | Embedding[];
}

export interface IndexOptions {
  /** "int8": one signed byte per value plus an f32 scale per row (≈ 4× smaller); "none" (default): f32. */
  quantize?: "int8" | "none";
}

export interface SearchHit { id: number; score: number }

const MAGIC = 0x49464c4c; // "LLFI" little-endian
const VERSION = 1;

export class LateInteractionIndex {
  readonly quantize: "int8" | "none";
  private dim = 0;
  private rowCount = 0;
  private f32 = new Float32Array(0);
  private i8 = new Int8Array(0);
  private scales = new Float32Array(0);
  /** Document d's rows are [offsets[d], offsets[d + 1]). */
  private offsets: number[] = [0];

  constructor(private enc: RetrievalEncoder | null, opts: IndexOptions = {}) {
    const q = opts.quantize ?? "none";
    if (q !== "int8" && q !== "none") throw new Lfm2Error("BAD_INPUT", `quantize must be "int8" or "none", got ${String(q)}`);
    this.quantize = q;
  }

  get size(): number { return this.offsets.length - 1; }
  /** Bytes held for the vectors (and scales). */
  get bytes(): number { return this.quantize === "int8" ? this.rowCount * (this.dim + 4) : this.rowCount * this.dim * 4; }

  /** Encode and add documents; returns their ids (consecutive, from size). */
  async add(docs: string[]): Promise<number[]> {
    if (!this.enc) throw new Lfm2Error("BAD_INPUT", "this index has no encoder to embed text; use addEmbeddings");
    return this.addEmbeddings(await this.enc.embedDocuments(docs));
  }

  /** Add already-embedded documents (rows as embedDocuments returns them). */
  addEmbeddings(embs: Embedding[]): number[] {
    const first = this.size;
    for (const e of embs) {
      if (this.dim === 0) this.dim = e.dim;
      if (e.dim !== this.dim) throw new Lfm2Error("BAD_INPUT", `document width ${e.dim} differs from the index's ${this.dim}`);
      this.reserve(this.rowCount + e.rows);
      const D = this.dim;
      if (this.quantize === "none") this.f32.set(e.vectors.subarray(0, e.rows * D), this.rowCount * D);
      else for (let r = 0; r < e.rows; r++) {
        let m = 0;
        for (let j = 0; j < D; j++) m = Math.max(m, Math.abs(e.vectors[r * D + j]));
        const scale = m / 127, inv = m > 0 ? 127 / m : 0, base = (this.rowCount + r) * D;
        this.scales[this.rowCount + r] = scale;
        for (let j = 0; j < D; j++) this.i8[base + j] = Math.round(e.vectors[r * D + j] * inv);
      }
      this.rowCount += e.rows;
      this.offsets.push(this.rowCount);
    }
    return Array.from({ length: embs.length }, (_, i) => first + i);
  }

  private reserve(rows: number) {
    const cap = this.quantize === "none" ? this.f32.length / Math.max(1, this.dim) : this.scales.length;
    if (rows <= cap) return;
    const n = Math.max(rows, Math.ceil(cap * 1.5), 1024), D = this.dim;
    if (this.quantize === "none") { const a = new Float32Array(n * D); a.set(this.f32); this.f32 = a; }
    else {
      const a = new Int8Array(n * D); a.set(this.i8); this.i8 = a;
      const s = new Float32Array(n); s.set(this.scales); this.scales = s;
    }
  }

  /** MaxSim of a query's rows against document `d`. */
  score(q: Embedding, d: number): number {
    const D = this.dim, r0 = this.offsets[d], r1 = this.offsets[d + 1];
    if (q.dim !== D) throw new Lfm2Error("BAD_INPUT", `query width ${q.dim} differs from the index's ${D}`);
    if (r1 === r0) return 0;
    let total = 0;
    const qv = q.vectors;
    for (let i = 0; i < q.rows; i++) {
      const qo = i * D;
      let best = -Infinity;
      for (let r = r0; r < r1; r++) {
        let s = 0;
        const o = r * D;
        if (this.quantize === "none") { const v = this.f32; for (let j = 0; j < D; j++) s += qv[qo + j] * v[o + j]; }
        else { const v = this.i8; for (let j = 0; j < D; j++) s += qv[qo + j] * v[o + j]; s *= this.scales[r]; }
        if (s > best) best = s;
      }
      total += best;
    }
    return total;
  }

  /** The k best documents for a query (text, embedded as a query, or an embedding), best first. */
  async search(query: string | Embedding, k = 10): Promise<SearchHit[]> {
    if (!Number.isInteger(k) || k < 1) throw new Lfm2Error("BAD_INPUT", `k must be a positive integer, got ${k}`);
    let q: Embedding;
    if (typeof query === "string") {
      if (!this.enc) throw new Lfm2Error("BAD_INPUT", "this index has no encoder to embed a text query");
      q = await this.enc.embedQuery(query);
    } else q = query;
    const hits: SearchHit[] = [];
    for (let d = 0; d < this.size; d++) {
      const score = this.score(q, d);
      if (hits.length < k || score > hits[hits.length - 1].score) {
        let i = hits.length;
        while (i > 0 && hits[i - 1].score < score) i--; // ties keep the earlier document first
        hits.splice(i, 0, { id: d, score });
        if (hits.length > k) hits.pop();
      }
    }
    return hits;
  }

  /** The index as bytes: header, row offsets, then the vectors (and int8 scales). */
  save(): Uint8Array {
    const n = this.size, D = this.dim, R = this.rowCount, int8 = this.quantize === "int8";
    const header = 6 * 4, offs = (n + 1) * 4, data = int8 ? R * 4 + R * D : R * D * 4;
    const out = new Uint8Array(header + offs + data + ((4 - ((header + offs + data) % 4)) % 4));
    const dv = new DataView(out.buffer);
    [MAGIC, VERSION, int8 ? 1 : 0, D, n, R].forEach((v, i) => dv.setUint32(i * 4, v, true));
    this.offsets.forEach((v, i) => dv.setUint32(header + i * 4, v, true));
    let p = header + offs;
    if (int8) {
      for (let r = 0; r < R; r++) dv.setFloat32(p + r * 4, this.scales[r], true);
      p += R * 4;
      out.set(new Uint8Array(this.i8.buffer, this.i8.byteOffset, R * D), p);
    } else for (let i = 0; i < R * D; i++) dv.setFloat32(p + i * 4, this.f32[i], true);
    return out;
  }

  /** Replace the contents with saved bytes (the quantisation must match this index's). */
  load(bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array) || bytes.length < 24) throw new Lfm2Error("BAD_INPUT", "index bytes are too short");
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [magic, version, int8, D, n, R] = Array.from({ length: 6 }, (_, i) => dv.getUint32(i * 4, true));
    if (magic !== MAGIC || version !== VERSION) throw new Lfm2Error("BAD_INPUT", "not a saved lfm2-wasm index (bad magic or version)");
    if ((int8 === 1) !== (this.quantize === "int8")) throw new Lfm2Error("BAD_INPUT", `saved index quantisation differs from this index's "${this.quantize}"`);
    const need = 24 + (n + 1) * 4 + (int8 ? R * (D + 4) : R * D * 4);
    if (D > 1 << 16 || bytes.length < need) throw new Lfm2Error("BAD_INPUT", "index bytes are truncated or malformed");
    const offsets = Array.from({ length: n + 1 }, (_, i) => dv.getUint32(24 + i * 4, true));
    if (offsets[0] !== 0 || offsets[n] !== R || offsets.some((v, i) => i > 0 && v < offsets[i - 1])) {
      throw new Lfm2Error("BAD_INPUT", "index row offsets are malformed");
    }
    let p = 24 + (n + 1) * 4;
    this.dim = D; this.rowCount = R; this.offsets = offsets;
    if (int8) {
      this.scales = new Float32Array(R);
      for (let r = 0; r < R; r++) this.scales[r] = dv.getFloat32(p + r * 4, true);
      p += R * 4;
      this.i8 = new Int8Array(R * D); this.i8.set(new Int8Array(bytes.buffer, bytes.byteOffset + p, R * D));
    } else {
      this.f32 = new Float32Array(R * D);
      for (let i = 0; i < R * D; i++) this.f32[i] = dv.getFloat32(p + i * 4, true);
    }
    return this;
  }
}

/** An in-memory MaxSim index over an encoder (a loaded retrieval model). */
export async function createIndex(enc: RetrievalEncoder | null, opts: IndexOptions = {}): Promise<LateInteractionIndex> {
  return new LateInteractionIndex(enc, opts);
}
