// Models by name from the Hugging Face hub: `hf:LiquidAI/LFM2-350M-GGUF:Q4_0`.
//
// Resolution lists the repository with the hub API (`GET {endpoint}/api/models/{repo}/tree/{rev}
// ?recursive=true`, paginated by `Link: <…>; rel="next"`, entries `{type, path, size, oid, lfs?:{oid,
// size}}` where lfs.oid is the file's sha256; falling back to `/api/models/{repo}?blobs=true`, whose
// `siblings[]` carry `rfilename`, `size` and `lfs.sha256`), picks the GGUF whose name carries the
// quantization, and returns `{endpoint}/{repo}/resolve/{revision}/{file}` URLs (the hub answers these
// with a redirect to its CDN; the CDN serves Range requests).
//
// Node and Deno download once into a cache folder (`~/.cache/lfm2-wasm/hub/<repo>/<revision>/<file>`):
// bytes go to `<file>.part`, an interruption resumes with `Range: bytes=N-`, size and sha256 are checked
// (streaming hash) before the rename, and a later call is answered from the cache without any request.
// Where there is no file system (browsers, workers) `hfSource` streams from the hub, optionally keeping
// whole files in the Cache API.
import { Lfm2Error, abortError, type Lfm2ErrorCode } from "../errors.js";
import { DEFAULT_READ_TIMEOUT_MS, fileSource, type ByteSource, type ProgressCallback } from "./source.js";
import { parseSplitName, splitSource } from "./split.js";

export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";
/** Liquid AI's recommended default quantization for its GGUF repositories. */
export const HF_DEFAULT_QUANT = "Q4_K_M";

const isNodeLike = typeof process !== "undefined" && !!process.versions?.node;
const hasDeno = typeof (globalThis as any).Deno !== "undefined";
const hasFs = isNodeLike || hasDeno;

export type HubErrorReason = "auth" | "not-found" | "http" | "network" | "size" | "checksum" | "no-match";

/** A hub failure: an Lfm2Error (code "IO", or "BAD_INPUT" when no file matches) with the HTTP details. */
export class HubError extends Lfm2Error {
  constructor(code: Lfm2ErrorCode, message: string, readonly reason: HubErrorReason,
    /** HTTP status, when the hub answered. */
    readonly status?: number,
    /** The hub's `X-Error-Code` header (RepoNotFound, GatedRepo, EntryNotFound, RevisionNotFound...). */
    readonly hubCode?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "HubError";
  }
}

// ---- specs ---------------------------------------------------------------------------------------

export interface HfSpec {
  /** owner/name */
  repo: string;
  revision: string;
  /** Quantization to pick (when no file is named). */
  quant?: string;
  /** A file path inside the repository. */
  file?: string;
}

const SEGMENT = /^[A-Za-z0-9][\w.-]*$/;

/** True for strings meant for `hfSource`/`downloadHf` (`hf:owner/repo...`). */
export function isHfSpec(input: string): boolean {
  return /^hf:/i.test(input.trim());
}

/**
 * Parse `hf:owner/repo[@revision][:QUANT]` or `hf:owner/repo[@revision]/path/in/repo.gguf` (the `hf:`
 * prefix is optional). Without a quant or file the quant is `opts.quant` or Q4_K_M.
 */
export function parseHfSpec(spec: string, opts: { quant?: string; revision?: string } = {}): HfSpec {
  const s = spec.trim().replace(/^hf:(\/\/)?/i, "");
  const m = /^([^/:@\s]+)\/([^/:@\s]+)(?:@([^/:\s]+))?(?::([^/:\s]+)|\/(\S+))?$/.exec(s);
  if (!m || !SEGMENT.test(m[1]) || !SEGMENT.test(m[2])) {
    throw new Lfm2Error("BAD_INPUT", `"${spec}" is not a hub model: use hf:owner/repo:QUANT (e.g. hf:LiquidAI/LFM2-350M-GGUF:Q4_0) or hf:owner/repo/file.gguf`);
  }
  const [, owner, name, rev, quant, file] = m;
  if (file !== undefined && file.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new Lfm2Error("BAD_INPUT", `"${spec}": bad file path ${file}`);
  }
  const revision = rev ?? opts.revision ?? "main";
  if (revision === "" || revision.split("/").some((p) => p === "" || p === "." || p === "..")) throw new Lfm2Error("BAD_INPUT", `"${spec}": bad revision ${revision}`);
  return { repo: `${owner}/${name}`, revision, ...(file !== undefined ? { file } : { quant: quant ?? opts.quant ?? HF_DEFAULT_QUANT }) };
}

