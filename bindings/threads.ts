// Worker pool over one shared WebAssembly.Memory. Every worker instantiates the same kernel module on
// that memory and runs any export split into parts: one call per thread with the same leading
// arguments and that thread's own trailing ones (a row range; for attention also its scratch).
// The calling thread takes part 0. Control words live in shared memory: workers spin briefly on a
// generation counter, then sleep in Atomics.wait, so a hand-off costs microseconds while tokens flow.
import { Lfm2Error } from "../src/errors.js";
import type { Arena } from "./arena.js";
import { rowRanges, type ParallelCall, type ParallelExecutor } from "./ops.js";
import type { KernelExports } from "./wasm.js";

// control block (Int32 slots): GEN, DONE, NCALLS, a pad, a CLAIM word per thread, then MAX_CALLS call
// records. A record is FN, NARGS, NPART, a pad, MAX_ARGS f64 shared arguments (ints and f32 both survive
// f64), then per thread an ACTIVE flag and PART_ARGS Int32 arguments of its own. One hand-off runs every
// call of a batch in order, so matmuls reading the same activation (q/k/v, FFN gate/up) and element-wise
// work on each thread's own rows cost one wake-up and one join instead of one per matrix.
// Claims: a thread's share of a batch is run by whoever takes its CLAIM word first (0 → 1 the worker,
// 0 → 2 the caller once its own share is done), so a worker that is descheduled or still waking never
// holds up the caller: the caller runs that share itself. Between batches every claim is taken.
const GEN = 0, DONE = 1, NCALLS = 2, CLAIM = 4, MAX_THREADS = 64, CALLS = CLAIM + MAX_THREADS;
const MAX_CALLS = 4, MAX_ARGS = 16, PART_ARGS = 4;
const ARGS_OFF = 4, PART_SLOTS = 1 + PART_ARGS, PARTS_OFF = ARGS_OFF + 2 * MAX_ARGS;
const CALL_INTS = PARTS_OFF + PART_SLOTS * MAX_THREADS, SLOTS = CALLS + MAX_CALLS * CALL_INTS;
const BY_WORKER = 1, BY_CALLER = 2;
const STOP = -1;
// Spin iterations before sleeping. Short: when cores are oversubscribed a spinning waiter steals the
// time slice of the thread it waits for, so long spins turn a 2-thread run slower than 1 thread.
const SPIN = 20000;
// Spin iterations the caller, its own share done, waits for a worker to take its claim before running
// that share itself (the worker is asleep, descheduled or gone).
const STEAL_AFTER = 4000;

