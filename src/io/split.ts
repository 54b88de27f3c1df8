// Split GGUF models, as written by llama.cpp's `gguf-split` and published on the hub:
// `name-00001-of-00003.gguf`, `name-00002-of-00003.gguf`, ... Every part is a complete GGUF file with
// its own header and its own tensors. Part 1 carries all the model's metadata; every part carries
// `split.no` (u16, 0-based), `split.count` (u16) and `split.tensors.count` (i32, tensors over all parts).
//
// The loader sees the parts as ONE virtual file: byte b of part p sits at offset partOffsets[p] + b,
// where partOffsets are the running sums of the part sizes. Tensor offsets are rebased the same way
// and the parts are streamed one after the other, so offsets only ever increase — a sink written for
// a single GGUF file (tensor offsets + `sink(offset, chunk)`) works unchanged on a split model.
import { Lfm2Error, abortError } from "../errors.js";
import { metaNumber, NeedMoreBytes, parseGguf, type GgufFile, type GgufValue, type TensorInfo } from "../formats/gguf.js";
import type { ByteSource, ProgressCallback } from "./source.js";

export const SPLIT_NO_KEY = "split.no";
export const SPLIT_COUNT_KEY = "split.count";
export const SPLIT_TENSORS_COUNT_KEY = "split.tensors.count";

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** `prefix-00002-of-00003.gguf` → { prefix, no: 2, count: 3 } (no is 1-based, as in the name). */
export function parseSplitName(name: string): { prefix: string; no: number; count: number } | undefined {
  const m = SPLIT_NAME.exec(name);
  if (!m) return undefined;
  const no = Number(m[2]), count = Number(m[3]);
  if (no < 1 || count < 1 || no > count) return undefined;
  return { prefix: m[1], no, count };
}