// ---- options and shared request plumbing --------------------------------------------------------

export interface HfOptions {
  /** Hub address; default env HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** Access token for gated/private repositories; default env HF_TOKEN (false: send none). */
  token?: string | false;
  /** Revision when the spec names none (default "main"). */
  revision?: string;
  /** Quantization when the spec names none (default Q4_K_M). */
  quant?: string;
  signal?: AbortSignal;
  /** Retries after network errors, HTTP 429/5xx and dropped connections (default 5; backoff from 250 ms). */
  retries?: number;
  /** fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * A download that receives no data for this long counts as a dropped connection (retried with a
   * Range request; streaming ends in an IO error). Default 30 s; Infinity disables it.
   */
  readTimeoutMs?: number;
}

export interface HfFile {
  /** Path inside the repository. */
  path: string;
  /** `{endpoint}/{repo}/resolve/{revision}/{path}` */
  url: string;
  /** Bytes, when the hub listed them. */
  size?: number;
  /** Lowercase hex sha256 (LFS files), when the hub listed it. */
  sha256?: string;
}

export interface HfResolved {
  endpoint: string;
  repo: string;
  revision: string;
  quant?: string;
  /** One file, or the parts of a split GGUF in order. */
  files: HfFile[];
}

interface Ctx {
  endpoint: string; token?: string; signal?: AbortSignal; fetch: typeof fetch; retries: number; repo: string; readTimeoutMs: number;
}

function readEnv(key: string): string | undefined {
  try { return typeof process !== "undefined" ? process.env?.[key] || undefined : undefined; } catch { return undefined; }
}

function makeCtx(opts: HfOptions, repo: string): Ctx {
  const endpoint = (opts.endpoint ?? readEnv("HF_ENDPOINT") ?? HF_DEFAULT_ENDPOINT).replace(/\/+$/, "");
  const token = opts.token === false ? undefined : opts.token ?? readEnv("HF_TOKEN") ?? readEnv("HUGGING_FACE_HUB_TOKEN");
  const f = opts.fetch ?? globalThis.fetch;
  if (typeof f !== "function") throw new Lfm2Error("BAD_INPUT", "no fetch() available to reach the hub");
  const readTimeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  if (typeof readTimeoutMs !== "number" || !(readTimeoutMs > 0)) {
    throw new Lfm2Error("BAD_INPUT", `readTimeoutMs must be a positive number of milliseconds, got ${String(readTimeoutMs)}`);
  }
  return { endpoint, token, signal: opts.signal, fetch: f, retries: Math.max(0, opts.retries ?? 5), repo, readTimeoutMs };
}

/**
 * reader.read() that gives up after `ms` without data: a server that stops sending without closing
 * must not hang a download forever. The caller cancels the reader (its finally blocks do).
 */
async function readOrStall<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T>> {
  if (!Number.isFinite(ms)) return reader.read();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`stalled: no data for ${ms} ms`)), ms); });
  try { return await Promise.race([reader.read(), stalled]); } finally { clearTimeout(timer); }
}

const errMsg = (e: unknown) => { const c = (e as any)?.cause; return `${(e as Error)?.message ?? e}${c?.message ? ` (${c.message})` : ""}`; };

async function send(ctx: Ctx, url: string, headers: Record<string, string> = {}, method = "GET", signal = ctx.signal): Promise<Response> {
  if (signal?.aborted) throw abortError(signal);
  const h: Record<string, string> = { ...headers };
  if (ctx.token) h.Authorization = `Bearer ${ctx.token}`;
  // the caller's signal stays linked for the body's lifetime (an abort must stop a running read);
  // the timer only bounds the wait for the response headers
  const ctrl = new AbortController();
  if (signal) signal.addEventListener("abort", () => ctrl.abort(signal.reason), { once: true });
  const ms = ctx.readTimeoutMs;
  const timer = Number.isFinite(ms) ? setTimeout(() => ctrl.abort(new Error(`no response for ${ms} ms`)), ms) : undefined;
  try {
    return await ctx.fetch(url, { method, headers: h, signal: ctrl.signal, redirect: "follow" });
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw new HubError("IO", `cannot reach ${url}: ${errMsg(e)}`, "network", undefined, undefined, { cause: e });
  } finally { clearTimeout(timer); }
}

