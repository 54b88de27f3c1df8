// Token sampling: logit bias → penalties → top-k → temperature → softmax → top-p → min-p → seeded draw.
// Temperature 0 is greedy (argmax after bias and penalties; the lowest id wins ties).
// Written for 65,536-token vocabularies: no full sort unless top-p needs one, partial selection
// otherwise, and all scratch buffers allocated once per Sampler.
import { Lfm2Error } from "../errors.js";

export interface SamplingOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or undefined = off. */
  topK?: number;
  /** Nucleus sampling; 1 or undefined = off. */
  topP?: number;
  /** Drop tokens with p < minP · p_max; 0 or undefined = off. */
  minP?: number;
  /** llama.cpp / CTRL style: positive logits divided, negative multiplied. 1 = off. */
  repetitionPenalty?: number;
  /** Subtracted once from the logit of every token present in the penalty window. */
  presencePenalty?: number;
  /** Subtracted count times from the logit of every token in the penalty window. */
  frequencyPenalty?: number;
  /** How many of the most recent history tokens the penalties look at. Default 64; -1 = all; 0 = none. */
  penaltyLastN?: number;
  /** Added to the logits first (use -Infinity to ban a token). */
  logitBias?: Record<number, number>;
  /** PRNG seed; the same seed gives the same draws. Default: random. */
  seed?: number;
}

/** Recommended for LFM2 text models (model card; spec §2.3). */
export const LFM2_DEFAULT_SAMPLING: Readonly<SamplingOptions> = Object.freeze({ temperature: 0.3, minP: 0.15, repetitionPenalty: 1.05 });

export interface PenaltyOptions {
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  penaltyLastN?: number;
}

export const DEFAULT_PENALTY_LAST_N = 64;

// ---------------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: small, fast, 32-bit state; deterministic for a given seed. */
export class Mulberry32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

// ---------------------------------------------------------------------------------------------------
// In-place kernels over a candidate list: ids[0..n) with values[ids[i]]-indexed scores or a parallel
// `vals` array. They are used by the Sampler and by the exported pure helpers below.

/** Apply penalties to logits in place. */
export function applyPenaltiesInPlace(logits: Float32Array | Float64Array, history: ArrayLike<number>, opts: PenaltyOptions): void {
  const rep = opts.repetitionPenalty ?? 1;
  const pres = opts.presencePenalty ?? 0;
  const freq = opts.frequencyPenalty ?? 0;
  if (rep === 1 && pres === 0 && freq === 0) return;
  const lastN = opts.penaltyLastN ?? DEFAULT_PENALTY_LAST_N;
  if (lastN === 0) return;
  const start = lastN < 0 ? 0 : Math.max(0, history.length - lastN);
  const counts = new Map<number, number>();
  for (let i = start; i < history.length; i++) {
    const t = history[i]!;
    if (t >= 0 && t < logits.length) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const [t, c] of counts) {
    let l = logits[t]!;
    if (rep !== 1) l = l <= 0 ? l * rep : l / rep;
    l -= c * freq + (c > 0 ? pres : 0);
    logits[t] = l;
  }
}

/** Order: higher score first, then lower id. */
function better(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/**
 * Rearrange ids[0..n) (scores in `score`, parallel to positions) so that the best k come first,
 * sorted best-first. Quickselect then sort of the k winners: O(n + k log k).
 */
function selectTop(ids: Int32Array, score: Float64Array, n: number, k: number): void {
  if (k <= 0) return;
  if (k < n && k * 16 <= n) {
    heapSelect(ids, score, n, k);
  } else if (k < n) {
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      // median of three pivot
      const mid = (lo + hi) >>> 1;
      let p = mid;
      const a = lo, b = mid, c = hi;
      if (better(score[a]!, ids[a]!, score[b]!, ids[b]!)) {
        if (better(score[b]!, ids[b]!, score[c]!, ids[c]!)) p = b;
        else p = better(score[a]!, ids[a]!, score[c]!, ids[c]!) ? c : a;
      } else {
        if (better(score[a]!, ids[a]!, score[c]!, ids[c]!)) p = a;
        else p = better(score[b]!, ids[b]!, score[c]!, ids[c]!) ? c : b;
      }
      const ps = score[p]!, pi = ids[p]!;
      // three-way-free Hoare partition on the strict order (ids are unique, so no equal keys)
      swap(ids, score, p, hi);
      let store = lo;
      for (let i = lo; i < hi; i++) {
        if (better(score[i]!, ids[i]!, ps, pi)) { swap(ids, score, i, store); store++; }
      }
      swap(ids, score, store, hi);
      if (store === k - 1 || store === k) break;
      if (store < k) lo = store + 1;
      else hi = store - 1;
    }
  }
  sortRange(ids, score, 0, Math.min(k, n));
}

