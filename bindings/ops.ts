// Typed calls into the kernels. Activations consumed by matmuls are prepared once per format
// (quantized to int8 blocks, or rounded to fp16/bf16) and shared by every matmul reading them.
import type { Arena } from "./arena.js";
import { actBytes, kernelsFor, type ActKind } from "./kernels.js";
import type { KernelExports } from "./wasm.js";
import type { Matrix } from "../src/model/weights.js";

/** Below this many multiply-adds a matmul runs on the calling thread: the hand-off would cost more. */
const PARALLEL_MIN_MACS = 1 << 19;

/** A row-parallel executor for matmuls (the worker pool); absent → run on this thread. */
export interface MatmulExecutor {
  matmul(fn: string, w: number, x: number, y: number, n: number, nTok: number, yStride: number, rows: number): void;
}

export class Activation {
  constructor(readonly ptr: number, readonly n: number, readonly nTok: number) {}
}

export class Ops {
  private actBufs = new Map<ActKind, number>();
  /** Which activation currently owns each format's buffer. */
  private owner = new Map<ActKind, Activation>();
  executor: MatmulExecutor | null = null;

  constructor(readonly k: KernelExports, readonly arena: Arena, private maxN: number, private maxTok: number) {
    for (const kind of ["f16", "bf16", "q8_0", "q8_K"] as ActKind[]) this.actBufs.set(kind, arena.alloc(actBytes(kind, maxN, maxTok)));
  }

  /** Declare x (nTok rows of n floats) as a fresh matmul input. */
  act(ptr: number, n: number, nTok: number): Activation { return new Activation(ptr, n, nTok); }

  private prepare(a: Activation, kind: ActKind): number {
    if (kind === "f32") return a.ptr;
    const buf = this.actBufs.get(kind)!;
    if (this.owner.get(kind) === a) return buf;
    this.owner.set(kind, a);
    const k = this.k;
    switch (kind) {
      case "q8_0": k.quantizeQ8_0(a.ptr, a.n, a.nTok, buf); break;
      case "q8_K": k.quantizeQ8_K(a.ptr, a.n, a.nTok, buf); break;
      case "f16": case "bf16":
        this.arena.f32(buf, a.n * a.nTok).set(this.arena.f32(a.ptr, a.n * a.nTok));
        (kind === "f16" ? k.roundF16 : k.roundBf16)(buf, a.n * a.nTok);
        break;
    }
    return buf;
  }

  /** y[t][r] = Σ_i W[r][i]·x[t][i] for all rows of W. */
  matmul(m: Matrix, a: Activation, y: number): void {
    const kern = kernelsFor(m.type, "matrix");
    const x = this.prepare(a, kern.act);
    const fn = m.x4 ? kern.x4!.matmul : kern.matmul;
    if (this.executor && m.nOut * a.n * a.nTok >= PARALLEL_MIN_MACS) this.executor.matmul(fn, m.ptr, x, y, a.n, a.nTok, m.nOut, m.nOut);
    else this.k[fn as `matmul${string}`](m.ptr, x, y, a.n, a.nTok, m.nOut, 0, m.nOut);
  }

  /** Row `row` of a matrix, dequantized to f32 at dst (embedding lookup). */
  rowToF32(m: Matrix, row: number, dst: number): void {
    const kern = kernelsFor(m.type, "embedding");
    if (m.x4) { this.k[kern.x4!.dequantRow as `dequantRow${string}`](m.ptr, row, m.nIn, dst); return; }
    const src = m.ptr + row * m.rowBytes;
    if (kern.dequantRow === null) this.arena.u8(dst, m.rowBytes).set(this.arena.u8(src, m.rowBytes));
    else this.k[kern.dequantRow as `dequantRow${string}`](src, dst, m.nIn);
  }

  get maxTokens() { return this.maxTok; }
  get maxWidth() { return this.maxN; }
}
