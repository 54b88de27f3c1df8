// Hub downloads against a local imitation of the Hugging Face hub (the test machines cannot reach the
// real one): the tree/model-info API, `/{repo}/resolve/{rev}/{file}` answered with a 302 to a "CDN" on
// another origin (Content-Length, ETag, Accept-Ranges, 206 Range answers), 401 for gated repositories
// without a token, 401 RepoNotFound / 404 EntryNotFound / 404 RevisionNotFound with X-Error-Code headers.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Lfm2Error } from "../src/errors.js";
import { concatChunks } from "../src/formats/gguf-writer.js";
import {
  downloadHf, HubError, hfSource, isHfSpec, parseHfSpec, resolveHf, type CacheLike, type CacheStorageLike,
} from "../src/io/hub.js";
import type { ByteSource, Progress } from "../src/io/source.js";
import { isSplitSource } from "../src/io/split.js";
import { loadModel } from "../src/runtime/load.js";
import { syntheticGguf } from "../src/models/synthetic.js";

// ---- the imitation hub -----------------------------------------------------------------------------

interface MockFile {
  path: string;
  data: Uint8Array;
  /** Stored with LFS (default for .gguf): the listing carries lfs.oid = sha256 and resolve redirects. */
  lfs?: boolean;
  /** Serve these bytes instead (corruption in transit / storage), while listing `data`'s sha256. */
  served?: Uint8Array;
  /** Drop the connection after this many body bytes, `drops` times. */
  dropAt?: number;
  drops?: number;
  /** Stop sending (connection left open) after this many body bytes, `stalls` times. */
  stallAt?: number;
  stalls?: number;
  /** Send the body slowly: `bytes` every `ms`. */
  throttle?: { bytes: number; ms: number };
  /** Listed by the API but missing behind resolve. */
  ghost?: boolean;
}
interface MockRepo { files: MockFile[]; gated?: boolean; treeApi?: boolean; pageSize?: number; revisions?: string[] }

const TOKEN = "hf_local_test_token";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const repos = new Map<string, MockRepo>();
const blobs = new Map<string, MockFile>(); // sha256 → file, for the CDN
interface Logged { server: "hub" | "cdn"; method: string; path: string; range?: string; auth?: string }
let log: Logged[] = [];
let hub: Server, cdn: Server, HUB = "", CDN = "";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const isLfs = (f: MockFile) => f.lfs ?? f.path.endsWith(".gguf");

function addRepo(name: string, repo: MockRepo) {
  repos.set(name, repo);
  for (const f of repo.files) blobs.set(sha256(f.data), f);
}

function sendError(res: ServerResponse, status: number, code: string | undefined, message: string) {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (code) { h["x-error-code"] = code; h["x-error-message"] = message; }
  res.writeHead(status, h).end(JSON.stringify({ error: message }));
}

function serveBytes(req: IncomingMessage, res: ServerResponse, f: MockFile, headers: Record<string, string>) {
  const body = f.served ?? f.data;
  const size = body.length;
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const h: Record<string, string> = { ...headers, "accept-ranges": "bytes", etag: `"${sha256(f.data)}"`, "content-type": "application/octet-stream" };
  if (range) {
    start = Number(range[1]);
    if (start >= size) { res.writeHead(416, { ...h, "content-range": `bytes */${size}` }).end(); return; }
    res.writeHead(206, { ...h, "content-range": `bytes ${start}-${size - 1}/${size}`, "content-length": String(size - start) });
  } else res.writeHead(200, { ...h, "content-length": String(size) });
  if (req.method === "HEAD") { res.end(); return; }
  let pos = start;
  const dropAt = f.dropAt !== undefined && (f.drops ?? 0) > 0 && f.dropAt > start ? f.dropAt : undefined;
  const stallAt = f.stallAt !== undefined && (f.stalls ?? 0) > 0 && f.stallAt > start ? f.stallAt : undefined;
  const step = f.throttle?.bytes ?? 256 << 10;
  const pump = () => {
    if (res.destroyed) return;
    if (pos >= size) { res.end(); return; }
    let end = Math.min(size, pos + step);
    if (stallAt !== undefined && end >= stallAt) {
      f.stalls!--;
      res.write(body.subarray(pos, stallAt)); // then nothing: the socket stays open and silent
      return;
    }
    if (dropAt !== undefined && end >= dropAt) {
      end = dropAt;
      f.drops!--;
      res.write(body.subarray(pos, end), () => res.socket?.destroy());
      return;
    }
    const chunk = body.subarray(pos, end);
    pos = end;
    const more = res.write(chunk);
    if (f.throttle) setTimeout(pump, f.throttle.ms);
    else if (more) setImmediate(pump);
    else res.once("drain", pump);
  };
  pump();
}

