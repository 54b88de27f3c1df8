// Tokenizer: ids must be identical to llama.cpp's (node-llama-cpp, vocab-only load) on synthetic LFM2 GGUFs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import { Lfm2Error } from "../src/errors.js";
import { parseGguf, type GgufValue } from "../src/formats/gguf.js";
import { concatChunks, encodeGguf, type GgufWriteValue } from "../src/formats/gguf-writer.js";
import { mulberry32, syntheticGguf } from "../src/models/synthetic.js";
import { BYTE_TO_CHAR, bytesToUnicode } from "../src/text/byte-unicode.js";
import { DEFAULT_CORPUS } from "../src/text/synthetic-vocab.js";
import { LFM2_PRETOKENIZER_REGEX } from "../src/text/tokenizer-json.js";
import { preTokenize, Tokenizer, TokenType, toHfTokenizerConfig, toHfTokenizerJson } from "../src/text/tokenizer.js";

const here = dirname(fileURLToPath(import.meta.url));
// Liquid AI's files, kept in the repository with their LICENSE and SOURCE.txt (tokenizer.json is not among them)
const fixtureDir = resolve(here, "fixtures/lfm2-tokenizer");
const readFixture = (name: string) => JSON.parse(readFileSync(join(fixtureDir, name), "utf8"));
const vectors = readFixture("test-vectors.json");
const realConfig = readFixture("tokenizer_config.json");
const CHK_TXT: string = vectors?.llama_cpp_pretokenizer_hash.chktxt ??
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL";
const realJsonPath = [process.env.LFM2_TOKENIZER_JSON, join(fixtureDir, "tokenizer.json")].find((p): p is string => !!p && existsSync(p));

// ---- shared fixtures: one synthetic GGUF, one llama.cpp vocab-only load ---------------------------------

const dir = mkdtempSync(join(tmpdir(), "lfm2-tok-"));
let tok: Tokenizer;
let meta: Map<string, GgufValue>;
let llama: Llama;
let ref: LlamaModel;

beforeAll(async () => {
  const bytes = concatChunks(syntheticGguf({ shape: "tiny", weightType: "Q8_0", seed: 7 }));
  const path = join(dir, "tiny.gguf");
  writeFileSync(path, bytes);
  meta = parseGguf(bytes).metadata;
  tok = Tokenizer.fromGguf(meta);
  llama = await getLlama({
    gpu: false, logLevel: LlamaLogLevel.error, build: "never",
    // node-llama-cpp first tries a full (size-estimating) load, which fails on our tensor-less vocabulary GGUFs before
    // the vocab-only load succeeds: drop that expected noise, forward everything else
    logger: (level, message) => {
      if (!/missing tensor 'token_embd.weight'|llama_model_load_from_file_impl: failed to load model/.test(message)) console.error(`[llama.cpp ${level}] ${message}`);
    },
  });
  ref = await llama.loadModel({ modelPath: path, vocabOnly: true });
});

afterAll(async () => {
  await ref?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const llamaIds = (m: LlamaModel, text: string, special: boolean) => Array.from(m.tokenize(text, special) as unknown as number[]);
/** A GGUF holding only a vocabulary (plus the LFM2 hyper-parameters llama.cpp reads before a vocab-only load). */
function vocabGguf(tokens: string[], types: number[], merges: string[], ids: Record<string, number>): Uint8Array {
  const u32 = (value: number): GgufWriteValue => ({ type: "u32", value });
  const meta: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: "lfm2" },
    "lfm2.context_length": u32(4096), "lfm2.embedding_length": u32(64), "lfm2.block_count": u32(1), "lfm2.feed_forward_length": u32(128),
    "lfm2.attention.head_count": u32(1), "lfm2.attention.head_count_kv": { type: "i32[]", value: [0] },
    "lfm2.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 }, "lfm2.shortconv.l_cache": u32(3), "lfm2.vocab_size": u32(tokens.length),
    "tokenizer.ggml.model": { type: "string", value: "gpt2" },
    "tokenizer.ggml.pre": { type: "string", value: "lfm2" },
    "tokenizer.ggml.tokens": { type: "string[]", value: tokens },
    "tokenizer.ggml.token_type": { type: "i32[]", value: types },
    "tokenizer.ggml.merges": { type: "string[]", value: merges },
  };
  for (const [k, v] of Object.entries(ids)) meta[`tokenizer.ggml.${k}`] = u32(v);
  return concatChunks(encodeGguf(meta, []));
}
// node-llama-cpp brands token ids
const asTok = (id: number) => id as unknown as Token;
const detok = (m: LlamaModel, ids: number[], special: boolean) => m.detokenize(ids.map(asTok), special);

// ---- test corpus ----------------------------------------------------------------------------------------

