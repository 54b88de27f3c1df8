// Long-context table: prefill of a d-token prompt, then decode steps at depth d (each attends to ~d
// positions), ours beside native llama.cpp, 1 and all threads, ratios from the same run.
//   tsx bench/run.ts --long-context [--depths 512,4096,16384,32768] [--threads 1,2] [--gen 32] [--models 350M:Q4_0]
import { availableParallelism } from "node:os";
import { runNative, waitForQuiet, type RivalResult } from "./rivals/native.js";
import { runOursNode } from "./ours.js";

export interface LongContextRow { depth: number; threads: number; ours?: RivalResult; native?: RivalResult; error?: string }

export async function runLongContext(modelPath: string, opts: { depths: number[]; threads: number[]; gen: number; quietS: number }): Promise<LongContextRow[]> {
  const rows: LongContextRow[] = [];
  for (const depth of opts.depths) {
    for (const threads of opts.threads) {
      const row: LongContextRow = { depth, threads };
      rows.push(row);
      // no cold full-prompt run: at 32K tokens it would double the time; both warm up on a short prompt
      const run = { threads, promptTokens: depth, genTokens: opts.gen, coldTtft: false };
      for (const engine of ["ours", "native"] as const) {
        if (opts.quietS > 0) await waitForQuiet({ timeoutMs: opts.quietS * 1000 });
        process.stderr.write(`  depth ${depth} · ${engine} · ${threads} thread(s)… `);
        try {
          const r = engine === "ours" ? await runOursNode(modelPath, run) : await runNative(modelPath, run);
          row[engine] = r;
          const busy = (r.details.machineDuringTimedRuns as { busyCores: number } | undefined)?.busyCores;
          process.stderr.write(`prefill ${r.prefillTps.toFixed(1)} tok/s, decode ${r.decodeTps.toFixed(1)} tok/s` +
            `${busy !== undefined ? ` (busy cores ${busy.toFixed(2)})` : ""}\n`);
        } catch (e) {
          row.error = `${engine}: ${(e as Error).message.split("\n")[0]}`;
          process.stderr.write(`failed: ${row.error}\n`);
        }
      }
    }
  }
  return rows;
}

export function longContextTable(rows: LongContextRow[]): string {
  const f = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "–");
  const mib = (b: unknown) => (typeof b === "number" ? f(b / 2 ** 20, 0) : "–");
  const lines = [
    "| depth | thr | ours prefill tok/s | native prefill tok/s | prefill × native | ours decode tok/s | native decode tok/s | decode × native | ours ×thr prefill / decode | KV MiB (fp16, both) | ours wasm memory MiB | ours peak RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const o = r.ours, n = r.native;
    const one = rows.find((x) => x.depth === r.depth && x.threads === 1)?.ours;
    const scale = r.threads > 1 && o && one ? `${f(o.prefillTps / one.prefillTps, 2)} / ${f(o.decodeTps / one.decodeTps, 2)}` : "";
    lines.push(`| ${r.depth} | ${r.threads} | ${f(o?.prefillTps)} | ${f(n?.prefillTps)} | ${o && n ? f(o.prefillTps / n.prefillTps, 2) : "–"} | ` +
      `${f(o?.decodeTps)} | ${f(n?.decodeTps)} | ${o && n ? f(o.decodeTps / n.decodeTps, 2) : "–"} | ${scale} | ` +
      `${mib(o?.details.kvBytes)} | ${mib(o?.details.wasmMemoryBytes)} | ${mib(o?.details.maxRssBytes)} |${r.error ? ` ${r.error}` : ""}`);
  }
  return lines.join("\n");
}

export function defaultThreads(): number[] {
  const all = Math.max(1, availableParallelism());
  return all > 1 ? [1, all] : [1];
}