function hubHandler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, HUB);
  const auth = req.headers.authorization;
  log.push({ server: "hub", method: req.method!, path: url.pathname + url.search, range: req.headers.range, auth });
  const p = decodeURIComponent(url.pathname);
  let m: RegExpExecArray | null;
  const repoOr401 = (name: string) => {
    const r = repos.get(name);
    if (!r) sendError(res, 401, "RepoNotFound", `Repository Not Found for url: ${url}.`);
    return r;
  };
  const revOk = (r: MockRepo, rev: string) => rev === "main" || rev === COMMIT || (r.revisions ?? []).includes(rev);
  if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(p))) {
    const r = repoOr401(m[1]); if (!r) return;
    if (r.treeApi === false) return sendError(res, 404, undefined, "Not Found");
    if (!revOk(r, m[2])) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${m[2]}`);
    const all = r.files.map((f) => ({
      type: "file", oid: gitSha1(isLfs(f) ? new TextEncoder().encode(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.data)}\nsize ${f.data.length}\n`) : f.data),
      size: f.data.length, path: f.path,
      ...(isLfs(f) ? { lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
    }));
    const dirs = [...new Set(r.files.map((f) => f.path.split("/").slice(0, -1).join("/")).filter(Boolean))].map((d) => ({ type: "directory", oid: "0".repeat(40), size: 0, path: d }));
    const entries = [...dirs, ...all];
    const cursor = Number(url.searchParams.get("cursor") ?? 0), n = r.pageSize ?? 1000;
    const h: Record<string, string> = { "content-type": "application/json" };
    if (cursor + n < entries.length) {
      const next = new URL(url); next.searchParams.set("cursor", String(cursor + n));
      h.link = `<${next.href}>; rel="next"`;
    }
    return res.writeHead(200, h).end(JSON.stringify(entries.slice(cursor, cursor + n)));
  }
  if ((m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(p))) {
    const r = repoOr401(m[1]); if (!r) return;
    if (m[2] && !revOk(r, m[2])) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${m[2]}`);
    const blobsToo = url.searchParams.get("blobs") === "true";
    return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
      _id: "x", id: m[1], modelId: m[1], sha: COMMIT, private: false, gated: r.gated ? "manual" : false, disabled: false, tags: ["gguf"],
      siblings: r.files.map((f) => ({
        rfilename: f.path,
        ...(blobsToo ? { size: f.data.length, blobId: gitSha1(f.data), ...(isLfs(f) ? { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}) } : {}),
      })),
    }));
  }
  if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p))) {
    const r = repoOr401(m[1]); if (!r) return;
    if (r.gated && auth !== `Bearer ${TOKEN}`) {
      return sendError(res, 401, "GatedRepo", `Access to model ${m[1]} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
    }
    if (!revOk(r, m[2])) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${m[2]}`);
    const f = r.files.find((x) => x.path === m![3]);
    if (!f || f.ghost) return sendError(res, 404, "EntryNotFound", `Entry not found`);
    const common = { "x-repo-commit": COMMIT, "access-control-expose-headers": "X-Repo-Commit,X-Linked-Size,X-Linked-ETag,ETag,Content-Range" };
    if (isLfs(f)) {
      const sum = sha256(f.data);
      return res.writeHead(302, {
        ...common, location: `${CDN}/repos/${sum.slice(0, 2)}/${sum}?response-content-disposition=attachment&X-Amz-Signature=abc`,
        "x-linked-size": String(f.data.length), "x-linked-etag": `"${sum}"`, etag: `"${gitSha1(f.data)}"`, "content-length": "0",
      }).end();
    }
    return serveBytes(req, res, f, common);
  }
  sendError(res, 404, undefined, "Not Found");
}

function cdnHandler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, CDN);
  log.push({ server: "cdn", method: req.method!, path: url.pathname, range: req.headers.range, auth: req.headers.authorization });
  const m = /^\/repos\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(url.pathname);
  const f = m && blobs.get(m[1]);
  if (!f) return sendError(res, 404, undefined, "NoSuchKey");
  serveBytes(req, res, f, {});
}

async function listen(h: (req: IncomingMessage, res: ServerResponse) => void): Promise<[Server, string]> {
  const s = createServer(h);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return [s, `http://127.0.0.1:${(s.address() as AddressInfo).port}`];
}

