# workerd config for the lfm2-wasm example Worker (and the workerd runtime test).
#
#   npm run build
#   npx workerd serve examples/cloudflare-worker/config.capnp
#   curl 'http://127.0.0.1:8787/?prompt=Hello&maxTokens=16'
#
# The module names mirror what wrangler produces for worker.js's imports, so the same worker.js
# runs under both. Paths are relative to this file.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .lfm2Worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const lfm2Worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "lfm2-wasm", esModule = embed "../../dist/index.js"),
    (name = "lfm2-wasm/build/lfm2-simd.wasm", wasm = embed "../../build/lfm2-simd.wasm"),
    (name = "lfm2-wasm/build/lfm2-relaxed.wasm", wasm = embed "../../build/lfm2-relaxed.wasm"),
  ],
  bindings = [
    (name = "SEED", text = "42"),
    # A real GGUF instead of the synthetic demo model (must fit the 128 MB isolate, see README.md):
    # (name = "MODEL", data = embed "model.gguf"),
  ],
  compatibilityDate = "2025-09-01",
);
