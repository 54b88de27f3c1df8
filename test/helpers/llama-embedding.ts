// llama.cpp's own `llama-embedding` tool (v0.5.0, the release node-llama-cpp bundles), built on demand by
// scripts/build-llama-tools.mjs into .cache/llama-tools (about 5 s with g++). `llamaEmbeddingTool()`
// gives its path, or the reason it cannot exist here (tests skip with that reason).
import { execFileSync } from "node:child_process";
import { buildLlamaEmbedding } from "../../scripts/build-llama-tools.mjs";

let tool: { path: string } | { reason: string } | undefined;

export function llamaEmbeddingTool(): { path: string } | { reason: string } {
  if (!tool) {
    try { tool = { path: buildLlamaEmbedding({ quiet: true }) as string }; } catch (e) { tool = { reason: `llama-embedding unavailable: ${(e as Error).message}` }; }
  }
  return tool;
}

/**
 * llama.cpp's per-token vectors (pooling none, no normalisation) of one prompt: rows × dim.
 * The tool splits prompts at newlines, so a text must not contain one.
 */
export function llamaEmbeddingRows(path: string, model: string, text: string, pooling = "none"): number[][] {
  if (text.includes("\n")) throw new Error("llama-embedding splits prompts at newlines");
  const args = ["-m", model, "-p", text, "--pooling", pooling, "--embd-normalize", "-1",
    "--embd-output-format", "json", "-t", "1", "-c", "2048", "-b", "2048", "-ub", "2048"];
  const out = execFileSync(path, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28 });
  return (JSON.parse(out).data as { embedding: number[] }[]).map((d) => d.embedding);
}
