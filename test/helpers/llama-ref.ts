// Reference runs through native llama.cpp (node-llama-cpp, CPU): logits and greedy tokens on a file.
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type LlamaContext } from "node-llama-cpp";

let llamaP: Promise<Llama> | undefined;
export function llama(): Promise<Llama> {
  llamaP ??= getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });
  return llamaP;
}

export interface RefRunner {
  /** Logits after feeding `tokens` (fresh sequence), as a dense Float32Array. */
  logits(tokens: number[]): Promise<Float32Array>;
  /**
   * Teacher-forced greedy check: feed prompt, then for `steps` steps take llama.cpp's argmax, return
   * per step llama.cpp's full logits (so a caller can compare its own at the same positions).
   */
  greedy(prompt: number[], steps: number): Promise<{ tokens: number[]; logits: Float32Array[] }>;
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}

export async function llamaRef(path: string, opts: { flashAttention?: boolean; threads?: number } = {}): Promise<RefRunner> {
  const l = await llama();
  const model: LlamaModel = await l.loadModel({ modelPath: path });
  const ctx: LlamaContext = await model.createContext({ contextSize: 1024, batchSize: 512, threads: opts.threads ?? 1, flashAttention: opts.flashAttention ?? false });
  const dense = (m: Map<number, number>, n: number) => { const a = new Float32Array(n).fill(-Infinity); for (const [k, v] of m) a[k] = v; return a; };
  const nVocab = (model as any)._model.getVocabularySize?.() ?? (model.fileInfo.metadata as any)[model.fileInfo.metadata.general.architecture].vocab_size;
  async function run(tokens: number[], seq = ctx.getSequence()) {
    const items = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] as const : t));
    const res = await seq.controlledEvaluate(items as any);
    return { seq, logits: dense(res[res.length - 1]!.next!.logits!, nVocab) };
  }
  return {
    async logits(tokens) { const { seq, logits } = await run(tokens); seq.dispose(); return logits; },
    async greedy(prompt, steps) {
      let { seq, logits } = await run(prompt);
      const tokens: number[] = [], all: Float32Array[] = [logits];
      for (let s = 0; s < steps; s++) {
        const t = argmax(logits);
        tokens.push(t);
        if (s === steps - 1) break;
        ({ logits } = await run([t], seq));
        all.push(logits);
      }
      seq.dispose();
      return { tokens, logits: all };
    },
    tokenize(text) { return model.tokenize(text, true) as number[]; },
    async dispose() { await ctx.dispose(); await model.dispose(); },
  };
}

export function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Top-1 minus top-2 logit. */
export function margin(a: ArrayLike<number>): number {
  let m1 = -Infinity, m2 = -Infinity;
  for (let i = 0; i < a.length; i++) { const v = a[i]; if (v > m1) { m2 = m1; m1 = v; } else if (v > m2) m2 = v; }
  return m1 - m2;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / a.length);
}