/**
 * For k ≪ n: one pass keeping the k best in a heap whose root is the worst of them (most elements
 * only cost one comparison with the root), then a partition that moves exactly those k to the front.
 */
function heapSelect(ids: Int32Array, score: Float64Array, n: number, k: number): void {
  const hs = new Float64Array(k), hid = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    // sift up
    let j = i;
    const s = score[i]!, id = ids[i]!;
    while (j > 0) {
      const parent = (j - 1) >> 1;
      if (better(hs[parent]!, hid[parent]!, s, id)) { hs[j] = hs[parent]!; hid[j] = hid[parent]!; j = parent; } else break;
    }
    hs[j] = s; hid[j] = id;
  }
  for (let i = k; i < n; i++) {
    const s = score[i]!, id = ids[i]!;
    if (!better(s, id, hs[0]!, hid[0]!)) continue;
    // replace the root and sift down
    let j = 0;
    for (;;) {
      const l = 2 * j + 1;
      if (l >= k) break;
      const r = l + 1;
      const w = r < k && better(hs[l]!, hid[l]!, hs[r]!, hid[r]!) ? r : l; // the worse child
      if (better(s, id, hs[w]!, hid[w]!)) { hs[j] = hs[w]!; hid[j] = hid[w]!; j = w; } else break;
    }
    hs[j] = s; hid[j] = id;
  }
  const ts = hs[0]!, ti = hid[0]!;
  let store = 0;
  for (let i = 0; i < n; i++) {
    const s = score[i]!, id = ids[i]!;
    if (id === ti ? s === ts || s > ts : better(s, id, ts, ti)) {
      if (i !== store) swap(ids, score, i, store);
      store++;
    }
  }
}

/**
 * Partial selection over parallel arrays: afterwards positions [0, k) hold the k best
 * (score desc, then id asc), sorted best-first. Other positions are in no particular order.
 */
export function selectTopCandidates(ids: Int32Array, scores: Float64Array, count: number, k: number): void {
  selectTop(ids, scores, count, Math.min(k, count));
}

function swap(ids: Int32Array, score: Float64Array, a: number, b: number): void {
  const t = ids[a]!; ids[a] = ids[b]!; ids[b] = t;
  const s = score[a]!; score[a] = score[b]!; score[b] = s;
}

/** Sort positions [from, to) best-first. */
function sortRange(ids: Int32Array, score: Float64Array, from: number, to: number): void {
  const n = to - from;
  if (n <= 1) return;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = from + i;
  order.sort((a, b) => (score[b]! - score[a]!) || (ids[a]! - ids[b]!));
  const tid = new Int32Array(n), ts = new Float64Array(n);
  for (let i = 0; i < n; i++) { tid[i] = ids[order[i]!]!; ts[i] = score[order[i]!]!; }
  ids.set(tid, from);
  score.set(ts, from);
}

/** Numerically safe softmax of vals[0..n) in place; returns nothing (sums to 1). */
function softmaxInPlace(vals: Float64Array, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (vals[i]! > max) max = vals[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) { const e = Math.exp(vals[i]! - max); vals[i] = e; sum += e; }
  for (let i = 0; i < n; i++) vals[i] = vals[i]! / sum;
}

