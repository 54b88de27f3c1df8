// Retrieval encoders on the LFM2 trunk: LFM2-ColBERT (per-token vectors, late interaction) and pooled
// embedding models (LFM2.5-Embedding). The forward pass returns final norm → pooling → dense_2 per
// llama.cpp; this module adds what PyLate / sentence-transformers put around it: query/document
// prefixes, lengths, query expansion, the document punctuation skiplist, L2 normalisation, MaxSim.
import { Lfm2Error, throwIfAborted } from "../../errors.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { Lfm2Forward } from "../lfm2/forward.js";

/** Rows of vectors for one text: one per token (ColBERT), or one for the text (pooled models). */
export interface Embedding {
  /** The token ids encoded (BOS included); for documents, those left after the skiplist. */
  tokens: number[];
  /** Width of each vector. */
  dim: number;
  /** rows × dim floats, row-major. */
  vectors: Float32Array;
  /** Rows in `vectors`: tokens.length, or 1 for a pooled model. */
  rows: number;
  /** True when the model pools the sequence into one vector. */
  pooled: boolean;
}

/**
 * How queries and documents are prepared. Read from PyLate's config_sentence_transformers.json where
 * present; otherwise the defaults below (LFM2-ColBERT model card: "[Q] " / "[D] " text prefixes;
 * lengths as PyLate's defaults: query 32, document 180; no query expansion; PyLate's default skiplist,
 * ASCII punctuation, applied to documents).
 */
export interface RetrievalConfig {
  queryPrefix: string;
  documentPrefix: string;
  /** Most tokens of a query (BOS and prefix included); longer queries are cut. */
  queryLength: number;
  /** Most tokens of a document (BOS and prefix included); longer documents are cut. */
  documentLength: number;
  /** Pad queries to queryLength with the mask token (ColBERT query augmentation). */
  queryExpansion: boolean;
  /**
   * PyLate's attend_to_expansion_tokens: whether the other tokens see the expansion tokens. This runtime
   * encodes them as ordinary tokens (true); false (PyLate's default) needs an attention/conv key mask it
   * does not implement, so expanded queries then fail with BAD_INPUT instead of giving other vectors.
   */
  attendToExpansionTokens: boolean;
  /** Token id queries are padded with (the tokenizer's mask / pad token when not given). */
  maskTokenId?: number;
  /** Words whose tokens are dropped from documents after the prefix (each must be one token in the vocabulary). */
  skiplistWords: string[];
}

export const DEFAULT_RETRIEVAL: RetrievalConfig = {
  queryPrefix: "[Q] ", documentPrefix: "[D] ", queryLength: 32, documentLength: 180, queryExpansion: false, attendToExpansionTokens: false,
  skiplistWords: [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"],
};

/** A PyLate / sentence-transformers config (config_sentence_transformers.json) over the defaults. */
export function retrievalConfigFromJson(j: Record<string, any> | undefined, base = DEFAULT_RETRIEVAL): RetrievalConfig {
  const c = { ...base };
  if (!j) return c;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const int = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined);
  c.queryPrefix = str(j.query_prefix) ?? str(j.prompts?.query) ?? c.queryPrefix;
  c.documentPrefix = str(j.document_prefix) ?? str(j.prompts?.document) ?? c.documentPrefix;
  c.queryLength = int(j.query_length) ?? c.queryLength;
  c.documentLength = int(j.document_length) ?? c.documentLength;
  if (typeof j.do_query_expansion === "boolean") c.queryExpansion = j.do_query_expansion;
  if (typeof j.attend_to_expansion_tokens === "boolean") c.attendToExpansionTokens = j.attend_to_expansion_tokens;
  if (Array.isArray(j.skiplist_words)) c.skiplistWords = j.skiplist_words.filter((w: unknown) => typeof w === "string");
  return c;
}

/** What an embedding model gives (ModelInfo.embedding; absent on text-generation models). */
export interface EmbeddingInfo {
  /** Width of each vector (dense_2's output, else the hidden size). */
  dim: number;
  /** "none": one vector per token (ColBERT); otherwise how the sequence is pooled into one vector. */
  pooling: "none" | "mean" | "cls" | "last";
  /** false: bidirectional attention and the centred short conv (LFM2.5-ColBERT / Embedding). */
  causal: boolean;
}