// The worker body, kept as source text so one file serves Node (eval worker), Deno and browsers
// (Blob URL) without bundler configuration.
const WORKER_SOURCE = `
const start = async (data, post) => {
  const inst = await WebAssembly.instantiate(data.module, { env: { memory: data.memory } });
  const fns = data.fns.map((n) => inst.exports[n]);
  const c = new Int32Array(data.memory.buffer, data.ctrl, ${SLOTS});
  const a = new Float64Array(data.memory.buffer, data.ctrl, ${SLOTS / 2});
  const id = data.id;
  let seen = Atomics.load(c, ${GEN}); // before "ready": the first job may follow at once
  post("ready");
  for (;;) {
    // spin ~tens of µs (the next kernel of a token follows at once), then sleep until notified
    for (let spins = 0; Atomics.load(c, ${GEN}) === seen; ) {
      if (++spins > ${SPIN}) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    if (Atomics.load(c, ${NCALLS}) === ${STOP}) break;
    // the arguments are read after the claim: a taken claim means they are this batch's and stay put
    if (Atomics.compareExchange(c, ${CLAIM} + id, 0, ${BY_WORKER}) !== 0) continue;
    const calls = c[${NCALLS}];
    for (let k = 0; k < calls; k++) {
      const base = ${CALLS} + k * ${CALL_INTS}, mine = base + ${PARTS_OFF} + ${PART_SLOTS} * id;
      if (c[mine] === 0) continue;
      const n = c[base + 1], np = c[base + 2], args = new Array(n + np), a0 = (base + ${ARGS_OFF}) >> 1;
      for (let i = 0; i < n; i++) args[i] = a[a0 + i];
      for (let i = 0; i < np; i++) args[n + i] = c[mine + 1 + i];
      fns[c[base]].apply(null, args);
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
    this.args = new Float64Array(arena.memory.buffer, ctrlPtr, SLOTS / 2);
    fns.forEach((f, i) => this.fnIndex.set(f, i));
  }

  get size(): number { return this.workers.length + 1; }

  static async create(threads: number, module: WebAssembly.Module, kernels: KernelExports, arena: Arena): Promise<WorkerPool> {
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const ctrl = arena.alloc(SLOTS * 4);
    new Int32Array(arena.memory.buffer, ctrl, SLOTS).fill(0).fill(BY_CALLER, CLAIM, CLAIM + MAX_THREADS); // no batch yet
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
    this.runBatch([{ fn, shared, parts: parts.map((p) => (p && p[1] > p[0] ? p : null)) }]);
  }

  /**
   * One hand-off for several calls: thread t runs, in order, fn(...shared, ...parts[t]) of every call
   * whose parts[t] is given (null: skipped), then all threads join. A later call may read what the same
   * thread wrote in an earlier one (its own rows); what other threads wrote is visible only after return.
   */
  runBatch(calls: readonly ParallelCall[]): void {
    if (calls.length > MAX_CALLS) throw new Lfm2Error("BAD_INPUT", `a batch holds at most ${MAX_CALLS} calls, got ${calls.length}`);
    const c = this.ctrl, T = this.size;
    calls.forEach((call, k) => {
      const base = CALLS + k * CALL_INTS;
      if (!this.fnIndex.has(call.fn)) throw new Lfm2Error("BAD_INPUT", `no kernel export named ${call.fn}`);
      if (call.shared.length > MAX_ARGS) throw new Lfm2Error("BAD_INPUT", `${call.fn}: at most ${MAX_ARGS} shared arguments`);
      let np = 0;
      for (let t = 0; t < T; t++) {
        const p = call.parts[t], slot = base + PARTS_OFF + PART_SLOTS * t;
        if (p && p.length > PART_ARGS) throw new Lfm2Error("BAD_INPUT", `${call.fn}: at most ${PART_ARGS} per-thread arguments`);
        c[slot] = p ? 1 : 0;
        if (p) { np = Math.max(np, p.length); for (let i = 0; i < p.length; i++) c[slot + 1 + i] = p[i]; }
      }
      c[base] = this.fnIndex.get(call.fn)!;
      c[base + 1] = call.shared.length;
      c[base + 2] = np;
      this.args.set(call.shared, (base + ARGS_OFF) >> 1);
    });
    c[NCALLS] = calls.length;
    Atomics.store(c, DONE, 0);
    // open the claims of threads with work (the stores above are visible to whoever takes one)
    for (let t = 1; t < T; t++) Atomics.store(c, CLAIM + t, calls.some((call) => call.parts[t]) ? 0 : BY_CALLER);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
    this.runShare(calls, 0);
    let byWorkers = 0;
    for (let t = 1; t < T; t++) {
      // a worker spinning on GEN takes its claim within microseconds: taking its share at once would
      // often double this thread's work for nothing, so wait a little before presuming it stalled
      for (let spins = 0; spins < STEAL_AFTER && Atomics.load(c, CLAIM + t) === 0; spins++);
      const was = Atomics.compareExchange(c, CLAIM + t, 0, BY_CALLER);
      if (was === 0) this.runShare(calls, t); // its worker has not started: no waiting for it
      else if (was === BY_WORKER) byWorkers++;
    }
    let spins = 0;
    for (let d = Atomics.load(c, DONE); d < byWorkers; d = Atomics.load(c, DONE)) {
      if (this.canBlock && ++spins > SPIN) Atomics.wait(c, DONE, d);
    }
  }

  /** Thread t's share of a batch, run on this thread. */
  private runShare(calls: readonly ParallelCall[], t: number): void {
    for (const call of calls) {
      const p = call.parts[t];
      if (p) (this.kernels as any)[call.fn](...call.shared, ...p);
    }
  }

  matmul(fn: string, w: number, x: number, y: number, n: number, nTok: number, yStride: number, rows: number): void {
    // ranges in multiples of 4 rows (x4 layouts interleave rows by four)
    this.runBatch([{ fn, shared: [w, x, y, n, nTok, yStride], parts: rowRanges(rows, this.size, 4) }]);
  }

  terminate(): void {
    Atomics.store(this.ctrl, NCALLS, STOP);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
