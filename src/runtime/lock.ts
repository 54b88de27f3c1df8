// A FIFO lock for one sequence's state (a session's cache, a model's default chat session). Calls on
// one session are queued in arrival order and each runs as it would alone. A holder can be revoked
// (dispose, or an abort while its iterator sits paused): it loses the state at once and its next
// touch of it throws ABORTED, so an abandoned iterator cannot hold the session forever.
import { Lfm2Error, abortError } from "../errors.js";

export interface Ticket { revoked: boolean; why?: string }

interface Waiter { ticket: Ticket; grant(): void; fail(e: Error): void }

export class FifoLock {
  private holder: Ticket | null = null;
  private waiting: Waiter[] = [];

  get busy(): boolean { return this.holder !== null; }

  /** Resolves when every earlier caller is done; rejects ABORTED if `signal` aborts while waiting. */
  acquire(signal?: AbortSignal): Promise<Ticket> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const ticket: Ticket = { revoked: false };
    if (!this.holder) { this.holder = ticket; return Promise.resolve(ticket); }
    return new Promise<Ticket>((resolve, reject) => {
      const onAbort = () => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        ticket,
        grant: () => { signal?.removeEventListener("abort", onAbort); resolve(ticket); },
        fail: (e) => { signal?.removeEventListener("abort", onAbort); reject(e); },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Hand the lock to the next caller (a no-op for a ticket that no longer holds it). */
  release(t: Ticket): void {
    if (this.holder !== t) return;
    const next = this.waiting.shift();
    this.holder = next?.ticket ?? null;
    next?.grant();
  }

  /** Take the lock from its holder (which then fails with ABORTED) and pass it on. */
  revoke(t: Ticket, why: string): void {
    if (this.holder !== t) return;
    t.revoked = true; t.why = why;
    this.release(t);
  }

  /** Revoke the holder and fail every waiter: the state is going away. */
  close(why: string): void {
    if (this.holder) { this.holder.revoked = true; this.holder.why = why; }
    this.holder = null;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.fail(new Lfm2Error("ABORTED", why));
  }
}

/** Throws ABORTED if the ticket lost the lock (its state now belongs to someone else, or is gone). */
export function assertHolds(t: Ticket): void {
  if (t.revoked) throw new Lfm2Error("ABORTED", t.why ?? "the session was taken from this call");
}

/** A signal option must be an AbortSignal (or absent): anything else is a caller bug, reported typed. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  const s = signal as AbortSignal | null;
  if (!s || typeof s.aborted !== "boolean" || typeof s.addEventListener !== "function") {
    throw new Lfm2Error("BAD_INPUT", "signal must be an AbortSignal");
  }
  return s;
}

/**
 * Run a generator while holding `lock`. The lock is taken at the first next() (an iterator never
 * started holds nothing) and released when the generator finishes, throws or is returned; an abort
 * of `signal` while the caller keeps the iterator paused revokes it so later calls proceed.
 */
export async function* exclusive<Y, R>(lock: FifoLock, signal: AbortSignal | undefined,
  run: (ticket: Ticket) => AsyncGenerator<Y, R>): AsyncGenerator<Y, R> {
  const ticket = await lock.acquire(signal);
  const onAbort = () => lock.revoke(ticket, signal?.reason instanceof Error ? signal.reason.message : "operation aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return yield* run(ticket);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    lock.release(ticket);
  }
}

/** Drive a generator to its end and return its result. */
export async function drain<R>(it: AsyncGenerator<unknown, R>): Promise<R> {
  for (;;) { const r = await it.next(); if (r.done) return r.value; }
}
