// An in-memory late-interaction index: every document's per-token vectors (f32, or int8 with one scale
// per row) in the index's own WebAssembly memory, searched exhaustively by the MaxSim SIMD kernels
// (assembly/maxsim.ts; exact for f32). Pooled models store one row per document, so MaxSim is the dot
// product. save()/load() round-trip the bytes.
import { Lfm2Error } from "../../errors.js";
import { chooseVariant, compileVariant, instantiateKernels, type KernelExports, type WasmOptions } from "../../../bindings/wasm.js";
import type { Embedding } from "./encoder.js";

/** What an index needs from a model (Model implements it). */
export interface RetrievalEncoder {
  embedQuery(text: string): Promise<Embedding> | Embedding;
  embedDocuments(texts: string[]): Promise<Embedding[]> | Embedding[];
}

export interface IndexOptions extends WasmOptions {
  /** "int8": one signed byte per value plus an f32 scale per row (≈ 4× smaller); "none" (default): f32. */
  quantize?: "int8" | "none";
}

export interface SearchHit { id: number; score: number }

const MAGIC = 0x49464c4c; // "LLFI" little-endian
const VERSION = 1;
const BASE = 1 << 16;      // the kernels' static data stays below this
const PAGE = 65536;
const MAX_BYTES = 2 ** 32 - PAGE;
/** Documents per kernel call: scores arrive in slices, so a search never holds one huge call. */
const DOCS_PER_CALL = 4096;

const align16 = (p: number) => (p + 15) & ~15;

/** Byte positions of the index's arrays in its memory, for given capacities. */
interface Layout { docCap: number; rowCap: number; offsets: number; scales: number; vectors: number; end: number }

export class LateInteractionIndex {
  readonly quantize: "int8" | "none";
  private dim = 0;
  private rowCount = 0;
  /** Document d's rows are [offsets[d], offsets[d + 1]). Mirrored as i32 in memory for the kernels. */
  private offsets: number[] = [0];
  /** Vectors, int8 scales and offsets live in the index's own WebAssembly memory, scored by its kernels. */
  private readonly memory = new WebAssembly.Memory({ initial: 32, maximum: 65536 });
  private layout: Layout = { docCap: 0, rowCap: 0, offsets: BASE, scales: BASE, vectors: BASE, end: BASE };
  private kernels: Promise<KernelExports> | null = null;
  private readonly wasm: WasmOptions;

  constructor(private enc: RetrievalEncoder | null, opts: IndexOptions = {}) {
    const q = opts.quantize ?? "none";
    if (q !== "int8" && q !== "none") throw new Lfm2Error("BAD_INPUT", `quantize must be "int8" or "none", got ${String(q)}`);
    this.quantize = q;
    this.wasm = { ...opts };
  }

  get size(): number { return this.offsets.length - 1; }
  /** Bytes held for the vectors (and scales). */
  get bytes(): number { return this.quantize === "int8" ? this.rowCount * (this.dim + 4) : this.rowCount * this.dim * 4; }
  private get int8(): boolean { return this.quantize === "int8"; }

  /** The MaxSim kernels, instantiated over this index's memory (the model's compiled module is reused). */
  ready(): Promise<KernelExports> {
    if (!this.kernels) {
      const variant = chooseVariant(false, this.wasm);
      this.kernels = compileVariant(variant, this.wasm).then((m) => instantiateKernels(m, this.memory));
      this.kernels.catch(() => { this.kernels = null; });
    }
    return this.kernels;
  }

  /** Encode and add documents; returns their ids (consecutive, from size). */
  async add(docs: string[]): Promise<number[]> {
    if (!this.enc) throw new Lfm2Error("BAD_INPUT", "this index has no encoder to embed text; use addEmbeddings");
    return this.addEmbeddings(await this.enc.embedDocuments(docs));
  }

