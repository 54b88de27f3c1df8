// Typed errors: every way a model file, a source or a call can be wrong ends in an Lfm2Error with a
// stable `code` and a message that says what is wrong, fails fast (no allocation sized by a hostile
// header), and leaves the process, the model and the session usable.
import { describe, expect, it } from "vitest";
import { loadModel, type LoadOptions, type Model } from "../src/index.js";
import { Lfm2Error, type Lfm2ErrorCode } from "../src/errors.js";
import { GgufValueType, parseGguf } from "../src/formats/gguf.js";
import { concatChunks, encodeGguf, type GgufWriteTensor, type GgufWriteValue } from "../src/formats/gguf-writer.js";
import { GGML, ggmlTypeByName, type GgmlTypeName } from "../src/core/quant-types.js";
import { dequantizeTensor, quantizeTensor } from "../src/formats/quantize.js";
import { encodeSafetensors } from "../src/formats/safetensors-writer.js";
import { configFromGguf } from "../src/models/registry.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
import type { ByteSource } from "../src/io/source.js";
import { HANG_GUARD_MS } from "./helpers/hang-guard.js";

// ---- fixtures ---------------------------------------------------------------------------------

interface MicroSpec {
  D?: number; nLayers?: number; attn?: number[]; nHeads?: number; nKv?: number; ff?: number; V?: number; type?: GgmlTypeName;
  convL?: number; tokenizer?: boolean;
  /** Metadata to add or replace (null: remove the key). */
  meta?: Record<string, GgufWriteValue | null>;
  /** Tensors to leave out. */
  drop?: string[];
}

/** A hand-made LFM2 GGUF with a few small tensors (defaults: D=32, one conv and one attention layer). */
function microGguf(s: MicroSpec = {}, seed = 1): Uint8Array {
  const D = s.D ?? 32, nLayers = s.nLayers ?? 2, attn = s.attn ?? [1], H = s.nHeads ?? 2, nKv = s.nKv ?? 1, ff = s.ff ?? 64, V = s.V ?? 64, L = s.convL ?? 3;
  const type = ggmlTypeByName(s.type ?? "F32"), dh = D / H;
  const rand = mulberry32(seed);
  const uni = (n: number, std: number, mean = 0) => { const x = new Float32Array(n); for (let i = 0; i < n; i++) x[i] = mean + (rand() - 0.5) * std * 3.46; return x; };
  const tensors: GgufWriteTensor[] = [];
  const mat = (name: string, nIn: number, nOut: number, gain = 1) => tensors.push({ name, shape: [nIn, nOut], type, data: quantizeTensor(type, uni(nIn * nOut, gain / Math.sqrt(nIn)), nIn) });
  const vec = (name: string, n: number) => tensors.push({ name, shape: [n], type: GGML.F32, data: new Uint8Array(uni(n, 0.1, 1).buffer) });
  mat("token_embd.weight", D, V, 3);
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    vec(p + "attn_norm.weight", D);
    if (attn.includes(l)) {
      mat(p + "attn_q.weight", D, H * dh); mat(p + "attn_k.weight", D, nKv * dh); mat(p + "attn_v.weight", D, nKv * dh); mat(p + "attn_output.weight", H * dh, D);
      vec(p + "attn_q_norm.weight", dh); vec(p + "attn_k_norm.weight", dh);
    } else {
      mat(p + "shortconv.in_proj.weight", D, 3 * D, 1.2);
      tensors.push({ name: p + "shortconv.conv.weight", shape: [L, D], type: GGML.F32, data: new Uint8Array(uni(L * D, 0.6).buffer) });
      mat(p + "shortconv.out_proj.weight", D, D);
    }
    vec(p + "ffn_norm.weight", D);
    mat(p + "ffn_gate.weight", D, ff); mat(p + "ffn_up.weight", D, ff); mat(p + "ffn_down.weight", ff, D);
  }
  vec("token_embd_norm.weight", D);
  const meta: Record<string, GgufWriteValue | null> = {
    "general.architecture": { type: "string", value: "lfm2" },
    "general.name": { type: "string", value: "micro" },
    "lfm2.context_length": { type: "u32", value: 128 },
    "lfm2.embedding_length": { type: "u32", value: D },
    "lfm2.block_count": { type: "u32", value: nLayers },
    "lfm2.feed_forward_length": { type: "u32", value: ff },
    "lfm2.attention.head_count": { type: "u32", value: H },
    "lfm2.attention.head_count_kv": { type: "i32[]", value: Array.from({ length: nLayers }, (_, l) => (attn.includes(l) ? nKv : 0)) },
    "lfm2.vocab_size": { type: "u32", value: V },
    "lfm2.shortconv.l_cache": { type: "u32", value: L },
  };
  if (s.tokenizer) {
    const tokens = Array.from({ length: V }, (_, i) => (i < 3 ? ["<|pad|>", "<|startoftext|>", "<|im_end|>"][i] : `t${i}`));
    Object.assign(meta, {
      "tokenizer.ggml.model": { type: "string", value: "gpt2" }, "tokenizer.ggml.pre": { type: "string", value: "lfm2" },
      "tokenizer.ggml.tokens": { type: "string[]", value: tokens }, "tokenizer.ggml.merges": { type: "string[]", value: ["t 1", "t 2"] },
      "tokenizer.ggml.token_type": { type: "i32[]", value: tokens.map((_, i) => (i < 3 ? 3 : 1)) },
      "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 }, "tokenizer.ggml.eos_token_id": { type: "u32", value: 2 },
    });
  }
  for (const [k, v] of Object.entries(s.meta ?? {})) { if (v === null) delete meta[k]; else meta[k] = v; }
  const drop = new Set(s.drop ?? []);
  return concatChunks(encodeGguf(meta as Record<string, GgufWriteValue>, tensors.filter((t) => !drop.has(t.name))));
}

