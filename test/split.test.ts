// Split GGUF (llama.cpp gguf-split layout): a synthetic model is split into 3 complete GGUF files the
// way `llama-gguf-split --split-max-tensors` does it; llama.cpp (node-llama-cpp) must load the split
// from its first part, and our merged view must hold exactly the original tensors, byte for byte.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Arena, createMemory } from "../bindings/arena.js";
import { Lfm2Error } from "../src/errors.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import { parseGguf, type GgufFile } from "../src/formats/gguf.js";
import { bytesSource, type ByteSource } from "../src/io/source.js";
import {
  assertWholeGguf, isSplitSource, mergeSplitHeaders, openSplitParts, parseSplitName, readGgufHeader, readSplitGguf, splitPartName, splitSource, streamSplitGguf,
} from "../src/io/split.js";
import { architecture, configFromGguf } from "../src/models/registry.js";
import { syntheticGguf } from "../src/models/synthetic.js";
import { planWeights, weightArenaBytes } from "../src/graph/placement.js";
import { llamaRef, maxAbsDiff } from "./helpers/llama-ref.js";

// ---- test-side gguf-split: copy part 1's metadata verbatim, add split.* keys, distribute tensors ----

const GGUF_MAGIC = 0x46554747;
const SCALAR: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** End offset of the metadata key/value section (raw bytes are copied into part 1 unchanged). */
function kvEnd(b: Uint8Array): { nKv: number; end: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const nKv = Number(v.getBigUint64(16, true));
  let p = 24;
  const str = () => { p += 8 + Number(v.getBigUint64(p, true)); };
  for (let i = 0; i < nKv; i++) {
    str();
    const t = v.getUint32(p, true); p += 4;
    if (t === 8) str();
    else if (t === 9) {
      const et = v.getUint32(p, true); const n = Number(v.getBigUint64(p + 4, true)); p += 12;
      if (et === 8) for (let j = 0; j < n; j++) str(); else p += n * SCALAR[et];
    } else p += SCALAR[t];
  }
  return { nKv, end: p };
}

class W {
  parts: Uint8Array[] = [];
  len = 0;
  private push(b: Uint8Array) { this.parts.push(b); this.len += b.length; }
  raw(b: Uint8Array) { this.push(b); }
  u16(x: number) { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, x, true); this.push(b); }
  u32(x: number) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, x, true); this.push(b); }
  i32(x: number) { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, x, true); this.push(b); }
  u64(x: number) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(x), true); this.push(b); }
  str(s: string) { const e = new TextEncoder().encode(s); this.u64(e.length); this.push(e); }
  pad(a: number) { const n = (a - (this.len % a)) % a; if (n) this.push(new Uint8Array(n)); }
  bytes() { return concatChunks(this.parts); }
}

/** Split like `llama-gguf-split --split-max-tensors ceil(N/nSplit)`: all metadata in part 1, split.* in every part. */
function ggufSplit(file: Uint8Array, nSplit: number): Uint8Array[] {
  const h = parseGguf(file);
  const { nKv, end } = kvEnd(file);
  const per = Math.ceil(h.tensors.length / nSplit);
  const out: Uint8Array[] = [];
  for (let s = 0; s < nSplit; s++) {
    const ts = h.tensors.slice(s * per, (s + 1) * per);
    const w = new W();
    w.u32(GGUF_MAGIC); w.u32(3); w.u64(ts.length); w.u64((s === 0 ? nKv : 0) + 3);
    if (s === 0) w.raw(file.subarray(24, end));
    w.str("split.no"); w.u32(2); w.u16(s);                       // GGUF_TYPE_UINT16
    w.str("split.count"); w.u32(2); w.u16(nSplit);
    w.str("split.tensors.count"); w.u32(5); w.i32(h.tensors.length); // GGUF_TYPE_INT32
    let rel = 0;
    for (const t of ts) {
      w.str(t.name); w.u32(t.shape.length); for (const d of t.shape) w.u64(d); w.u32(t.type.id); w.u64(rel);
      rel += Math.ceil(t.byteLength / 32) * 32;
    }
    w.pad(32);
    for (const t of ts) { w.raw(file.subarray(t.offset, t.offset + t.byteLength)); w.pad(32); }
    out.push(w.bytes());
  }
  return out;
}

// ---- fixtures -----------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "lfm2-split-"));
let original: Uint8Array, origHeader: GgufFile, partBytes: Uint8Array[], singlePath: string, partPaths: string[];

beforeAll(() => {
  original = concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q8_0" }));
  origHeader = parseGguf(original);
  partBytes = ggufSplit(original, 3);
  singlePath = join(dir, "tiny-Q8_0.gguf");
  writeFileSync(singlePath, original);
  partPaths = partBytes.map((b, i) => { const p = join(dir, splitPartName("tiny-Q8_0", i + 1, 3)); writeFileSync(p, b); return p; });
});

const sources = () => partBytes.map((b, i) => bytesSource(b, `part${i + 1}`));