async function httpError(res: Response, ctx: Ctx, what: string): Promise<HubError> {
  const hubCode = res.headers.get("x-error-code") ?? undefined;
  let detail = res.headers.get("x-error-message") ?? "";
  if (!detail) {
    try {
      const t = (await res.text()).slice(0, 2000);
      try { detail = String(JSON.parse(t).error ?? ""); } catch { detail = t.trim().slice(0, 200); }
    } catch { /* body unreadable */ }
  } else await res.body?.cancel().catch(() => {});
  const status = res.status;
  const tail = detail ? ` (${detail})` : "";
  const tokenHint = ctx.token ? "check that your token (HF_TOKEN) grants access to it" : "set HF_TOKEN or pass { token }";
  if (hubCode === "RepoNotFound") return new HubError("IO", `${what}: repository ${ctx.repo} not found on ${ctx.endpoint}, or it is private (${tokenHint})${tail}`, "not-found", status, hubCode);
  if (hubCode === "RevisionNotFound") return new HubError("IO", `${what}: revision not found in ${ctx.repo}${tail}`, "not-found", status, hubCode);
  if (status === 401 || status === 403 || hubCode === "GatedRepo") {
    return new HubError("IO", `${what}: HTTP ${status}, access to ${ctx.repo} is restricted${tail}. If it is gated, accept its terms on the hub; then ${tokenHint}`, "auth", status, hubCode);
  }
  if (status === 404) return new HubError("IO", `${what}: not found in ${ctx.repo} (HTTP 404)${tail}`, "not-found", status, hubCode);
  return new HubError("IO", `${what}: HTTP ${status}${tail}`, "http", status, hubCode);
}

const retryableStatus = (s: number) => s === 408 || s === 429 || s >= 500;
const retryable = (e: unknown) => e instanceof HubError && (e.reason === "network" || (e.status !== undefined && retryableStatus(e.status)));
const backoff = (failures: number) => Math.min(5000, 250 * 2 ** (failures - 1));

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => { clearTimeout(t); reject(abortError(signal)); };
    const t = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function getJson(ctx: Ctx, url: string, what: string): Promise<{ json: unknown; res: Response }> {
  for (let failures = 0; ;) {
    try {
      const res = await send(ctx, url, { Accept: "application/json" });
      if (!res.ok) throw await httpError(res, ctx, what);
      let json: unknown;
      try { json = await res.json(); } catch (e) {
        if (ctx.signal?.aborted) throw abortError(ctx.signal);
        throw new HubError("IO", `${what}: ${url} did not answer JSON`, "http", res.status, undefined, { cause: e });
      }
      return { json, res };
    } catch (e) {
      if (retryable(e) && ++failures <= ctx.retries) { await sleep(backoff(failures), ctx.signal); continue; }
      throw e;
    }
  }
}

// ---- listing and resolution -----------------------------------------------------------------------

interface RepoEntry { path: string; size?: number; sha256?: string }

const num = (x: unknown) => (typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? x : undefined);
const sha = (x: unknown) => (typeof x === "string" && /^[0-9a-f]{64}$/i.test(x) ? x.toLowerCase() : undefined);

function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]+)>\s*;.*\brel="?next"?/i.exec(part);
    if (m) return new URL(m[1], base).href;
  }
  return undefined;
}

const encPath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

