// Worker pool over one shared WebAssembly.Memory. Every worker instantiates the same kernel module on
// that memory and runs any export split into parts: one call per thread with the same leading
// arguments and that thread's own trailing ones (a row range; for attention also its scratch).
// The calling thread takes part 0. Control words live in shared memory: workers spin briefly on a
// generation counter, then sleep in Atomics.wait, so a hand-off costs microseconds while tokens flow.
import type { Arena } from "./arena.js";
import type { ParallelExecutor } from "./ops.js";
import type { KernelExports } from "./wasm.js";

// control block: Int32 slots GEN, DONE, FN, NARGS; f64 shared arguments from byte ARGS_BYTE (ints and
// f32 both survive f64); then PART_ARGS Int32 per-thread arguments per thread
const GEN = 0, DONE = 1, FN = 2, NARGS = 3, ARGS_BYTE = 32, MAX_ARGS = 16;
const PARTS = (ARGS_BYTE + 8 * MAX_ARGS) / 4, PART_ARGS = 3, MAX_THREADS = 64, SLOTS = PARTS + PART_ARGS * MAX_THREADS;
const STOP = -1;
// Spin iterations before sleeping. Short: when cores are oversubscribed a spinning waiter steals the
// time slice of the thread it waits for, so long spins turn a 2-thread run slower than 1 thread.
const SPIN = 20000;

// The worker body, kept as source text so one file serves Node (eval worker), Deno and browsers
// (Blob URL) without bundler configuration.
const WORKER_SOURCE = `
const start = async (data, post) => {
  const inst = await WebAssembly.instantiate(data.module, { env: { memory: data.memory } });
  const fns = data.fns.map((n) => inst.exports[n]);
  const c = new Int32Array(data.memory.buffer, data.ctrl, ${SLOTS});
  const a = new Float64Array(data.memory.buffer, data.ctrl + ${ARGS_BYTE}, ${MAX_ARGS});
  const id = data.id, mine = ${PARTS} + ${PART_ARGS} * id;
  let seen = Atomics.load(c, ${GEN}); // before "ready": the first job may follow at once
  post("ready");
  for (;;) {
    // spin ~tens of µs (the next kernel of a token follows at once), then sleep until notified
    for (let spins = 0; Atomics.load(c, ${GEN}) === seen; ) {
      if (++spins > ${SPIN}) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    const fn = c[${FN}];
    if (fn === ${STOP}) break;
    if (c[mine + 1] > c[mine]) {
      const n = c[${NARGS}], args = new Array(n + ${PART_ARGS});
      for (let i = 0; i < n; i++) args[i] = a[i];
      for (let i = 0; i < ${PART_ARGS}; i++) args[n + i] = c[mine + i];
      fns[fn].apply(null, args);
    }
    Atomics.add(c, ${DONE}, 1);
    Atomics.notify(c, ${DONE});
  }
};
if (typeof self !== "undefined" && typeof self.postMessage === "function" && typeof require === "undefined") {
  self.onmessage = (e) => start(e.data, (m) => self.postMessage(m));
} else {
  const { parentPort } = require("node:worker_threads");
  parentPort.once("message", (d) => start(d, (m) => parentPort.postMessage(m)));
}
`;

interface AnyWorker { postMessage(m: unknown): void; terminate(): unknown }

const isNodeLike = typeof process !== "undefined" && !!process.versions?.node && typeof (globalThis as any).Deno === "undefined";

// Deno too: its node:worker_threads workers can be unref'd; its Web Workers always keep the process alive
const hasNodeWorkers = isNodeLike || typeof (globalThis as any).Deno?.version?.deno === "string";