const CORPUS: [string, string][] = [
  ["english", "The quick brown fox jumps over the lazy dog. Hello world! hello, world. Once upon a time, the river remembered everything."],
  ["english long", DEFAULT_CORPUS.slice(0, 2000)],
  ["contractions lower", "it's they're we've I'm you'll he'd don't isn't 's 't 're 've 'm 'll 'd"],
  ["contractions upper", "IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T 'S 'T 'RE 'VE 'M 'LL 'D"],
  ["contractions mixed", "We'Ve a'lL 'Re 'rE 'lL 'Ll 'sS ''s '''ll 'x 'l 'r 'v 'e' 'ſ 'K 'İ"],
  ["cjk", "日本語のテキストです。東京は日本の首都です。中文文本，我想在苹果工作。今天天气很好。人工知能 東京都"],
  ["korean", "서울은 대한민국의 수도입니다. 오늘 날씨가 정말 좋네요. 한국어 문장입니다."],
  ["arabic", "مرحبا بالعالم، هذا نص عربي. القاهرة هي عاصمة مصر. ١٢٣٤٥ ٦٧٨"],
  ["hindi", "नमस्ते दुनिया। भारत एक विशाल देश है। मुझे हिंदी में किताबें पढ़ना पसंद है। १२३४"],
  ["cyrillic greek", "Привет, мир! Москва — столица России. Κάθε μέρα μαθαίνουμε κάτι καινούργιο."],
  ["thai khmer", "ภาษาไทยเป็นภาษาที่สวยงาม កាន់តែពិសេសអាច"],
  ["vietnamese combining", "Hà Nội là thủ đô. e\u0301 a\u0308 n\u0303 Ç\u0327 q\u20dd x\u0301\u0301\u0301"],
  ["emoji", "🚀 emojis 😀😃 ✅ 🦙 🦙🦙 are fun 🔥🔥🔥 ❤️ 👍🏽 1️⃣"],
  ["emoji zwj", "👨‍👩‍👧‍👦 family 👩‍💻 coder 🏳️‍🌈 flag 😶‍🌫️ face 👨‍👩‍👧‍👦👨‍👩‍👧‍👦"],
  ["flags", "🇺🇸🇫🇷🇯🇵🇩🇪 🇬🇧 🇪🇺x🇨🇦"],
  ["code js", "function add(a, b) { return a + b; }\nconst x = [1, 2, 3].map((v) => v * 2);\nfor (let i = 0; i < 10; i++) {\n    console.log(i);\n}\n"],
  ["code py", "def main():\n    print(\"hello\")\n    return {\"key\": \"value\", \"n\": 42}\n\nclass A:\n\tpass\n"],
  ["code misc", "#include <stdio.h>\r\nint main(void) {\r\n\tprintf(\"%d\\n\", 42);\r\n}\r\n<div class=\"x\">&amp;</div> SELECT * FROM t WHERE a<>b;"],
  ["whitespace runs", "a  b   c    d     e\t\tf\t \tg\n\nh\n\n\ni \n \n j\r\n\r\nk   \n   l                                  m"],
  ["leading trailing ws", "   leading and trailing   "],
  ["only newlines", "\n\n\n\n\n"],
  ["only spaces", "          "],
  ["tabs and cr", "\t\t\t\r\r\r\r\n\t \r x"],
  ["digits", "0 1 12 123 1234 12345 123456 1234567 12345678 3.14159 1,000,000 2024-11-24 0xFF 1e-5 ²³ ½ Ⅻ ①② ０１２３"],
  ["long digits", "9".repeat(200) + " " + "1234567890".repeat(30)],
  ["punctuation runs", "... !!! ??? --- === *** ''''''```````\"\"\"\"......!!!!!!?????? ------======= <<< >>> |||"],
  ["special tokens", "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>"],
  ["special tokens adjacent", "<|im_end|><|im_end|><|im_start|><|startoftext|>x<|endoftext|><image><|img_row_1_col_1|><|img_row_10_col_10|>"],
  ["special prefixes", "<|reserved_1|> <|reserved_10|> <|reserved_100|> <|reserved_1000|> <|reserved_2037|> <|reserved_9999|> <|im_end <|im_end| <|im_ end|>"],
  ["special partial", "<|  |> <| |> << >> <|> <||> <|pad|><|pad|> text<|tool_call_start|>[f(x=1)]<|tool_call_end|>"],
  ["user defined", "Mathias met Mathiasson; pythonic python code, Pythonpython Mathias."],
  ["whole words", "Hello extraordinary unbelievable tokenization Liquid internationalization Wednesday the ing Москва नमस्ते 🦙"],
  ["ignore merges spaces", "x        y\n\n\n\nz ===  ==="],
  ["unicode whitespace", "a\u00a0b\u0085c\u2028d\u2029e\u3000f\u1680g\u2000h\u200ai\u202fj\u205fk\ufeffl\u000bm\u000cn\u001co\u180ep\u200bq"],
  ["unicode whitespace runs", "\u00a0\u00a0x \u3000\u3000 y\u2028\u2028z \u0085\u0085 w\u00a0 \n\u00a0"],
  ["unicode versions", "\u1c89\u1c8a \u{10d4a}\u{10d4b} \u{16d40}x \u{1e5d0}1 \u{11380} \u0378 \u{e000} \u{10ffff} \ufdd0 \uffff"],
  ["astral letters", "\u{10400}\u{10401} \u{20000}\u{2a6d6} \u{1d400}\u{1d7ce} 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"],
  ["modifier title letters", "ʰʲ ǅungla ǈ Ǉ ᵃᵇ ª º µ ß ẞ ﬁ"],
  ["chk_txt", CHK_TXT],
  ["long word heap path", "a".repeat(700) + " " + "ab".repeat(300) + " 中文".repeat(200) + " " + "😀".repeat(150)],
  ["long runs heap path", " ".repeat(99) + "x" + "\n".repeat(121) + "\t".repeat(77) + "y" + " ".repeat(60) + "z " + "=".repeat(99) + " " + "-".repeat(75) + " " + ".".repeat(51)],
  ["long cjk", "东京是日本的首都我想在苹果工作今天天气很好人工智能正在改变世界".repeat(20)],
];