// ---- fixtures ----------------------------------------------------------------------------------------

const q4 = concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q4_0", name: "LFM2-350M (local test)" }));
const q4km = randomBytes(300_000), q4k = randomBytes(1000), q8 = randomBytes(400_000), f16 = randomBytes(500_000), bf16 = randomBytes(1000);
const splitParts = [randomBytes(700_000), randomBytes(600_000), randomBytes(500_000)];
const readme = new TextEncoder().encode("---\nlicense: other\nlicense_name: lfm1.0\n---\n# LFM2-350M-GGUF\n");
const flaky = randomBytes(3 << 20), slow = randomBytes(8 << 20), gated = randomBytes(200_000), good = randomBytes(250_000), bad = randomBytes(250_000);

let cacheDir = "";
const fresh = () => (cacheDir = mkdtempSync(join(tmpdir(), "lfm2-hub-")));
const base = () => ({ endpoint: HUB, cacheDir, token: false as const });

beforeAll(async () => {
  [hub, HUB] = await listen(hubHandler);
  [cdn, CDN] = await listen(cdnHandler);
  addRepo("LiquidAI/LFM2-350M-GGUF", {
    files: [
      { path: ".gitattributes", data: new TextEncoder().encode("*.gguf filter=lfs diff=lfs merge=lfs -text\n") },
      { path: "README.md", data: readme },
      { path: "LFM2-350M-Q4_0.gguf", data: q4 },
      { path: "LFM2-350M-Q4_K.gguf", data: q4k },
      { path: "LFM2-350M-Q4_K_M.gguf", data: q4km },
      { path: "LFM2-350M-Q8_0.gguf", data: q8 },
      { path: "LFM2-350M-F16.gguf", data: f16 },
      { path: "LFM2-350M-BF16.gguf", data: bf16 },
    ],
  });
  addRepo("LiquidAI/LFM2-1.2B-GGUF", {
    pageSize: 2,
    files: [
      { path: "README.md", data: readme },
      ...splitParts.map((data, i) => ({ path: `LFM2-1.2B-Q8_0-0000${i + 1}-of-00003.gguf`, data })),
      { path: "LFM2-1.2B-Q4_0.gguf", data: good },
    ],
  });
  addRepo("acme/mirror-GGUF", { treeApi: false, files: [{ path: "sub/mirror-Q4_0.gguf", data: good }, { path: "mirror-Q5_K_M.gguf", data: q4k }] });
  addRepo("acme/multi-GGUF", { files: [{ path: "a-Q4_0.gguf", data: q4k }, { path: "b-Q4_0.gguf", data: bf16 }, { path: "mmproj-a-F16.gguf", data: q4k }] });
  addRepo("acme/gated-GGUF", { gated: true, files: [{ path: "gated-Q4_0.gguf", data: gated }] });
  addRepo("acme/flaky-GGUF", { files: [{ path: "flaky-Q4_0.gguf", data: flaky, dropAt: 1 << 20, drops: 0 }] });
  addRepo("acme/stalling-GGUF", { files: [{ path: "stalling-Q4_0.gguf", data: good, stallAt: 100_000, stalls: 0 }] });
  addRepo("acme/corrupt-GGUF", { files: [{ path: "corrupt-Q4_0.gguf", data: bad, served: Uint8Array.from(bad, (b, i) => (i === 1000 ? b ^ 1 : b)) }] });
  addRepo("acme/slow-GGUF", { files: [{ path: "slow-Q4_0.gguf", data: slow, throttle: { bytes: 64 << 10, ms: 10 } }] });
  addRepo("acme/ghost-GGUF", { files: [{ path: "ghost-Q4_0.gguf", data: q4k, ghost: true }] });
});

