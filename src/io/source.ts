// Model sources: a path (Node, Deno), bytes, a URL (streamed), or a Blob/File. Each is read
// sequentially in chunks so weights can be copied straight into WebAssembly memory as they arrive.
import { Lfm2Error, abortError } from "../errors.js";

export interface Progress { loaded: number; total: number; /** bytes per second so far */ rate: number; file?: string }
export type ProgressCallback = (p: Progress) => void;

export interface ByteSource {
  name: string;
  size: number;
  /** Chunks from byte `start` to the end, in order. */
  chunks(start?: number, signal?: AbortSignal): AsyncIterable<Uint8Array>;
}

export type SourceInput = string | URL | ArrayBuffer | Uint8Array | Blob | ByteSource;

const CHUNK = 4 << 20;
const isNodeLike = typeof process !== "undefined" && !!process.versions?.node;
const hasDeno = typeof (globalThis as any).Deno !== "undefined";

export function isByteSource(x: unknown): x is ByteSource {
  return typeof x === "object" && x !== null && typeof (x as ByteSource).chunks === "function" && typeof (x as ByteSource).size === "number";
}

export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = "bytes"): ByteSource {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name, size: b.byteLength,
    async *chunks(start = 0) {
      for (let o = start; o < b.byteLength; o += CHUNK) {
        // bytes are all here: still give timers a turn now and then so an abort() can land
        if ((o - start) % (16 * CHUNK) === 0 && o > start) await new Promise((r) => setTimeout(r, 0));
        yield b.subarray(o, Math.min(b.byteLength, o + CHUNK));
      }
    },
  };
}

export function blobSource(blob: Blob, name = (blob as File).name ?? "blob"): ByteSource {
  return {
    name, size: blob.size,
    async *chunks(start = 0, signal) {
      for (let o = start; o < blob.size; o += CHUNK) {
        if (signal?.aborted) throw abortError(signal);
        yield new Uint8Array(await blob.slice(o, Math.min(blob.size, o + CHUNK)).arrayBuffer());
      }
    },
  };
}

export async function fileSource(path: string): Promise<ByteSource> {
  if (!isNodeLike && !hasDeno) throw new Lfm2Error("BAD_INPUT", "file paths can only be loaded in Node or Deno; pass a URL, bytes or a Blob");
  const fs = await import("node:fs/promises");
  let size: number;
  try { size = (await fs.stat(path)).size; } catch (e) {
    throw new Lfm2Error("IO", `cannot read model file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return {
    name: path, size,
    async *chunks(start = 0, signal) {
      const fh = await fs.open(path, "r");
      try {
        for (let o = start; o < size; o += CHUNK) {
          if (signal?.aborted) throw abortError(signal);
          const buf = new Uint8Array(Math.min(CHUNK, size - o));
          const { bytesRead } = await fh.read(buf, 0, buf.length, o);
          if (bytesRead === 0) throw new Lfm2Error("TRUNCATED", `${path} shrank while being read`);
          yield buf.subarray(0, bytesRead);
          if (bytesRead < buf.length) o -= buf.length - bytesRead;
        }
      } finally { await fh.close(); }
    },
  };
}

/** A URL read with fetch; the body is streamed (Range requests when starting past 0). */
export async function urlSource(url: string | URL, init: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<ByteSource> {
  const u = new URL(String(url));
  if (u.protocol === "file:") return fileSource(decodeURIComponent(u.pathname));
  let res: Response;
  try { res = await fetch(u, { method: "HEAD", signal: init.signal, headers: init.headers }); } catch (e) {
    if (init.signal?.aborted) throw abortError(init.signal);
    throw new Lfm2Error("IO", `cannot reach ${u}: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok) throw new Lfm2Error("IO", `${u}: HTTP ${res.status}`);
  const size = Number(res.headers.get("content-length"));
  if (!Number.isFinite(size) || size <= 0) throw new Lfm2Error("IO", `${u} did not report its size (Content-Length)`);
  return {
    name: u.href, size,
    async *chunks(start = 0, signal) {
      const headers: Record<string, string> = { ...init.headers };
      if (start > 0) headers.Range = `bytes=${start}-`;
      let r: Response;
      try { r = await fetch(u, { signal, headers }); } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        throw new Lfm2Error("IO", `download of ${u} failed: ${(e as Error).message}`, { cause: e });
      }
      if (!r.ok || !r.body) throw new Lfm2Error("IO", `${u}: HTTP ${r.status}`);
      if (start > 0 && r.status !== 206) throw new Lfm2Error("IO", `${u} ignored the Range request`);
      const reader = r.body.getReader();
      let finished = false;
      try {
        for (;;) {
          const { done, value } = await reader.read().catch((e) => {
            if (signal?.aborted) throw abortError(signal);
            throw new Lfm2Error("IO", `download of ${u} failed: ${(e as Error).message}`, { cause: e });
          });
          if (done) { finished = true; break; }
          yield value;
        }
      } finally {
        // a consumer that stops early (header read, error, abort) must not leave the download running
        if (!finished) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
  };
}

export async function openSource(input: SourceInput, signal?: AbortSignal): Promise<ByteSource> {
  if (isByteSource(input)) return input;
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return bytesSource(input);
  if (typeof Blob !== "undefined" && input instanceof Blob) return blobSource(input);
  if (input instanceof URL) return urlSource(input, { signal });
  if (typeof input === "string") {
    if (/^(https?|file|blob|data):/i.test(input)) return urlSource(input, { signal });
    return fileSource(input);
  }
  throw new Lfm2Error("BAD_INPUT", "a model source must be a path, URL, bytes or a Blob");
}

/**
 * Read a source front to back: `header(bytes)` is called with a growing prefix until it returns a
 * value (it throws NeedMore-style errors to ask for more, signalled by returning undefined), then the
 * remaining bytes are handed to `sink(offset, chunk)`.
 */
export async function streamSource<H>(src: ByteSource, parseHeader: (prefix: Uint8Array) => H | undefined,
  sink: (header: H, offset: number, chunk: Uint8Array) => void, opts: { signal?: AbortSignal; onProgress?: ProgressCallback; maxHeader?: number } = {}): Promise<H> {
  const t0 = Date.now();
  let header: H | undefined;
  let prefix = new Uint8Array(0);
  let nextTry = 1 << 20;
  let offset = 0;
  const maxHeader = opts.maxHeader ?? 512 << 20;
  for await (const chunk of src.chunks(0, opts.signal)) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    if (header === undefined) {
      const grown = new Uint8Array(prefix.length + chunk.length);
      grown.set(prefix); grown.set(chunk, prefix.length);
      prefix = grown;
      if (prefix.length >= Math.min(nextTry, src.size)) {
        header = parseHeader(prefix);
        nextTry = prefix.length * 2;
        if (header === undefined && prefix.length > maxHeader) throw new Lfm2Error("OUT_OF_RANGE", `model header is larger than ${maxHeader} bytes`);
        if (header !== undefined) { sink(header, 0, prefix); prefix = new Uint8Array(0); }
      }
    } else {
      sink(header, offset, chunk);
    }
    offset += chunk.length;
    opts.onProgress?.({ loaded: offset, total: src.size, rate: offset / Math.max(1e-3, (Date.now() - t0) / 1000), file: src.name });
  }
  if (header === undefined) {
    header = parseHeader(prefix);
    if (header === undefined) throw new Lfm2Error("TRUNCATED", `${src.name} ends inside its header`);
    sink(header, 0, prefix);
  }
  if (offset < src.size) throw new Lfm2Error("TRUNCATED", `${src.name} ended after ${offset} of ${src.size} bytes`);
  return header;
}
