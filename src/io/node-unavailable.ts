// Stands in for every `node:*` module in the browser builds (dist/browser.js, dist/browser-worker.js), so
// bundlers never see a Node import. The runtime only imports node:* behind Node/Deno checks; reaching this
// module means a Node-only feature (file paths, the hub cache, worker_threads) was asked for elsewhere.
import { Lfm2Error } from "../errors.js";

throw new Lfm2Error("BAD_INPUT", "this feature needs Node or Deno (file paths, the local hub cache, worker_threads); " +
  "in a browser pass a URL, bytes or a Blob");
