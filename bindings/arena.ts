// An allocator over one WebAssembly.Memory: weights first (never freed while the model lives), then
// per-session state and scratch, which are freed and reused (first fit over a coalesced free list) so
// a long-lived model serving sessions of varying size stays flat. A WebAssembly memory cannot shrink,
// so freed space is reused, never returned. Memory grows in whole pages; views are re-made after
// growth (growth detaches a non-shared buffer).
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

interface Region { start: number; end: number }

const alignUp = (p: number, align: number) => Math.ceil(p / align) * align;

/** First fit in `free` (sorted, coalesced); carves the block out of the list and returns it, or -1. */
function takeFirstFit(free: Region[], bytes: number, align: number): number {
  for (let i = 0; i < free.length; i++) {
    const r = free[i], p = alignUp(r.start, align), end = p + bytes;
    if (end > r.end) continue;
    const rest: Region[] = [];
    if (p > r.start) rest.push({ start: r.start, end: p });
    if (end < r.end) rest.push({ start: end, end: r.end });
    free.splice(i, 1, ...rest);
    return p;
  }
  return -1;
}

export class Arena {
  private top = BASE;
  /** Freed regions below `top`, sorted by address, never touching each other or `top`. */
  private holes: Region[] = [];
  /** Live blocks: start → end, and the allocation count when each was made (for mark / release). */
  private blocks = new Map<number, number>();
  private born = new Map<number, number>();
  private allocations = 0;
  constructor(readonly memory: WebAssembly.Memory) {}

  /** End of the highest live block (everything below it has been handed out at some point). */
  get used(): number { return this.top; }
  /** Bytes held by live blocks (weights, scratch, session states). */
  get liveBytes(): number { let n = 0; for (const [p, e] of this.blocks) n += e - p; return n; }
  get holeCount(): number { return this.holes.length; }

  alloc(bytes: number, align = 64): number {
    // a zero-byte block still gets its own address, so every pointer names one block
    const size = Math.max(1, bytes);
    let p = takeFirstFit(this.holes, size, align);
    if (p < 0) {
      p = alignUp(this.top, align);
      const end = p + size;
      if (end > MAX_BYTES) throw tooLarge(end);
      const have = this.memory.buffer.byteLength;
      if (end > have) {
        try { this.memory.grow(Math.ceil((end - have) / PAGE)); } catch (e) {
          throw new Lfm2Error("MODEL_TOO_LARGE", `could not grow WebAssembly memory to ${fmt(end)}: ${(e as Error).message}`, { cause: e });
        }
      }
      if (p > this.top) this.insertFree(this.top, p); // the alignment gap stays usable
      this.top = end;
    }
    this.blocks.set(p, p + size);
    this.born.set(p, ++this.allocations);
    return p;
  }

  /**
   * Whether blocks of these sizes could all be allocated now without exceeding one memory's 4 GiB —
   * checked before a multi-block allocation so that a failing one does not grow the memory first.
   */
  fits(sizes: readonly number[], align = 64): boolean {
    const free = this.holes.map((r) => ({ ...r }));
    let top = this.top;
    for (const bytes of sizes) {
      const size = Math.max(1, bytes);
      if (takeFirstFit(free, size, align) >= 0) continue;
      top = alignUp(top, align) + size;
      if (top > MAX_BYTES) return false;
    }
    return true;
  }

  /** Give a block back; its space (merged with free neighbours) is reused by later allocations. */
  free(p: number): void {
    const end = this.blocks.get(p);
    if (end === undefined) throw new Lfm2Error("BAD_INPUT", `arena: ${p} is not a live block`);
    this.blocks.delete(p);
    this.born.delete(p);
    this.insertFree(p, end);
  }

  private insertFree(start: number, end: number): void {
    const f = this.holes;
    let i = 0;
    while (i < f.length && f[i].start < start) i++;
    if (i > 0 && f[i - 1].end === start) { start = f[i - 1].start; f.splice(--i, 1); }
    if (i < f.length && f[i].start === end) { end = f[i].end; f.splice(i, 1); }
    if (end !== this.top) { f.splice(i, 0, { start, end }); return; }
    this.top = start; // the top block: lower the bump pointer instead
    const last = f[f.length - 1];
    if (last && last.end === this.top) { this.top = last.start; f.pop(); }
  }

  /** Every block allocated after `mark()` (wherever it was placed, holes included) is freed by `release(mark)`. */
  mark(): number { return this.allocations; }
  release(mark: number): void {
    const later = [...this.born].filter(([, n]) => n > mark).map(([p]) => p).sort((a, b) => b - a);
    for (const p of later) this.free(p);
  }

  u8(p: number, n: number): Uint8Array { return new Uint8Array(this.memory.buffer, p, n); }
  f32(p: number, n: number): Float32Array { return new Float32Array(this.memory.buffer, p, n); }
}
