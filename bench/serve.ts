// Tiny static HTTP server for the in-browser benchmarks and browser tests.
// - listens on 127.0.0.1 only (random port by default)
// - serves only from explicit roots: URL prefix → directory (or → a single file)
// - optional cross-origin isolation (COOP/COEP), needed for SharedArrayBuffer / wasm threads
// - HTTP Range (single range) for large model files, HEAD, no caching
//
// CLI: npx tsx bench/serve.ts [--isolate] [--port 8080]   (serves benchRoots())
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_CACHE_DIR, REPO_ROOT } from "./models.js";

export interface ServeOptions {
  /**
   * URL prefix → filesystem path. A prefix ending in "/" maps to a directory
   * (e.g. "/wllama/" → node_modules/@wllama/wllama); otherwise it maps one URL to one file.
   */
  roots: Record<string, string>;
  /** Send COOP: same-origin + COEP: require-corp (cross-origin isolated page → SharedArrayBuffer, threads). */
  isolate?: boolean;
  /** 0 (default) = any free port. */
  port?: number;
  /** Called once per request (method, path, status). */
  log?: (line: string) => void;
}

export interface StaticServer {
  /** Origin, e.g. "http://127.0.0.1:41234" (no trailing slash). */
  origin: string;
  port: number;
  /** Absolute URL for a path on this server. */
  url(path: string): string;
  /** Toggle cross-origin isolation headers for subsequent responses. */
  setIsolation(on: boolean): void;
  close(): Promise<void>;
  server: Server;
}

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".gguf": "application/octet-stream",
  ".bin": "application/octet-stream",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** The roots every in-browser benchmark needs: bench pages, wllama's package, our build output, the cached models. */
export function benchRoots(): Record<string, string> {
  return {
    "/bench/": join(REPO_ROOT, "bench"),
    "/wllama/": join(REPO_ROOT, "node_modules", "@wllama", "wllama"),
    "/dist/": join(REPO_ROOT, "dist"),
    "/build/": join(REPO_ROOT, "build"),
    "/models/": BENCH_CACHE_DIR,
  };
}

/** Map a URL path to a file under one of the roots, or null (never escapes a root). */
function resolvePath(roots: [string, string][], urlPath: string): string | null {
  let p: string;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p.includes("\0")) return null;
  for (const [prefix, target] of roots) {
    if (!prefix.endsWith("/")) {
      if (p === prefix) return target;
      continue;
    }
    if (!p.startsWith(prefix)) continue;
    const rel = normalize(p.slice(prefix.length)).replace(/^([/\\])+/, "");
    if (rel.split(/[/\\]/).includes("..")) return null;
    const base = resolve(target);
    const full = resolve(base, rel);
    if (full !== base && !full.startsWith(base + sep)) return null;
    return full;
  }
  return null;
}

/** Parse a single "bytes=" range against `size`. undefined = no/ignored header, null = unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // multi-range or garbage: serve the whole file (allowed by RFC 9110)
  const [, a, b] = m;
  if (a === "" && b === "") return undefined;
  let start: number, end: number;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return null;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return null;
  return { start, end };
}

export async function startServer(opts: ServeOptions): Promise<StaticServer> {
  // longest prefix first, so "/models/x.gguf" wins over "/models/"
  const roots = Object.entries(opts.roots).sort((x, y) => y[0].length - x[0].length);
  let isolate = !!opts.isolate;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0].split("#")[0];
    const done = (status: number) => opts.log?.(`${req.method} ${path} ${status}`);
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("Access-Control-Allow-Origin", "*");
    if (isolate) {
      res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    }
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return done(405);
    }
    const file = resolvePath(roots, path);
    let st;
    try {
      if (!file) throw new Error("no root");
      st = await stat(file);
      if (!st.isFile()) throw new Error("not a file");
    } catch {
      res.writeHead(404, { "Content-Type": "text/plain" }).end(req.method === "HEAD" ? undefined : "not found\n");
      return done(404);
    }
    const size = st.size;
    const type = MIME[extname(file).toLowerCase()] ?? "application/octet-stream";
    res.setHeader("Accept-Ranges", "bytes");
    res.setHeader("Content-Type", type);
    res.setHeader("Last-Modified", st.mtime.toUTCString());
    const range = parseRange(req.headers.range, size);
    if (range === null) {
      res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
      return done(416);
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const len = size === 0 ? 0 : end - start + 1;
    const status = range ? 206 : 200;
    const headers: Record<string, string | number> = { "Content-Length": len };
    if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === "HEAD" || len === 0) { res.end(); return done(status); }
    const stream = createReadStream(file, { start, end, highWaterMark: 1 << 20 });
    stream.on("error", () => res.destroy());
    res.on("close", () => stream.destroy());
    stream.pipe(res);
    done(status);
  };

  const server = createServer((req, res) => {
    handler(req, res).catch(() => { if (!res.headersSent) res.writeHead(500).end(); else res.destroy(); });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(opts.port ?? 0, "127.0.0.1", () => { server.off("error", fail); ok(); });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    port,
    server,
    url: (p: string) => origin + (p.startsWith("/") ? p : "/" + p),
    setIsolation: (on: boolean) => { isolate = on; },
    close: () => new Promise<void>((ok) => {
      server.close(() => ok());
      server.closeAllConnections?.();
    }),
  };
}

// CLI
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const portIdx = args.indexOf("--port");
  const s = await startServer({
    roots: benchRoots(),
    isolate: args.includes("--isolate"),
    port: portIdx >= 0 ? Number(args[portIdx + 1]) : 8080,
    log: (l) => console.log(l),
  });
  console.log(`serving ${Object.keys(benchRoots()).join(" ")} at ${s.origin}${args.includes("--isolate") ? " (cross-origin isolated)" : ""}`);
}