/** Byte positions of the header fields of a valid GGUF, to patch single fields. */
function fieldsOf(b: Uint8Array) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  let p = 24;
  const str = () => { const n = Number(v.getBigUint64(p, true)); const s = dec.decode(b.subarray(p + 8, p + 8 + n)); p += 8 + n; return s; };
  const size: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const kv = new Map<string, { keyLenPos: number; typePos: number; lenPos: number; valuePos: number }>();
  const tensor = new Map<string, { dimPos: number[]; typePos: number; offsetPos: number }>();
  const nT = Number(v.getBigUint64(8, true)), nKv = Number(v.getBigUint64(16, true));
  for (let i = 0; i < nKv; i++) {
    const keyLenPos = p, key = str(), typePos = p, type = v.getUint32(p, true);
    p += 4;
    let lenPos = -1;
    const skip = (t: number) => { if (t === GgufValueType.STRING) str(); else p += size[t]; };
    if (type === GgufValueType.ARRAY) {
      const et = v.getUint32(p, true); lenPos = p + 4;
      const n = Number(v.getBigUint64(p + 4, true)); p += 12;
      for (let j = 0; j < n; j++) skip(et);
    } else { if (type === GgufValueType.STRING) lenPos = p; skip(type); }
    kv.set(key, { keyLenPos, typePos, lenPos, valuePos: type === GgufValueType.ARRAY ? lenPos + 8 : typePos + 4 });
  }
  for (let i = 0; i < nT; i++) {
    const name = str(), nd = v.getUint32(p, true);
    p += 4;
    const dimPos = Array.from({ length: nd }, (_, d) => p + 8 * d);
    p += 8 * nd;
    tensor.set(name, { dimPos, typePos: p, offsetPos: p + 4 });
    p += 12;
  }
  const set64 = (pos: number, x: bigint | number) => v.setBigUint64(pos, BigInt(x), true);
  const set32 = (pos: number, x: number) => v.setUint32(pos, x, true);
  return { kv, tensor, headerEnd: p, set64, set32 };
}

const tinyCache = new Map<string, Uint8Array>();
function tiny(weightType: GgmlTypeName = "Q4_0", seed = 1): Uint8Array {
  const key = `${weightType}/${seed}`;
  let b = tinyCache.get(key);
  if (!b) tinyCache.set(key, (b = concatChunks(syntheticGguf({ shape: "tiny", weightType, seed }))));
  return b;
}