afterAll(async () => {
  hub?.closeAllConnections(); cdn?.closeAllConnections();
  await Promise.all([hub, cdn].map((s) => new Promise((r) => s?.close(r))));
});

beforeEach(() => { log = []; fresh(); });

async function failure(p: Promise<unknown>): Promise<HubError> {
  try { await p; } catch (e) { expect(e).toBeInstanceOf(Lfm2Error); return e as HubError; }
  throw new Error("expected a failure");
}

async function readAll(src: ByteSource, start = 0): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of src.chunks(start)) parts.push(c.slice());
  return concatChunks(parts);
}

const cdnGets = (data?: Uint8Array) => log.filter((l) => l.server === "cdn" && l.method === "GET" && (!data || l.path.endsWith(sha256(data))));
const shaOfFile = (p: string) => sha256(readFileSync(p));

// ---- tests ---------------------------------------------------------------------------------------------

describe("hub specs", () => {
  it("parses hf: specs", () => {
    expect(parseHfSpec("hf:LiquidAI/LFM2-350M-GGUF:Q4_0")).toEqual({ repo: "LiquidAI/LFM2-350M-GGUF", revision: "main", quant: "Q4_0" });
    expect(parseHfSpec("LiquidAI/LFM2-350M-GGUF")).toEqual({ repo: "LiquidAI/LFM2-350M-GGUF", revision: "main", quant: "Q4_K_M" });
    expect(parseHfSpec("LiquidAI/LFM2-350M-GGUF", { quant: "Q8_0" }).quant).toBe("Q8_0");
    expect(parseHfSpec("hf:LiquidAI/LFM2-1.2B-GGUF@v1.0/sub/LFM2-1.2B-Q4_0.gguf"))
      .toEqual({ repo: "LiquidAI/LFM2-1.2B-GGUF", revision: "v1.0", file: "sub/LFM2-1.2B-Q4_0.gguf" });
    expect(isHfSpec("hf:a/b")).toBe(true);
    expect(isHfSpec("/models/a.gguf")).toBe(false);
    for (const bad of ["hf:LFM2-350M-GGUF", "hf:a/b/../c.gguf", "hf:a/b:c:d", "hf:/b:Q4_0", "hf:a/b@:Q4_0"]) {
      expect(() => parseHfSpec(bad), bad).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    }
  });
});

