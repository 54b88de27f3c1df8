// The arena's free list: freed blocks are reused and merged, and mark/release frees exactly the blocks made
// after the mark, also those placed in a reused hole below it.
import { describe, expect, it } from "vitest";
import { Arena, createMemory } from "../bindings/arena.js";

describe("arena", () => {
  it("reuses and merges freed blocks; the top block lowers the bump pointer", () => {
    const a = new Arena(createMemory(1 << 20, false));
    const start = a.used;
    const x = a.alloc(1000), y = a.alloc(1000), z = a.alloc(1000);
    a.free(x);
    expect(a.alloc(500)).toBe(x); // first fit in the hole
    a.free(x);
    a.free(y); // merged with x's hole
    expect(a.holeCount).toBe(1);
    a.free(z); // the top block: holes and top collapse back to the start
    expect(a.holeCount).toBe(0);
    expect(a.used).toBe(start);
    expect(a.liveBytes).toBe(0);
  });

  it("release(mark) frees every block made after the mark, also one placed in a hole below it", () => {
    const a = new Arena(createMemory(1 << 20, false));
    const keep = a.alloc(256), gone = a.alloc(256), last = a.alloc(256);
    a.free(gone);
    const before = { live: a.liveBytes, used: a.used, holes: a.holeCount };
    const m = a.mark();
    const inHole = a.alloc(128), onTop = a.alloc(4096);
    expect(inHole).toBe(gone);
    expect(onTop).toBeGreaterThan(last);
    a.release(m);
    expect({ live: a.liveBytes, used: a.used, holes: a.holeCount }).toEqual(before);
    expect(a.alloc(256)).toBe(gone); // the hole is whole again
    a.free(keep);
  });
});