/**
 * Nucleus: keep the smallest best-first prefix whose mass reaches p (probabilities must sum to 1).
 * Grows a partially selected prefix instead of sorting everything. Leaves the kept tokens sorted.
 */
function topPInPlace(ids: Int32Array, probs: Float64Array, n: number, p: number, sorted: boolean): number {
  if (p >= 1 || n <= 1) return n;
  if (sorted) {
    let cum = 0;
    for (let i = 0; i < n; i++) {
      cum += probs[i]!;
      if (cum >= p) return i + 1;
    }
    return n;
  }
  // select the best 64, then the next 256 among the rest, and so on, until the mass reaches p
  let cum = 0;
  let start = 0;
  let chunk = 64;
  while (start < n) {
    const m = Math.min(chunk, n - start);
    selectTop(ids.subarray(start, n), probs.subarray(start, n), n - start, m);
    for (let i = start; i < start + m; i++) {
      cum += probs[i]!;
      if (cum >= p) return i + 1;
    }
    start += m;
    chunk *= 4;
  }
  return n; // rounding: the mass never quite reached p
}

/** Keep tokens with prob ≥ minP · max prob. Keeps order. */
function minPInPlace(ids: Int32Array, probs: Float64Array, n: number, p: number, sorted: boolean): number {
  if (p <= 0 || n <= 1) return n;
  let max = 0;
  if (sorted) max = probs[0]!;
  else for (let i = 0; i < n; i++) if (probs[i]! > max) max = probs[i]!;
  const thr = p * max;
  if (sorted) {
    let k = 1;
    while (k < n && probs[k]! >= thr) k++;
    return k;
  }
  let w = 0;
  for (let i = 0; i < n; i++) {
    if (probs[i]! >= thr) { ids[w] = ids[i]!; probs[w] = probs[i]!; w++; }
  }
  return Math.max(w, 1);
}

// ---------------------------------------------------------------------------------------------------
// Pure helpers (allocate; for tests and callers that want the distributions themselves)

/** Copy of `logits` with penalties applied (see SamplingOptions for the rules). */
export function applyPenalties(logits: ArrayLike<number>, history: ArrayLike<number>, opts: PenaltyOptions): Float32Array {
  const out = Float32Array.from(logits);
  applyPenaltiesInPlace(out, history, opts);
  return out;
}

/** softmax(logits / temperature). */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const v = new Float64Array(logits.length);
  for (let i = 0; i < v.length; i++) v[i] = logits[i]! / temperature;
  softmaxInPlace(v, v.length);
  return v;
}

function allIds(n: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return ids;
}

/** Ids of the k highest scores, best first (lower id wins ties). */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  const ids = allIds(scores.length);
  const s = Float64Array.from(scores);
  const kk = Math.min(Math.max(0, Math.floor(k)), ids.length);
  selectTop(ids, s, ids.length, kk);
  return Array.from(ids.subarray(0, kk));
}

/** Ids kept by nucleus sampling over a probability vector, most probable first. */
export function topP(probs: ArrayLike<number>, p: number): number[] {
  const ids = allIds(probs.length);
  const s = Float64Array.from(probs);
  const n = topPInPlace(ids, s, ids.length, p, false);
  if (n === ids.length) sortRange(ids, s, 0, n);
  return Array.from(ids.subarray(0, n));
}

/** Ids kept by min-p over a probability vector, most probable first. */
export function minP(probs: ArrayLike<number>, p: number): number[] {
  const ids = allIds(probs.length);
  const s = Float64Array.from(probs);
  const n = minPInPlace(ids, s, ids.length, p, false);
  sortRange(ids, s, 0, n);
  return Array.from(ids.subarray(0, n));
}

// ---------------------------------------------------------------------------------------------------

