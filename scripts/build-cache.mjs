// Skip-if-unchanged for the build scripts: a SHA-256 over the build's inputs (file contents and tool
// versions) is kept in a stamp file beside the outputs; a build whose fingerprint matches and whose
// outputs all exist does nothing. `--force` or LFM2_FORCE_BUILD=1 rebuilds anyway.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

export const root = new URL("..", import.meta.url).pathname;
export const forced = process.argv.includes("--force") || /^(1|true|yes)$/i.test(process.env.LFM2_FORCE_BUILD ?? "");

/** Every file under `dir` (relative paths, sorted so the fingerprint does not depend on directory order). */
export function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p); else out.push(relative(root, p));
    }
  };
  walk(join(root, dir));
  return out.sort();
}

export const packageVersion = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;

/** Fingerprint of files (by content) plus extra strings such as tool versions. */
export function fingerprint(files, extras = []) {
  const h = createHash("sha256");
  for (const f of [...new Set(files)].sort()) {
    h.update(`${f}\0`);
    const p = resolve(root, f);
    h.update(existsSync(p) ? readFileSync(p) : "(missing)");
    h.update("\0");
  }
  for (const x of extras) h.update(`${x}\0`);
  return h.digest("hex");
}

/** True when the stamp holds `print` and every output exists. */
export function upToDate(stampPath, print, outputs, force = forced) {
  if (force) return false;
  try {
    return JSON.parse(readFileSync(stampPath, "utf8")).fingerprint === print && outputs.every((o) => statSync(o).size > 0);
  } catch { return false; }
}

export function readStamp(stampPath) {
  try { return JSON.parse(readFileSync(stampPath, "utf8")); } catch { return null; }
}

/** Written through a temporary file and a rename, so a concurrent reader never sees half a stamp. */
export function writeStamp(stampPath, data) {
  const tmp = `${stampPath}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 1) + "\n");
  renameSync(tmp, stampPath);
}

export function removeStamp(stampPath) {
  rmSync(stampPath, { force: true });
}

export class BuildFailed extends Error {}

/**
 * Runs a compiler step with its output captured, so a failure always shows what the tool said. A failure
 * without any diagnostic (asc sometimes exits 1 silently when the machine is overloaded, or a tool is killed)
 * is retried once; a failure with diagnostics is a real error and is not. Throws BuildFailed.
 */
export function runStep(label, cmd, args, { cwd = root, log = console.error } = {}) {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
    const said = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
    if (r.status === 0 && !r.error) {
      if (said) log(said); // warnings
      return attempt;
    }
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    // asc reports "ERROR TS2304: …" / "ERROR AS100: …", wasm-opt "[wasm-validator error …]" or "Fatal: …"
    const diagnostics = /\bERROR (TS|AS)\d+|wasm-validator error|^Fatal:/m.test(said);
    log(`${label} failed (${why}, attempt ${attempt})\n${said || "(the tool printed nothing)"}`);
    if (diagnostics || attempt >= 2) throw new BuildFailed(`${label} failed (${why})`);
    log(`${label}: no diagnostics, so retrying once in case it was a transient crash`);
  }
}