/** Seeded random unicode strings from pools chosen to hit every branch of the pre-tokenizer. */
function randomStrings(count: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)];
  const cp = (lo: number, hi: number) => String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
  const pools: (() => string)[] = [
    () => cp(0x20, 0x7e),
    () => cp(0x61, 0x7a).repeat(1 + Math.floor(rand() * 6)),
    () => pick([" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "   ", " \n "]),
    () => pick(["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'lL", "'d", "'D", "'", "''"]),
    () => pick(["\u00a0", "\u0085", "\u2028", "\u2029", "\u3000", "\u1680", "\u2003", "\u200a", "\u202f", "\u205f", "\ufeff", "\u000b", "\u000c", "\u001c", "\u001f", "\u180e", "\u200b"]),
    () => cp(0xc0, 0x24f), () => cp(0x370, 0x3ff), () => cp(0x400, 0x4ff), () => cp(0x5d0, 0x5ea), () => cp(0x620, 0x64a),
    () => cp(0x900, 0x97f), () => cp(0xe01, 0xe5b), () => cp(0x1780, 0x17ff), () => cp(0x3040, 0x30ff), () => cp(0x4e00, 0x9fff),
    () => cp(0xac00, 0xd7a3), () => cp(0x300, 0x36f), () => cp(0x1ab0, 0x1aff), () => pick(["\u200d", "\ufe0f", "\u20dd", "\u0903"]),
    () => cp(0x30, 0x39).repeat(1 + Math.floor(rand() * 5)), () => cp(0x660, 0x669), () => cp(0xff10, 0xff19), () => cp(0x2160, 0x2188),
    () => pick(["²", "³", "¹", "½", "①", "⑳", "\u{1d7ce}", "\u{1f100}"]),
    () => cp(0x1f300, 0x1faff), () => pick(["👨‍👩‍👧", "🏳️‍🌈", "🇫🇷", "🇺🇸", "👍🏽", "1️⃣", "😶‍🌫️", "\u{1f1e6}"]),
    () => cp(0x2000, 0x2bff), () => cp(0x10000, 0x10fff), () => cp(0x20000, 0x2a6df), () => cp(0x1c80, 0x1c8f),
    () => pick(["\u{10d4a}", "\u{16d40}", "\u{1e5d0}", "\u{11380}", "\u{1e6c0}", "\u0378", "\u{e000}", "\u{10ffff}", "\ufffd", "\ufdd0"]),
    () => { let c = Math.floor(rand() * 0x10ffff); if (c >= 0xd800 && c < 0xe000) c = 0xfffd; return String.fromCodePoint(c); },
    () => pick(["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|startoftext|>", "<|pad|>", "<image>", "<|reserved_100|>", "<|reserved_10|>",
      "<|img_row_2_col_3|>", "<|", "|>", "<|im_", "_end|>", "<|reserved_", "Mathias", "python", "Pythonpython"]),
    () => pick([" extraordinary", "Hello", " the", " Liquid", "ing", "       ", "\n\n\n\n", " ===", " 東京都", "人工知能"]),
    () => pick(DEFAULT_CORPUS.split(/(?<=\s)/)),
  ];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(rand() * 40);
    let s = "";
    for (let k = 0; k < n; k++) s += pick(pools)();
    out.push(s);
  }
  return out;
}
const RANDOM = randomStrings(500, 20261124);