function checkOptions(o: SamplingOptions): void {
  if (o === null || typeof o !== "object") throw new Lfm2Error("BAD_INPUT", "sampling options must be an object");
  const bad = (m: string): never => { throw new Lfm2Error("BAD_INPUT", `sampling: ${m}`); };
  const num = (v: number | undefined, name: string) => {
    if (v !== undefined && (typeof v !== "number" || Number.isNaN(v))) bad(`${name} must be a number`);
  };
  for (const k of ["temperature", "topK", "topP", "minP", "repetitionPenalty", "presencePenalty", "frequencyPenalty", "penaltyLastN", "seed"] as const) num(o[k], k);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad("temperature must be ≥ 0");
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad("topK must be an integer ≥ 0");
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad("topP must be in (0, 1]");
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) bad("minP must be in [0, 1]");
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) bad("repetitionPenalty must be > 0");
  if (o.penaltyLastN !== undefined && !(Number.isInteger(o.penaltyLastN) && o.penaltyLastN >= -1)) bad("penaltyLastN must be an integer ≥ -1");
  if (o.logitBias !== undefined) {
    if (o.logitBias === null || typeof o.logitBias !== "object" || Array.isArray(o.logitBias)) bad("logitBias must be an object of token id → bias");
    for (const [k, v] of Object.entries(o.logitBias)) {
      if (!/^\d+$/.test(k) || typeof v !== "number" || Number.isNaN(v)) bad(`logitBias entry ${k}: ${String(v)}`);
    }
  }
}

export class Sampler {
  readonly options: Readonly<SamplingOptions>;
  readonly vocabSize: number;
  private rng: Mulberry32;
  private readonly work: Float32Array;
  private readonly ids: Int32Array;
  private readonly vals: Float64Array;
  private readonly bias: Array<[number, number]>;

  constructor(opts: SamplingOptions, vocabSize: number) {
    if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new Lfm2Error("BAD_INPUT", `sampling: bad vocabulary size ${vocabSize}`);
    checkOptions(opts);
    this.options = Object.freeze({ ...opts });
    this.vocabSize = vocabSize;
    this.rng = new Mulberry32(opts.seed ?? Math.floor(Math.random() * 4294967296));
    this.work = new Float32Array(vocabSize);
    this.ids = new Int32Array(vocabSize);
    this.vals = new Float64Array(vocabSize);
    this.bias = Object.entries(opts.logitBias ?? {})
      .map(([k, v]) => [Number(k), v] as [number, number])
      .filter(([k]) => k < vocabSize);
  }

  /** Temperature 0 (or unset → 1, so not greedy). */
  get greedy(): boolean {
    return (this.options.temperature ?? 1) === 0;
  }

  /** Restart the PRNG. */
  reseed(seed: number): void {
    this.rng = new Mulberry32(seed);
  }

  /**
   * Logits after bias and penalties, in a scratch buffer owned by the sampler (valid until the next
   * call). Entries that are -Infinity or NaN are never sampled.
   */
  prepare(logits: Float32Array, history: ArrayLike<number>): Float32Array {
    if (logits.length < this.vocabSize) {
      throw new Lfm2Error("BAD_INPUT", `sampling: ${logits.length} logits for a vocabulary of ${this.vocabSize}`);
    }
    const w = this.work;
    w.set(logits.length === this.vocabSize ? logits : logits.subarray(0, this.vocabSize));
    // ±Infinity decide on their own (a -∞ logit plus a +∞ bias would otherwise be NaN)
    for (const [k, v] of this.bias) w[k] = Number.isFinite(v) ? w[k]! + v : v;
    applyPenaltiesInPlace(w, history, this.options);
    return w;
  }