async function listRepo(ctx: Ctx, revision: string): Promise<RepoEntry[]> {
  const base = `${ctx.endpoint}/api/models/${ctx.repo}`;
  const what = `listing ${ctx.repo}`;
  try {
    const out: RepoEntry[] = [];
    let url: string | undefined = `${base}/tree/${encodeURIComponent(revision)}?recursive=true`;
    for (let page = 0; url; page++) {
      if (page > 10000) throw new HubError("IO", `${what}: too many pages`, "http");
      const { json, res }: { json: unknown; res: Response } = await getJson(ctx, url, what);
      if (!Array.isArray(json)) throw new HubError("IO", `${what}: unexpected tree listing`, "http", res.status);
      for (const e of json as any[]) {
        if (e?.type !== "file" || typeof e.path !== "string") continue;
        out.push({ path: e.path, size: num(e.lfs?.size) ?? num(e.size), sha256: sha(e.lfs?.oid) });
      }
      url = nextLink(res.headers.get("link"), url);
    }
    return out;
  } catch (e) {
    // the tree API is what the hub serves; mirrors without it still have the model-info API
    if (!(e instanceof HubError) || e.reason === "auth" || e.reason === "network" || e.hubCode === "RepoNotFound" || e.hubCode === "RevisionNotFound") throw e;
  }
  const url = revision === "main" ? `${base}?blobs=true` : `${base}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const { json } = await getJson(ctx, url, what);
  const siblings = (json as any)?.siblings;
  if (!Array.isArray(siblings)) throw new HubError("IO", `${what}: the model info has no file list (siblings)`, "http");
  return siblings.filter((s: any) => typeof s?.rfilename === "string")
    .map((s: any) => ({ path: s.rfilename, size: num(s.lfs?.size) ?? num(s.size), sha256: sha(s.lfs?.sha256) ?? sha(s.lfs?.oid) }));
}

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const stem = (p: string) => baseName(p).replace(/-\d{5}-of-\d{5}\.gguf$/i, "").replace(/\.gguf$/i, "");
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function splitGroup(entries: RepoEntry[], first: RepoEntry, ctx: Ctx): RepoEntry[] {
  const s = parseSplitName(first.path)!;
  const byPath = new Map(entries.map((e) => [e.path.toLowerCase(), e]));
  const parts: RepoEntry[] = [];
  for (let i = 1; i <= s.count; i++) {
    const want = `${s.prefix}-${String(i).padStart(5, "0")}-of-${String(s.count).padStart(5, "0")}.gguf`;
    const e = byPath.get(want.toLowerCase());
    if (!e) throw new HubError("IO", `${ctx.repo}: part ${i} of ${s.count} of ${s.prefix} is missing from the repository`, "not-found");
    parts.push(e);
  }
  return parts;
}

function pickFiles(entries: RepoEntry[], spec: HfSpec, ctx: Ctx): RepoEntry[] {
  if (spec.file !== undefined) {
    const e = entries.find((x) => x.path === spec.file) ?? entries.find((x) => x.path.toLowerCase() === spec.file!.toLowerCase());
    if (!e) throw new HubError("IO", `${ctx.repo}@${spec.revision} has no file ${spec.file}`, "not-found", 404, "EntryNotFound");
    return parseSplitName(e.path) ? splitGroup(entries, e, ctx) : [e];
  }
  const quant = spec.quant!;
  const re = new RegExp(`(?:^|[-._])${escapeRe(quant)}(?=$|[-.])`, "i");
  const ggufs = entries.filter((e) => /\.gguf$/i.test(e.path) && !/^mmproj/i.test(baseName(e.path)));
  const groups = new Map<string, RepoEntry>();
  for (const e of ggufs) {
    if (!re.test(stem(e.path))) continue;
    const s = parseSplitName(e.path);
    const key = s ? `${s.prefix}|${s.count}`.toLowerCase() : e.path;
    if (!groups.has(key) || (s && s.no === 1)) groups.set(key, s ? { ...e, path: e.path } : e);
  }
  let cands = [...groups.values()];
  if (cands.length > 1) { // prefer files at the top of the repository
    const depth = (p: string) => p.split("/").length;
    const min = Math.min(...cands.map((c) => depth(c.path)));
    cands = cands.filter((c) => depth(c.path) === min);
  }
  if (cands.length === 0) {
    const quants = [...new Set(ggufs.map((e) => /(?:^|[-._])((?:UD-)?(?:I?Q\d[\w]*|B?F\d+))$/i.exec(stem(e.path))?.[1]).filter(Boolean))];
    const have = quants.length ? `it has ${quants.join(", ")}` : ggufs.length ? `its GGUF files are ${ggufs.map((e) => e.path).join(", ")}` : "it has no GGUF files";
    throw new HubError("BAD_INPUT", `no ${quant} GGUF in ${ctx.repo}: ${have} (pick one with hf:${ctx.repo}:<quant>)`, "no-match");
  }
  if (cands.length > 1) {
    throw new HubError("BAD_INPUT", `${quant} matches several files in ${ctx.repo}: ${cands.map((c) => c.path).join(", ")}; name one with hf:${ctx.repo}/<file>`, "no-match");
  }
  const c = cands[0];
  if (!parseSplitName(c.path)) return [c];
  const s = parseSplitName(c.path)!;
  const first = entries.find((e) => { const t = parseSplitName(e.path); return t && t.no === 1 && t.count === s.count && t.prefix.toLowerCase() === s.prefix.toLowerCase(); });
  return splitGroup(entries, first ?? c, ctx);
}

async function resolveWith(spec: HfSpec, ctx: Ctx): Promise<HfResolved> {
  const entries = await listRepo(ctx, spec.revision);
  const picked = pickFiles(entries, spec, ctx);
  return {
    endpoint: ctx.endpoint, repo: spec.repo, revision: spec.revision, ...(spec.quant ? { quant: spec.quant } : {}),
    files: picked.map((e) => ({
      path: e.path, url: `${ctx.endpoint}/${spec.repo}/resolve/${encodeURIComponent(spec.revision)}/${encPath(e.path)}`,
      ...(e.size !== undefined ? { size: e.size } : {}), ...(e.sha256 ? { sha256: e.sha256 } : {}),
    })),
  };
}

/** Find the file(s) a spec names: one request to the hub API (more if the listing is paginated). */
export async function resolveHf(spec: string, opts: HfOptions = {}): Promise<HfResolved> {
  const s = parseHfSpec(spec, opts);
  return resolveWith(s, makeCtx(opts, s.repo));
}

// ---- download into a cache folder (Node, Deno) ---------------------------------------------------

export interface HfDownloadOptions extends HfOptions {
  /** Cache root (default `$XDG_CACHE_HOME` or `~/.cache`, then `lfm2-wasm/hub`). */
  cacheDir?: string;
  /** Progress over all files of the model; `loaded` includes bytes already on disk. */
  onProgress?: ProgressCallback;
  /** Only use the cache: never contact the hub. */
  offline?: boolean;
}

export interface HfDownloaded extends HfResolved {
  /** Local path of the model: the file, or part 1 of a split model (the other parts sit next to it). */
  path: string;
  /** Local paths, in the order of `files`. */
  paths: string[];
  /** True when everything came from the cache (no request was made). */
  fromCache: boolean;
}

export async function defaultCacheDir(): Promise<string> {
  if (!hasFs) throw new Lfm2Error("BAD_INPUT", "there is no file system here; use hfSource() (streams, Cache API)");
  const os = await import("node:os"), path = await import("node:path");
  return path.join(readEnv("XDG_CACHE_HOME") || path.join(os.homedir(), ".cache"), "lfm2-wasm", "hub");
}

const MANIFEST = ".lfm2-wasm-resolved.json";
type Manifest = Record<string, { files: HfFile[] }>;

const selector = (s: HfSpec) => (s.file !== undefined ? `file:${s.file}` : `quant:${s.quant!.toUpperCase()}`);

class ProgressState {
  private have: number[];
  private session = 0;
  private t0 = Date.now();
  constructor(private files: HfFile[], private cb?: ProgressCallback) { this.have = files.map(() => 0); }
  set(i: number, have: number, fresh = 0) {
    this.have[i] = have;
    this.session += fresh;
    if (!this.cb) return;
    const loaded = this.have.reduce((a, b) => a + b, 0);
    const total = this.files.reduce((a, f, j) => a + (f.size ?? this.have[j]), 0);
    this.cb({ loaded, total, rate: this.session / Math.max(1e-3, (Date.now() - this.t0) / 1000), file: this.files[i].path });
  }
}

/**
 * Download a model into the cache once and return local paths. Bytes go to `<file>.part`; a dropped
 * connection (or an earlier interrupted call) resumes with a Range request; size and sha256 are checked
 * before the file is renamed into place, and a mismatch deletes the partial file (HubError reason
 * "size"/"checksum"). A later call for the same spec is served from the cache without any request.
 */
export async function downloadHf(spec: string, opts: HfDownloadOptions = {}): Promise<HfDownloaded> {
  if (!hasFs) throw new Lfm2Error("BAD_INPUT", "downloadHf needs a file system (Node or Deno); in browsers use hfSource()");
  const s = parseHfSpec(spec, opts);
  const ctx = makeCtx(opts, s.repo);
  const fs = await import("node:fs/promises"), path = await import("node:path");
  const root = path.join(opts.cacheDir ?? await defaultCacheDir(), ...s.repo.split("/"), ...s.revision.split("/"));
  const local = (f: HfFile) => path.join(root, ...f.path.split("/"));
  const key = selector(s);
  const manifestPath = path.join(root, MANIFEST);
  let manifest: Manifest = {};
  try { manifest = JSON.parse(await fs.readFile(manifestPath, "utf8")); } catch { /* none yet */ }
  const exists = async (p: string, size?: number) => { try { const st = await fs.stat(p); return st.isFile() && (size === undefined || st.size === size); } catch { return false; } };

  const known = manifest[key]?.files;
  const done = (files: HfFile[], fromCache: boolean): HfDownloaded => ({
    endpoint: ctx.endpoint, repo: s.repo, revision: s.revision, ...(s.quant ? { quant: s.quant } : {}), files, path: local(files[0]), paths: files.map(local), fromCache,
  });
  if (known?.length && (await Promise.all(known.map((f) => exists(local(f), f.size)))).every(Boolean)) {
    if (opts.onProgress) { const p = new ProgressState(known, opts.onProgress); known.forEach((f, i) => p.set(i, f.size ?? 0)); }
    return done(known, true);
  }
  if (s.file !== undefined && !parseSplitName(s.file)) {
    const f: HfFile = { path: s.file, url: `${ctx.endpoint}/${s.repo}/resolve/${encodeURIComponent(s.revision)}/${encPath(s.file)}` };
    if (await exists(local(f))) return done([f], true);
  }
  if (opts.offline) throw new HubError("IO", `${spec} is not in the cache (${root}) and offline is set`, "not-found");

  const resolved = await resolveWith(s, ctx);
  const progress = new ProgressState(resolved.files, opts.onProgress);
  for (let i = 0; i < resolved.files.length; i++) {
    await downloadFile(resolved.files[i], local(resolved.files[i]), ctx, (have, fresh) => progress.set(i, have, fresh));
  }
  // record what the spec resolved to, so the next call needs no request
  try { manifest = JSON.parse(await fs.readFile(manifestPath, "utf8")); } catch { manifest = {}; }
  manifest[key] = { files: resolved.files };
  const tmp = `${manifestPath}.${process.pid}.${Date.now()}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(manifest, null, 1));
  await fs.rename(tmp, manifestPath);
  return { ...resolved, path: local(resolved.files[0]), paths: resolved.files.map(local), fromCache: false };
}