describe("resolveHf", () => {
  it("picks the GGUF for a quant (case-insensitive, exact quant), with size, sha256 and resolve URL", async () => {
    const r = await resolveHf("hf:LiquidAI/LFM2-350M-GGUF:q4_0", { endpoint: HUB, token: false });
    expect(r.files).toEqual([{
      path: "LFM2-350M-Q4_0.gguf", url: `${HUB}/LiquidAI/LFM2-350M-GGUF/resolve/main/LFM2-350M-Q4_0.gguf`, size: q4.length, sha256: sha256(q4),
    }]);
    const pick = async (spec: string) => (await resolveHf(spec, { endpoint: HUB, token: false })).files.map((f) => f.path);
    expect(await pick("LiquidAI/LFM2-350M-GGUF")).toEqual(["LFM2-350M-Q4_K_M.gguf"]); // default quant
    expect(await pick("hf:LiquidAI/LFM2-350M-GGUF:Q4_K")).toEqual(["LFM2-350M-Q4_K.gguf"]);
    expect(await pick("hf:LiquidAI/LFM2-350M-GGUF:f16")).toEqual(["LFM2-350M-F16.gguf"]); // not BF16
    expect(await pick("hf:LiquidAI/LFM2-350M-GGUF/README.md")).toEqual(["README.md"]);
    expect(log.every((l) => l.server === "hub" && l.path.startsWith("/api/models/LiquidAI/LFM2-350M-GGUF/tree/main?recursive=true"))).toBe(true);
  });

  it("gathers every part of a split GGUF in order (paginated tree listing)", async () => {
    const r = await resolveHf("hf:LiquidAI/LFM2-1.2B-GGUF:Q8_0", { endpoint: HUB, token: false });
    expect(r.files.map((f) => [f.path, f.size, f.sha256])).toEqual(splitParts.map((d, i) => [`LFM2-1.2B-Q8_0-0000${i + 1}-of-00003.gguf`, d.length, sha256(d)]));
    expect(log.filter((l) => l.path.includes("/tree/")).length).toBe(3); // 5 entries, 2 per page
    const byPart = await resolveHf("hf:LiquidAI/LFM2-1.2B-GGUF/LFM2-1.2B-Q8_0-00002-of-00003.gguf", { endpoint: HUB, token: false });
    expect(byPart.files.map((f) => f.path)).toEqual(r.files.map((f) => f.path));
  });

  it("falls back to the model-info API (siblings, blobs=true) when the tree API is missing", async () => {
    const r = await resolveHf("hf:acme/mirror-GGUF:Q4_0", { endpoint: HUB, token: false });
    expect(r.files).toEqual([{ path: "sub/mirror-Q4_0.gguf", url: `${HUB}/acme/mirror-GGUF/resolve/main/sub/mirror-Q4_0.gguf`, size: good.length, sha256: sha256(good) }]);
    expect(log.map((l) => l.path)).toEqual(["/api/models/acme/mirror-GGUF/tree/main?recursive=true", "/api/models/acme/mirror-GGUF?blobs=true"]);
  });

  it("explains what is there when no file or several files match", async () => {
    const none = await failure(resolveHf("hf:LiquidAI/LFM2-350M-GGUF:Q2_K", { endpoint: HUB, token: false }));
    expect(none.code).toBe("BAD_INPUT");
    expect(none.message).toMatch(/no Q2_K GGUF in LiquidAI\/LFM2-350M-GGUF: it has Q4_0, Q4_K, Q4_K_M, Q8_0, F16, BF16/);
    const many = await failure(resolveHf("hf:acme/multi-GGUF:Q4_0", { endpoint: HUB, token: false }));
    expect(many.code).toBe("BAD_INPUT");
    expect(many.message).toMatch(/matches several files.*a-Q4_0.gguf, b-Q4_0.gguf/);
  });

  it("missing repo, revision and file give typed not-found errors", async () => {
    const repo = await failure(resolveHf("hf:acme/nope-GGUF:Q4_0", { endpoint: HUB, token: false }));
    expect([repo.reason, repo.status, repo.hubCode]).toEqual(["not-found", 401, "RepoNotFound"]);
    expect(repo.message).toMatch(/not found.*or it is private.*HF_TOKEN/);
    const rev = await failure(resolveHf("hf:LiquidAI/LFM2-350M-GGUF@v9:Q4_0", { endpoint: HUB, token: false }));
    expect([rev.reason, rev.status, rev.hubCode]).toEqual(["not-found", 404, "RevisionNotFound"]);
    const file = await failure(downloadHf("hf:LiquidAI/LFM2-350M-GGUF/LFM2-350M-Q3_K.gguf", base()));
    expect([file.code, file.reason, file.status]).toEqual(["IO", "not-found", 404]);
    // listed but gone behind /resolve: the hub's own 404 EntryNotFound
    const ghost = await failure(downloadHf("hf:acme/ghost-GGUF:Q4_0", base()));
    expect([ghost.reason, ghost.status, ghost.hubCode]).toEqual(["not-found", 404, "EntryNotFound"]);
    expect(log.some((l) => l.path === "/acme/ghost-GGUF/resolve/main/ghost-Q4_0.gguf")).toBe(true);
  });

  it("uses HF_ENDPOINT and HF_TOKEN from the environment", async () => {
    const saved = { e: process.env.HF_ENDPOINT, t: process.env.HF_TOKEN };
    process.env.HF_ENDPOINT = HUB + "/"; process.env.HF_TOKEN = TOKEN;
    try {
      const r = await resolveHf("hf:acme/gated-GGUF:Q4_0");
      expect(r.files[0].url).toBe(`${HUB}/acme/gated-GGUF/resolve/main/gated-Q4_0.gguf`);
      expect(log[0].auth).toBe(`Bearer ${TOKEN}`);
    } finally {
      if (saved.e === undefined) delete process.env.HF_ENDPOINT; else process.env.HF_ENDPOINT = saved.e;
      if (saved.t === undefined) delete process.env.HF_TOKEN; else process.env.HF_TOKEN = saved.t;
    }
  });
});

