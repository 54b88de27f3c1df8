// Benchmark GGUF files: synthetic LFM2 models with seeded random weights in real shapes, made once
// and cached under .cache/bench/ (gitignored). Every engine in the benchmark reads the same file.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type BenchShape = "350M" | "1.2B" | "tiny";
export type BenchWeightType = "Q4_0" | "Q8_0" | "Q4_K" | "Q5_K" | "Q6_K" | "F16";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const BENCH_CACHE_DIR = join(REPO_ROOT, ".cache", "bench");

const SEED = 42;
/** Bump when the synthetic generator changes in a way that should invalidate cached files. */
const FORMAT_TAG = "v1";

/** Path a benchmark model is cached at (whether or not it exists yet). */
export function benchModelPath(shape: BenchShape, type: BenchWeightType): string {
  return join(BENCH_CACHE_DIR, `lfm2-${shape}-${type}-s${SEED}-${FORMAT_TAG}.gguf`);
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Path of the benchmark GGUF for `shape`/`type`, generating it (seed 42) on first use.
 * The file is written to a temporary name and renamed into place, so a crashed or concurrent
 * run never leaves a truncated file under the final name.
 */
export function benchModel(shape: BenchShape, type: BenchWeightType): Promise<string> {
  const path = benchModelPath(shape, type);
  let p = inFlight.get(path);
  if (!p) {
    p = ensureModel(path, shape, type).finally(() => inFlight.delete(path));
    inFlight.set(path, p);
  }
  return p;
}

async function ensureModel(path: string, shape: BenchShape, type: BenchWeightType): Promise<string> {
  if (existsSync(path) && (await stat(path)).size > 0) return path;
  await mkdir(dirname(path), { recursive: true });

  const { syntheticGguf } = await import("../src/models/synthetic.js");

  const t0 = performance.now();
  // (Q4_K needs the K-quant codecs of src/formats/quantize-more.ts, which quantize.ts registers.)
  const chunks = syntheticGguf({ shape, weightType: type, seed: SEED });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, "w");
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) {
        const { bytesWritten } = await fh.write(c, off, c.length - off);
        off += bytesWritten;
      }
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  const size = (await stat(path)).size;
  if (process.env.BENCH_VERBOSE !== "0") {
    console.error(`[bench/models] wrote ${path} (${(size / 1e6).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return path;
}

/** SHA-256 of a file (hex), e.g. to record in results which exact file was benchmarked. */
export async function fileSha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}