function parseContentRange(h: string | null): { start: number; total?: number } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(h?.trim() ?? "");
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

async function downloadFile(f: HfFile, dest: string, ctx: Ctx, report: (have: number, fresh: number) => void): Promise<void> {
  const fs = await import("node:fs/promises"), path = await import("node:path");
  const { createHash } = await import("node:crypto");
  try {
    const st = await fs.stat(dest);
    if (f.size === undefined || st.size === f.size) { report(st.size, 0); return; } // verified before its rename
    await fs.rm(dest, { force: true });
  } catch { /* not there */ }
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = 0;
  try { have = (await fs.stat(part)).size; } catch { /* fresh */ }
  if (f.size !== undefined && have > f.size) { await fs.rm(part, { force: true }); have = 0; }
  let hash = createHash("sha256");
  const fh = await fs.open(part, "a+");
  try {
    // resuming: the hash must cover the bytes already on disk
    for (let o = 0; o < have;) {
      if (ctx.signal?.aborted) throw abortError(ctx.signal);
      const buf = new Uint8Array(Math.min(4 << 20, have - o));
      const { bytesRead } = await fh.read(buf, 0, buf.length, o);
      if (bytesRead === 0) { have = o; await fh.truncate(o); break; }
      hash.update(buf.subarray(0, bytesRead));
      o += bytesRead;
    }
    report(have, 0);
    let expected = f.size;
    let failures = 0;
    const retry = async (e: unknown) => {
      if (++failures > ctx.retries) throw e;
      await sleep(backoff(failures), ctx.signal);
    };
    const restart = async () => { await fh.truncate(0); have = 0; hash = createHash("sha256"); report(0, 0); };
    while (expected === undefined || have < expected) {
      const headers: Record<string, string> = { "Accept-Encoding": "identity" };
      if (have > 0) headers.Range = `bytes=${have}-`;
      let res: Response;
      try { res = await send(ctx, f.url, headers); } catch (e) { if (!retryable(e)) throw e; await retry(e); continue; }
      if (res.status === 416 && have > 0) { // asked past the end: complete if the server's size agrees
        const total = parseContentRange(res.headers.get("content-range"))?.total;
        await res.body?.cancel().catch(() => {});
        if (total === have && (expected === undefined || expected === have)) { expected = have; break; }
        await restart();
        continue;
      }
      if (!res.ok || !res.body) {
        const err = res.ok ? new HubError("IO", `${f.path}: empty response`, "http", res.status) : await httpError(res, ctx, `download of ${f.path}`);
        if (retryable(err)) { await retry(err); continue; }
        throw err;
      }
      if (res.status === 206) {
        const cr = parseContentRange(res.headers.get("content-range"));
        if (!cr || cr.start !== have) { await res.body.cancel().catch(() => {}); await restart(); await retry(new HubError("IO", `${f.path}: the server answered another byte range`, "http", 206)); continue; }
        expected ??= cr.total;
      } else {
        if (have > 0) await restart(); // Range ignored: the body is the whole file
        const len = Number(res.headers.get("content-length"));
        if (expected === undefined && res.headers.has("content-length") && Number.isSafeInteger(len)) expected = len;
      }
      const reader = res.body.getReader();
      let ended = false;
      try {
        for (;;) {
          const { done, value } = await readOrStall(reader, ctx.readTimeoutMs);
          if (done) { ended = true; break; }
          if (expected !== undefined && have + value.length > expected) {
            throw new HubError("IO", `${f.path}: the server sent more than the expected ${expected} bytes`, "size");
          }
          for (let o = 0; o < value.length;) o += (await fh.write(value, o, value.length - o)).bytesWritten;
          hash.update(value);
          have += value.length;
          failures = 0;
          report(have, value.length);
        }
      } catch (e) {
        if (ctx.signal?.aborted) throw abortError(ctx.signal);
        if (e instanceof Lfm2Error) throw e;
        await retry(new HubError("IO", `download of ${f.path} failed at byte ${have}: ${errMsg(e)}`, "network", undefined, undefined, { cause: e }));
        continue;
      } finally {
        if (!ended) await reader.cancel().catch(() => {});
      }
      if (expected === undefined) { expected = have; break; }
      if (have < expected) await retry(new HubError("TRUNCATED", `${f.path}: the connection closed at byte ${have} of ${expected}`, "network"));
    }
  } catch (e) {
    await fh.close().catch(() => {});
    if (e instanceof HubError && (e.reason === "size")) await fs.rm(part, { force: true });
    throw e;
  }
  await fh.close();
  if (f.size !== undefined && have !== f.size) {
    await fs.rm(part, { force: true });
    throw new HubError("IO", `${f.path}: downloaded ${have} bytes but the hub lists ${f.size}; the download was discarded`, "size");
  }
  if (f.sha256) {
    const got = hash.digest("hex");
    if (got !== f.sha256) {
      await fs.rm(part, { force: true });
      throw new HubError("IO", `${f.path}: sha256 ${got} does not match the hub's ${f.sha256}; the download was discarded`, "checksum");
    }
  }
  await fs.rename(part, dest);
}

