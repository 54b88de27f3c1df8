// One generation at a time per model, first come first served. A model's sessions share one WebAssembly
// memory and its worker pool, so requests run strictly one after another; a waiter whose client goes
// away leaves the line at once and its turn passes straight on.
import { abortError } from "../errors.js";

export class FifoQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private running = false;

  /** Requests waiting for their turn (not counting the one running). */
  get pending(): number { return this.waiting; }
  get busy(): boolean { return this.running; }

  /** Resolves with a release function once every earlier caller has released; rejects (ABORTED) on abort. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    let release!: () => void;
    const done = new Promise<void>((r) => { release = r; });
    const prev = this.tail;
    this.tail = prev.then(() => done);
    this.waiting++;
    return new Promise((resolve, reject) => {
      let left = false;
      const onAbort = () => { left = true; this.waiting--; reject(abortError(signal)); };
      if (signal?.aborted) onAbort(); else signal?.addEventListener("abort", onAbort, { once: true });
      void prev.then(() => {
        signal?.removeEventListener("abort", onAbort);
        if (left) { release(); return; } // gave up while waiting: pass the turn on
        this.waiting--;
        this.running = true;
        let released = false;
        resolve(() => { if (!released) { released = true; this.running = false; release(); } });
      });
    });
  }
}

const queues = new WeakMap<object, FifoQueue>();

/** The queue of one model, shared by every handler that serves it. */
export function queueFor(model: object): FifoQueue {
  let q = queues.get(model);
  if (!q) queues.set(model, (q = new FifoQueue()));
  return q;
}