/** The file name of part `no` (1-based) of `count`, as llama.cpp's `llama_split_path` makes it. */
export function splitPartName(prefix: string, no: number, count: number): string {
  return `${prefix}-${String(no).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

// ---- a split model as one ByteSource --------------------------------------------------------------

/** A ByteSource made of the parts of a split model; `chunks()` reads the parts back to back. */
export interface SplitByteSource extends ByteSource {
  readonly parts: readonly ByteSource[];
}

export function isSplitSource(x: unknown): x is SplitByteSource {
  return typeof x === "object" && x !== null && Array.isArray((x as SplitByteSource).parts) && typeof (x as SplitByteSource).chunks === "function";
}

/**
 * Present the parts of a split GGUF for loading. The result is a ByteSource whose bytes are the parts
 * concatenated (the virtual file the loader addresses); a loader that knows about splits reads
 * `.parts` with `streamSplitGguf`.
 */
export function splitSource(parts: ByteSource[], name = parts[0]?.name ?? "split"): SplitByteSource {
  if (parts.length === 0) throw new Lfm2Error("BAD_INPUT", "a split model needs at least one part");
  const frozen = Object.freeze([...parts]);
  const size = parts.reduce((a, p) => a + p.size, 0);
  return {
    name, size, parts: frozen,
    async *chunks(start = 0, signal) {
      let base = 0;
      for (const p of frozen) {
        const end = base + p.size;
        if (start < end) {
          let off = Math.max(0, start - base);
          for await (const chunk of p.chunks(off, signal)) {
            if (signal?.aborted) throw abortError(signal);
            const take = Math.min(chunk.length, p.size - off);
            if (take <= 0) break;
            yield take === chunk.length ? chunk : chunk.subarray(0, take);
            off += take;
          }
          if (off < p.size) throw new Lfm2Error("TRUNCATED", `${p.name} ended after ${off} of ${p.size} bytes`);
        }
        base = end;
      }
    },
  };
}

/** Open `path` and, when its name is `prefix-0000k-of-0000n.gguf`, every other part next to it (Node, Deno). */
export async function openSplitParts(path: string): Promise<ByteSource[]> {
  const { fileSource } = await import("./source.js");
  const s = parseSplitName(path);
  if (!s) return [await fileSource(path)];
  const out: ByteSource[] = [];
  for (let i = 1; i <= s.count; i++) {
    const p = splitPartName(s.prefix, i, s.count);
    try { out.push(await fileSource(p)); } catch (e) {
      throw new Lfm2Error("BAD_INPUT", `part ${i} of ${s.count} of the split model ${path} is missing (${p})`, { cause: e });
    }
  }
  return out;
}

// ---- merged header --------------------------------------------------------------------------------

export interface SplitTensorInfo extends TensorInfo {
  /** Index of the part holding the tensor (= its `split.no`). `offset` is in the virtual file. */
  part: number;
  /** Byte offset of the data from the start of its own part. */
  offsetInPart: number;
}

/** The parts' headers merged: a GgufFile whose tensor offsets address the virtual concatenated file. */
export interface SplitGgufFile extends GgufFile {
  tensors: SplitTensorInfo[];
  /** Each part's own header, in split.no order (metadata of part 0 is `metadata`). */
  parts: GgufFile[];
  partNames: string[];
  partSizes: number[];
  /** Where each part starts in the virtual file. */
  partOffsets: number[];
  /** Total bytes of all parts. */
  size: number;
}

function splitKeys(h: GgufFile) {
  return { no: metaNumber(h.metadata, SPLIT_NO_KEY), count: metaNumber(h.metadata, SPLIT_COUNT_KEY), tensors: metaNumber(h.metadata, SPLIT_TENSORS_COUNT_KEY) };
}

/**
 * Merge parsed part headers (any order; they are sorted by `split.no`) and check that they form one
 * complete split model: every part has split.count = number of parts, split.no 0..n-1 each once,
 * split.tensors.count = total tensors, and no tensor appears twice. A single unsplit GGUF is a valid
 * one-part "split". The returned `order[i]` is the input index of part i.
 */
export function mergeSplitHeaders(parts: { header: GgufFile; size: number; name: string }[]): { file: SplitGgufFile; order: number[] } {
  const n = parts.length;
  if (n === 0) throw new Lfm2Error("BAD_INPUT", "a split model needs at least one part");
  const keyed = parts.map((p, i) => ({ ...p, i, ...splitKeys(p.header) }));
  if (n === 1) {
    assertWholeGguf(keyed[0].header.metadata, keyed[0].name);
  } else {
    for (const p of keyed) {
      if (p.count === undefined || p.no === undefined) throw new Lfm2Error("BAD_INPUT", `${p.name} is not part of a split GGUF (no ${SPLIT_COUNT_KEY}/${SPLIT_NO_KEY} metadata)`);
      if (p.count !== n) throw new Lfm2Error("BAD_INPUT", `${p.name} says the model has ${p.count} parts but ${n} were given`);
    }
    keyed.sort((a, b) => a.no! - b.no!);
    keyed.forEach((p, i) => {
      if (p.no !== i) {
        const dup = keyed.find((q) => q !== p && q.no === p.no);
        throw new Lfm2Error("BAD_INPUT", dup ? `${p.name} and ${dup.name} are both part ${p.no! + 1}` : `part ${i + 1} of ${n} is missing`);
      }
    });
  }
  const partOffsets: number[] = [];
  let base = 0;
  for (const p of keyed) { partOffsets.push(base); base += p.size; }
  const names = new Set<string>();
  const tensors: SplitTensorInfo[] = [];
  keyed.forEach((p, part) => {
    for (const t of p.header.tensors) {
      if (names.has(t.name)) throw new Lfm2Error("BAD_METADATA", `tensor ${t.name} appears in two parts of the split model (again in ${p.name})`);
      names.add(t.name);
      tensors.push({ ...t, offset: partOffsets[part] + t.offset, part, offsetInPart: t.offset });
    }
  });
  const expected = keyed[0].tensors;
  if (n > 1 && expected === undefined) throw new Lfm2Error("BAD_METADATA", `${keyed[0].name} lacks ${SPLIT_TENSORS_COUNT_KEY}`);
  for (const p of keyed) {
    if (p.tensors !== undefined && p.tensors !== tensors.length) {
      throw new Lfm2Error("BAD_METADATA", `${p.name}: ${SPLIT_TENSORS_COUNT_KEY} is ${p.tensors} but the ${n} part(s) hold ${tensors.length} tensors`);
    }
  }
  const first = keyed[0].header;
  return {
    order: keyed.map((p) => p.i),
    file: {
      version: first.version, metadata: first.metadata, alignment: first.alignment, dataOffset: first.dataOffset, tensors,
      parts: keyed.map((p) => p.header), partNames: keyed.map((p) => p.name), partSizes: keyed.map((p) => p.size), partOffsets, size: base,
    },
  };
}

/** Throw BAD_INPUT when a file read on its own is only one part of a split model. */
export function assertWholeGguf(metadata: Map<string, GgufValue>, name: string): void {
  const count = metaNumber(metadata, SPLIT_COUNT_KEY);
  if (count !== undefined && count > 1) {
    const no = metaNumber(metadata, SPLIT_NO_KEY) ?? 0;
    throw new Lfm2Error("BAD_INPUT", `${name} is part ${no + 1} of a model split in ${count} files; pass all parts (or the path of part 1, which finds the others)`);
  }
}

// ---- reading ---------------------------------------------------------------------------------------

export interface SplitReadOptions {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Largest header accepted per part (default 512 MiB). */
  maxHeader?: number;
}

/** Parse one GGUF header from the start of `src`, reading only as much as the header needs. */
export async function readGgufHeader(src: ByteSource, opts: SplitReadOptions = {}): Promise<GgufFile> {
  const maxHeader = opts.maxHeader ?? 512 << 20;
  let prefix = new Uint8Array(0);
  let nextTry = 1 << 16;
  const tryParse = (): GgufFile | undefined => {
    try { return parseGguf(prefix, src.size); } catch (e) {
      if (e instanceof NeedMoreBytes) { nextTry = Math.max(e.needed, prefix.length * 2); return undefined; }
      throw e;
    }
  };
  for await (const chunk of src.chunks(0, opts.signal)) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const grown = new Uint8Array(prefix.length + chunk.length);
    grown.set(prefix); grown.set(chunk, prefix.length);
    prefix = grown;
    if (prefix.length >= Math.min(nextTry, src.size)) {
      const h = tryParse();
      if (h) return h; // leaving the loop closes the source's iterator
      if (prefix.length > maxHeader) throw new Lfm2Error("OUT_OF_RANGE", `${src.name}: GGUF header is larger than ${maxHeader} bytes`);
    }
  }
  const h = tryParse();
  if (!h) throw new Lfm2Error("TRUNCATED", `${src.name} ends inside its GGUF header`);
  return h;
}

/** Read every part's header and merge them (no tensor data is read). */
export async function readSplitGguf(parts: ByteSource[], opts: SplitReadOptions = {}): Promise<SplitGgufFile> {
  return (await readSplit(parts, opts)).file;
}

async function readSplit(parts: ByteSource[], opts: SplitReadOptions) {
  const headers: { header: GgufFile; size: number; name: string }[] = [];
  for (const p of parts) headers.push({ header: await readGgufHeader(p, opts), size: p.size, name: p.name });
  const { file, order } = mergeSplitHeaders(headers);
  return { file, sources: order.map((i) => parts[i]) };
}

export type SplitSink = (file: SplitGgufFile, offset: number, chunk: Uint8Array, part: number, offsetInPart: number) => void | Promise<void>;

/**
 * Load a split GGUF: parse every part's header first (so the complete tensor list is known before any
 * data arrives), then stream the parts in split.no order, whole (headers included), to
 * `sink(file, offset, chunk, part, offsetInPart)`, where `offset` is the position in the virtual
 * concatenated file and matches the rebased `file.tensors[].offset`. Offsets strictly increase.
 * Progress counts bytes over all parts. Resolves with the merged header.
 */
export async function streamSplitGguf(parts: ByteSource[], sink: SplitSink, opts: SplitReadOptions = {}): Promise<SplitGgufFile> {
  const { file, sources } = await readSplit(parts, opts);
  const t0 = Date.now();
  let loaded = 0;
  for (let p = 0; p < sources.length; p++) {
    const src = sources[p], size = file.partSizes[p], base = file.partOffsets[p];
    let off = 0;
    for await (const raw of src.chunks(0, opts.signal)) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      const chunk = off + raw.length > size ? raw.subarray(0, size - off) : raw;
      if (chunk.length === 0) break;
      await sink(file, base + off, chunk, p, off);
      off += chunk.length;
      loaded += chunk.length;
      opts.onProgress?.({ loaded, total: file.size, rate: loaded / Math.max(1e-3, (Date.now() - t0) / 1000), file: src.name });
    }
    if (off < size) throw new Lfm2Error("TRUNCATED", `${src.name} ended after ${off} of ${size} bytes`);
  }
  return file;
}
