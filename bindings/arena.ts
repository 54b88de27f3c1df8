// A bump allocator over one WebAssembly.Memory: weights first (never freed while the model lives),
// then per-session state and scratch. Memory grows in whole pages; views are re-made after growth
// (growth detaches a non-shared buffer).
import { Lfm2Error } from "../src/errors.js";

export const PAGE = 65536;
export const MAX_PAGES = 65536;          // 4 GiB: wasm32's ceiling
export const MAX_BYTES = MAX_PAGES * PAGE;
const BASE = 1 << 16;                    // the kernels' own static data stays below this
const MIN_PAGES = 32;                    // the kernel module imports a memory of at least asconfig's initialMemory

export function createMemory(bytes: number, shared: boolean): WebAssembly.Memory {
  const pages = Math.max(MIN_PAGES, Math.ceil((bytes + BASE) / PAGE));
  if (pages > MAX_PAGES) throw tooLarge(bytes);
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared } as WebAssembly.MemoryDescriptor);
  } catch (e) {
    throw new Lfm2Error("MODEL_TOO_LARGE", `could not reserve ${fmt(bytes)} of WebAssembly memory: ${(e as Error).message}`, { cause: e });
  }
}

export function tooLarge(bytes: number): Lfm2Error {
  return new Lfm2Error("MODEL_TOO_LARGE",
    `needs ${fmt(bytes)} of WebAssembly memory but one wasm32 memory holds at most ${fmt(MAX_BYTES)}; ` +
    `use a smaller quantization or context length`);
}

export function fmt(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

export class Arena {
  private top = BASE;
  constructor(readonly memory: WebAssembly.Memory) {}

  get used(): number { return this.top; }

  alloc(bytes: number, align = 64): number {
    const p = Math.ceil(this.top / align) * align;
    const end = p + bytes;
    if (end > MAX_BYTES) throw tooLarge(end);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try { this.memory.grow(Math.ceil((end - have) / PAGE)); } catch (e) {
        throw new Lfm2Error("MODEL_TOO_LARGE", `could not grow WebAssembly memory to ${fmt(end)}: ${(e as Error).message}`, { cause: e });
      }
    }
    this.top = end;
    return p;
  }

  /** Everything allocated after `mark()` is released by `release(mark)`. */
  mark(): number { return this.top; }
  release(mark: number): void { this.top = mark; }

  u8(p: number, n: number): Uint8Array { return new Uint8Array(this.memory.buffer, p, n); }
  f32(p: number, n: number): Float32Array { return new Float32Array(this.memory.buffer, p, n); }
}