const POOLING_NAMES = ["none", "mean", "cls", "last"] as const;

/**
 * The embedding descriptor of a model, or undefined for a text-generation model. Encoders are the files
 * llama.cpp treats as embedding models: a dense_2 projection, a pooling type or a bidirectional trunk.
 */
export function embeddingInfoOf(fwd: Lfm2Forward): EmbeddingInfo | undefined {
  const c = fwd.cfg;
  if (c.embeddingOut === undefined && c.pooling === undefined && c.causal && fwd.w.denseOut === undefined) return undefined;
  return { dim: fwd.w.denseOut?.nOut ?? c.hiddenSize, pooling: POOLING_NAMES[c.pooling ?? 0], causal: c.causal };
}

export interface EmbedOptions {
  /** Add the query/document prefix: true (document prefix for embed), false, or the prefix text. Default false. */
  prefix?: boolean | string;
  /** L2-normalise each row (default false for embed; queries and documents are normalised). */
  normalize?: boolean;
  /** Cut the tokens to at most this many. */
  maxTokens?: number;
  /** Checked before each text is encoded. */
  signal?: AbortSignal;
}

const l2normalize = (v: Float32Array, rows: number, dim: number) => {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += v[r * dim + j] * v[r * dim + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) v[r * dim + j] *= inv;
  }
};

export class Encoder {
  retrieval: RetrievalConfig;
  private skipIds: Set<number> | null = null;

  constructor(private fwd: Lfm2Forward, private tokenizer: Tokenizer | null, retrieval: RetrievalConfig = DEFAULT_RETRIEVAL) {
    this.retrieval = { ...retrieval };
  }

  get pooled(): boolean { return (this.fwd.cfg.pooling ?? 0) !== 0; }
  get dim(): number { return this.fwd.w.denseOut?.nOut ?? this.fwd.cfg.hiddenSize; }

  private tok(): Tokenizer {
    if (!this.tokenizer) throw new Lfm2Error("BAD_INPUT", "this model carries no tokenizer; pass token ids to embedTokens");
    return this.tokenizer;
  }

  /** Raw rows for token ids (no prefix, no normalisation): the forward pass's embedding output. */
  embedTokens(ids: ArrayLike<number>): Embedding {
    const tokens = Array.from(ids), T = tokens.length, fwd = this.fwd, c = fwd.cfg;
    if (T === 0) throw new Lfm2Error("BAD_INPUT", "nothing to embed: no tokens");
    for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new Lfm2Error("BAD_INPUT", `token id ${t} is outside the vocabulary`);
    // a bidirectional or pooled model needs the whole sequence in one step
    const oneStep = !c.causal || this.pooled;
    if (oneStep && T > fwd.maxTok) {
      throw new Lfm2Error("BAD_INPUT", `${T} tokens exceed this encoder's ${fwd.maxTok}-token sequence (load with a larger encoderLength)`);
    }
    const dim = this.dim, rows = this.pooled ? 1 : T, vectors = new Float32Array(rows * dim);
    const state = fwd.allocState(T);
    try {
      fwd.clearState(state);
      for (let p = 0; p < T; p += fwd.maxTok) {
        const n = Math.min(fwd.maxTok, T - p);
        const out = fwd.step(tokens.slice(p, p + n), p, state, "embedding")!;
        vectors.set(out.subarray(0, (this.pooled ? 1 : n) * dim), this.pooled ? 0 : p * dim);
      }
    } finally { fwd.releaseState(state); }
    return { tokens, dim, vectors, rows, pooled: this.pooled };
  }