function mismatches(texts: [string, string][], ours: (t: string) => number[], theirs: (t: string) => number[]) {
  const bad: { name: string; text: string; ours: number[]; theirs: number[] }[] = [];
  for (const [name, text] of texts) {
    const a = ours(text), b = theirs(text);
    if (a.length !== b.length || a.some((v, i) => v !== b[i])) bad.push({ name, text, ours: a, theirs: b });
  }
  return bad.slice(0, 5);
}

// ---- tests ----------------------------------------------------------------------------------------------

describe("Tokenizer.fromGguf", () => {
  it("reads vocabulary, special ids and flags from metadata", () => {
    expect(tok.vocabSize).toBe(2048);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(7);
    expect(tok.padId).toBe(0);
    expect(tok.addBos).toBe(true);
    expect([...tok.eogIds].sort((a, b) => a - b)).toEqual([2, 7]);
    expect(tok.tokenText(7)).toBe("<|im_end|>");
    expect(tok.tokenId("<|im_start|>")).toBe(6);
    expect(tok.tokenId(BYTE_TO_CHAR[10])).toBeGreaterThan(500);
    expect(tok.isSpecial(7) && tok.isSpecial(0) && tok.isSpecial(396)).toBe(true);
    expect(tok.isSpecial(tok.tokenId("Mathias")!)).toBe(false);
    expect(tok.tokenType(tok.tokenId("Mathias")!)).toBe(TokenType.USER_DEFINED);
    expect(tok.tokenBytes(7)).toEqual(new TextEncoder().encode("<|im_end|>"));
    expect(tok.tokenBytes(tok.tokenId("ĠĠ")!)).toEqual(Uint8Array.of(32, 32));
    expect(() => tok.tokenText(2048)).toThrow(Lfm2Error);
  });

  it("agrees with llama.cpp on BOS/EOS/EOT, EOG and special-ness of every token", () => {
    expect([ref.tokens.bos, ref.tokens.eos, ref.tokens.eot]).toEqual([tok.bosId, tok.eosId, tok.eotId]);
    expect(ref.tokens.shouldPrependBosToken).toBe(tok.addBos);
    const diff: number[] = [];
    for (let id = 0; id < tok.vocabSize; id++) {
      if (ref.isEogToken(asTok(id)) !== tok.eogIds.has(id) || ref.isSpecialToken(asTok(id)) !== tok.isSpecial(id)) diff.push(id);
    }
    expect(diff).toEqual([]);
  });

  it("rejects unsupported tokenizers with a typed error", () => {
    const variant = (k: string, v: GgufValue | undefined) => {
      const m = new Map(meta);
      if (v === undefined) m.delete(k); else m.set(k, v);
      return m;
    };
    const code = (m: Map<string, GgufValue>) => { try { Tokenizer.fromGguf(m); return "ok"; } catch (e) { return e instanceof Lfm2Error ? e.code : String(e); } };
    expect(code(variant("tokenizer.ggml.pre", "qwen2"))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.pre", undefined))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.model", "llama"))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.model", undefined))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.tokens", undefined))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.merges", undefined))).toBe("BAD_METADATA");
    expect(code(variant("tokenizer.ggml.pre", "llama-bpe"))).toBe("ok");
    expect(code(variant("tokenizer.ggml.pre", "llama3"))).toBe("ok");
  });
});