async function spawn(): Promise<{ worker: AnyWorker; onMessage: (f: (m: unknown) => void) => void }> {
  if (hasNodeWorkers) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    // once: a lasting "message" listener refs the worker again and keeps the process alive
    return { worker: w, onMessage: (f) => w.once("message", f) };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  // Deno only runs module workers ("Classic workers are not supported"); the source works as either.
  const w = new Worker(url, typeof (globalThis as any).Deno !== "undefined" ? { type: "module" } : undefined);
  return { worker: w, onMessage: (f) => w.addEventListener("message", (e: MessageEvent) => f(e.data)) };
}

/** Runs kernel exports split across threads; any function export can be addressed (by index). */
export class WorkerPool implements ParallelExecutor {
  private ctrl: Int32Array;
  private args: Float64Array;
  private fnIndex = new Map<string, number>();
  private canBlock = isNodeLike || typeof (globalThis as any).WorkerGlobalScope !== "undefined";

  private constructor(private kernels: KernelExports, arena: Arena, private ctrlPtr: number, private workers: AnyWorker[], fns: string[]) {
    this.ctrl = new Int32Array(arena.memory.buffer, ctrlPtr, SLOTS);
    this.args = new Float64Array(arena.memory.buffer, ctrlPtr + ARGS_BYTE, MAX_ARGS);
    fns.forEach((f, i) => this.fnIndex.set(f, i));
  }

  get size(): number { return this.workers.length + 1; }

  static async create(threads: number, module: WebAssembly.Module, kernels: KernelExports, arena: Arena): Promise<WorkerPool> {
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const ctrl = arena.alloc(SLOTS * 4);
    new Int32Array(arena.memory.buffer, ctrl, SLOTS).fill(0);
    const fns = Object.keys(kernels).filter((k) => typeof (kernels as any)[k] === "function");
    const workers: AnyWorker[] = [];
    try {
      await Promise.all(Array.from({ length: threads - 1 }, async (_, i) => {
        const { worker, onMessage } = await spawn();
        workers.push(worker);
        await new Promise<void>((resolve, reject) => {
          onMessage((m) => (m === "ready" ? resolve() : reject(new Error(String(m)))));
          (worker as any).on?.("error", reject);
          (worker as any).addEventListener?.("error", (e: ErrorEvent) => reject(new Error(e.message)));
          worker.postMessage({ module, memory: arena.memory, ctrl, fns, id: i + 1 });
        });
      }));
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    return new WorkerPool(kernels, arena, ctrl, workers, fns);
  }

  /**
   * fn(...shared, ...parts[t]) on thread t for every t < size (part 0 on this thread), returning when
   * all are done. A part whose second value is not above its first (an empty range) is skipped.
   */
  run(fn: string, shared: number[], parts: number[][]): void {
    const c = this.ctrl, T = this.size;
    for (let t = 0; t < T; t++) for (let i = 0; i < PART_ARGS; i++) c[PARTS + PART_ARGS * t + i] = parts[t]?.[i] ?? 0;
    c[FN] = this.fnIndex.get(fn)!;
    c[NARGS] = shared.length;
    this.args.set(shared);
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    if (c[PARTS + 1] > c[PARTS]) (this.kernels as any)[fn](...shared, ...parts[0]);
    const want = T - 1;
    let spins = 0;
    for (let d = Atomics.load(c, DONE); d < want; d = Atomics.load(c, DONE)) {
      if (this.canBlock && ++spins > SPIN) Atomics.wait(c, DONE, d);
    }
  }

  matmul(fn: string, w: number, x: number, y: number, n: number, nTok: number, yStride: number, rows: number): void {
    const T = this.size, parts: number[][] = [];
    // ranges in multiples of 4 rows (x4 layouts interleave rows by four)
    const groups = Math.ceil(rows / 4);
    for (let t = 0; t < T; t++) {
      parts.push([Math.min(rows, Math.floor((groups * t) / T) * 4), Math.min(rows, Math.floor((groups * (t + 1)) / T) * 4)]);
    }
    this.run(fn, [w, x, y, n, nTok, yStride], parts);
  }

  terminate(): void {
    Atomics.store(this.ctrl, FN, STOP);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
