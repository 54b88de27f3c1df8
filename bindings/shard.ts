// A shard: one WebAssembly memory with its arena, its own instance of the kernels and (optionally) a
// worker pool on that memory. Models whose weights exceed one wasm32 memory (4 GiB) are placed across
// several shards; the forward pass copies the activations (a few KB per token) between them.
import { Arena, createMemory } from "./arena.js";
import { Ops } from "./ops.js";
import { WorkerPool } from "./threads.js";
import { instantiateKernels, type KernelExports } from "./wasm.js";

export class Shard {
  kernels!: KernelExports;
  ops!: Ops;
  pool: WorkerPool | null = null;

  constructor(readonly index: number, readonly arena: Arena) {}

  /** A shard with a fresh memory sized for `weightBytes` (sessions grow it as they allocate). */
  static create(index: number, weightBytes: number, shared: boolean): Shard {
    return new Shard(index, new Arena(createMemory(weightBytes, shared)));
  }

  get memory(): WebAssembly.Memory { return this.arena.memory; }

  /** Instantiate the kernels on this shard's memory (after the weights have streamed in). */
  async instantiate(module: WebAssembly.Module): Promise<KernelExports> {
    this.kernels = await instantiateKernels(module, this.arena.memory);
    return this.kernels;
  }

  /** Typed calls and activation buffers for chunks of up to `maxTok` tokens of width ≤ `maxWidth`. */
  initOps(maxWidth: number, maxTok: number): Ops {
    this.ops = new Ops(this.kernels, this.arena, maxWidth, maxTok);
    return this.ops;
  }

  /** Start `threads − 1` workers on this shard's (shared) memory; matmuls are then split across them. */
  async startThreads(threads: number, module: WebAssembly.Module): Promise<void> {
    this.pool = await WorkerPool.create(threads, module, this.kernels, this.arena);
    this.ops.executor = this.pool;
  }

  /** Stop the workers (the memory stays usable single-threaded). */
  stopThreads(): void {
    this.pool?.terminate();
    this.pool = null;
    if (this.ops) this.ops.executor = null;
  }

  get bytes(): number { return this.arena.memory.buffer.byteLength; }
}

/** Copy n floats from one shard's memory to another's (activations crossing a shard boundary). */
export function copyF32(from: Shard, src: number, to: Shard, dst: number, n: number): void {
  to.arena.f32(dst, n).set(from.arena.f32(src, n));
}
