// A byte-level BPE vocabulary laid out like LFM2's (special tokens at the same ids, then bytes, then
// merges learned on a small multilingual corpus, a few whole-word tokens that the merges cannot build
// (so ignore_merges matters), two user-defined tokens like LFM2's "Mathias"/"python", then reserved
// filler up to the requested size).
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
<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n
Once upon a time, in a small village near the mountains, there lived an old woman who told the children stories every evening.
She said that the river would remember everything it had seen, and that the wind would carry those memories to the sea.
The children laughed, but they listened; they always listened, because her stories were the best part of the day.
"Where does the river go?" asked the youngest boy. "To the ocean," she answered, "and the ocean goes everywhere."
It wasn't until years later that he understood what she meant. We're often told that time heals, but I'd rather say it teaches.
You'll find that the simplest answers aren't always the right ones, and that they've usually been hiding in plain sight.
THE END. Don't forget: IT'S NOT OVER UNTIL IT'S OVER, AND WE'LL BE THERE WHEN YOU'RE READY. They'D agree, I'M SURE.
Machine learning models are trained on large datasets. The model learns patterns, and then it generates text one token at a time.
A tokenizer splits text into tokens; the tokens are mapped to integer ids, and the ids are embedded into vectors.
Efficient inference requires careful memory management, quantized weights, and fast matrix multiplication kernels.
The temperature parameter controls randomness: a temperature of 0 means greedy decoding, while higher values increase diversity.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 123 1234 12345 2023-11-24 09:30:00 +01:00 $19.99 €5,50 42% 3.5x 1e-5 0xFF 0b1010 v1.2.3
Phone: +1 (555) 123-4567. Order #98765 shipped on 2025-01-15 at 14:05. Total: 1,234.56 USD. Room 101, floor 7.
import numpy as np\nimport torch\n\nclass Model(torch.nn.Module):\n    def __init__(self, dim: int = 512) -> None:\n        super().__init__()\n        self.proj = torch.nn.Linear(dim, dim)\n\n    def forward(self, x):\n        return self.proj(x).relu()\n
export async function fetchJson(url: string): Promise<unknown> {\n  const res = await fetch(url);\n  if (!res.ok) throw new Error(\`HTTP \${res.status}\`);\n  return res.json();\n}\n
{"name": "lfm2", "version": "0.1.0", "tokens": [1, 2, 3], "enabled": true, "ratio": 0.75, "tags": ["a", "b"]}\n
<div class="container">\n  <p>Hello, <b>world</b>!</p>\n  <a href="https://example.com/path?query=1&x=2">link</a>\n</div>\n
SELECT id, name FROM users WHERE age > 30 ORDER BY name DESC LIMIT 10;\n
#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n
    indented line\n\tTabbed line\n\t\tDouble tabbed\n        eight spaces\n\n\n\n    \n  \n
東京は日本の首都であり、世界で最も人口の多い都市の一つです。私は毎朝コーヒーを飲みます。今日はとても良い天気ですね。
日本語の文章を書くのは楽しいです。ひらがな、カタカナ、漢字を使います。明日は雨が降るでしょう。
北京是中国的首都。我们今天去公园散步。这个模型可以在手机上运行。人工智能正在改变世界。学习语言需要时间和耐心。
中国的历史非常悠久，文化丰富多彩。我喜欢吃饺子和面条。请问，火车站怎么走？
서울은 대한민국의 수도입니다. 오늘 날씨가 정말 좋네요. 저는 한국어를 공부하고 있습니다. 감사합니다!
Москва — столица России. Сегодня хорошая погода. Я люблю читать книги и гулять в парке. Спасибо большое!
Българският език е южнославянски език. Това е тест на български. Κάθε μέρα μαθαίνουμε κάτι καινούργιο. Η Αθήνα είναι όμορφη.
القاهرة هي عاصمة مصر. أحب قراءة الكتب في المساء. الذكاء الاصطناعي يغير العالم. شكرا جزيلا لكم.
भारत एक विशाल देश है। मुझे हिंदी में किताबें पढ़ना पसंद है। आज मौसम बहुत अच्छा है। धन्यवाद!
Tiếng Việt có dấu: Hà Nội là thủ đô của Việt Nam. Cảm ơn bạn rất nhiều. ภาษาไทยเป็นภาษาที่สวยงาม ขอบคุณมาก
עברית היא שפה עתיקה. שלום עולם! Türkçe güzel bir dildir. İstanbul büyük bir şehirdir. Ça va très bien, merci beaucoup!
Emoji: 😀 😃 😄 😁 😆 😅 😂 🤣 ❤️ 👍 👋 🎉 🔥 ✨ 🌍 🚀 🦙 🐍 👨‍👩‍👧‍👦 👩‍💻 🏳️‍🌈 🇺🇸 🇫🇷 🇯🇵 🇩🇪 ✅ ❌ ⭐ ☀️ 🌧️
Math: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ± × ÷ π α β γ δ λ μ σ Ω → ← ↑ ↓ ⇒ ∀ ∃ ∈ ∉ ∩ ∪ ⊂ ⊆ ° ² ³ ½ ¼
Punctuation runs: ... !!! ??? --- === *** ### /// ::: ;;; ,,, ''' """ \`\`\` ~~~ ^^^ ___ +++ <<< >>> ||| &&& %%% @@@
<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nTranslate "good morning" to Japanese.<|im_end|>\n<|im_start|>assistant\nおはようございます。<|im_end|>\n
<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n<|im_start|>assistant\nCrimson leaves falling,\nwhispers of the cooling wind,\nthe year exhales slow.<|im_end|>\n
The weather today is sunny with a high of 25 degrees. Tomorrow, expect rain in the morning and clouds in the afternoon.
Please remember to save your work frequently, especially when working with large files or unstable network connections.
In 1969, humans first walked on the Moon. In 2012, a rover landed on Mars. What will the next decade bring?
`;

// LLAMA3-style split used by LFM2 (spec §4.1), JS syntax. (Training only: the tokenizer has an exact scanner.)
export const LFM2_SPLIT = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** Whole pre-tokens added as single vocabulary entries after the learned merges: with ignore_merges they encode as one token. */
const WHOLE_WORDS = [" extraordinary", " unbelievable", " tokenization", " Liquid", " internationalization", " Wednesday",
  " 東京都", "人工知能", " Москва", " नमस्ते", " 🦙", " 👨‍👩‍👧‍👦", "       ", "\n\n\n\n", " ===", "ing", " the", "Hello"];
/** Added (USER_DEFINED) tokens, matched verbatim before pre-tokenization, like LFM2's "Mathias" and "python". */
const USER_DEFINED = ["Mathias", "python"];

const cache = new Map<string, SyntheticVocab>();

/**
 * Build a vocabulary of exactly `size` tokens (size ≥ 501 + 256 + 20). Deterministic.
 * `merges` defaults to as many as fit (at most 4000).
 */
export function buildSyntheticVocab(size: number, merges?: number, corpus = DEFAULT_CORPUS): SyntheticVocab {
  const key = `${size}|${merges}|${corpus}`;
  const hit = cache.get(key);
  if (hit) return { tokens: [...hit.tokens], types: [...hit.types], merges: [...hit.merges] };
  const v = build(size, merges, corpus);
  cache.set(key, v);
  return { tokens: [...v.tokens], types: [...v.types], merges: [...v.merges] };
}

function build(size: number, mergesWanted: number | undefined, corpus: string): SyntheticVocab {
  const specials = lfm2SpecialTokens();
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id <= 500; id++) { tokens.push(specials.get(id)!); types.push(TOKEN_TYPE.CONTROL); }
  const known = new Set<string>(tokens);
  for (let b = 0; b < 256; b++) { tokens.push(BYTE_TO_CHAR[b]); types.push(TOKEN_TYPE.NORMAL); known.add(BYTE_TO_CHAR[b]); }
  const extras = WHOLE_WORDS.length + USER_DEFINED.length;
  const maxMerges = Math.max(0, Math.min(mergesWanted ?? 4000, size - tokens.length - extras));
  const mergeList = learnMerges(corpus, maxMerges, (merged) => {
    if (!known.has(merged)) { tokens.push(merged); types.push(TOKEN_TYPE.NORMAL); known.add(merged); }
  });
  for (const w of WHOLE_WORDS) {
    const t = bytesToUnicode(w);
    if (tokens.length < size && !known.has(t)) { tokens.push(t); types.push(TOKEN_TYPE.NORMAL); known.add(t); }
  }
  for (const t of USER_DEFINED) {
    if (tokens.length < size && !known.has(t)) { tokens.push(t); types.push(TOKEN_TYPE.USER_DEFINED); known.add(t); }
  }
  for (let i = tokens.length; i < size; i++) { tokens.push(`<|reserved_${i - 10}|>`); types.push(TOKEN_TYPE.CONTROL); }
  return { tokens, types, merges: mergeList };
}

/**
 * Classic BPE training over byte-mapped pre-tokens: repeatedly merge the most frequent adjacent pair
 * (ties: the lexicographically smallest "left right"), with incremental pair counts and a lazy max-heap.
 */
function learnMerges(corpus: string, maxMerges: number, onMerge: (merged: string) => void, minCount = 1): string[] {
  const wordCounts = new Map<string, number>();
  for (const piece of corpus.split(/<\|[a-z_]+\|>/)) {
    for (const m of piece.matchAll(LFM2_SPLIT)) {
      const w = bytesToUnicode(m[0]);
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    }
  }
  const symText: string[] = [];
  const symId = new Map<string, number>();
  const sym = (s: string) => {
    let v = symId.get(s);
    if (v === undefined) { v = symText.length; symText.push(s); symId.set(s, v); }
    return v;
  };
  const words = [...wordCounts].map(([w, n]) => ({ parts: [...w].map(sym), n }));
  const K = 1 << 20;
  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const label = new Map<number, string>();
  // max-heap of [count, key] with lazy invalidation
  const heap: [number, number][] = [];
  const pairLabel = (k: number) => {
    let s = label.get(k);
    if (s === undefined) { s = symText[Math.floor(k / K)] + " " + symText[k % K]; label.set(k, s); }
    return s;
  };
  const better = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && pairLabel(a[1]) < pairLabel(b[1]));
  const push = (e: [number, number]) => {
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!better(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0], last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && better(heap[l], heap[m])) m = l;
        if (r < heap.length && better(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  const changed = new Set<number>();
  const add = (wi: number, sign: 1 | -1) => {
    const { parts, n } = words[wi];
    for (let i = 0; i + 1 < parts.length; i++) {
      const k = parts[i] * K + parts[i + 1];
      counts.set(k, (counts.get(k) ?? 0) + sign * n);
      changed.add(k);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  const flush = () => {
    for (const k of changed) { const c = counts.get(k)!; if (c > 0) push([c, k]); }
    changed.clear();
  };
  words.forEach((_, wi) => add(wi, 1));
  flush();
  const merges: string[] = [];
  while (merges.length < maxMerges && heap.length > 0) {
    const [c, k] = pop();
    if (counts.get(k) !== c || c <= 0) continue; // stale entry
    if (c < minCount) break;
    const a = Math.floor(k / K), b = k % K;
    const merged = sym(symText[a] + symText[b]);
    merges.push(pairLabel(k));
    onMerge(symText[merged]);
    for (const wi of [...(where.get(k) ?? [])].sort((x, y) => x - y)) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.parts.length; i++) if (w.parts[i] === a && w.parts[i + 1] === b) { has = true; break; }
      if (!has) continue;
      add(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) { out.push(merged); i++; } else out.push(w.parts[i]);
      }
      w.parts = out;
      add(wi, 1);
    }
    flush();
  }
  return merges;
}
