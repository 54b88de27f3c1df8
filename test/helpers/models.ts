// Synthetic test models written to a temp folder (cached per option set for the test run).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { syntheticGguf, type SyntheticOptions } from "../../src/models/synthetic.js";
import { concatChunks } from "../../src/formats/gguf-writer.js";

const dir = mkdtempSync(join(tmpdir(), "lfm2-test-"));
const cache = new Map<string, string>();

export function tinyModelPath(opts: SyntheticOptions = {}): string {
  const key = JSON.stringify(opts);
  let p = cache.get(key);
  if (!p) {
    p = join(dir, `m${cache.size}.gguf`);
    writeFileSync(p, concatChunks(syntheticGguf(opts)));
    cache.set(key, p);
  }
  return p;
}

export function tinyModelBytes(opts: SyntheticOptions = {}): Uint8Array {
  return concatChunks(syntheticGguf(opts));
}

export const tempDir = dir;