/** A source that hands out `bytes` in `chunk`-sized pieces, counting what it produced. */
function chunkedSource(bytes: Uint8Array, chunk: number): ByteSource & { produced: number } {
  const src = {
    name: "chunked", size: bytes.length, produced: 0,
    async *chunks(start = 0) { for (let o = start; o < bytes.length; o += chunk) { src.produced++; yield bytes.subarray(o, Math.min(bytes.length, o + chunk)); } },
  };
  return src;
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<Lfm2Error> {
  try { await (typeof p === "function" ? p() : p); } catch (e) {
    if (!(e instanceof Lfm2Error)) throw new Error(`expected an Lfm2Error, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
    return e;
  }
  throw new Error("expected a rejection, but the call succeeded");
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: Lfm2ErrorCode, message?: RegExp): Promise<Lfm2Error> {
  const e = await rejection(p);
  expect(e.code, e.message).toBe(code);
  expect(e.name).toBe("Lfm2Error");
  expect(e.message.length).toBeGreaterThan(15);
  if (message) expect(e.message).toMatch(message);
  return e;
}

const load = (b: Uint8Array | ByteSource, opts: LoadOptions = {}) => loadModel(b, { threads: 1, ...opts });
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Plain-JS f32 LFM2 forward (the spec's equations: weights dequantized, no activation quantization),
 * independent of the wasm kernels and of llama.cpp. Logits of the last token.
 */
function referenceLogits(file: Uint8Array, tokens: number[]): Float32Array {
  const g = parseGguf(file);
  const c = configFromGguf(g.metadata);
  const W = new Map<string, Float32Array>();
  for (const t of g.tensors) W.set(t.name, dequantizeTensor(t.type, file.subarray(t.offset, t.offset + t.byteLength), t.shape.reduce((a, b) => a * b, 1)));
  const w = (n: string) => W.get(n)!;
  const D = c.hiddenSize, dh = c.headDim, H = c.nHeads, L = c.convL, eps = c.normEps;
  const matvec = (m: Float32Array, x: Float32Array, nOut: number) => {
    const n = x.length, y = new Float32Array(nOut);
    for (let r = 0; r < nOut; r++) { let s = 0; for (let i = 0; i < n; i++) s += m[r * n + i] * x[i]; y[r] = s; }
    return y;
  };
  const rms = (x: Float32Array, g: Float32Array) => { let s = 0; for (const v of x) s += v * v; const k = 1 / Math.sqrt(s / x.length + eps); return x.map((v, i) => v * k * g[i]); };
  const step = Math.fround(Math.pow(c.ropeTheta, -2 / dh));
  const rope = (x: Float32Array, pos: number) => {
    const half = dh / 2, out = x.slice();
    let a = Math.fround(pos);
    for (let i = 0; i < half; i++) { const co = Math.cos(a), si = Math.sin(a); out[i] = x[i] * co - x[i + half] * si; out[i + half] = x[i + half] * co + x[i] * si; a = Math.fround(a * step); }
    return out;
  };
  const conv = Array.from({ length: c.nLayers }, () => Array.from({ length: L - 1 }, () => new Float32Array(D)));
  const K: Float32Array[][] = Array.from({ length: c.nLayers }, () => []), Vc: Float32Array[][] = Array.from({ length: c.nLayers }, () => []);
  let h = new Float32Array(D);
  tokens.forEach((tok, pos) => {
    h = w("token_embd.weight").slice(tok * D, tok * D + D);
    for (let l = 0; l < c.nLayers; l++) {
      const p = `blk.${l}.`, u = rms(h, w(p + "attn_norm.weight"));
      let o: Float32Array;
      if (c.kvHeads[l] === 0) {
        const bcx = matvec(w(p + "shortconv.in_proj.weight"), u, 3 * D), k = w(p + "shortconv.conv.weight"), st = conv[l], y = new Float32Array(D);
        for (let ch = 0; ch < D; ch++) {
          const v = bcx[ch] * bcx[2 * D + ch];
          let s = v * k[ch * L + L - 1];
          for (let j = 0; j < L - 1; j++) s += st[j][ch] * k[ch * L + j];
          for (let j = 0; j < L - 2; j++) st[j][ch] = st[j + 1][ch];
          st[L - 2][ch] = v;
          y[ch] = bcx[D + ch] * s;
        }
        o = matvec(w(p + "shortconv.out_proj.weight"), y, D);
      } else {
        const Hkv = c.kvHeads[l];
        const q = matvec(w(p + "attn_q.weight"), u, H * dh), k = matvec(w(p + "attn_k.weight"), u, Hkv * dh), v = matvec(w(p + "attn_v.weight"), u, Hkv * dh);
        const head = (x: Float32Array, i: number, g: Float32Array) => rope(rms(x.subarray(i * dh, i * dh + dh), g), pos);
        const qs = Array.from({ length: H }, (_, i) => head(q, i, w(p + "attn_q_norm.weight")));
        const kk = new Float32Array(Hkv * dh);
        for (let i = 0; i < Hkv; i++) kk.set(head(k, i, w(p + "attn_k_norm.weight")), i * dh);
        K[l].push(kk); Vc[l].push(v);
        const att = new Float32Array(H * dh);
        for (let hh = 0; hh < H; hh++) {
          const g = Math.floor(hh / (H / Hkv));
          const sc = K[l].map((kr) => { let s = 0; for (let i = 0; i < dh; i++) s += qs[hh][i] * kr[g * dh + i]; return s / Math.sqrt(dh); });
          const mx = Math.max(...sc), e = sc.map((s) => Math.exp(s - mx)), z = e.reduce((a, b) => a + b, 0);
          for (let j = 0; j < sc.length; j++) for (let i = 0; i < dh; i++) att[hh * dh + i] += (e[j] / z) * Vc[l][j][g * dh + i];
        }
        o = matvec(w(p + "attn_output.weight"), att, D);
      }
      h = h.map((x, i) => x + o[i]);
      const u2 = rms(h, w(p + "ffn_norm.weight"));
      const gate = matvec(w(p + "ffn_gate.weight"), u2, c.ffDim), up = matvec(w(p + "ffn_up.weight"), u2, c.ffDim);
      const dn = matvec(w(p + "ffn_down.weight"), gate.map((z, i) => (z / (1 + Math.exp(-z))) * up[i]), D);
      h = h.map((x, i) => x + dn[i]);
    }
  });
  const finalNorm = W.get("token_embd_norm.weight") ?? w("output_norm.weight");
  return matvec(W.get("output.weight") ?? w("token_embd.weight"), rms(h, finalNorm), c.vocabSize);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

// ---- file format errors -----------------------------------------------------------------------

describe("typed errors: malformed GGUF files", () => {
  it("wrong magic → BAD_MAGIC", async () => {
    const b = microGguf();
    b.set([0x47, 0x47, 0x55, 0x47]); // "GGUG"
    await expectCode(load(b), "BAD_MAGIC", /not a GGUF file/);
    await expectCode(load(new TextEncoder().encode("<!doctype html><html>404 not found</html>")), "BAD_MAGIC");
    await expectCode(load(new Uint8Array(3)), "BAD_MAGIC", /too small/);
  });

  it("unsupported version → UNSUPPORTED_VERSION naming the version", async () => {
    for (const version of [1, 4, 0xffffffff]) {
      const b = microGguf();
      new DataView(b.buffer).setUint32(4, version, true);
      await expectCode(load(b), "UNSUPPORTED_VERSION", new RegExp(`version ${version} is not supported \\(2 and 3 are\\)`));
    }
  });

  it("truncated header → TRUNCATED", async () => {
    const b = microGguf({ tokenizer: true });
    for (const cut of [8, 20, 30, 100, fieldsOf(b).headerEnd - 1]) await expectCode(load(b.slice(0, cut)), "TRUNCATED", /truncated/);
  });

  it("truncated tensor data → TRUNCATED naming the tensor", async () => {
    const b = microGguf();
    const e = await expectCode(load(b.slice(0, b.length - 100)), "TRUNCATED", /tensor token_embd_norm\.weight data .* beyond the end of the file/);
    expect(e.message).toMatch(new RegExp(`\\(${b.length - 100} bytes\\)`));
    // the same through a file path
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const dir = mkdtempSync(`${(await import("node:os")).tmpdir()}/lfm2-err-`);
    writeFileSync(`${dir}/cut.gguf`, b.slice(0, b.length - 100));
    await expectCode(loadModel(`${dir}/cut.gguf`, { threads: 1 }), "TRUNCATED", /token_embd_norm\.weight/);
    await expectCode(loadModel(`${dir}/missing.gguf`, { threads: 1 }), "IO", /cannot read model file/);
  });

  it("tensor offset past the end of the file → OUT_OF_RANGE", async () => {
    const b = microGguf(), f = fieldsOf(b);
    const pos = f.tensor.get("blk.0.ffn_up.weight")!.offsetPos;
    f.set64(pos, Math.ceil(b.length / 32) * 32 + 64); // aligned, inside the u64 limit of the file size check
    await expectCode(load(b), "OUT_OF_RANGE", /blk\.0\.ffn_up\.weight/);
    const c = microGguf(), g = fieldsOf(c);
    g.set64(g.tensor.get("blk.0.ffn_up.weight")!.offsetPos, 2n ** 63n);
    await expectCode(load(c), "OUT_OF_RANGE", /tensor blk\.0\.ffn_up\.weight offset \d+ exceeds the limit/);
  });

  it("misaligned tensor offset → OUT_OF_RANGE", async () => {
    const b = microGguf(), f = fieldsOf(b);
    const pos = f.tensor.get("blk.1.attn_k.weight")!.offsetPos;
    f.set64(pos, new DataView(b.buffer).getBigUint64(pos, true) + 4n);
    await expectCode(load(b), "OUT_OF_RANGE", /tensor blk\.1\.attn_k\.weight offset \d+ is not aligned to 32/);
  });

  it("huge array / string lengths and counts fail fast without allocating", async () => {
    const base = microGguf({ tokenizer: true });
    const patches: [string, (f: ReturnType<typeof fieldsOf>) => void, RegExp][] = [
      ["token array length 2^62", (f) => f.set64(f.kv.get("tokenizer.ggml.tokens")!.lenPos, 2n ** 62n), /tokenizer\.ggml\.tokens array length/],
      ["merges array length 2^33", (f) => f.set64(f.kv.get("tokenizer.ggml.merges")!.lenPos, 2n ** 33n), /array length/],
      ["i32 array length 2^40", (f) => f.set64(f.kv.get("tokenizer.ggml.token_type")!.lenPos, 2n ** 40n), /array length/],
      ["string value length 2^40", (f) => f.set64(f.kv.get("general.name")!.lenPos, 2n ** 40n), /length/],
      ["key length 2^63", (f) => f.set64(f.kv.get("general.name")!.keyLenPos, 2n ** 63n), /metadata key length/],
      ["tensor count 2^63", (f) => f.set64(8, 2n ** 63n), /tensor count/],
      ["metadata count 2^60", (f) => f.set64(16, 2n ** 60n), /metadata count/],
      ["tensor count u64 max", (f) => f.set64(8, 2n ** 64n - 1n), /tensor count/],
      ["tensor dimension 2^52", (f) => f.set64(f.tensor.get("token_embd.weight")!.dimPos[1], 2n ** 52n), /token_embd\.weight/],
      ["tensor dimension 2^64-1", (f) => f.set64(f.tensor.get("token_embd.weight")!.dimPos[0], 2n ** 64n - 1n), /token_embd\.weight dimension/],
    ];
    const before = rssMb();
    for (const [what, patch, msg] of patches) {
      const b = base.slice();
      patch(fieldsOf(b));
      const t0 = performance.now();
      const e = await rejection(load(b));
      const ms = performance.now() - t0;
      expect(["OUT_OF_RANGE", "TRUNCATED"], `${what}: ${e.code} ${e.message}`).toContain(e.code);
      expect(e.message, what).toMatch(msg);
      expect(ms, what).toBeLessThan(HANG_GUARD_MS); // fails fast: nothing sized by the hostile count
    }
    expect(rssMb() - before).toBeLessThan(64);
  });

  it("unknown architecture → UNSUPPORTED_ARCH naming it", async () => {
    const b = microGguf({ meta: { "general.architecture": { type: "string", value: "llama" } } });
    await expectCode(load(b), "UNSUPPORTED_ARCH", /architecture "llama" is not supported .*expected "lfm2"/);
    await expectCode(load(microGguf({ meta: { "general.architecture": null } })), "UNSUPPORTED_ARCH", /\(none\)/);
  });

  it("unknown tensor type id → UNSUPPORTED_TYPE naming the tensor and the id", async () => {
    for (const id of [4, 5, 10, 16, 31, 99, 0xffffffff]) { // 4/5: removed Q4_2/Q4_3; 10: Q2_K; 16: IQ2_XXS …
      const b = microGguf(), f = fieldsOf(b);
      f.set32(f.tensor.get("blk.0.ffn_gate.weight")!.typePos, id);
      await expectCode(load(b), "UNSUPPORTED_TYPE", new RegExp(`tensor blk\\.0\\.ffn_gate\\.weight has ggml type ${id}`));
    }
  });

  it("tensor shape disagreeing with the metadata → SHAPE_MISMATCH naming both shapes", async () => {
    const b = microGguf({ meta: { "lfm2.feed_forward_length": { type: "u32", value: 128 } } });
    await expectCode(load(b), "SHAPE_MISMATCH", /tensor blk\.0\.ffn_gate\.weight has shape \[32,64\] but the config implies \[32,128\]/);
    const c = microGguf({ meta: { "lfm2.vocab_size": { type: "u32", value: 65 } } });
    await expectCode(load(c), "SHAPE_MISMATCH", /token_embd\.weight .*\[32,64\].*\[32,65\]/);
    const d = microGguf({ type: "Q8_0" }), f = fieldsOf(d);
    f.set64(f.tensor.get("blk.0.ffn_down.weight")!.dimPos[0], 48); // not a whole number of 32-blocks
    await expectCode(load(d), "SHAPE_MISMATCH", /Q8_0 rows need a multiple of 32 elements, got 48/);
  });

  it("missing tensor → MISSING_TENSOR naming it", async () => {
    await expectCode(load(microGguf({ drop: ["blk.1.attn_v.weight"] })), "MISSING_TENSOR", /model lacks tensor blk\.1\.attn_v\.weight/);
    await expectCode(load(microGguf({ drop: ["token_embd_norm.weight"] })), "MISSING_TENSOR", /final norm/);
  });

  it("per-layer head_count_kv of the wrong length → BAD_METADATA", async () => {
    const b = microGguf({ nLayers: 3, attn: [1], meta: { "lfm2.attention.head_count_kv": { type: "i32[]", value: [0, 1] } } });
    await expectCode(load(b), "BAD_METADATA", /head_count_kv has 2 entries for 3 layers/);
    const c = microGguf({ meta: { "lfm2.attention.head_count_kv": { type: "i32[]", value: [] } } });
    await expectCode(load(c), "BAD_METADATA", /head_count_kv/);
    const d = microGguf({ meta: { "lfm2.attention.head_count_kv": { type: "string", value: "2" } } });
    await expectCode(load(d), "BAD_METADATA", /head_count_kv should be numeric/);
  });

  it("a model too large for wasm32 → MODEL_TOO_LARGE before reading or allocating the weights", async () => {
    // a header claiming an 8.6 GB F32 embedding (D 512 × vocab 4,194,304), laid out last; one small Q4_0 conv layer before it.
    // The embedding's data is never materialized.
    const D = 512, V = 1 << 22, ff = 512;
    const q = (name: string, shape: number[]): GgufWriteTensor => ({ name, shape, type: GGML.Q4_0, data: new Uint8Array((shape[0] / 32) * 18 * shape[1]) });
    const f = (name: string, shape: number[]): GgufWriteTensor => ({ name, shape, type: GGML.F32, data: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
    const embed: GgufWriteTensor = { name: "token_embd.weight", shape: [D, V], type: GGML.F32, data: { length: D * V * 4 } as Uint8Array };
    const tensors = [f("blk.0.attn_norm.weight", [D]), q("blk.0.shortconv.in_proj.weight", [D, 3 * D]), f("blk.0.shortconv.conv.weight", [3, D]),
      q("blk.0.shortconv.out_proj.weight", [D, D]), f("blk.0.ffn_norm.weight", [D]), q("blk.0.ffn_gate.weight", [D, ff]), q("blk.0.ffn_up.weight", [D, ff]),
      q("blk.0.ffn_down.weight", [ff, D]), f("token_embd_norm.weight", [D]), embed];
    const meta: Record<string, GgufWriteValue> = {
      "general.architecture": { type: "string", value: "lfm2" }, "lfm2.embedding_length": { type: "u32", value: D }, "lfm2.block_count": { type: "u32", value: 1 },
      "lfm2.feed_forward_length": { type: "u32", value: ff }, "lfm2.attention.head_count": { type: "u32", value: 8 },
      "lfm2.attention.head_count_kv": { type: "i32[]", value: [0] }, "lfm2.vocab_size": { type: "u32", value: V },
    };
    const chunks = encodeGguf(meta, tensors);
    const present = concatChunks(chunks.slice(0, chunks.indexOf(embed.data)));   // header and the small tensors
    const size = present.length + embed.data.length;
    expect(size).toBeGreaterThan(8e9);
    let produced = 0;
    const lazy: ByteSource = {
      name: "eight-gigabytes.gguf", size,
      async *chunks() {
        for (let o = 0; o < size; o += 4 << 20) {
          produced++;
          const c = new Uint8Array(Math.min(4 << 20, size - o));
          if (o < present.length) c.set(present.subarray(o, o + c.length));
          yield c;
        }
      },
    };
    const before = rssMb();
    await expectCode(load(lazy), "MODEL_TOO_LARGE", /eight-gigabytes\.gguf holds 8\.\d+ GiB of weights; one WebAssembly memory holds at most 4\.00 GiB/);
    expect(produced).toBeLessThanOrEqual(2);
    expect(rssMb() - before).toBeLessThan(100);
    // the same file cut after the small tensors: the embedding's data is simply not there
    await expectCode(load(present), "TRUNCATED", /tensor token_embd\.weight data \[\d+, \d+\) lies beyond the end of the file/);
    expect(rssMb() - before).toBeLessThan(100);
  });

  it("a truncated or non-JSON safetensors file and a bad config.json are typed errors too", async () => {
    const st = concatChunks(encodeSafetensors([{ name: "model.embed_tokens.weight", dtype: "F32", shape: [8, 32], data: new Uint8Array(8 * 32 * 4) }]));
    const cfg = { model_type: "lfm2", hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, block_ff_dim: 64, full_attn_idxs: [], vocab_size: 8 };
    await expectCode(loadModel({ config: cfg, safetensors: st.slice(0, st.length - 10) }, { threads: 1 }), "TRUNCATED", /model\.embed_tokens\.weight/);
    await expectCode(loadModel({ config: cfg, safetensors: st.slice(0, 40) }, { threads: 1 }), "TRUNCATED", /safetensors header \(\d+ bytes\) runs past the end of the file \(40 bytes\)/);
    const bad = st.slice(); bad[9] = 0x7b;
    await expectCode(loadModel({ config: cfg, safetensors: bad }, { threads: 1 }), "BAD_MAGIC", /not valid JSON/);
    await expectCode(loadModel({ config: cfg, safetensors: st }, { threads: 1 }), "MISSING_TENSOR");
    await expectCode(loadModel({ config: "{", safetensors: st }, { threads: 1 }), "BAD_INPUT", /config\.json is not valid JSON/);
    await expectCode(loadModel({ config: { ...cfg, model_type: "llama" }, safetensors: st }, { threads: 1 }), "UNSUPPORTED_ARCH", /"llama"/);
  });
});

// ---- sessions: context, input, aborts ---------------------------------------------------------

async function drain<T, R>(it: AsyncGenerator<T, R>, onDelta?: (d: T, n: number) => void): Promise<R> {
  let n = 0;
  for (;;) { const r = await it.next(); if (r.done) return r.value; onDelta?.(r.value, ++n); }
}

describe("typed errors: sessions", () => {
  let model: Model;
  const getModel = async () => (model ??= await load(tiny("Q4_0")));

  it("context overflow in session.forward → CONTEXT_OVERFLOW; nothing changes and the session gives a fresh one's logits", async () => {
    const m = await getModel();
    const s = m.createSession({ contextLength: 8 });
    await expectCode(s.forward([1, 2, 3, 4, 5, 6, 7, 8, 9]), "CONTEXT_OVERFLOW", /0 cached \+ 9 new tokens exceed the context length 8/);
    expect(s.position).toBe(0);
    await s.forward([1, 20, 30, 40, 50]);
    await expectCode(s.forward([60, 70, 80, 90]), "CONTEXT_OVERFLOW", /5 cached \+ 4 new tokens exceed the context length 8/);
    expect(s.tokens).toEqual([1, 20, 30, 40, 50]);
    const got = await s.forward([60, 70, 80]);
    expect(s.position).toBe(8);
    await expectCode(s.forward([1]), "CONTEXT_OVERFLOW");
    const fresh = m.createSession({ contextLength: 8 });
    await fresh.forward([1, 20, 30, 40, 50]);
    expect(sameBits(got, await fresh.forward([60, 70, 80]))).toBe(true);
    s.reset();
    expect(sameBits(await s.forward([1, 20, 30, 40, 50, 60, 70, 80]), await m.createSession({ contextLength: 8 }).forward([1, 20, 30, 40, 50, 60, 70, 80]))).toBe(true);
  });

  it("context overflow in session.generate → CONTEXT_OVERFLOW; the session still generates what a fresh one does", async () => {
    const m = await getModel();
    const s = m.createSession({ contextLength: 16 });
    const long = Array.from({ length: 16 }, (_, i) => 100 + i);
    await expectCode(drain(s.generate(long, { maxTokens: 4 })), "CONTEXT_OVERFLOW", /the prompt has 16 tokens; the session's context holds 16/);
    await expectCode(drain(s.generate("word ".repeat(40), { maxTokens: 4 })), "CONTEXT_OVERFLOW", /context holds 16/);
    expect(s.position).toBe(0);
    // generation that runs into the end of the context stops there (finishReason "context"), without an error
    const r = await drain(s.generate([1, 300, 400], { maxTokens: 100, temperature: 0, stopTokens: [] }));
    expect(["context", "stop"]).toContain(r.finishReason);
    expect(s.position).toBeLessThanOrEqual(16);
    const again = await drain(s.generate([1, 300, 400], { maxTokens: 5, temperature: 0 }));
    const fresh = await drain(m.createSession({ contextLength: 16 }).generate([1, 300, 400], { maxTokens: 5, temperature: 0 }));
    expect(again.tokens).toEqual(fresh.tokens);
  });

  it("token ids out of range → BAD_INPUT; the session stays usable", async () => {
    const m = await getModel();
    const V = m.info.config.vocabSize;
    const s = m.createSession({ contextLength: 32 });
    for (const bad of [V, V + 1, -1, 1.5, NaN, Infinity, 2 ** 53]) {
      await expectCode(s.forward([1, bad]), "BAD_INPUT", /outside the vocabulary \(0\.\.2047\)/);
    }
    await expectCode(s.forward([]), "BAD_INPUT", /at least one token/);
    await expectCode(drain(s.generate([1, V + 5], { maxTokens: 2 })), "BAD_INPUT", /outside the vocabulary/);
    await expectCode(async () => m.createSession({ contextLength: 0 }), "BAD_INPUT", /contextLength must be a positive integer/);
    expect(s.position).toBe(0);
    expect(sameBits(await s.forward([1, 2, 3]), await m.createSession({ contextLength: 32 }).forward([1, 2, 3]))).toBe(true);
  });
});

describe("typed errors: aborts", () => {
  it("an aborted load → ABORTED (before, during, and on the last chunk); the next load works", async () => {
    const b = tiny("Q4_0");
    const ac = new AbortController();
    ac.abort();
    const src = chunkedSource(b, 64 << 10);
    await expectCode(load(src, { signal: ac.signal }), "ABORTED", /aborted/);
    expect(src.produced).toBe(0);
    // mid-way: abort from the progress callback after the third chunk
    const mid = new AbortController(), src2 = chunkedSource(b, 64 << 10);
    let calls = 0;
    await expectCode(load(src2, { signal: mid.signal, onProgress: () => { if (++calls === 3) mid.abort(new Error("user pressed stop")); } }), "ABORTED", /user pressed stop/);
    expect(src2.produced).toBeLessThan(6);
    // on the only chunk of a small file: the load must not complete anyway
    const last = new AbortController();
    await expectCode(load(microGguf(), { signal: last.signal, onProgress: () => last.abort() }), "ABORTED");
    // from a timer while a path is being read
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const path = `${mkdtempSync(`${(await import("node:os")).tmpdir()}/lfm2-abort-`)}/m.gguf`;
    writeFileSync(path, tiny("F32"));
    const timed = new AbortController();
    setTimeout(() => timed.abort(), 1);
    await expectCode(loadModel(path, { threads: 1, signal: timed.signal }), "ABORTED");
    const ok = await load(b);
    expect((await ok.createSession({ contextLength: 4 }).forward([1])).every(Number.isFinite)).toBe(true);
  });

  it("an aborted generation → ABORTED promptly; the session and the model keep working and reproduce independent reference logits", async () => {
    const file = tiny("F32", 5);
    const model = await load(file);
    const prompt = [1, 400, 900, 1500, 33];
    const reference = referenceLogits(file, prompt);          // plain JS, no wasm, no llama.cpp
    const before = await model.createSession({ contextLength: 512 }).forward(prompt);
    expect(maxAbsDiff(before, reference)).toBeLessThan(1e-2);

    const s = model.createSession({ contextLength: 512 });
    // 1) abort from a timer while decoding: the signal must be seen mid-way, not after maxTokens
    const ac = new AbortController();
    let n = 0, nAtAbort = -1;
    setTimeout(() => { nAtAbort = n; ac.abort(); }, 40);
    const noEnd = Object.fromEntries([...model.tokenizer!.eogIds].map((id) => [id, -Infinity])); // run until aborted
    const e = await rejection(drain(s.generate(prompt, { maxTokens: 500, temperature: 0.9, seed: 3, logitBias: noEnd, signal: ac.signal }), () => n++));
    expect(e.code).toBe("ABORTED");
    expect(nAtAbort).toBeGreaterThanOrEqual(0);
    // the signal is seen at the next token: no more than the token in flight after the abort
    expect(n - nAtAbort).toBeLessThanOrEqual(1);
    expect(n).toBeLessThan(500);
    expect(s.position).toBeGreaterThanOrEqual(prompt.length);
    expect(s.position).toBeLessThanOrEqual(prompt.length + n);
    // 2) abort from inside the stream after three tokens
    const ac2 = new AbortController();
    await expectCode(drain(s.generate(prompt, { maxTokens: 50, temperature: 0, signal: ac2.signal }), (_, k) => { if (k === 3) ac2.abort(); }), "ABORTED", /aborted/);
    // 3) the same session continues: greedy generation equals a fresh session's
    const cont = await drain(s.generate(prompt, { maxTokens: 6, temperature: 0 }));
    const fresh = await drain(model.createSession({ contextLength: 512 }).generate(prompt, { maxTokens: 6, temperature: 0 }));
    expect(cont.tokens).toEqual(fresh.tokens);
    s.reset();
    expect(sameBits(await s.forward(prompt), before)).toBe(true);
    // 4) a fresh session reproduces the logits from before the aborts, and the independent reference
    const after = await model.createSession({ contextLength: 512 }).forward(prompt);
    expect(sameBits(after, before)).toBe(true);
    expect(maxAbsDiff(after, reference)).toBeLessThan(1e-2);
  });
});

describe("typed errors: failed loads leave the process healthy", () => {
  it("a failed load does not prevent loading a good model afterwards, and 50 failing loads do not leak", async () => {
    const good = tiny("Q4_0");
    const cut = good.slice(0, good.length - 1000);            // fails only after the arena holds the weights
    const missing = microGguf({ drop: ["blk.0.ffn_up.weight"] }); // fails while planning the arena
    await expectCode(load(cut), "TRUNCATED");
    const ok1 = await load(good);
    const ref = await ok1.createSession({ contextLength: 8 }).forward([1, 2]);
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 5; i++) { await expectCode(load(cut), "TRUNCATED"); await expectCode(load(missing), "MISSING_TENSOR"); }
    gc?.();
    const before = rssMb();
    for (let i = 0; i < 50; i++) {
      await expectCode(load(cut), "TRUNCATED");
      await expectCode(load(missing), "MISSING_TENSOR");
    }
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
    const growth = rssMb() - before;
    console.log(`rss growth over 50 failing loads of each kind: ${growth.toFixed(1)} MiB`);
    expect(growth).toBeLessThan(120);
    const ok2 = await load(good);
    expect(sameBits(await ok2.createSession({ contextLength: 8 }).forward([1, 2]), ref)).toBe(true);
  });
});

// ---- regressions (found by test/fuzz.test.ts and while writing these tests) -------------------

describe("typed errors: regressions", () => {
  it("a huge layer count fails fast (it sized per-layer arrays before validation: OOM crash / RangeError)", async () => {
    for (const v of [2 ** 31, 2 ** 32 - 1, 1e9]) {
      const b = microGguf({ nLayers: 1, attn: [0], meta: { "lfm2.block_count": { type: "u64", value: v }, "lfm2.attention.head_count_kv": { type: "u32", value: 1 } } });
      const t0 = performance.now();
      await expectCode(load(b), "BAD_METADATA", /layer count \d+ is out of range/);
      expect(performance.now() - t0).toBeLessThan(HANG_GUARD_MS);
    }
    const b = microGguf({ meta: { "lfm2.block_count": { type: "f32", value: 1.5 } } });
    await expectCode(load(b), "BAD_METADATA", /layer count 1.5/);
    const st = concatChunks(encodeSafetensors([{ name: "model.embed_tokens.weight", dtype: "F32", shape: [8, 32], data: new Uint8Array(8 * 32 * 4) }]));
    for (const n of [1e9, 2 ** 32, -1, "2"]) {
      const cfg = { model_type: "lfm2", hidden_size: 32, num_hidden_layers: n, num_attention_heads: 2, num_key_value_heads: 1, block_ff_dim: 64, full_attn_idxs: [1], vocab_size: 8 };
      await expectCode(loadModel({ config: cfg, safetensors: st }, { threads: 1 }), "BAD_METADATA", /layer count/);
    }
  });

  it("a config.json that is not an object → BAD_INPUT (was a TypeError)", async () => {
    const st = concatChunks(encodeSafetensors([{ name: "model.embed_tokens.weight", dtype: "F32", shape: [8, 32], data: new Uint8Array(8 * 32 * 4) }]));
    for (const config of [null, "null", "[]", "5", [] as unknown, 5 as unknown]) {
      await expectCode(loadModel({ config: config as never, safetensors: st }, { threads: 1 }), "BAD_INPUT", /config\.json must be a JSON object/);
    }
  });

  it("sizes the SIMD kernels cannot run are rejected (they silently gave wrong logits); multiples of 8 match the reference", async () => {
    await expectCode(load(microGguf({ D: 36, nHeads: 2, ff: 64 })), "BAD_METADATA", /hidden size 36 is not a multiple of 8/);
    await expectCode(load(microGguf({ D: 48, nHeads: 4, ff: 64 })), "BAD_METADATA", /head dim 12 is not a multiple of 8/);
    await expectCode(load(microGguf({ D: 32, nHeads: 2, ff: 36 })), "BAD_METADATA", /feed-forward size 36 is not a multiple of 8/);
    await expectCode(load(microGguf({ convL: 1 })), "BAD_METADATA", /conv length 1/);
    for (const spec of [{ D: 40, nHeads: 5, ff: 40 }, { D: 48, nHeads: 6, nKv: 2, ff: 56, type: "BF16" as const }, { D: 32, convL: 4 }, { D: 64, nHeads: 4, ff: 96, type: "Q8_0" as const }]) {
      const file = microGguf(spec, 9);
      const m = await load(file);
      const toks = [1, 5, 7, 3, 60];
      const got = await m.createSession({ contextLength: 8 }).forward(toks);
      const ref = referenceLogits(file, toks), scale = Math.max(...Array.from(ref, Math.abs));
      // F32: only the fp16 KV cache differs; BF16 / Q8_0 also round or quantize the activations
      expect(maxAbsDiff(got, ref) / scale, JSON.stringify(spec)).toBeLessThan(spec.type ? 0.025 : 0.003);
    }
  });
});