  /**
   * Draw a token. `allowed`, when given, is asked about every token with a finite logit (a full
   * scan; see `sampleConstrained` in json-schema.ts for the lazy path used by grammars).
   */
  sample(logits: Float32Array, history: ArrayLike<number>, allowed?: (id: number) => boolean): number {
    const w = this.prepare(logits, history);
    if (this.greedy && !allowed) {
      let best = -1, bs = -Infinity;
      for (let i = 0; i < w.length; i++) if (w[i]! > bs) { bs = w[i]!; best = i; }
      if (best < 0) throw new Lfm2Error("BAD_INPUT", "sampling: no token can be sampled (all banned or disallowed)");
      return best;
    }
    const ids = this.ids;
    let n = 0;
    for (let i = 0; i < w.length; i++) {
      if (!(w[i]! > -Infinity)) continue;
      if (allowed && !allowed(i)) continue;
      ids[n++] = i;
    }
    return this.sampleCandidates(w, ids, n);
  }

  /**
   * Run top-k → temperature → softmax → top-p → min-p → draw over the candidate ids
   * `candidates[0..count)` scored by `prepared` (as returned by `prepare`). The candidate array may be
   * reordered.
   */
  sampleCandidates(prepared: ArrayLike<number>, candidates: Int32Array, count = candidates.length): number {
    const ids = candidates;
    let n = 0;
    for (let i = 0; i < count; i++) {
      if (prepared[ids[i]!]! > -Infinity) ids[n++] = ids[i]!;
    }
    if (n === 0) throw new Lfm2Error("BAD_INPUT", "sampling: no token can be sampled (all banned or disallowed)");
    const o = this.options;
    // A +Infinity logit (a logitBias of Infinity) means "this token": the softmax of ∞ - ∞ would be
    // NaN, so draw uniformly among the forced tokens instead (greedy: the lowest id, below).
    let forced = 0;
    for (let i = 0; i < n; i++) if (prepared[ids[i]!] === Infinity) ids[forced++] = ids[i]!;
    if (forced > 0) {
      n = forced;
      if (!this.greedy && n > 1) {
        ids.subarray(0, n).sort(); // the draw must not depend on the order candidates came in
        return ids[Math.min(n - 1, Math.floor(this.rng.next() * n))]!;
      }
    }
    if (this.greedy || n === 1) {
      let best = ids[0]!, bs = prepared[best]!;
      for (let i = 1; i < n; i++) {
        const id = ids[i]!, s = prepared[id]!;
        if (s > bs || (s === bs && id < best)) { best = id; bs = s; }
      }
      return best;
    }
    const vals = n <= this.vals.length ? this.vals : new Float64Array(n);
    for (let i = 0; i < n; i++) vals[i] = prepared[ids[i]!]!;
    let sorted = false;
    const k = o.topK ?? 0;
    if (k > 0 && k < n) {
      selectTop(ids, vals, n, k);
      n = k;
      sorted = true;
    }
    const t = o.temperature ?? 1;
    if (t !== 1) for (let i = 0; i < n; i++) vals[i] = vals[i]! / t;
    const p = o.topP ?? 1;
    const mp = o.minP ?? 0;
    if (p >= 1 && mp > 0 && !sorted) {
      // Without top-p, min-p can run before the softmax, in log space (p_i ≥ minP·p_max ⇔
      // l_i ≥ l_max + ln minP), which spares exponentials for the many tokens it drops.
      let max = -Infinity;
      for (let i = 0; i < n; i++) if (vals[i]! > max) max = vals[i]!;
      const thr = max + Math.log(mp);
      let w = 0;
      for (let i = 0; i < n; i++) {
        if (vals[i]! >= thr) { ids[w] = ids[i]!; vals[w] = vals[i]!; w++; }
      }
      n = w;
    }
    softmaxInPlace(vals, n);
    if (p < 1) {
      n = topPInPlace(ids, vals, n, p, sorted);
      sorted = true;
    }
    n = minPInPlace(ids, vals, n, mp, sorted);
    let total = 0;
    for (let i = 0; i < n; i++) total += vals[i]!;
    let u = this.rng.next() * total;
    for (let i = 0; i < n; i++) {
      u -= vals[i]!;
      if (u < 0) return ids[i]!;
    }
    return ids[n - 1]!;
  }
}