describe("encode matches llama.cpp", () => {
  for (const special of [true, false]) {
    it(`corpus (${CORPUS.length} texts, parseSpecial=${special})`, () => {
      expect(mismatches(CORPUS, (t) => tok.encode(t, { addBos: false, parseSpecial: special }), (t) => llamaIds(ref, t, special))).toEqual([]);
    });
    it(`${RANDOM.length} seeded random unicode strings (parseSpecial=${special})`, () => {
      const named = RANDOM.map((t, i): [string, string] => [`random #${i}`, t]);
      expect(mismatches(named, (t) => tok.encode(t, { addBos: false, parseSpecial: special }), (t) => llamaIds(ref, t, special))).toEqual([]);
    });
  }

  it("lone surrogates behave like llama.cpp (replaced by U+FFFD)", () => {
    const texts: [string, string][] = [["lone", "a\ud800b \udc00c \ud83d"], ["lone2", "\udfff\ud800\ud800x"]];
    expect(mismatches(texts, (t) => tok.encode(t, { addBos: false }), (t) => llamaIds(ref, t, true))).toEqual([]);
  });

  it("a 100 kB mixed document in one call", () => {
    const doc = CORPUS.map(([, t]) => t).join("\n") + RANDOM.join(" ");
    const big = doc.repeat(Math.ceil(100_000 / doc.length));
    expect(tok.encode(big, { addBos: false })).toEqual(llamaIds(ref, big, true));
  });

  it("the vocabulary exercises merges: multi-byte merges, space-prefixed words and ignore_merges", () => {
    const ids = CORPUS.flatMap(([, t]) => tok.encode(t, { addBos: false }));
    const merged = new Set(ids.filter((id) => id > 756 && tok.tokenType(id) === TokenType.NORMAL));
    expect(merged.size).toBeGreaterThan(300);
    const texts = [...merged].map((id) => tok.tokenText(id));
    expect(texts.filter((s) => s.startsWith("Ġ")).length).toBeGreaterThan(50);
    expect(texts.filter((s) => [...s].some((c) => c.charCodeAt(0) >= 0xa1 && c !== "Ġ" && c !== "Ċ" && c !== "ĉ")).length).toBeGreaterThan(50);
    // whole-word entries that the merges alone do not build
    const json = toHfTokenizerJson(tok) as { model: { ignore_merges: boolean } };
    json.model.ignore_merges = false;
    const noIgnore = Tokenizer.fromHfJson(json, toHfTokenizerConfig(tok));
    let differing = 0;
    for (const w of [" extraordinary", " tokenization", " internationalization", " 東京都", " Москва", " 👨‍👩‍👧‍👦", "\n\n\n\n"]) {
      const id = tok.tokenId(bytesToUnicode(w))!;
      expect(id, w).toBeDefined();
      expect(tok.encode(w, { addBos: false })).toEqual([id]);
      expect(llamaIds(ref, w, true)).toEqual([id]);
      const viaMerges = noIgnore.encode(w, { addBos: false });
      expect(noIgnore.decode(viaMerges)).toBe(w);
      if (viaMerges.length > 1) differing++;
    }
    expect(differing).toBeGreaterThanOrEqual(5);
  });

  it("matches special tokens verbatim, USER_DEFINED ones even without parseSpecial", () => {
    const text = "<|im_start|>user\nhi Mathias<|im_end|>";
    const withSp = tok.encode(text, { addBos: false });
    expect(withSp[0]).toBe(6);
    expect(withSp[withSp.length - 1]).toBe(7);
    expect(withSp).toContain(tok.tokenId("Mathias"));
    const noSp = tok.encode(text, { addBos: false, parseSpecial: false });
    expect(noSp).not.toContain(6);
    expect(noSp).not.toContain(7);
    expect(noSp).toContain(tok.tokenId("Mathias"));
    expect(tok.decode(noSp)).toBe(text);
  });

  it("partitions overlapping added tokens like llama.cpp (longest first, then leftmost)", async () => {
    const added: [string, number][] = [["xQzW", 4], ["QzWvK", 4], ["zW", 4], ["Hello world", 4], ["🦙🦙", 4], ["elL", 4],
      ["<|a|>", 3], ["|><|", 3], ["<|im_end|>x", 3], ["naïve", 4]];
    for (const [t] of added) expect(tok.tokenId(t), t).toBeUndefined(); // llama.cpp aborts on duplicate token texts
    const tokens = [...(meta.get("tokenizer.ggml.tokens") as string[]), ...added.map(([t]) => t)];
    const types = [...Array.from(meta.get("tokenizer.ggml.token_type") as Int32Array), ...added.map(([, ty]) => ty)];
    const path = join(dir, "overlap.gguf");
    const bytes = vocabGguf(tokens, types, meta.get("tokenizer.ggml.merges") as string[], { bos_token_id: 1, eos_token_id: 7 });
    writeFileSync(path, bytes);
    const t2 = Tokenizer.fromGguf(parseGguf(bytes).metadata);
    const m = await llama.loadModel({ modelPath: path, vocabOnly: true });
    try {
      const texts: [string, string][] = [
        ["overlap", "xQzWvK xQzW QzWvK zWzW axQzWvKa xQzWzWvK xxQzWW"], ["spaces", "Hello world! Hello  world Hello worldHello world"],
        ["emoji", "🦙🦙🦙 🦙 🦙🦙🦙🦙"], ["control overlap", "<|im_end|>x<|im_end|>y<|im_end|><|im_start|><|a|><|a|>|><|"],
        ["nested", "yelLow HelLo hello shelL"], ["accent", "naïve naïveté nai\u0308ve"],
      ];
      for (const special of [true, false]) {
        expect(mismatches(texts, (t) => t2.encode(t, { addBos: false, parseSpecial: special }), (t) => llamaIds(m, t, special))).toEqual([]);
      }
      const id = (s: string) => t2.tokenId(s)!;
      expect(t2.encode("xQzWvK", { addBos: false })).toEqual([...t2.encode("x", { addBos: false }), id("QzWvK")]);
      expect(t2.encode("<|im_end|>x", { addBos: false })).toEqual([id("<|im_end|>x")]);
    } finally {
      await m.dispose();
    }
  });

  it("adds a single BOS by default and never a second one", () => {
    expect(tok.encode("hello")[0]).toBe(1);
    expect(tok.encode("hello").slice(1)).toEqual(tok.encode("hello", { addBos: false }));
    const chat = "<|startoftext|><|im_start|>user\nhi<|im_end|>\n";
    expect(tok.encode(chat).filter((id) => id === 1)).toEqual([1]);
    expect(tok.encode(chat)).toEqual(tok.encode(chat, { addBos: false }));
    expect(tok.encode("")).toEqual([1]);
    expect(tok.encode("", { addBos: false })).toEqual([]);
  });
});