// ---- ByteSource ----------------------------------------------------------------------------------

/** The parts of the Cache API that hfSource uses (globalThis.caches by default). */
export interface CacheStorageLike { open(name: string): Promise<CacheLike> }
export interface CacheLike {
  match(url: string): Promise<Response | undefined>;
  put(url: string, res: Response): Promise<void>;
  delete(url: string): Promise<boolean>;
}

export interface HfSourceOptions extends HfDownloadOptions {
  /**
   * "fs": download into the cache folder, then read the file (default in Node and Deno);
   * "cache": stream from the hub and keep whole files in the Cache API (default where `caches` exists);
   * "none": stream from the hub every time.
   */
  storage?: "fs" | "cache" | "none";
  caches?: CacheStorageLike;
  /** Cache API cache name (default "lfm2-wasm-hub"). */
  cacheName?: string;
}

/**
 * A ByteSource for a hub model. With a file system: downloads (once) then reads the cached file. Without:
 * streams from the resolved URL (Range requests when starting past 0), through the Cache API if there.
 * A split model gives a SplitByteSource (`.parts`, see split.ts).
 */
export async function hfSource(spec: string, opts: HfSourceOptions = {}): Promise<ByteSource> {
  const storage = opts.storage ?? (hasFs ? "fs" : (opts.caches ?? (globalThis as any).caches) ? "cache" : "none");
  if (storage === "fs") {
    const d = await downloadHf(spec, opts);
    const parts = await Promise.all(d.paths.map((p) => fileSource(p)));
    return parts.length === 1 ? parts[0] : splitSource(parts, d.paths[0]);
  }
  const s = parseHfSpec(spec, opts);
  const ctx = makeCtx(opts, s.repo);
  let cache: CacheLike | undefined;
  if (storage === "cache") {
    const cs = opts.caches ?? (globalThis as any).caches as CacheStorageLike | undefined;
    if (!cs) throw new Lfm2Error("BAD_INPUT", "storage \"cache\" needs the Cache API (globalThis.caches)");
    cache = await cs.open(opts.cacheName ?? "lfm2-wasm-hub");
  }
  const resolvedKey = `${ctx.endpoint}/api/models/${s.repo}/lfm2-wasm-resolved/${encodeURIComponent(s.revision)}/${encodeURIComponent(selector(s))}`;
  let resolved: HfResolved | undefined;
  if (cache) { try { resolved = await (await cache.match(resolvedKey))?.json(); } catch { resolved = undefined; } }
  if (!resolved?.files?.length) {
    resolved = await resolveWith(s, ctx);
    for (const f of resolved.files) {
      if (f.size === undefined) { // not listed: ask the file itself
        const res = await send(ctx, f.url, {}, "HEAD");
        const n = Number(res.headers.get("content-length"));
        if (!res.ok || !Number.isSafeInteger(n) || n <= 0) throw res.ok ? new HubError("IO", `${f.url} did not report its size`, "http", res.status) : await httpError(res, ctx, f.path);
        f.size = n;
      }
    }
    await cache?.put(resolvedKey, new Response(JSON.stringify(resolved), { headers: { "content-type": "application/json" } }));
  }
  const parts = resolved.files.map((f) => remoteSource(f as HfFile & { size: number }, ctx, cache));
  return parts.length === 1 ? parts[0] : splitSource(parts, parts[0].name);
}