  /** Add already-embedded documents (rows as embedDocuments returns them). */
  addEmbeddings(embs: Embedding[]): number[] {
    if (!Array.isArray(embs)) throw new Lfm2Error("BAD_INPUT", "addEmbeddings expects an array of embeddings");
    const first = this.size;
    for (const e of embs) {
      if (this.dim === 0) this.setDim(e.dim);
      if (e.dim !== this.dim) throw new Lfm2Error("BAD_INPUT", `document width ${e.dim} differs from the index's ${this.dim}`);
      if (!(e.vectors instanceof Float32Array) || e.vectors.length < e.rows * e.dim) {
        throw new Lfm2Error("BAD_INPUT", "an embedding's vectors hold fewer than rows × dim floats");
      }
      this.reserve(this.size + 1, this.rowCount + e.rows);
      const D = this.dim, L = this.layout, buf = this.memory.buffer;
      if (!this.int8) new Float32Array(buf, L.vectors + this.rowCount * D * 4, e.rows * D).set(e.vectors.subarray(0, e.rows * D));
      else {
        const i8 = new Int8Array(buf, L.vectors + this.rowCount * D, e.rows * D), scales = new Float32Array(buf, L.scales, L.rowCap);
        for (let r = 0; r < e.rows; r++) {
          let m = 0;
          for (let j = 0; j < D; j++) m = Math.max(m, Math.abs(e.vectors[r * D + j]));
          const inv = m > 0 ? 127 / m : 0;
          scales[this.rowCount + r] = m / 127;
          for (let j = 0; j < D; j++) i8[r * D + j] = Math.round(e.vectors[r * D + j] * inv);
        }
      }
      this.rowCount += e.rows;
      this.offsets.push(this.rowCount);
      new Int32Array(buf, L.offsets, L.docCap + 1)[this.size] = this.rowCount;
    }
    return Array.from({ length: embs.length }, (_, i) => first + i);
  }

  private setDim(dim: number) {
    if (!Number.isInteger(dim) || dim < 1 || dim > 1 << 16) throw new Lfm2Error("BAD_INPUT", `vector width ${dim} is not in 1..65536`);
    this.dim = dim;
  }

  private layoutFor(docCap: number, rowCap: number): Layout {
    const offsets = BASE, scales = align16(offsets + (docCap + 1) * 4);
    const vectors = align16(scales + (this.int8 ? rowCap * 4 : 0));
    return { docCap, rowCap, offsets, scales, vectors, end: align16(vectors + rowCap * this.dim * (this.int8 ? 1 : 4)) };
  }