describe("pre-tokenizer", () => {
  it("splits CHK_TXT like the LLAMA3 regex", () => {
    const pieces = preTokenize(CHK_TXT);
    expect(pieces.join("")).toBe(CHK_TXT);
    expect(pieces.slice(0, 3)).toEqual(["\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n", "🚀", " ("]);
    expect(pieces).toContain(" 😶‍🌫️");
    expect(pieces.filter((p) => /^3+$/.test(p))).toEqual(["3", "33", "333", "333", "3", "333", "33", "333", "333",
      "333", "333", "3", "333", "333", "33", "3", "3", "3", "3", "3", "3"]);
    expect(pieces).toEqual(expect.arrayContaining(["'ve", "'s", " '", "RE", "'ll", "'Ve", " a", "'lL"]));
  });

  it("uses llama.cpp's character classes (Unicode 15.1, White_Space), not the JS engine's", () => {
    expect(preTokenize("x\u0085\u0085y")).toEqual(["x", "\u0085", "\u0085y"]); // U+0085 is \s for llama.cpp
    expect(preTokenize("x\ufeff\ufeffy")).toEqual(["x", "\ufeff\ufeff", "y"]); // U+FEFF is not
    expect(preTokenize("a\u1c89\u1c89b")).toEqual(["a", "\u1c89\u1c89", "b"]); // letter only since Unicode 16
    expect(preTokenize("\u00a0\u00a0\u00a0x")).toEqual(["\u00a0\u00a0", "\u00a0x"]);
    expect(preTokenize("e\u0301t\u0301")).toEqual(["e", "\u0301t", "\u0301"]); // combining marks are not \p{L}
    expect(preTokenize("Ⅻ½①2")).toEqual(["Ⅻ½①", "2"]);
  });
});

describe("decode", () => {
  it("is lossless: decode(encode(text)) === text", () => {
    for (const text of [...CORPUS.map(([, t]) => t), ...RANDOM]) expect(tok.decode(tok.encode(text, { addBos: false }))).toBe(text);
  });

  it("matches llama.cpp detokenize (with its space clean-up), with and without special tokens", () => {
    const bad: { text: string; ours: string; theirs: string }[] = [];
    for (const text of [...CORPUS.map(([, t]) => t), ...RANDOM.slice(0, 200), "Hello , world ! What ? yes . don 't I 'm he 's we 're they 've ' x ' ' y"]) {
      const ids = llamaIds(ref, text, true);
      for (const special of [true, false]) {
        const ours = tok.decode(ids, { skipSpecial: !special, cleanSpaces: true });
        const theirs = detok(ref, ids, special);
        if (ours !== theirs) bad.push({ text, ours, theirs });
      }
    }
    expect(bad.slice(0, 3)).toEqual([]);
  });

  it("matches llama.cpp on random id sequences (including invalid UTF-8)", () => {
    const rand = mulberry32(99);
    const bad: number[][] = [];
    for (let k = 0; k < 1000; k++) {
      const ids = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * tok.vocabSize));
      for (const special of [true, false]) {
        if (tok.decode(ids, { cleanSpaces: true, skipSpecial: !special }) !== detok(ref, ids, special)) bad.push(ids);
      }
    }
    expect(bad.slice(0, 3)).toEqual([]);
  });

  it("matches llama.cpp on every single token", () => {
    const bad: number[] = [];
    for (let id = 0; id < tok.vocabSize; id++) {
      if (tok.decode([id], { cleanSpaces: true }) !== detok(ref, [id], true)) bad.push(id);
      if (tok.decode([id], { skipSpecial: true, cleanSpaces: true }) !== detok(ref, [id], false)) bad.push(id);
    }
    expect(bad).toEqual([]);
  });

  it("streams: incomplete UTF-8 is held back, never U+FFFD for split sequences", () => {
    const text = "héllo 世界 😀 👨‍👩‍👧 €uro ঌ ꙮ 𝔘 <|im_end|> done";
    const ids = tok.encode(text, { addBos: false });
    // the vocabulary must really split characters across tokens here
    const partial = ids.filter((id) => { try { new TextDecoder("utf-8", { fatal: true }).decode(tok.tokenBytes(id)); return false; } catch { return true; } });
    expect(partial.length).toBeGreaterThan(5);
    const d = tok.createDecoder();
    let out = "";
    for (const id of ids) {
      const piece = d.push(id);
      expect(piece).not.toContain("\uFFFD");
      out += piece;
    }
    out += d.flush();
    expect(out).toBe(text);
    // byte tokens one at a time
    const byteIds = [...new TextEncoder().encode("€😀")].map((b) => tok.tokenId(BYTE_TO_CHAR[b])!);
    const d2 = tok.createDecoder();
    expect(byteIds.map((id) => d2.push(id))).toEqual(["", "", "€", "", "", "", "😀"]);
    expect(d2.push(byteIds[0])).toBe("");
    expect(d2.flush()).toBe("\uFFFD");
    expect(d2.push(byteIds[2])).toBe("\uFFFD"); // a stray continuation byte after flush is invalid on its own
    expect(d2.flush()).toBe("");
    const d3 = tok.createDecoder({ skipSpecial: true });
    expect(ids.map((id) => d3.push(id)).join("") + d3.flush()).toBe(text.replace("<|im_end|>", ""));
  });
});