describe("downloadHf", () => {
  it("downloads through the CDN redirect with progress, then serves the cache with zero requests", async () => {
    const seen: Progress[] = [];
    const d = await downloadHf("hf:LiquidAI/LFM2-350M-GGUF:Q4_0", { ...base(), onProgress: (p) => seen.push(p) });
    const want = join(cacheDir, "LiquidAI", "LFM2-350M-GGUF", "main", "LFM2-350M-Q4_0.gguf");
    expect(d.paths).toEqual([want]);
    expect(d.path).toBe(want);
    expect(d.fromCache).toBe(false);
    expect(shaOfFile(want)).toBe(sha256(q4));
    expect(existsSync(want + ".part")).toBe(false);
    expect(log.map((l) => `${l.server} ${l.method}`)).toEqual(["hub GET", "hub GET", "cdn GET"]); // list, resolve (302), CDN
    expect(seen.length).toBeGreaterThan(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i].loaded).toBeGreaterThanOrEqual(seen[i - 1].loaded);
    expect(seen.at(-1)).toMatchObject({ loaded: q4.length, total: q4.length, file: "LFM2-350M-Q4_0.gguf" });
    expect(seen.at(-1)!.rate).toBeGreaterThan(0);

    log = [];
    const again = await downloadHf("hf:LiquidAI/LFM2-350M-GGUF:Q4_0", base());
    const byFile = await downloadHf("hf:LiquidAI/LFM2-350M-GGUF/LFM2-350M-Q4_0.gguf", base());
    const src = await hfSource("hf:LiquidAI/LFM2-350M-GGUF:q4_0", base());
    expect(log).toEqual([]);
    expect([again.fromCache, byFile.fromCache]).toEqual([true, true]);
    expect(again.paths).toEqual([want]);
    expect(again.files[0].sha256).toBe(sha256(q4));
    expect(src.name).toBe(want);
    expect(src.size).toBe(q4.length);
  });

  it("a dropped connection resumes with a Range request and yields the right sha256", async () => {
    const f = repos.get("acme/flaky-GGUF")!.files[0];
    f.drops = 1;
    const d = await downloadHf("hf:acme/flaky-GGUF:Q4_0", base());
    const gets = cdnGets(flaky);
    expect(gets.length).toBe(2);
    expect(gets[0].range).toBeUndefined();
    const resumeAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? "")?.[1]);
    expect(resumeAt).toBeGreaterThan(0);
    expect(resumeAt).toBeLessThanOrEqual(1 << 20);
    expect(shaOfFile(d.paths[0])).toBe(sha256(flaky));
  });

  it("a server that stops sending without closing: retried with a Range request after readTimeoutMs", async () => {
    const f = repos.get("acme/stalling-GGUF")!.files[0];
    f.stalls = 1;
    const d = await downloadHf("hf:acme/stalling-GGUF:Q4_0", { ...base(), readTimeoutMs: 300 });
    expect(shaOfFile(d.paths[0])).toBe(sha256(good));
    const gets = cdnGets(good);
    expect(gets.length).toBe(2);
    expect(Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? "")?.[1])).toBe(100_000);
    // without retries the stall is a typed IO error, not a hang
    f.stalls = 1;
    fresh();
    const err = await failure(downloadHf("hf:acme/stalling-GGUF:Q4_0", { ...base(), readTimeoutMs: 300, retries: 0 }));
    expect(err.code).toBe("IO");
    expect(err.message).toMatch(/stalled: no data for 300 ms/);
  });

  it("an interrupted call leaves a .part that the next call resumes", async () => {
    const f = repos.get("acme/flaky-GGUF")!.files[0];
    f.drops = 1;
    const err = await failure(downloadHf("hf:acme/flaky-GGUF:Q4_0", { ...base(), retries: 0 }));
    expect(err.reason).toBe("network");
    const part = join(cacheDir, "acme", "flaky-GGUF", "main", "flaky-Q4_0.gguf.part");
    const have = statSync(part).size;
    expect(have).toBeGreaterThan(0);
    log = [];
    const d = await downloadHf("hf:acme/flaky-GGUF:Q4_0", base());
    expect(cdnGets().map((l) => l.range)).toEqual([`bytes=${have}-`]);
    expect(shaOfFile(d.paths[0])).toBe(sha256(flaky));
    expect(existsSync(part)).toBe(false);
  });

  it("rejects a corrupted file (sha256 mismatch) and keeps nothing in the cache", async () => {
    const err = await failure(downloadHf("hf:acme/corrupt-GGUF:Q4_0", base()));
    expect(err).toBeInstanceOf(HubError);
    expect([err.code, err.reason]).toEqual(["IO", "checksum"]);
    expect(err.message).toMatch(/sha256 [0-9a-f]{64} does not match the hub's [0-9a-f]{64}/);
    const dir = join(cacheDir, "acme", "corrupt-GGUF", "main");
    expect(readdirSync(dir)).toEqual([]);
    log = [];
    await failure(downloadHf("hf:acme/corrupt-GGUF:Q4_0", base())); // not served from the cache as complete
    expect(cdnGets().length).toBe(1);
  });

  it("gated repository: 401 without a token, success with one (the token is not sent to the CDN)", async () => {
    const err = await failure(downloadHf("hf:acme/gated-GGUF:Q4_0", base()));
    expect([err.code, err.reason, err.status, err.hubCode]).toEqual(["IO", "auth", 401, "GatedRepo"]);
    expect(err.message).toMatch(/gated.*HF_TOKEN/);
    log = [];
    const d = await downloadHf("hf:acme/gated-GGUF:Q4_0", { ...base(), token: TOKEN });
    expect(shaOfFile(d.paths[0])).toBe(sha256(gated));
    expect(log.filter((l) => l.server === "hub").every((l) => l.auth === `Bearer ${TOKEN}`)).toBe(true);
    expect(cdnGets().map((l) => l.auth)).toEqual([undefined]);
  });

  it("AbortSignal stops a download promptly with ABORTED, and the next call resumes", async () => {
    const ac = new AbortController();
    let loadedAtAbort = 0;
    const err = await failure(downloadHf("hf:acme/slow-GGUF:Q4_0", {
      ...base(), signal: ac.signal, onProgress: (p) => { if (p.loaded > 256 << 10 && !loadedAtAbort) { loadedAtAbort = p.loaded; ac.abort(); } },
    }));
    expect(err.code).toBe("ABORTED");
    expect(loadedAtAbort).toBeGreaterThan(0);
    const part = join(cacheDir, "acme", "slow-GGUF", "main", "slow-Q4_0.gguf.part");
    const have = statSync(part).size;
    // stopped at once: at most the chunk in flight was written after the abort (the file is 8 MiB)
    expect(have - loadedAtAbort).toBeLessThanOrEqual(1 << 20);
    // already aborted: no request at all
    log = [];
    expect((await failure(downloadHf("hf:acme/slow-GGUF:Q4_0", { ...base(), signal: AbortSignal.abort() }))).code).toBe("ABORTED");
    expect(log).toEqual([]);
    const f = repos.get("acme/slow-GGUF")!.files[0];
    const throttle = f.throttle;
    f.throttle = undefined;
    try {
      const d = await downloadHf("hf:acme/slow-GGUF:Q4_0", base());
      expect(cdnGets()[0].range).toBe(`bytes=${have}-`);
      expect(shaOfFile(d.paths[0])).toBe(sha256(slow));
    } finally { f.throttle = throttle; }
  });

  it("downloads every part of a split model; hfSource presents them as a split source", async () => {
    const seen: Progress[] = [];
    const d = await downloadHf("hf:LiquidAI/LFM2-1.2B-GGUF:Q8_0", { ...base(), onProgress: (p) => seen.push(p) });
    expect(d.paths.map((p) => shaOfFile(p))).toEqual(splitParts.map(sha256));
    expect(d.path).toBe(d.paths[0]);
    const total = splitParts.reduce((a, b) => a + b.length, 0);
    expect(seen.at(-1)).toMatchObject({ loaded: total, total, file: "LFM2-1.2B-Q8_0-00003-of-00003.gguf" });
    log = [];
    const src = await hfSource("hf:LiquidAI/LFM2-1.2B-GGUF:Q8_0", base());
    expect(log).toEqual([]);
    expect(isSplitSource(src)).toBe(true);
    if (!isSplitSource(src)) return;
    expect(src.parts.map((p) => p.name)).toEqual(d.paths);
    expect(Buffer.compare(await readAll(src), concatChunks(splitParts))).toBe(0);
  });

  it("hfSource + loadModel: a model by name, end to end", async () => {
    const model = await loadModel(await hfSource("hf:LiquidAI/LFM2-350M-GGUF:Q4_0", base()), { threads: 1 });
    try {
      expect(model.info.name).toBe("LFM2-350M (local test)");
      expect(model.info.tensorTypes.Q4_0).toBeGreaterThan(0);
      const logits = await model.createSession({ contextLength: 64 }).forward([1, 520, 777]);
      expect(logits.length).toBe(model.info.config.vocabSize);
    } finally { model.dispose(); }
  });
});