async function collectTensors(parts: ByteSource[]) {
  const chunks: { offset: number; chunk: Uint8Array }[] = [];
  let last = -1;
  const file = await streamSplitGguf(parts, (_f, offset, chunk) => {
    expect(offset).toBeGreaterThan(last);
    last = offset;
    chunks.push({ offset, chunk: chunk.slice() });
  });
  const virtual = concatChunks(chunks.map((c) => c.chunk));
  expect(virtual.length).toBe(file.size);
  return { file, virtual };
}

describe("split names", () => {
  it("parses and builds llama.cpp split names", () => {
    expect(parseSplitName("/m/LFM2-1.2B-Q4_K_M-00002-of-00003.gguf")).toEqual({ prefix: "/m/LFM2-1.2B-Q4_K_M", no: 2, count: 3 });
    expect(parseSplitName("LFM2-350M-Q4_0.gguf")).toBeUndefined();
    expect(parseSplitName("x-00004-of-00003.gguf")).toBeUndefined();
    expect(splitPartName("a/b", 1, 12)).toBe("a/b-00001-of-00012.gguf");
  });
});

describe("split GGUF", () => {
  it("writes parts that are complete GGUF files with llama.cpp's split keys", () => {
    const heads = partBytes.map((b) => parseGguf(b));
    expect(heads.map((h) => h.tensors.length)).toEqual([19, 19, 18]);
    expect(heads.map((h) => h.metadata.get("split.no"))).toEqual([0, 1, 2]);
    expect(heads.every((h) => h.metadata.get("split.count") === 3 && h.metadata.get("split.tensors.count") === 56)).toBe(true);
    expect(heads[0].metadata.get("general.architecture")).toBe("lfm2");
    expect(heads[1].metadata.has("general.architecture")).toBe(false);
  });

  it("merged view holds exactly the original tensors with identical bytes", async () => {
    const { file, virtual } = await collectTensors(sources());
    expect(file.tensors.map((t) => [t.name, t.shape, t.type.name, t.byteLength]))
      .toEqual(origHeader.tensors.map((t) => [t.name, t.shape, t.type.name, t.byteLength]));
    expect(new Set(file.tensors.map((t) => t.part))).toEqual(new Set([0, 1, 2]));
    for (const [i, t] of file.tensors.entries()) {
      const o = origHeader.tensors[i];
      const mine = virtual.subarray(t.offset, t.offset + t.byteLength);
      const inPart = partBytes[t.part].subarray(t.offsetInPart, t.offsetInPart + t.byteLength);
      expect(Buffer.compare(mine, original.subarray(o.offset, o.offset + o.byteLength)), t.name).toBe(0);
      expect(Buffer.compare(inPart, mine), t.name).toBe(0);
    }
    // metadata is part 1's: the original keys (plus split.*)
    for (const [k, v] of origHeader.metadata) expect(file.metadata.get(k), k).toEqual(v);
    expect(file.partOffsets).toEqual([0, partBytes[0].length, partBytes[0].length + partBytes[1].length]);
  });

  it("the loader's weight sink fills WebAssembly memory identically from the split and the single file", async () => {
    const place = async (load: (sink: (h: GgufFile, offset: number, chunk: Uint8Array) => void) => Promise<unknown>) => {
      let arena: Arena | undefined, plan: ReturnType<typeof planWeights> | undefined;
      await load((h, offset, chunk) => {
        if (!plan) {
          const cfg = configFromGguf(h.metadata);
          const specs = architecture(cfg.architecture).tensors(cfg);
          arena = new Arena(createMemory(weightArenaBytes(specs, h.tensors) + (1 << 20), false));
          plan = planWeights(specs, h.tensors, () => arena!);
        }
        plan.sink(offset, chunk);
      });
      return arena!.u8(0, arena!.used).slice();
    };
    const single = await place(async (sink) => { const h = parseGguf(original); sink(h, 0, original); });
    const split = await place((sink) => streamSplitGguf(sources(), sink));
    expect(split.length).toBe(single.length);
    expect(Buffer.compare(split, single)).toBe(0);
  });

  it("llama.cpp (node-llama-cpp) loads the split from its first part, with the same logits as the single file", async () => {
    const tokens = [1, 520, 777, 1024, 33, 1999];
    const a = await llamaRef(singlePath);
    const b = await llamaRef(partPaths[0]);
    try {
      const la = await a.logits(tokens), lb = await b.logits(tokens);
      expect(la.length).toBeGreaterThan(1000);
      expect(maxAbsDiff(la, lb)).toBe(0);
    } finally { await a.dispose(); await b.dispose(); }
    // llama.cpp really reads the split: without part 3 it refuses the model
    const lonely = mkdtempSync(join(tmpdir(), "lfm2-split-missing-"));
    partBytes.slice(0, 2).forEach((b, i) => writeFileSync(join(lonely, splitPartName("m", i + 1, 3)), b));
    await expect(llamaRef(join(lonely, splitPartName("m", 1, 3)))).rejects.toThrow();
  });

  it("opens the other parts from the first part's path, and sorts parts given out of order", async () => {
    const parts = await openSplitParts(partPaths[0]);
    expect(parts.map((p) => p.name)).toEqual(partPaths);
    const single = await openSplitParts(singlePath);
    expect(single.map((p) => p.name)).toEqual([singlePath]);
    const s = sources();
    const file = await readSplitGguf([s[2], s[0], s[1]]);
    expect(file.partNames).toEqual(["part1", "part2", "part3"]);
    expect(file.tensors.length).toBe(56);
    const { virtual } = await collectTensors([s[1], s[2], s[0]]);
    expect(Buffer.compare(virtual, concatChunks(partBytes))).toBe(0);
  });

  it("splitSource presents the parts as one ByteSource (reads across part boundaries)", async () => {
    const src = splitSource(sources());
    expect(isSplitSource(src)).toBe(true);
    expect(isSplitSource(bytesSource(original))).toBe(false);
    const all = concatChunks(partBytes);
    expect(src.size).toBe(all.length);
    for (const start of [0, 5, partBytes[0].length - 3, partBytes[0].length, all.length - 1]) {
      const got: Uint8Array[] = [];
      for await (const c of src.chunks(start)) got.push(c);
      expect(Buffer.compare(concatChunks(got), all.subarray(start)), `start ${start}`).toBe(0);
    }
  });

  it("single unsplit files pass through; inconsistent parts are rejected with typed errors", async () => {
    const one = await readSplitGguf([bytesSource(original, "one")]);
    expect(one.tensors.map((t) => t.offset)).toEqual(origHeader.tensors.map((t) => t.offset));
    const code = async (p: Promise<unknown>) => { try { await p; return "ok"; } catch (e) { expect(e).toBeInstanceOf(Lfm2Error); return `${(e as Lfm2Error).code}: ${(e as Error).message}`; } };
    const s = sources();
    expect(await code(readSplitGguf([s[0]]))).toMatch(/^BAD_INPUT: part1 is part 1 of a model split in 3 files/);
    expect(() => assertWholeGguf(parseGguf(partBytes[1]).metadata, "p2")).toThrow(/p2 is part 2 of a model split in 3 files/);
    expect(() => assertWholeGguf(origHeader.metadata, "whole")).not.toThrow();
    expect(await code(readSplitGguf([s[0], s[2]]))).toMatch(/^BAD_INPUT: .*says the model has 3 parts but 2/);
    expect(await code(readSplitGguf([s[0], s[1], s[1]]))).toMatch(/^BAD_INPUT: part2 and part2 are both part 2/);
    expect(await code(readSplitGguf([s[0], s[1], bytesSource(original, "x")]))).toMatch(/^BAD_INPUT: x is not part of a split GGUF/);
    // tensor count disagreeing with split.tensors.count
    const h = await Promise.all(s.map((p) => readGgufHeader(p)));
    const bad = { ...h[2], tensors: h[2].tensors.slice(1) };
    expect(await code(Promise.resolve().then(() => mergeSplitHeaders([h[0], h[1], bad].map((header, i) => ({ header, size: partBytes[i].length, name: `p${i}` }))))))
      .toMatch(/^BAD_METADATA: p0: split.tensors.count is 56 but the 3 part\(s\) hold 55/);
    const dup = { ...h[2], tensors: [...h[2].tensors.slice(1), h[0].tensors[0]] };
    expect(await code(Promise.resolve().then(() => mergeSplitHeaders([h[0], h[1], dup].map((header, i) => ({ header, size: partBytes[i].length, name: `p${i}` }))))))
      .toMatch(/^BAD_METADATA: tensor token_embd.weight appears in two parts/);
    // a truncated last part
    expect(await code(streamSplitGguf([s[0], s[1], { name: "short", size: partBytes[2].length, chunks: async function* (start = 0) { yield partBytes[2].subarray(start, partBytes[2].length - 100); } }], () => {})))
      .toMatch(/^TRUNCATED: short ended after/);
  });

  it("reports progress over all parts and stops on abort", async () => {
    const seen: { loaded: number; total: number; file?: string }[] = [];
    await streamSplitGguf(sources(), () => {}, { onProgress: (p) => seen.push(p) });
    const total = partBytes.reduce((a, b) => a + b.length, 0);
    expect(seen.at(-1)).toMatchObject({ loaded: total, total, file: "part3" });
    const ac = new AbortController();
    const err = await streamSplitGguf(sources(), (_f, _o, _c, part) => { if (part === 1) ac.abort(); }, { signal: ac.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(Lfm2Error);
    expect(err.code).toBe("ABORTED");
  });
});


describe("loadModel on split files", () => {
  it("a path to part 1 loads all parts and gives the single file's logits; part 2 alone is refused", async () => {
    const { loadModel } = await import("../src/index.js");
    const whole = await loadModel(original, { threads: 1 });
    const split = await loadModel(partPaths[0], { threads: 1 });
    const ids = [1, 600, 700, 800, 900];
    const a = await whole.createSession({ contextLength: 32 }).forward(ids);
    const b = await split.createSession({ contextLength: 32 }).forward(ids);
    expect(Array.from(b)).toEqual(Array.from(a));
    await expect(loadModel(partBytes[1], { threads: 1 })).rejects.toBeInstanceOf(Lfm2Error);
  }, 60_000);
});
