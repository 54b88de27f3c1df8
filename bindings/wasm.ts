// Instantiates the kernel module: picks the relaxed-SIMD build where the runtime supports it and the
// shared-memory build when threads are possible, and exposes the exports with their real signatures.
import { Lfm2Error } from "../src/errors.js";

type P = number; // pointer into linear memory
export interface KernelExports {
  quantizeQ8_0(x: P, n: number, nTok: number, out: P): void;
  quantizeQ8_K(x: P, n: number, nTok: number, out: P): void;
  roundF16(x: P, n: number): void;
  roundBf16(x: P, n: number): void;
  dequantRowF16(src: P, dst: P, n: number): void;
  dequantRowBf16(src: P, dst: P, n: number): void;
  dequantRowQ8_0(src: P, dst: P, n: number): void;
  dequantRowQ4_0(src: P, dst: P, n: number): void;
  [name: `matmul${string}`]: (w: P, x: P, y: P, n: number, nTok: number, yStride: number, r0: number, r1: number) => void;
  /** Row dequantizers: (src, dst, n) for file layouts, (w, row, n, dst) for the x4 layouts. */
  [name: `dequantRow${string}`]: ((src: P, dst: P, n: number) => void) & ((w: P, row: number, n: number, dst: P) => void);
  [name: `repack${string}`]: (dst: P, src: P, nRows: number, n: number, scratch: P) => void;
  rmsNorm(x: P, w: P, y: P, n: number, nRows: number, eps: number): void;
  ropeNeox(x: P, cs: P, nHeads: number, dh: number, nTok: number): void;
  kvStore(src: P, cache: P, width: number, pos0: number, nTok: number): void;
  attention(q: P, k: P, v: P, out: P, nHeads: number, nKv: number, dh: number, nTok: number, pos0: number, kvLen: number, causal: number, scale: number, scratch: P): void;
  attentionTiles(q: P, k: P, v: P, out: P, nHeads: number, nKv: number, dh: number, nTok: number, pos0: number, kvLen: number,
    causal: number, scale: number, tileTok: number, u0: number, u1: number, scratch: P): void;
  attentionTileScratch(group: number, dh: number, tileTok: number, kvLen: number): number;
  shortConv(bcx: P, wT: P, state: P, y: P, d: number, L: number, nTok: number): void;
  shortConvCentred(bcx: P, wT: P, y: P, d: number, L: number, nTok: number): void;
  swiglu(g: P, u: P, out: P, n: number): void;
  addInPlace(a: P, b: P, n: number): void;
  layerNorm(x: P, w: P, b: P, y: P, n: number, nRows: number, eps: number): void;
  addBias(x: P, b: P, n: number, nRows: number): void;
  gelu(x: P, n: number): void;
  geluQuick(x: P, n: number): void;
  maxSimF32(q: P, nq: number, dim: number, vecs: P, offsets: P, d0: number, d1: number, best: P, out: P): void;
  maxSimI8(q: P, qScales: P, nq: number, dim: number, vecs: P, scales: P, offsets: P, d0: number, d1: number,
    best: P, out: P): void;
}

export interface WasmOptions {
  /** Where the .wasm files live (default: the package's build/ folder next to this module). */
  wasmBaseUrl?: string | URL;
  /**
   * The URL of each variant's .wasm, e.g. from esbuild's `file` loader (`import u from "lfm2-wasm/build/lfm2-simd.wasm"`).
   * Takes precedence over wasmBaseUrl for the variants it names.
   */
  wasmUrls?: Partial<Record<WasmVariant, string | URL>>;
  /** Pre-compiled module bytes or modules, keyed by variant name, for bundlers and workerd. */
  wasmModules?: Partial<Record<WasmVariant, WebAssembly.Module | ArrayBuffer | Uint8Array>>;
  /** Force plain SIMD even where relaxed SIMD is available. */
  disableRelaxedSimd?: boolean;
}

export type WasmVariant = "lfm2-simd" | "lfm2-relaxed" | "lfm2-simd-mt" | "lfm2-relaxed-mt";

const v128Const = (byte: number) => [253, 12, ...new Array(16).fill(byte)];
// (func (export "f") (result i32) (i16x8.extract_lane_s 0 (i16x8.relaxed_dot_i8x16_i7x16_s
//    (v128.const i8x16 -1 …) (v128.const i8x16 1 …))))  → must return −2
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0,
  10, 46, 1, 44, 0, ...v128Const(255), ...v128Const(1), 253, 146, 2, 253, 24, 0, 11]);
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0,
  ...v128Const(0), 11]);