describe("hfSource without a file system (browsers, workers)", () => {
  function fakeCaches(): CacheStorageLike & { store: Map<string, Uint8Array> } {
    const store = new Map<string, Uint8Array>();
    const cache: CacheLike = {
      async match(url) { const b = store.get(url); return b ? new Response(b.slice()) : undefined; },
      async put(url, res) { store.set(url, new Uint8Array(await res.arrayBuffer())); },
      async delete(url) { return store.delete(url); },
    };
    return { store, async open() { return cache; } };
  }

  it("streams from the resolved URL, Range requests past 0", async () => {
    const src = await hfSource("hf:LiquidAI/LFM2-350M-GGUF:Q8_0", { endpoint: HUB, token: false, storage: "none" });
    expect(src.size).toBe(q8.length);
    expect(Buffer.compare(await readAll(src), q8)).toBe(0);
    log = [];
    expect(Buffer.compare(await readAll(src, 123_456), q8.subarray(123_456))).toBe(0);
    expect(cdnGets().map((l) => l.range)).toEqual(["bytes=123456-"]);
  });

  it("keeps whole files in the Cache API: the second load makes no request", async () => {
    const caches = fakeCaches();
    const opts = { endpoint: HUB, token: false as const, storage: "cache" as const, caches };
    const src = await hfSource("hf:LiquidAI/LFM2-1.2B-GGUF:Q4_0", opts);
    // a read that stops early is not cached
    for await (const _ of src.chunks(0)) break;
    expect(caches.store.has(`${HUB}/LiquidAI/LFM2-1.2B-GGUF/resolve/main/LFM2-1.2B-Q4_0.gguf`)).toBe(false);
    expect(Buffer.compare(await readAll(src), good)).toBe(0);
    expect(caches.store.has(`${HUB}/LiquidAI/LFM2-1.2B-GGUF/resolve/main/LFM2-1.2B-Q4_0.gguf`)).toBe(true);
    log = [];
    const again = await hfSource("hf:LiquidAI/LFM2-1.2B-GGUF:Q4_0", opts);
    expect(Buffer.compare(await readAll(again), good)).toBe(0);
    expect(Buffer.compare(await readAll(again, 1000), good.subarray(1000))).toBe(0);
    expect(log).toEqual([]);
  });

  it("a stalled stream ends in an IO error after readTimeoutMs", async () => {
    repos.get("acme/stalling-GGUF")!.files[0].stalls = 1;
    const src = await hfSource("hf:acme/stalling-GGUF:Q4_0", { endpoint: HUB, token: false, storage: "none", readTimeoutMs: 300 });
    const err = await failure(readAll(src));
    expect(err.code).toBe("IO");
    expect(err.message).toMatch(/stalled: no data for 300 ms/);
  });

  it("abort stops a stream promptly", async () => {
    const src = await hfSource("hf:acme/slow-GGUF:Q4_0", { endpoint: HUB, token: false, storage: "none" });
    const ac = new AbortController();
    let chunks = 0;
    const err = await failure((async () => { for await (const _ of src.chunks(0, ac.signal)) if (++chunks === 1) ac.abort(); })());
    expect(err.code).toBe("ABORTED");
    expect(chunks).toBe(1); // the chunk after the abort is never delivered
  });
});
