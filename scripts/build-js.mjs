// Bundles the TypeScript with esbuild: dist/index.js (universal ESM: Node, Deno, browsers, workerd)
// and dist/cli.js (Node). The .wasm files stay in build/ and are located relative to the module.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning" };
await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js", platform: "neutral",
  external: ["node:*"], mainFields: ["module", "main"] });
await build({ ...common, entryPoints: ["src/cli/main.ts"], outfile: "dist/cli.js", platform: "node", external: ["node:*"],
  banner: { js: "#!/usr/bin/env node" } });
// type declarations for the package's "types" entry
execFileSync(process.execPath, [new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname, "-p", "tsconfig.json", "--emitDeclarationOnly", "--outDir", "dist/types"], { stdio: "inherit" });
console.log("dist/index.js, dist/cli.js, dist/types/");