function remoteSource(f: HfFile & { size: number }, ctx: Ctx, cache?: CacheLike): ByteSource {
  return {
    name: f.url, size: f.size,
    async *chunks(start = 0, signal = ctx.signal) {
      if (signal?.aborted) throw abortError(signal);
      const hit = cache ? await cache.match(f.url) : undefined;
      // the cached response or the network; `skip` bytes are dropped when the body starts before `start`
      const ctrl = new AbortController();
      const onAbort = () => ctrl.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      let body: ReadableStream<Uint8Array>, skip = 0, put: Promise<void> | undefined;
      try {
        if (hit?.body) { body = hit.body; skip = start; } else {
          const res = await send(ctx, f.url, start > 0 ? { Range: `bytes=${start}-` } : {}, "GET", ctrl.signal);
          if (!res.ok || !res.body) throw res.ok ? new HubError("IO", `${f.path}: empty response`, "http", res.status) : await httpError(res, ctx, `download of ${f.path}`);
          body = res.body;
          if (start > 0 && res.status !== 206) skip = start;
          if (cache && start === 0 && res.status === 200) {
            const [mine, cached] = body.tee();
            body = mine;
            put = cache.put(f.url, new Response(cached, { headers: { "content-type": "application/octet-stream", "content-length": String(f.size) } })).catch(() => {});
          }
        }
      } catch (e) { signal?.removeEventListener("abort", onAbort); throw e; }
      const reader = body.getReader();
      let pos = hit?.body || skip ? 0 : start, complete = false;
      try {
        for (;;) {
          let r: ReadableStreamReadResult<Uint8Array>;
          try { r = await readOrStall(reader, ctx.readTimeoutMs); } catch (e) {
            if (signal?.aborted) throw abortError(signal);
            throw new HubError("IO", `download of ${f.path} failed at byte ${pos}: ${errMsg(e)}`, "network", undefined, undefined, { cause: e });
          }
          if (r.done) break;
          let v = r.value;
          if (pos < skip) { const drop = Math.min(v.length, skip - pos); pos += drop; v = v.subarray(drop); if (!v.length) continue; }
          pos += v.length;
          if (pos > f.size) throw new HubError("IO", `${f.path}: more than the expected ${f.size} bytes`, "size");
          yield v;
        }
        if (pos !== f.size) {
          if (hit) await cache!.delete(f.url).catch(() => false);
          throw new Lfm2Error("TRUNCATED", `${f.path} ended after ${pos} of ${f.size} bytes`);
        }
        complete = true;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        if (!complete) { ctrl.abort(); await reader.cancel().catch(() => {}); } // also keeps a partial file out of the cache
        else if (put) await put;
      }
    },
  };
}
