// The worker script (dist/worker.js for Node and Deno, dist/browser-worker.js for browsers): serves one
// engine over the worker's message channel.
import { serveEngine } from "./host.js";

const scope = globalThis as any;
if (typeof scope.WorkerGlobalScope !== "undefined" || (typeof scope.postMessage === "function" && typeof scope.Deno !== "undefined")) {
  serveEngine({
    post: (m, transfer) => scope.postMessage(m, transfer ?? []),
    onMessage: (f) => scope.addEventListener("message", (e: MessageEvent) => f(e.data)),
  });
} else {
  // no top-level await: bundlers emit browser workers as classic scripts by default, where it is a syntax error
  void import("node:worker_threads").then(({ parentPort }) => {
    if (!parentPort) throw new Error("lfm2-wasm's worker script runs inside a worker; load it with loadModel(..., { worker: true })");
    serveEngine({ post: (m, transfer) => parentPort.postMessage(m, transfer as any), onMessage: (f) => parentPort.on("message", f) });
  });
}
