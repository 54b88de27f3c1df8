// Bundles the TypeScript with esbuild: dist/index.js (universal ESM: Node, Deno, browsers, workerd)
// and dist/cli.js (Node). The .wasm files stay in build/ and are located relative to the module.
// Skips all work when src/**, bindings/**, tsconfig.json, the package files, this script and the tool versions
// are unchanged since the last build (stamp: dist/.js-build.json); `--force` or LFM2_FORCE_BUILD=1 rebuilds.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { filesUnder, fingerprint, packageVersion, removeStamp, root, upToDate, writeStamp } from "./build-cache.mjs";

const dist = join(root, "dist");
const stamp = join(dist, ".js-build.json");
const outputs = ["index.js", "browser.js", "worker.js", "browser-worker.js", "cli.js", "types/src/index.d.ts"].map((f) => join(dist, f));
// src/ and bindings/ are tsc's whole input (tsconfig "include"); bundled dependencies are pinned by the lock file
const inputs = [...filesUnder("src"), ...filesUnder("bindings"), "tsconfig.json", "package.json", "package-lock.json",
  relative(root, fileURLToPath(import.meta.url)), "scripts/build-cache.mjs"];
const print = fingerprint(inputs, [`esbuild ${packageVersion("esbuild")}`, `typescript ${packageVersion("typescript")}`]);

if (upToDate(stamp, print, outputs)) {
  console.error("dist/ up to date (npm run build -- --force rebuilds)");
  process.exit(0);
}
removeStamp(stamp);
const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning", absWorkingDir: root };
await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js", platform: "neutral",
  external: ["node:*"], mainFields: ["module", "main"] });
// the engine's worker script for Node and Deno (worker mode); beside index.js, which finds it by import.meta.url
await build({ ...common, entryPoints: ["src/worker/entry.ts"], outfile: "dist/worker.js", platform: "neutral",
  external: ["node:*"], mainFields: ["module", "main"] });
// browsers and bundlers (exports condition "browser"/"worker"/"workerd"): the same source with every node:* module
// replaced by src/io/node-unavailable.ts, so no bundler meets a Node import
const noNode = { name: "no-node", setup(b) {
  b.onResolve({ filter: /^node:/ }, () => ({ path: join(root, "src/io/node-unavailable.ts") }));
} };
for (const [entry, out] of [["src/index.ts", "dist/browser.js"], ["src/worker/entry.ts", "dist/browser-worker.js"]]) {
  await build({ ...common, entryPoints: [entry], outfile: out, platform: "browser", plugins: [noNode] });
}
await build({ ...common, entryPoints: ["src/cli/main.ts"], outfile: "dist/cli.js", platform: "node", external: ["node:*"],
  banner: { js: "#!/usr/bin/env node" } });
// type declarations for the package's "types" entry
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--emitDeclarationOnly",
  "--outDir", "dist/types"], { stdio: "inherit", cwd: root });
writeStamp(stamp, { fingerprint: print, inputs: inputs.length, builtAt: new Date().toISOString() });
console.error("dist/index.js, dist/browser.js, dist/worker.js, dist/browser-worker.js, dist/cli.js, dist/types/");
