// Worker pool over one shared WebAssembly.Memory. Every worker instantiates the same kernel module on
// that memory; a matmul is split into row ranges, one per thread (the calling thread takes the first).
// Control words live in shared memory: workers spin briefly on a generation counter, then sleep in
// Atomics.wait, so the per-matmul hand-off costs microseconds while tokens are flowing.
import type { Arena } from "./arena.js";
import type { MatmulExecutor } from "./ops.js";
import type { KernelExports } from "./wasm.js";

// control block (Int32 slots)
const GEN = 0, DONE = 1, FN = 2, ARGS = 3, RANGES = 16, SLOTS = 64;
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
  const id = data.id;
  let seen = Atomics.load(c, ${GEN}); // before "ready": the first job may follow at once
  post("ready");
  for (;;) {
    // spin ~tens of µs (the next matmul of a token follows at once), then sleep until notified
    for (let spins = 0; Atomics.load(c, ${GEN}) === seen; ) {
      if (++spins > ${SPIN}) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    const fn = c[${FN}];
    if (fn === ${STOP}) break;
    const r0 = c[${RANGES} + 2 * id], r1 = c[${RANGES} + 2 * id + 1];
    if (r1 > r0) fns[fn](c[${ARGS}], c[${ARGS} + 1], c[${ARGS} + 2], c[${ARGS} + 3], c[${ARGS} + 4], c[${ARGS} + 5], r0, r1);
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

async function spawn(): Promise<{ worker: AnyWorker; onMessage: (f: (m: unknown) => void) => void }> {
  if (isNodeLike) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    return { worker: w, onMessage: (f) => w.on("message", f) };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  // Deno only runs module workers ("Classic workers are not supported"); the source works as either.
  const w = new Worker(url, typeof (globalThis as any).Deno !== "undefined" ? { type: "module" } : undefined);
  return { worker: w, onMessage: (f) => w.addEventListener("message", (e: MessageEvent) => f(e.data)) };
}

/** Functions a worker may run: every matmul export, addressed by index. */
export class WorkerPool implements MatmulExecutor {
  private ctrl: Int32Array;
  private fnIndex = new Map<string, number>();
  private canBlock = isNodeLike || typeof (globalThis as any).WorkerGlobalScope !== "undefined";

  private constructor(private kernels: KernelExports, arena: Arena, private ctrlPtr: number, private workers: AnyWorker[], fns: string[]) {
    this.ctrl = new Int32Array(arena.memory.buffer, ctrlPtr, SLOTS);
    fns.forEach((f, i) => this.fnIndex.set(f, i));
  }

  get size(): number { return this.workers.length + 1; }

  static async create(threads: number, module: WebAssembly.Module, kernels: KernelExports, arena: Arena): Promise<WorkerPool> {
    const ctrl = arena.alloc(SLOTS * 4);
    new Int32Array(arena.memory.buffer, ctrl, SLOTS).fill(0);
    const fns = Object.keys(kernels).filter((k) => k.startsWith("matmul"));
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

  matmul(fn: string, w: number, x: number, y: number, n: number, nTok: number, yStride: number, rows: number): void {
    const c = this.ctrl, T = this.size;
    // ranges in multiples of 4 rows (x4 layouts interleave rows by four)
    const groups = Math.ceil(rows / 4);
    for (let t = 0; t < T; t++) {
      c[RANGES + 2 * t] = Math.min(rows, Math.floor((groups * t) / T) * 4);
      c[RANGES + 2 * t + 1] = Math.min(rows, Math.floor((groups * (t + 1)) / T) * 4);
    }
    c[FN] = this.fnIndex.get(fn)!;
    c[ARGS] = w; c[ARGS + 1] = x; c[ARGS + 2] = y; c[ARGS + 3] = n; c[ARGS + 4] = nTok; c[ARGS + 5] = yStride;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    this.kernels[fn as `matmul${string}`](w, x, y, n, nTok, yStride, c[RANGES], c[RANGES + 1]);
    const want = T - 1;
    let spins = 0;
    for (let d = Atomics.load(c, DONE); d < want; d = Atomics.load(c, DONE)) {
      if (this.canBlock && ++spins > SPIN) Atomics.wait(c, DONE, d);
    }
  }

  terminate(): void {
    Atomics.store(this.ctrl, FN, STOP);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