describe("HF tokenizer.json", () => {
  it("export → import gives the same ids", () => {
    const json = JSON.parse(JSON.stringify(toHfTokenizerJson(tok)));
    expect(json.model.type).toBe("BPE");
    expect(json.model.ignore_merges).toBe(true);
    expect(json.pre_tokenizer.pretokenizers[0].pattern.Regex).toBe(LFM2_PRETOKENIZER_REGEX);
    expect(json.pre_tokenizer.pretokenizers[1]).toMatchObject({ type: "ByteLevel", add_prefix_space: false, use_regex: false });
    expect(json.added_tokens.length).toBe(Array.from({ length: tok.vocabSize }, (_, i) => tok.tokenType(i)).filter((t) => t === TokenType.CONTROL || t === TokenType.USER_DEFINED).length);
    expect(json.post_processor.single[0]).toEqual({ SpecialToken: { id: "<|startoftext|>", type_id: 0 } });
    const back = Tokenizer.fromHfJson(json, JSON.parse(JSON.stringify(toHfTokenizerConfig(tok))));
    expect([back.vocabSize, back.bosId, back.eosId, back.padId, back.addBos]).toEqual([tok.vocabSize, 1, 7, 0, true]);
    expect([...back.eogIds].sort()).toEqual([...tok.eogIds].sort());
    const all: [string, string][] = [...CORPUS, ...RANDOM.map((t, i): [string, string] => [`random #${i}`, t])];
    for (const special of [true, false]) {
      expect(mismatches(all, (t) => back.encode(t, { parseSpecial: special }), (t) => tok.encode(t, { parseSpecial: special }))).toEqual([]);
    }
    // without tokenizer_config.json, BOS comes from the post-processor
    const bare = Tokenizer.fromHfJson(json);
    expect([bare.bosId, bare.addBos]).toEqual([1, true]);
    expect(bare.encode("hi there")).toEqual(tok.encode("hi there"));
  });

  it("rejects what it cannot reproduce", () => {
    const json = toHfTokenizerJson(tok) as any;
    const code = (mut: (j: any) => void) => {
      const j = JSON.parse(JSON.stringify(json));
      mut(j);
      try { Tokenizer.fromHfJson(j); return "ok"; } catch (e) { return e instanceof Lfm2Error ? e.code : String(e); }
    };
    expect(code(() => {})).toBe("ok");
    expect(code((j) => { j.model.type = "Unigram"; })).toBe("BAD_METADATA");
    expect(code((j) => { j.pre_tokenizer = { type: "ByteLevel", add_prefix_space: false, use_regex: true }; })).toBe("BAD_METADATA");
    expect(code((j) => { j.pre_tokenizer.pretokenizers[0].pattern.Regex = "\\s+"; })).toBe("BAD_METADATA");
    expect(code((j) => { j.normalizer = { type: "NFC" }; })).toBe("BAD_METADATA");
    expect(code((j) => { j.model.merges = [5]; })).toBe("BAD_METADATA");
    expect(code((j) => { j.pre_tokenizer.pretokenizers[0].pattern.Regex = j.pre_tokenizer.pretokenizers[0].pattern.Regex.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"); })).toBe("ok");
  });

  it("uses LFM2's real tokenizer_config.json (507 added tokens) like llama.cpp does", async () => {
    // the synthetic BPE model with the real added tokens: ids up to 64399, "Mathias"/"python" user-defined
    const json = JSON.parse(JSON.stringify(toHfTokenizerJson(tok)));
    for (const t of ["Mathias", "python"]) delete json.model.vocab[t];
    json.added_tokens = json.added_tokens.filter((t: { special: boolean }) => t.special);
    const hf = Tokenizer.fromHfJson(json, realConfig);
    expect(Object.keys(realConfig.added_tokens_decoder).length).toBe(507);
    expect(hf.vocabSize).toBe(64400);
    expect([hf.bosId, hf.eosId, hf.padId, hf.eotId, hf.addBos]).toEqual([1, 7, 0, 2, true]);
    expect([...hf.eogIds].sort((a, b) => a - b)).toEqual([2, 7]);
    expect([hf.tokenId("<|cot_start|>"), hf.tokenId("<|file_end|>"), hf.tokenId("Mathias"), hf.tokenId("python")]).toEqual([64394, 64399, 64011, 64014]);
    expect(hf.tokenType(64011)).toBe(TokenType.USER_DEFINED);
    expect(hf.tokenType(64394)).toBe(TokenType.CONTROL);
    expect(hf.tokenType(14)).toBe(TokenType.CONTROL); // "<|reserved_4|>" from the synthetic tokenizer.json
    expect(hf.tokenType(30000)).toBe(TokenType.UNUSED);
    expect(hf.tokenText(30000)).toBe("[PAD30000]");
    expect(hf.decode([30000])).toBe("");
    expect(hf.isSpecial(64011)).toBe(false);
    expect(hf.isSpecial(64394)).toBe(true);
    const ids = hf.encode("<|im_start|>user\nMathias writes pythonic python<|im_end|>\n<|cot_start|>x<|cot_end|>", { addBos: false });
    expect(ids[0]).toBe(6);
    expect(ids).toEqual(expect.arrayContaining([64011, 64014, 7, 64394, 64395]));
    const plain = hf.encode("<|im_start|>Mathias<|cot_start|>", { addBos: false, parseSpecial: false });
    expect(plain).toContain(64011);
    expect(plain).not.toContain(6);
    expect(plain).not.toContain(64394);
    expect(hf.decode(ids, { skipSpecial: true })).toBe("user\nMathias writes pythonic python\nx");

    // the same vocabulary as a GGUF through llama.cpp
    const path = join(dir, "hf.gguf");
    writeFileSync(path, vocabGguf(Array.from({ length: hf.vocabSize }, (_, i) => hf.tokenText(i)), Array.from({ length: hf.vocabSize }, (_, i) => hf.tokenType(i)),
      hf.mergePairs().map(([a, b]) => `${a} ${b}`), { bos_token_id: 1, eos_token_id: 7, padding_token_id: 0 }));
    // (a copy: parseGguf's typed arrays assume a Uint8Array that owns its buffer, which a pooled Node Buffer need not)
    const fromGguf = Tokenizer.fromGguf(parseGguf(new Uint8Array(readFileSync(path))).metadata);
    const m = await llama.loadModel({ modelPath: path, vocabOnly: true });
    try {
      const texts: [string, string][] = [...CORPUS, ["added", "Mathias python pythonpython <|cot_start|><|review_end|> <|file_start|>"],
        ...RANDOM.slice(0, 200).map((t, i): [string, string] => [`random #${i}`, t])];
      for (const special of [true, false]) {
        expect(mismatches(texts, (t) => hf.encode(t, { addBos: false, parseSpecial: special }), (t) => llamaIds(m, t, special))).toEqual([]);
        expect(mismatches(texts, (t) => fromGguf.encode(t, { addBos: false, parseSpecial: special }), (t) => llamaIds(m, t, special))).toEqual([]);
      }
      // no eot_token_id in this file: llama.cpp guesses EOT from token texts (hash-map order), so compare the EOG set only
      const eog = [0, 1, 2, 7, 64011, 64394, 64399].filter((id) => m.isEogToken(asTok(id)));
      expect(eog).toEqual([...fromGguf.eogIds].sort((a, b) => a - b));
    } finally {
      await m.dispose();
    }
  });

  const realReason = realJsonPath ? "" : " [SKIPPED: no real LFM2 tokenizer.json — set LFM2_TOKENIZER_JSON or place tokenizer.json beside the fixtures]";
  if (!realJsonPath) console.warn(`tokenizer.test.ts: real-vocabulary vectors skipped:${realReason}`);
  it.skipIf(!realJsonPath)(`real LFM2 tokenizer.json reproduces test-vectors.json (HF AutoTokenizer ids, CHK_TXT sha256)${realReason}`, () => {
    const raw = readFileSync(realJsonPath!);
    const real = Tokenizer.fromHfJson(JSON.parse(raw.toString("utf8")), realConfig);
    const facts = vectors.tokenizer_facts;
    expect(real.tokenId("<|im_end|>")).toBe(facts.eos_id_generation);
    expect(real.mergePairs().length).toBe(facts.merges_count);
    for (const v of vectors.encode_with_bos) expect(real.encode(v.text), v.text).toEqual(v.ids);
    expect(real.tokenId(BYTE_TO_CHAR[10])).toBe(708); // "\n" per the llama.cpp load log (spec §4.1)
    const ids = real.encode(CHK_TXT);
    const sha = createHash("sha256").update(`[${ids.join(", ")}]`, "utf8").digest("hex");
    expect(sha).toBe(vectors.llama_cpp_pretokenizer_hash.expected_sha256);
  });
});