  /** Rows for a text: BOS (as the model's tokenizer adds it), optional prefix, raw unless normalize. */
  embed(text: string, opts: EmbedOptions = {}): Embedding {
    if (typeof text !== "string") throw new Lfm2Error("BAD_INPUT", "embed expects a string");
    throwIfAborted(opts.signal);
    const prefix = opts.prefix === true ? this.retrieval.documentPrefix : typeof opts.prefix === "string" ? opts.prefix : "";
    let ids = this.tok().encode(prefix + text);
    if (opts.maxTokens !== undefined) ids = ids.slice(0, opts.maxTokens);
    const e = this.embedTokens(ids);
    if (opts.normalize) l2normalize(e.vectors, e.rows, e.dim);
    return e;
  }

  /** A query: prefixed, cut to queryLength, padded with the mask token when expansion is on, L2-normalised rows. */
  embedQuery(text: string): Embedding {
    const r = this.retrieval;
    let ids = this.tok().encode(r.queryPrefix + text).slice(0, r.queryLength);
    if (r.queryExpansion && ids.length < r.queryLength) {
      if (!r.attendToExpansionTokens) {
        throw new Lfm2Error("BAD_INPUT", "query expansion with attend_to_expansion_tokens false needs masked expansion tokens, " +
          "which this runtime does not implement; set retrieval.attendToExpansionTokens = true to encode them as ordinary tokens");
      }
      const mask = r.maskTokenId ?? this.tok().tokenId("<|mask|>") ?? this.tok().tokenId("[MASK]") ?? this.tokenizer!.padId;
      if (mask === undefined || mask === null) throw new Lfm2Error("BAD_INPUT", "query expansion needs a mask token id (retrieval.maskTokenId)");
      while (ids.length < r.queryLength) ids.push(mask);
    }
    const e = this.embedTokens(ids);
    l2normalize(e.vectors, e.rows, e.dim);
    return e;
  }

  /** Documents: prefixed, cut to documentLength, skiplist tokens dropped (per-token models), L2-normalised rows. */
  embedDocuments(texts: string[]): Embedding[] {
    if (!Array.isArray(texts)) throw new Lfm2Error("BAD_INPUT", "embedDocuments expects an array of strings");
    return texts.map((text) => {
      if (typeof text !== "string") throw new Lfm2Error("BAD_INPUT", "embedDocuments expects an array of strings");
      const prefix = this.retrieval.documentPrefix;
      const ids = this.tok().encode(prefix + text).slice(0, this.retrieval.documentLength);
      const e = this.embedTokens(ids);
      l2normalize(e.vectors, e.rows, e.dim);
      // the marker's own tokens ("[", "]") stay: the skiplist is for the document's punctuation
      return e.pooled ? e : this.dropSkipped(e, this.tok().encode(prefix).length);
    });
  }

  private skiplist(): Set<number> {
    if (!this.skipIds) {
      this.skipIds = new Set();
      for (const w of this.retrieval.skiplistWords) { const id = this.tok().tokenId(w); if (id !== undefined) this.skipIds.add(id); }
    }
    return this.skipIds;
  }

  private dropSkipped(e: Embedding, keepFirst: number): Embedding {
    const skip = this.skiplist(), keep = e.tokens.map((t, i) => (i >= keepFirst && skip.has(t) ? -1 : i)).filter((i) => i >= 0);
    if (keep.length === e.rows) return e;
    const v = new Float32Array(keep.length * e.dim);
    keep.forEach((i, r) => v.set(e.vectors.subarray(i * e.dim, (i + 1) * e.dim), r * e.dim));
    return { ...e, tokens: keep.map((i) => e.tokens[i]), vectors: v, rows: keep.length };
  }
}

/** MaxSim (ColBERT late interaction): Σ over query rows of the largest dot product with any document row. */
export function maxSim(q: Embedding, d: Embedding): number {
  if (q.dim !== d.dim) throw new Lfm2Error("BAD_INPUT", `query width ${q.dim} differs from document width ${d.dim}`);
  const D = q.dim;
  let score = 0;
  for (let i = 0; i < q.rows; i++) {
    let best = -Infinity;
    for (let j = 0; j < d.rows; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) s += q.vectors[i * D + k] * d.vectors[j * D + k];
      if (s > best) best = s;
    }
    if (d.rows > 0) score += best;
  }
  return score;
}
