// Run in a child process by test/parallel-batch.test.ts (a hang there would block the test runner): a
// 2-thread pool whose worker is gone, as a worker that never gets a core would be, runs a batch. Prints
// the result; the caller must have run the worker's share itself instead of waiting for it.
import { Arena, createMemory } from "../../bindings/arena.js";
import { WorkerPool } from "../../bindings/threads.js";
import { compileVariant, instantiateKernels } from "../../bindings/wasm.js";

const arena = new Arena(createMemory(16 << 20, true));
const module = await compileVariant("lfm2-simd-mt");
const kern = await instantiateKernels(module, arena.memory);
const pool = await WorkerPool.create(2, module, kern, arena);
await (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0].terminate();
const a = arena.alloc(32), b = arena.alloc(32);
arena.f32(a, 8).set([1, 2, 3, 4, 5, 6, 7, 8]);
arena.f32(b, 8).set([10, 20, 30, 40, 50, 60, 70, 80]);
// a += b, the first four floats on this thread, the last four on the (missing) worker; then twice more
for (let i = 0; i < 3; i++) pool.runBatch([{ fn: "addInPlace", shared: [], parts: [[a, b, 4], [a + 16, b + 16, 4]] }]);
console.log(JSON.stringify(Array.from(arena.f32(a, 8))));
process.exit(0);