export function hasSimd(): boolean { return WebAssembly.validate(SIMD_PROBE); }
/**
 * Relaxed SIMD that validates and computes right (the kernels use the i16x8 relaxed dot only: Node 20's
 * baseline compiler, behind --experimental-wasm-relaxed-simd, returns doubled i32x4.relaxed_dot_…_add_s).
 */
export function hasRelaxedSimd(): boolean {
  try {
    if (!WebAssembly.validate(RELAXED_PROBE)) return false;
    const f = new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE)).exports.f as () => number;
    return f() === -2;
  } catch { return false; }
}

/** Threads need SharedArrayBuffer-backed memory and a context that may share it. */
export function canShareMemory(): boolean {
  try {
    if (typeof SharedArrayBuffer === "undefined") return false;
    if ((globalThis as any).crossOriginIsolated === false) return false;
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch { return false; }
}

const isNodeLike = typeof process !== "undefined" && !!process.versions?.node;

// Written out literally so bundlers see them: Vite copies `new URL("<literal>", import.meta.url)` assets into
// its output and rewrites the URL. Unbundled, they resolve beside the package (dist/ → ../build/).
const PACKAGED_WASM: Record<WasmVariant, () => URL> = {
  "lfm2-simd": () => new URL("../build/lfm2-simd.wasm", import.meta.url),
  "lfm2-relaxed": () => new URL("../build/lfm2-relaxed.wasm", import.meta.url),
  "lfm2-simd-mt": () => new URL("../build/lfm2-simd-mt.wasm", import.meta.url),
  "lfm2-relaxed-mt": () => new URL("../build/lfm2-relaxed-mt.wasm", import.meta.url),
};

/** Where a variant's .wasm is read from: wasmUrls, then wasmBaseUrl, then beside the package. */
export function wasmUrl(variant: WasmVariant, opts: WasmOptions = {}): URL {
  const base = typeof location !== "undefined" ? location.href : undefined; // relative URLs resolve against the page
  const given = opts.wasmUrls?.[variant];
  if (given !== undefined) return new URL(String(given), base);
  if (opts.wasmBaseUrl === undefined) return PACKAGED_WASM[variant]();
  const dir = new URL(String(opts.wasmBaseUrl), base);
  return new URL(`${variant}.wasm`, dir.href.endsWith("/") ? dir : new URL(dir.href + "/"));
}

const NOT_FOUND_HINT = "bundled apps: serve the package's build/*.wasm and pass wasmBaseUrl, wasmUrls or wasmModules " +
  "to loadModel (README: Bundlers)";

async function readWasm(url: URL, variant: WasmVariant): Promise<Uint8Array> {
  const fail = (why: string, cause?: unknown) =>
    new Lfm2Error("IO", `cannot load the WebAssembly kernels ${variant}.wasm from ${url.href}: ${why}; ${NOT_FOUND_HINT}`, { cause });
  if (url.protocol === "file:" && isNodeLike) {
    const { readFile } = await import("node:fs/promises");
    try { return new Uint8Array(await readFile(url)); } catch (e) { throw fail((e as Error).message, e); }
  }
  let res: Response;
  try { res = await fetch(url); } catch (e) { throw fail((e as Error).message, e); }
  if (!res.ok) throw fail(`HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  // an SPA fallback or a dev server answers 200 with HTML for a missing file
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw fail(`the response is not WebAssembly (${res.headers.get("content-type") ?? "no content-type"})`);
  }
  return bytes;
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

export async function compileVariant(variant: WasmVariant, opts: WasmOptions = {}): Promise<WebAssembly.Module> {
  const given = opts.wasmModules?.[variant];
  if (given instanceof WebAssembly.Module) return given;
  if (given) return WebAssembly.compile((given instanceof Uint8Array ? given : new Uint8Array(given)) as Uint8Array<ArrayBuffer>);
  const url = wasmUrl(variant, opts);
  const key = url.href;
  let p = compiled.get(key);
  if (!p) {
    p = readWasm(url, variant).then((b) => WebAssembly.compile(b as Uint8Array<ArrayBuffer>));
    p.catch(() => compiled.delete(key));
    compiled.set(key, p);
  }
  return p;
}

export function chooseVariant(threads: boolean, opts: WasmOptions = {}): WasmVariant {
  if (!hasSimd()) throw new Lfm2Error("IO", "this JavaScript runtime lacks WebAssembly SIMD, which lfm2-wasm requires");
  const relaxed = !opts.disableRelaxedSimd && hasRelaxedSimd();
  return `lfm2-${relaxed ? "relaxed" : "simd"}${threads ? "-mt" : ""}` as WasmVariant;
}

export async function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<KernelExports> {
  const inst = await WebAssembly.instantiate(module, { env: { memory } });
  return inst.exports as unknown as KernelExports;
}
