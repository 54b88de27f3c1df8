// Model downloads kept in the browser's Cache Storage, so the next page load reads the weights from
// disk instead of the network. The first load streams from the network as usual and writes the same
// chunks into the cache as they pass by; only a complete download is committed (an aborted or failed
// one leaves no entry). A cached copy that turns out short or unreadable is deleted and the read
// continues from the network at the same offset. Entries are keyed by URL: use versioned URLs (e.g.
// Hugging Face .../resolve/<commit>/...) or clearModelCache() when a file changes.
import { Lfm2Error, abortError } from "../errors.js";
import { urlSource, type ByteSource } from "./source.js";

/** true: use Cache Storage where the runtime keeps it (browsers, Deno); "cache-api": the same, by name. */
export type ModelCacheMode = boolean | "cache-api";

export interface CachedUrlOptions {
  cache?: ModelCacheMode;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Cache Storage bucket (default "lfm2-wasm-models"). */
  cacheName?: string;
  /** Cache problems (quota, private browsing, a damaged entry) never fail a load; they are reported here. */
  onCacheError?: (error: unknown) => void;
  /** Idle read timeout of the network reads (see urlSource). */
  readTimeoutMs?: number;
}

/** A ByteSource that also says whether it is served from the cache. */
export interface CachedByteSource extends ByteSource { cached: boolean }

export const DEFAULT_MODEL_CACHE = "lfm2-wasm-models";
const SIZE_HEADER = "x-lfm2-size";

function cacheStorage(): CacheStorage | null {
  const g = globalThis as any;
  const storage = g.caches as CacheStorage | undefined;
  if (!storage || typeof storage.open !== "function") return null;
  // Workers' caches are an edge cache with its own rules, not a per-user store; stay on the network.
  if (g.navigator?.userAgent === "Cloudflare-Workers") return null;
  return storage;
}

const cacheKey = (u: URL) => { const k = new URL(u.href); k.hash = ""; return k.href; };

/**
 * Open `url` as a ByteSource, through Cache Storage when `opts.cache` is set and the runtime has it.
 * Without a cache (option off, no Cache Storage, non-http URL) this is exactly urlSource().
 */
export async function cachedUrlSource(url: string | URL, opts: CachedUrlOptions = {}): Promise<CachedByteSource> {
  const u = new URL(String(url));
  const init = { signal: opts.signal, headers: opts.headers, readTimeoutMs: opts.readTimeoutMs };
  const plain = async (): Promise<CachedByteSource> => Object.assign(await urlSource(u, init), { cached: false });
  const storage = opts.cache ? cacheStorage() : null;
  if (!storage || !/^https?:$/.test(u.protocol)) return plain();
  const report = (e: unknown) => { try { opts.onCacheError?.(e); } catch { /* the reporter's own problem */ } };
  let cache: Cache;
  try { cache = await storage.open(opts.cacheName ?? DEFAULT_MODEL_CACHE); } catch (e) { report(e); return plain(); }
  const key = cacheKey(u);
  let hit: Response | undefined;
  try { hit = await cache.match(key); } catch (e) { report(e); }
  if (hit) {
    const size = Number(hit.headers.get(SIZE_HEADER));
    if (Number.isSafeInteger(size) && size > 0 && hit.body) return fromCache(cache, key, u, size, hit, init, report);
    await cache.delete(key).catch(report);
  }
  if (opts.signal?.aborted) throw abortError(opts.signal);
  return throughCache(await urlSource(u, init), cache, key, report);
}

/** Delete one cached model (by URL) or, without a URL, the whole cache. Resolves to whether anything was deleted. */
export async function clearModelCache(url?: string | URL, cacheName = DEFAULT_MODEL_CACHE): Promise<boolean> {
  const storage = cacheStorage();
  if (!storage) return false;
  if (url === undefined) return storage.delete(cacheName);
  const cache = await storage.open(cacheName);
  return cache.delete(cacheKey(new URL(String(url))));
}

function fromCache(cache: Cache, key: string, u: URL, size: number, first: Response,
  init: { signal?: AbortSignal; headers?: Record<string, string>; readTimeoutMs?: number }, report: (e: unknown) => void): CachedByteSource {
  let pending: Response | null = first; // the matched response's body serves the first read
  return {
    name: u.href, size, cached: true,
    async *chunks(start = 0, signal) {
      let res = pending;
      pending = null;
      let offset = start;
      try {
        res ??= (await cache.match(key)) ?? null;
        if (!res?.body) throw new Error("the cached entry disappeared");
        const reader = res.body.getReader();
        try {
          let skip = start;
          for (;;) {
            if (signal?.aborted) throw abortError(signal);
            const { done, value } = await reader.read();
            if (done) break;
            let chunk = value;
            if (skip > 0) {
              if (chunk.length <= skip) { skip -= chunk.length; continue; }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            if (offset + chunk.length > size) throw new Error("the cached entry is longer than recorded");
            offset += chunk.length;
            yield chunk;
          }
        } finally { reader.releaseLock(); }
        if (offset === size) return;
        throw new Error(`the cached entry ends after ${offset} of ${size} bytes`);
      } catch (e) {
        if (e instanceof Lfm2Error && e.code === "ABORTED") throw e;
        // damaged entry: drop it and carry on from the network where the cache left off
        report(e);
        await cache.delete(key).catch(report);
        const net = await urlSource(u, { ...init, signal });
        if (net.size !== size) throw new Lfm2Error("IO", `${u.href} changed size (cached ${size}, now ${net.size} bytes); load it again`);
        yield* net.chunks(offset, signal);
      }
    },
  };
}

function throughCache(net: ByteSource, cache: Cache, key: string, report: (e: unknown) => void): CachedByteSource {
  return {
    name: net.name, size: net.size, cached: false,
    async *chunks(start = 0, signal) {
      if (start > 0) { yield* net.chunks(start, signal); return; } // a partial read is never cached
      let ctrl!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start(c) { ctrl = c; } });
      let complete = false;
      const put = cache.put(key, new Response(body, {
        headers: { "content-type": "application/octet-stream", [SIZE_HEADER]: String(net.size) },
      })).then(() => true, (e) => { if (complete) report(e); return false; });
      let n = 0;
      try {
        for await (const chunk of net.chunks(0, signal)) {
          try { ctrl.enqueue(chunk); } catch { /* the cache write already failed; keep loading */ }
          n += chunk.length;
          yield chunk;
        }
        complete = n === net.size;
      } finally {
        // erroring the body makes cache.put reject, so an incomplete download leaves no entry
        try { if (complete) ctrl.close(); else ctrl.error(new Error("download incomplete")); } catch { /* closed */ }
      }
      await put; // committed before the load finishes, so a reload right after already hits
    },
  };
}
