// A byte-level BPE vocabulary laid out like LFM2's (special tokens at the same ids, then bytes, then
// merges learned on a small multilingual corpus, then reserved filler up to the requested size).
// Used for the demo model, tests and benchmarks: real LFM2 vocabularies are loaded from model files.
import { BYTE_TO_CHAR, bytesToUnicode } from "./byte-unicode.js";

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface SyntheticVocab { tokens: string[]; types: number[]; merges: string[] }

/** LFM2's special tokens at their real ids (spec §4.2). */
export function lfm2SpecialTokens(): Map<number, string> {
  const m = new Map<number, string>();
  ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>", "<|im_start|>", "<|im_end|>",
    "<|tool_list_start|>", "<|tool_list_end|>", "<|tool_call_start|>", "<|tool_call_end|>", "<|tool_response_start|>",
    "<|tool_response_end|>", "<|reserved_4|>", "<|reserved_5|>"].forEach((t, i) => m.set(i, t));
  for (let id = 16; id <= 395; id++) m.set(id, `<|reserved_${id - 10}|>`);
  m.set(396, "<image>");
  for (let r = 1; r <= 10; r++) for (let c = 1; c <= 10; c++) m.set(397 + 10 * (r - 1) + (c - 1), `<|img_row_${r}_col_${c}|>`);
  m.set(497, "<|img_thumbnail|>"); m.set(498, "<|image_start|>"); m.set(499, "<|image_end|>"); m.set(500, "<|image_split|>");
  return m;
}

export const DEFAULT_CORPUS = `The quick brown fox jumps over the lazy dog. Hello world! hello, world. It's a test; they're here, we've been told, I'm sure you'll see, he'd say.
Liquid AI builds efficient foundation models that run on phones, laptops and cars. The year 2024 has 365 days; 3.14159 and 1,000,000 are numbers.
function add(a, b) { return a + b; }\nconst x = [1, 2, 3].map((v) => v * 2);\nfor (let i = 0; i < 10; i++) {\n    console.log(i);\n}\n
def main():\n    print("hello")\n    return {"key": "value", "n": 42}\n
Le renard brun rapide saute par-dessus le chien paresseux. Der schnelle braune Fuchs springt über den faulen Hund. El zorro marrón rápido.
日本語のテキストです。東京は日本の首都です。中文文本，我想在苹果工作。今天天气很好。한국어 문장입니다. Привет, мир! Это тест на русском языке.
مرحبا بالعالم، هذا نص عربي. नमस्ते दुनिया। 🚀 emojis 😀😃 ✅ 🦙 are fun. Tabs\tand   spaces    and\n\n\nnewlines.
<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n`;

// LLAMA3-style split used by LFM2 (spec §4.1), JS syntax.
export const LFM2_SPLIT = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** Build a vocabulary of exactly `size` tokens (size ≥ 501 + 256). Deterministic. */
export function buildSyntheticVocab(size: number, merges = Math.min(2000, size - 757), corpus = DEFAULT_CORPUS): SyntheticVocab {
  const specials = lfm2SpecialTokens();
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id <= 500; id++) { tokens.push(specials.get(id)!); types.push(TOKEN_TYPE.CONTROL); }
  const known = new Set<string>(tokens);
  for (let b = 0; b < 256; b++) { tokens.push(BYTE_TO_CHAR[b]); types.push(TOKEN_TYPE.NORMAL); known.add(BYTE_TO_CHAR[b]); }
  // word frequency table over byte-mapped pre-tokens
  const words = new Map<string, number>();
  for (const piece of corpus.split(/<\|[a-z_]+\|>/)) {
    for (const m of piece.matchAll(LFM2_SPLIT)) {
      const w = bytesToUnicode(m[0]);
      words.set(w, (words.get(w) ?? 0) + 1);
    }
  }
  const seqs = [...words].map(([w, n]) => ({ parts: [...w], n }));
  const mergeList: string[] = [];
  while (mergeList.length < merges && tokens.length < size) {
    const counts = new Map<string, number>();
    for (const { parts, n } of seqs) for (let i = 0; i + 1 < parts.length; i++) {
      const k = parts[i] + " " + parts[i + 1];
      counts.set(k, (counts.get(k) ?? 0) + n);
    }
    let best = "", bestN = 0;
    for (const [k, n] of counts) if (n > bestN || (n === bestN && k < best)) { best = k; bestN = n; }
    if (!best) break;
    const [a, b] = best.split(" ");
    mergeList.push(best);
    const merged = a + b;
    if (!known.has(merged)) { tokens.push(merged); types.push(TOKEN_TYPE.NORMAL); known.add(merged); }
    for (const s of seqs) {
      const p = s.parts, out: string[] = [];
      for (let i = 0; i < p.length; i++) {
        if (i + 1 < p.length && p[i] === a && p[i + 1] === b) { out.push(merged); i++; } else out.push(p[i]);
      }
      s.parts = out;
    }
  }
  for (let i = tokens.length; i < size; i++) { tokens.push(`<|reserved_${i - 10}|>`); types.push(TOKEN_TYPE.CONTROL); }
  return { tokens, types, merges: mergeList };
}