  /** Memory up to byte `end` (grows in pages; growth detaches old views, so callers make views after this). */
  private ensure(end: number) {
    if (end > MAX_BYTES) {
      throw new Lfm2Error("MODEL_TOO_LARGE", `the index needs ${(end / 2 ** 20).toFixed(0)} MiB; one WebAssembly memory holds 4 GiB`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
  }

  /** Capacity for `docs` documents and `rows` rows; regions move up (highest first, so none overwrites another). */
  private reserve(docs: number, rows: number) {
    const old = this.layout;
    if (docs <= old.docCap && rows <= old.rowCap) return;
    const grow = (need: number, cap: number) => (need <= cap ? cap : Math.max(need, Math.ceil(cap * 1.5), 1024));
    const L = this.layoutFor(grow(docs, old.docCap), grow(rows, old.rowCap));
    this.ensure(L.end);
    const u8 = new Uint8Array(this.memory.buffer), width = this.int8 ? 1 : 4;
    u8.copyWithin(L.vectors, old.vectors, old.vectors + this.rowCount * this.dim * width);
    if (this.int8) u8.copyWithin(L.scales, old.scales, old.scales + this.rowCount * 4);
    if (old.docCap === 0) new Int32Array(this.memory.buffer, L.offsets, 1)[0] = 0;
    else u8.copyWithin(L.offsets, old.offsets, old.offsets + (this.size + 1) * 4);
    this.layout = L;
  }

  /**
   * MaxSim of a query's rows against document `d`, computed in plain JavaScript from the stored rows (the
   * reference the kernels are checked against; int8 rows are dotted with the f32 query).
   */
  score(q: Embedding, d: number): number {
    const D = this.dim, r0 = this.offsets[d], r1 = this.offsets[d + 1];
    if (q.dim !== D) throw new Lfm2Error("BAD_INPUT", `query width ${q.dim} differs from the index's ${D}`);
    if (r1 === r0) return 0;
    const L = this.layout, buf = this.memory.buffer;
    const v = this.int8 ? new Int8Array(buf, L.vectors, this.rowCount * D) : new Float32Array(buf, L.vectors, this.rowCount * D);
    const scales = new Float32Array(buf, L.scales, this.int8 ? this.rowCount : 0);
    let total = 0;
    const qv = q.vectors;
    for (let i = 0; i < q.rows; i++) {
      const qo = i * D;
      let best = -Infinity;
      for (let r = r0; r < r1; r++) {
        let s = 0;
        const o = r * D;
        for (let j = 0; j < D; j++) s += qv[qo + j] * v[o + j];
        if (this.int8) s *= scales[r];
        if (s > best) best = s;
      }
      total += best;
    }
    return total;
  }

  /**
   * Every document's MaxSim score against a query (WebAssembly SIMD kernels). f32 indexes use the query
   * as given; int8 indexes round each query row to i16 steps of max|q|/32767 (coarser only past width 516,
   * to keep the i32 sums exact), far finer than the documents' int8 steps of max|v|/127.
   */
  async scores(q: Embedding): Promise<Float32Array> {
    const D = this.dim, n = this.size;
    if (n === 0) return new Float32Array(0);
    if (q.dim !== D) throw new Lfm2Error("BAD_INPUT", `query width ${q.dim} differs from the index's ${D}`);
    if (!Number.isInteger(q.rows) || q.rows < 1 || !(q.vectors instanceof Float32Array) || q.vectors.length < q.rows * D) {
      throw new Lfm2Error("BAD_INPUT", "a query needs at least one row of dim floats");
    }
    const k = await this.ready();
    const nq = q.rows, L = this.layout;
    // query, its scales, the running maxima and the scores go past the vectors
    const qPtr = L.end, qScales = align16(qPtr + nq * D * (this.int8 ? 2 : 4)), best = align16(qScales + nq * 4);
    const out = align16(best + nq * 4);
    this.ensure(out + n * 4);
    const buf = this.memory.buffer;
    if (!this.int8) new Float32Array(buf, qPtr, nq * D).set(q.vectors.subarray(0, nq * D));
    else {
      // the i32 sum of dim products |q| · 127 must not overflow
      const qMax = Math.min(32767, Math.floor((2 ** 31 - 1) / (127 * D)));
      const q16 = new Int16Array(buf, qPtr, nq * D), qs = new Float32Array(buf, qScales, nq);
      for (let i = 0; i < nq; i++) {
        let m = 0;
        for (let j = 0; j < D; j++) m = Math.max(m, Math.abs(q.vectors[i * D + j]));
        const inv = m > 0 ? qMax / m : 0;
        qs[i] = m / qMax;
        for (let j = 0; j < D; j++) q16[i * D + j] = Math.round(q.vectors[i * D + j] * inv);
      }
    }
    for (let d0 = 0; d0 < n; d0 += DOCS_PER_CALL) {
      const d1 = Math.min(n, d0 + DOCS_PER_CALL);
      if (this.int8) k.maxSimI8(qPtr, qScales, nq, D, L.vectors, L.scales, L.offsets, d0, d1, best, out);
      else k.maxSimF32(qPtr, nq, D, L.vectors, L.offsets, d0, d1, best, out);
    }
    return new Float32Array(this.memory.buffer, out, n).slice();
  }

  /** The k best documents for a query (text, embedded as a query, or an embedding), best first. */
  async search(query: string | Embedding, k = 10): Promise<SearchHit[]> {
    if (!Number.isInteger(k) || k < 1) throw new Lfm2Error("BAD_INPUT", `k must be a positive integer, got ${k}`);
    let q: Embedding;
    if (typeof query === "string") {
      if (!this.enc) throw new Lfm2Error("BAD_INPUT", "this index has no encoder to embed a text query");
      q = await this.enc.embedQuery(query);
    } else q = query;
    const scores = await this.scores(q);
    const hits: SearchHit[] = [];
    for (let d = 0; d < scores.length; d++) {
      const score = scores[d];
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
    const n = this.size, D = this.dim, R = this.rowCount, int8 = this.int8, L = this.layout;
    const header = 6 * 4, offs = (n + 1) * 4, data = int8 ? R * 4 + R * D : R * D * 4;
    const out = new Uint8Array(header + offs + data + ((4 - ((header + offs + data) % 4)) % 4));
    const dv = new DataView(out.buffer);
    [MAGIC, VERSION, int8 ? 1 : 0, D, n, R].forEach((v, i) => dv.setUint32(i * 4, v, true));
    this.offsets.forEach((v, i) => dv.setUint32(header + i * 4, v, true));
    const p = header + offs, mem = new Uint8Array(this.memory.buffer);
    // the stored arrays are little-endian already (WebAssembly memory is)
    if (int8) {
      out.set(mem.subarray(L.scales, L.scales + R * 4), p);
      out.set(mem.subarray(L.vectors, L.vectors + R * D), p + R * 4);
    } else out.set(mem.subarray(L.vectors, L.vectors + R * D * 4), p);
    return out;
  }

  /** Replace the contents with saved bytes (the quantisation must match this index's). */
  load(bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array) || bytes.length < 24) throw new Lfm2Error("BAD_INPUT", "index bytes are too short");
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [magic, version, int8, D, n, R] = Array.from({ length: 6 }, (_, i) => dv.getUint32(i * 4, true));
    if (magic !== MAGIC || version !== VERSION) throw new Lfm2Error("BAD_INPUT", "not a saved lfm2-wasm index (bad magic or version)");
    if ((int8 === 1) !== this.int8) throw new Lfm2Error("BAD_INPUT", `saved index quantisation differs from this index's "${this.quantize}"`);
    const need = 24 + (n + 1) * 4 + (int8 ? R * (D + 4) : R * D * 4);
    if (D < 1 || D > 1 << 16 || bytes.length < need) throw new Lfm2Error("BAD_INPUT", "index bytes are truncated or malformed");
    const offsets = Array.from({ length: n + 1 }, (_, i) => dv.getUint32(24 + i * 4, true));
    if (offsets[0] !== 0 || offsets[n] !== R || offsets.some((v, i) => i > 0 && v < offsets[i - 1])) {
      throw new Lfm2Error("BAD_INPUT", "index row offsets are malformed");
    }
    this.dim = D; this.rowCount = 0; this.offsets = [0];
    this.layout = { docCap: 0, rowCap: 0, offsets: BASE, scales: BASE, vectors: BASE, end: BASE };
    this.reserve(n, R);
    const L = this.layout, mem = new Uint8Array(this.memory.buffer), p = 24 + (n + 1) * 4;
    if (int8) {
      mem.set(bytes.subarray(p, p + R * 4), L.scales);
      mem.set(bytes.subarray(p + R * 4, p + R * 4 + R * D), L.vectors);
    } else mem.set(bytes.subarray(p, p + R * D * 4), L.vectors);
    new Int32Array(this.memory.buffer, L.offsets, n + 1).set(offsets);
    this.offsets = offsets; this.rowCount = R;
    return this;
  }
}

/** An in-memory MaxSim index over an encoder (a loaded retrieval model), its kernels ready. */
export async function createIndex(enc: RetrievalEncoder | null, opts: IndexOptions = {}): Promise<LateInteractionIndex> {
  const index = new LateInteractionIndex(enc, opts);
  await index.ready();
  return index;
}
