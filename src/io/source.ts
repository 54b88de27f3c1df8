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
/** How long a download may go without receiving a byte before it fails with an IO error. */
export const DEFAULT_READ_TIMEOUT_MS = 30_000;

export interface UrlSourceOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /**
   * Fail with Lfm2Error("IO") when the server sends nothing for this long: while waiting for the
   * response headers and between body chunks (a stalled server otherwise hangs the load forever
   * when no signal is given). Default DEFAULT_READ_TIMEOUT_MS (30 s); Infinity disables it.
   */
  readTimeoutMs?: number;
}
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

/**
 * An AbortSignal that fires when `outer` does or when `arm()` was not called again within `ms`
 * (each arm() restarts the clock). `timedOut` tells the two apart.
 */
function idleWatchdog(outer: AbortSignal | undefined, ms: number) {
  const ctrl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const w = {
    signal: ctrl.signal,
    timedOut: false,
    arm() {
      if (timer !== undefined) clearTimeout(timer);
      if (Number.isFinite(ms)) timer = setTimeout(() => { w.timedOut = true; ctrl.abort(new Error(`no data for ${ms} ms`)); }, ms);
    },
    pause() { if (timer !== undefined) clearTimeout(timer); timer = undefined; },
    dispose() { w.pause(); outer?.removeEventListener("abort", onAbort); },
  };
  const onAbort = () => ctrl.abort(outer!.reason);
  if (outer?.aborted) ctrl.abort(outer.reason);
  else outer?.addEventListener("abort", onAbort, { once: true });
  w.arm();
  return w;
}

/** A URL read with fetch; the body is streamed (Range requests when starting past 0). */
export async function urlSource(url: string | URL, init: UrlSourceOptions = {}): Promise<ByteSource> {
  const timeoutMs = init.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) throw new Lfm2Error("BAD_INPUT", `readTimeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  let u: URL;
  try { u = new URL(String(url)); } catch (e) { throw new Lfm2Error("BAD_INPUT", `not a URL: ${String(url)}`, { cause: e }); }
  if (u.protocol === "file:") return fileSource(decodeURIComponent(u.pathname));
  let res: Response;
  const head = idleWatchdog(init.signal, timeoutMs);
  try { res = await fetch(u, { method: "HEAD", signal: head.signal, headers: init.headers }); } catch (e) {
    if (init.signal?.aborted) throw abortError(init.signal);
    if (head.timedOut) throw new Lfm2Error("IO", `${u}: no data for ${timeoutMs} ms`, { cause: e });
    throw new Lfm2Error("IO", `cannot reach ${u}: ${(e as Error).message}`, { cause: e });
  } finally { head.dispose(); }
  if (!res.ok) throw new Lfm2Error("IO", `${u}: HTTP ${res.status}`);
  const size = Number(res.headers.get("content-length"));
  if (!Number.isFinite(size) || size <= 0) throw new Lfm2Error("IO", `${u} did not report its size (Content-Length)`);
  return {
    name: u.href, size,
    async *chunks(start = 0, signal) {
      const headers: Record<string, string> = { ...init.headers };
      if (start > 0) headers.Range = `bytes=${start}-`;
      // the watchdog runs only while we wait on the network, not while the consumer holds a chunk
      const watch = idleWatchdog(signal, timeoutMs);
      const failed = (e: unknown, what: string): never => {
        if (signal?.aborted) throw abortError(signal);
        if (watch.timedOut) throw new Lfm2Error("IO", `download of ${u} stalled: no data for ${timeoutMs} ms`, { cause: e });
        throw new Lfm2Error("IO", `${what} of ${u} failed: ${(e as Error).message}`, { cause: e });
      };
      let r: Response;
      try { r = await fetch(u, { signal: watch.signal, headers }); } catch (e) { watch.dispose(); failed(e, "download"); }
      if (!r!.ok || !r!.body) { watch.dispose(); throw new Lfm2Error("IO", `${u}: HTTP ${r!.status}`); }
      if (start > 0 && r!.status !== 206) { watch.dispose(); throw new Lfm2Error("IO", `${u} ignored the Range request`); }
      const reader = r!.body!.getReader();
      let finished = false;
      try {
        for (;;) {
          watch.arm();
          const { done, value } = await reader.read().catch((e) => failed(e, "download"));
          if (done) { finished = true; break; }
          watch.pause();
          yield value;
        }
      } finally {
        watch.dispose();
        // a consumer that stops early (header read, error, abort) must not leave the download running
        if (!finished) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    },
  };
}

export async function openSource(input: SourceInput, signal?: AbortSignal, opts: { readTimeoutMs?: number } = {}): Promise<ByteSource> {
  if (isByteSource(input)) {
    // a caller's own source: its size drives every bounds check and the progress total
    if (!Number.isSafeInteger(input.size) || input.size < 0) {
      throw new Lfm2Error("BAD_INPUT", `a byte source's size must be a non-negative integer, got ${input.size}`);
    }
    return input;
  }
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return bytesSource(input);
  if (typeof Blob !== "undefined" && input instanceof Blob) return blobSource(input);
  if (input instanceof URL) return urlSource(input, { signal, readTimeoutMs: opts.readTimeoutMs });
  if (typeof input === "string") {
    if (/^(https?|file|blob|data):/i.test(input)) return urlSource(input, { signal, readTimeoutMs: opts.readTimeoutMs });
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
