// `npm run build [-- --force]`: the wasm kernels, then the JS bundles. Each step skips itself when its inputs
// are unchanged; npm appends `--force` to the last command of a script, so this one script passes it to both.
import { spawnSync } from "node:child_process";

for (const script of ["build-wasm.mjs", "build-js.mjs"]) {
  const r = spawnSync(process.execPath, [new URL(script, import.meta.url).pathname, ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
