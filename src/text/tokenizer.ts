// Byte-level BPE tokenizer for LFM2 (spec §4), token-for-token identical to llama.cpp.
//
// What llama.cpp does for `tokenizer.ggml.pre == "lfm2"` (and the llama3 family), reproduced here:
//  1. Special / added tokens (types CONTROL, USER_DEFINED, UNKNOWN) are cut out of the text verbatim
//     before anything else, longest token text first (UTF-8 length), all occurrences of one token before
//     the next token is tried. CONTROL/UNKNOWN tokens only when `parseSpecial`; USER_DEFINED always.
//  2. Every remaining text fragment is split into pre-tokens by the LLAMA3 regex
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//     implemented as a hand-written scanner (like llama.cpp's) over Unicode 15.1 character classes:
//     llama.cpp classifies code points with its own tables, not the JS engine's, so \p{L} / \p{N} here come
//     from an embedded Unicode 15.1 table and \s is the Unicode White_Space property (which, unlike JS \s,
//     contains U+0085 and not U+FEFF).
//  3. Each pre-token is UTF-8 encoded and mapped byte-wise to the GPT-2 alphabet. With ignore_merges, a
//     pre-token that is itself a vocabulary entry becomes that token. Otherwise BPE merges are applied,
//     lowest merge rank first, leftmost first among equal ranks.
import { Lfm2Error } from "../errors.js";
import { metaNumber, metaNumbers, metaString, metaStrings, type GgufValue } from "../formats/gguf.js";
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from "./byte-unicode.js";
import { hfJsonToTokenizerData } from "./tokenizer-json.js";

export { toHfTokenizerJson, toHfTokenizerConfig } from "./tokenizer-json.js";

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TokenType = { UNDEFINED: 0, NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Everything a Tokenizer is built from; both loaders produce this. */
export interface TokenizerData {
  tokens: string[];
  /** One TokenType per token (missing → NORMAL). */
  types?: ArrayLike<number>;
  /** Merge rules in rank order: "left right" strings (split at the first space after the first character, as llama.cpp does) or pairs. */
  merges: ReadonlyArray<string | readonly [string, string]>;
  bosId?: number | null;
  eosId?: number | null;
  eotId?: number | null;
  eomId?: number | null;
  padId?: number | null;
  /** Further end-of-generation ids (FIM pad/rep/sep in llama.cpp). */
  extraEogIds?: number[];
  addBos?: boolean;
  addEos?: boolean;
  /** Emit a pre-token directly when it is a vocabulary entry (true for LFM2 / llama3). */
  ignoreMerges?: boolean;
  /** Added tokens that swallow ASCII whitespace on their left / right (HF lstrip / rstrip). */
  lstrip?: Iterable<number>;
  rstrip?: Iterable<number>;
}

export interface EncodeOptions {
  /** Prepend BOS (default: the model's add_bos_token). Never adds a second BOS if the text already starts with one. */
  addBos?: boolean;
  /** Append EOS (default: the model's add_eos_token, false for LFM2). */
  addEos?: boolean;
  /** Match CONTROL tokens such as `<|im_end|>` written in the text (default true). USER_DEFINED tokens are always matched. */
  parseSpecial?: boolean;
  /**
   * Flat [start, end) pairs of UTF-16 offsets where CONTROL / UNKNOWN spellings are plain text even
   * with parseSpecial (e.g. message content inside a rendered chat prompt, see renderChatProtected).
   */
  plainSpans?: ArrayLike<number>;
}

export interface DecodeOptions {
  /** Drop CONTROL / UNKNOWN tokens (llama.cpp `unparse_special = false`). */
  skipSpecial?: boolean;
  /** Apply llama.cpp's detokenizer space clean-up (" ." → ".", " 's" → "'s", ...), as `llama_detokenize` does for BPE vocabularies. Lossy; default false. */
  cleanSpaces?: boolean;
}

export interface StreamDecoder {
  /** Text that became complete with this token (incomplete UTF-8 sequences are held back). */
  push(id: number): string;
  /** Whatever is still held back (an incomplete sequence becomes U+FFFD). Resets the decoder. */
  flush(): string;
}

// ---- character classes (Unicode 15.1, the version of llama.cpp's unicode-data.cpp) ----------------

const C_LETTER = 1, C_NUMBER = 2, C_SPACE = 4;

// Run-length table of General_Category L (letters) and N (numbers) over U+0000..U+10FFFF for Unicode 15.1:
// each run is its length in base 36 followed by O (other), L (letter) or N (number). Generated from the
// Unicode 15.1.0 UCD; identical to the L/N flags of llama.cpp's tables (checked code point by code point).
const UNICODE_15_1_LN =
  "1cOaN7OqL6OqL1bO1L7O2N1O1L3O1N1L1O3N1OnL1OvL1OcqL4OcLeO5L7O1L1O1L3lO5L1O2L2O4L1O1L6O1L1O3L1O1L1OkL1O" +
  "2bL1O3vL8O4mL1O12L2O1L6O15L1zOrL4O4L19O17LlOaN4O2L1O2rL1O1LfO2L7O2LaN3L2O1LgO1L1OuLtO2hLbO1LeOaNxL9O" +
  "2L4O1L5OmL4O1L9O1L3O1LnOpL7ObL5OoL1O6LhO16L1mO1iL3O1LiO1L7OaL4OaN1OgL4O8L2O2L2OmL1O7L1O1L3O4L3O1LgO1" +
  "LdO2L1O3L4OaN2L2O6N2O1L8O6L4O2L2OmL1O7L1O2L1O2L1O2LvO4L1O1L7OaN2O3LgO9L1O3L1OmL1O7L1O2L1O5L3O1LiO1Lf" +
  "O2L4OaN9O1LbO8L2O2L2OmL1O7L1O2L1O5L3O1LuO2L1O3L4OaN1O1L6NbO1L1O6L3O3L1O4L3O2L1O1L1O2L3O2L3O3L3OcLmO1" +
  "LlOdNiO8L1O3L1OnL1OgL3O1LqO3L2O1L2O2L4OaN8O7N1O1L4O8L1O3L1OnL1OaL1O5L3O1LvO2L1O2L4OaN1O2LhO9L1O3L1O1" +
  "5L2O1LgO1L5O3L1O7N3L4OjN1O6L5OiL3OoL1O9L1O1L2O7LvOaNhO1cL1O2LcO7L9OaN13O2L1O1L1O5L1OoL1O1L1OaL1O2L9O" +
  "1L2O5L1O1L9OaN2O4LwO1LvOkNcO8L1O10LrO5L37O17LkO1LaN6O6L4O4L3O1L3O2L7O3L4OdLcO1L1OaN6O12L1O1L5O1L2O17" +
  "L1O99L1O4L2O7L1O1L1O4L2O15L1O4L2OxL1O4L2O7L1O1L1O4L2OfL1O1lL1O4L2O1vLeOkN3OgLgO2eL2O6L3Oh8L2OhL1OqL5" +
  "O23L3O3N8L7OiLdOjLeOiLeOdL1O3LfO1gLzO1L4O1L3OaN6OaNmOaN6O2hL7O5L2OyL1O1L5O1yLaOvL13OaNuL2O5LbO18L4Oq" +
  "L6ObN11OnL9O1hL17OaN6OaNdO1L2lO1bLhO8L3OaN15OuLdO2LaN18LqO10LsOaN3O3LaN10L2O9L7O17L2O3L15O4L1O6L1O2L" +
  "3O1L5O5cL1sO7qL2O6L2O12L2O6L2O8L1O1L1O1L1O1L1OvL2O1hL1O7L1O1L3O3L1O7L3O4L2O6L4OdL5O3L1O7L37O1N1L2O6N" +
  "5O1LaN6OdL2tO1L4O1L2OaL1O1L3O5L6O1L1O1L1O1L1O4L1ObL2O4L5O5L4O1L1O1fN2L5Nk6O1oN26OmNhiOuNvgO6dL6O4L3O" +
  "2L9O1N2O12L1O1L5O1L2O1kL7O1LgOnL9O7L1O7L1O7L1O7L1O7L1O7L1O7L1O7L28O1Ld1O2L1NpO9N7O5L2O3N2L4O2eL6O3L1" +
  "O2iL1O4L5O17L1O2mL3O4NaOwL1cOgLwOaNuO8N1OfNwOaN13OfN8wO534L1sOh3hL1vO1aL2O7hL3OgLaN2LkO1bLgOvL2O1yLa" +
  "N13O9L2O2vL2O1sL5O2L1O1L1O5LoOgL1O3L1O4L1OnLdO6NaO1gLeO1eLsOaNoO6L3O1L1O2L1OaNsLaOnLpOtL7O1bLsO1LaN6" +
  "O5L1OaLaN5L1O15LnO3L1O8L4OaN6OnL3O1L3O1eL1O1L3O2L2O5L2O1L1O1LoO3L2ObL7O3LcO6L2O6L2O6L9O7L1O7L1O17L1O" +
  "eL6O37LdOaN6O8mcLcOnL4O1dL6isOa6L2O2yL12O7LcO5L5O1L1OaL1OdL1O5L1O1L1O2L1O2L1O30LxOa3LiO1sL2O1iL14OcL" +
  "38O5L1O3rLjOaN7OqL6OqLbO2hL3O6L2O6L2O6L2O3LzOcL1OqL1OjL1O2L1OfL2OeLyO3fLcO19NcO1lNhO2N6sOtL3O1dLgOrN" +
  "4OwL4N9OkL1N8L1N5O12LaOuL2O10L4O8L1O5N16O4eL2OaN6O10L4O10L4O14L8O1gLcObL1OfL1O7L1O2L1ObL1OfL1O7L1O2L" +
  "1vO8nL9OmLaO8LoO6L1O16L1O9L1xO6L2O1L1O18L1O2L3O1L2OnL2O8NnL2O7NvL8O9N1cOjL1O2L5O5NmL6N4OqL1yO1kL4O2N" +
  "2LgN2O1aN1LfO4L1O3L1OtLaO9NnOtL2N1OtL3NwO8L1OsL6O5NgO1iLaOmL2O8NjL5O8NiLnO7N28O21L1jO1fLdO1fL7O6N10L" +
  "cOaN86OvN1O16L6O2L26OtLaN1L8OmLbO4NrOiL1aOlL7NkOnLcO1hLqOuN1O2L2O1LdO19LwOpL7OaN9O10LfOaN4O1L2O1L8Oz" +
  "L3O1LcO1cLeO4LbOaN1L1O1L4OkNbOiL1OpLjO2L1rO7L1O1L1O4L1OfL1OaL7O1bLhOaNbO8L2O2L2OmL1O7L1O2L1O5L3O1LiO" +
  "1LcO5L4eO1hLiO4L5OaN5O3LuO1cLkO2L1O1L8OaN4mO1bL15O4L10O1cLkO1LbOaN12O17LdO1L7OaN1iOrLlOcN4O7L55O18L3" +
  "8O1sLjNcO8L2O1L2O8L1O2L1OoLfO1L1O1LeOaN1yO8L2O13LgO1L1O1LsO1LaO14L7O1LlO1LbO1aLjO1LiO21L7bO9L1O11LhO" +
  "1LfOtN5OuL34O7L1O2L1O12LlO1L9OaN6O6L1O2L1OwLeO1L7OaN8mOjLfO1L1OdL1OyLsOaN2eO1LfOlN17OpmL2uO33NhO5gL2" +
  "18O2pLfOtsLhO6L33tOg7L6ntOftL7OvL1OaN6O27L1OaN6OuLiO1cLgO4LcOaN1O7N1OlL5OjLj4O1sLnN2xO23L5O1L1uOdL1s" +
  "O2L1O1LsO4qgL8OyeL16O9L6w7O4L1O7L1O2L1O83LfO1LtO3L2O1LeO4L8Ob0L1s4O2zL5OdL3O9L7OaL4diOkNcOkN30OpN3rO" +
  "2dL1O1zL1O2L2O1L2O2L2O4L1OcL1O1L1O7L1O1tL1O4L2O8L1O7L1OsL1O4L1O5L1O1L3O7L1O9gL2OpL1OpL1OvL1OpL1OvL1O" +
  "pL1OvL1OpL1OvL1OpL1O8L2O1eN1dsOvL6O6L79O1qL42O19LaO7L2OaN4O1L8xOuLiO18L4OaNd2OsL4OaNkmO7L1O4L1O2L1Of" +
  "L1O5hL2O9N1cO1wL7O1L4OaNlzO1nN1O3N1O4N24O19N1OfN5eO4L1OrL1O2L1O1L2O1L1OaL1O4L1O1L1O1L6O1L4O1L1O1L1O1" +
  "L1O3L1O2L1O1L2O1L1O1L1O1L1O1L1O1L1O2L1O1L2O4L1O7L1O4L1O4L1O1L1OaL1OhL5O3L1O5L1OhLg4OdN25fOaNsmOwyoLw" +
  "O37eL6O66L2O4g2LeO5rlLfOhaL1wiOf2L15uO3t7L5O38gLjgwgO";
// Unicode White_Space property (llama.cpp's unicode_set_whitespace).
const WHITE_SPACE = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000];

let classTable: Uint8Array | undefined;
function cpClasses(): Uint8Array {
  if (classTable) return classTable;
  const t = new Uint8Array(0x110000);
  const s = UNICODE_15_1_LN;
  let cp = 0, run = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 79 /* O */ || ch === 76 /* L */ || ch === 78 /* N */) {
      if (ch !== 79) t.fill(ch === 76 ? C_LETTER : C_NUMBER, cp, cp + run);
      cp += run;
      run = 0;
    } else {
      run = run * 36 + (ch <= 57 ? ch - 48 : ch - 87);
    }
  }
  if (cp !== 0x110000) throw new Error("corrupt unicode table");
  for (const c of WHITE_SPACE) t[c] |= C_SPACE;
  classTable = t;
  return t;
}

/** Decode text[start, end) to code points (lone surrogates → U+FFFD, like the UTF-8 conversion llama.cpp sees). */
function decodeCodePoints(text: string, start: number, end: number, cps: Uint32Array, offs: Uint32Array): number {
  let n = 0;
  for (let i = start; i < end;) {
    offs[n] = i;
    let c = text.charCodeAt(i++);
    if (c >= 0xd800 && c < 0xe000) {
      const d = i < end ? text.charCodeAt(i) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) { c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000; i++; } else c = 0xfffd;
    }
    cps[n++] = c;
  }
  offs[n] = end;
  return n;
}

const lowerAscii = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);

/**
 * LLAMA3 pre-tokenizer over cps[0, n): calls emit(start, end) (code point indices) for every pre-token.
 * Alternatives are tried in regex order at each position, exactly like llama.cpp's custom splitter.
 */
function splitLlama3(cps: Uint32Array, n: number, cls: Uint8Array, emit: (a: number, b: number) => void): void {
  let pos = 0;
  while (pos < n) {
    const start = pos;
    const cp = cps[pos];
    const c = cls[cp];
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (cp === 0x27 && pos + 1 < n) {
      const a = lowerAscii(cps[pos + 1]);
      if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) { emit(start, pos + 2); pos += 2; continue; }
      if (pos + 2 < n) {
        const b = lowerAscii(cps[pos + 2]);
        if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) { emit(start, pos + 3); pos += 3; continue; }
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (cp !== 0x0d && cp !== 0x0a && !(c & C_NUMBER)) {
      if (c & C_LETTER || (pos + 1 < n && cls[cps[pos + 1]] & C_LETTER)) {
        pos++;
        while (pos < n && cls[cps[pos]] & C_LETTER) pos++;
        emit(start, pos);
        continue;
      }
    }
    // \p{N}{1,3}
    if (c & C_NUMBER) {
      let ini = pos;
      while (pos < n && cls[cps[pos]] & C_NUMBER) {
        pos++;
        if (pos - ini >= 3) { emit(ini, pos); ini = pos; }
      }
      if (pos > ini) emit(ini, pos);
      continue;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*` (a lone trailing space also lands here: the same single-space token \s+ would give)
    const next = cp === 0x20 ? (pos + 1 < n ? cls[cps[pos + 1]] : -1) : c;
    if (next === -1 || (next & 7) === 0) {
      if (cp === 0x20) pos++;
      while (pos < n && (cls[cps[pos]] & 7) === 0) pos++;
      while (pos < n && (cps[pos] === 0x0d || cps[pos] === 0x0a)) pos++;
      emit(start, pos);
      continue;
    }
    // whitespace alternatives
    let ws = 0, lastNl = 0;
    while (pos + ws < n && cls[cps[pos + ws]] & C_SPACE) {
      const w = cps[pos + ws];
      if (w === 0x0d || w === 0x0a) lastNl = pos + ws + 1;
      ws++;
    }
    if (lastNl > 0) { pos = lastNl; emit(start, pos); continue; }           // \s*[\r\n]+
    if (ws > 1 && pos + ws < n) { pos += ws - 1; emit(start, pos); continue; } // \s+(?!\S)
    if (ws > 0) { pos += ws; emit(start, pos); continue; }                   // \s+
    pos++; // unreachable for valid input: every code point is a letter, number, space or "other"
    emit(start, pos);
  }
}

/** The LLAMA3/LFM2 pre-tokens of a plain text fragment (no special-token handling). Exposed for tests and tools. */
export function preTokenize(text: string): string[] {
  const cps = new Uint32Array(text.length), offs = new Uint32Array(text.length + 1);
  const n = decodeCodePoints(text, 0, text.length, cps, offs);
  const out: string[] = [];
  splitLlama3(cps, n, cpClasses(), (a, b) => out.push(text.slice(offs[a], offs[b])));
  return out;
}

// ---- helpers ----------------------------------------------------------------------------------------

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");
const EMPTY = new Uint8Array(0);
// Token texts that llama.cpp always treats as end-of-generation (and forces to CONTROL).
const EOG_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>"];
const A_NORMAL = 1, A_UNKNOWN = 2, A_CONTROL = 4, A_USER = 8, A_UNUSED = 16, A_BYTE = 32;
const PAIR_MUL = 8388608; // 2^23: pair key = left * 2^23 + right; packed value = rank * 2^23 + merged
const HEAP_THRESHOLD = 48;
const WORD_CACHE_LIMIT = 1 << 18;

function typeToAttr(t: number): number {
  switch (t) {
    case TokenType.NORMAL: return A_NORMAL;
    case TokenType.UNKNOWN: return A_UNKNOWN;
    case TokenType.CONTROL: return A_CONTROL;
    case TokenType.USER_DEFINED: return A_USER;
    case TokenType.UNUSED: return A_UNUSED;
    case TokenType.BYTE: return A_BYTE;
    default: return 0;
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

const isCSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** llama.cpp's space clean-up passes of llama_detokenize (clean_spaces = true for BPE vocabularies). */
function cleanUpSpaces(s: string): string {
  if (!s.includes(" ")) return s;
  // pass 1: " ?", " !", " .", " ," lose the space
  const a: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const x = s[i];
    if (i > 0 && s[i - 1] === " " && (x === "?" || x === "!" || x === "." || x === ",")) a.pop();
    a.push(x);
  }
  // pass 2: " ' " → "'" (left to right; a removed space cannot start the next match)
  const b: string[] = [];
  let blanked = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (i > 0 && x === "'" && i + 1 < a.length && a[i - 1] === " " && i - 1 !== blanked && a[i + 1] === " ") {
      b.pop();
      b.push(x);
      blanked = ++i;
      continue;
    }
    b.push(x);
  }
  // pass 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it)
  const c: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const x = b[i];
    if (i > 0 && b[i - 1] === " " && x === "'" && i + 1 < b.length) {
      const x1 = b[i + 1];
      if (x1 === "s" || x1 === "m") c.pop();
      else if (x1 !== "t" && x1 !== "d" && i + 2 < b.length) {
        const x2 = b[i + 2];
        if ((x1 === "r" && x2 === "e") || (x1 === "v" && x2 === "e")) c.pop();
      }
    }
    c.push(x);
  }
  return c.join("");
}

// ---- the tokenizer ----------------------------------------------------------------------------------

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eotId: number | null;
  readonly eogIds: ReadonlySet<number>;
  readonly padId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly ignoreMerges: boolean;

  private readonly tokens: string[];
  private readonly types: Int32Array;
  private readonly attrs: Uint8Array;
  private readonly textToId = new Map<string, number>();
  private readonly mergeList: [string, string][] = [];
  /** Interned strings: ids < vocabSize are vocabulary tokens (text → token_to_id), higher ids are other merge strings. */
  private readonly internMap = new Map<string, number>();
  private readonly internExtra: string[] = [];
  private readonly pairs = new Map<number, number>();
  private readonly byteSym = new Int32Array(256);
  private readonly wordCache = new Map<string, number[]>();
  private readonly bytesCache: (Uint8Array | undefined)[];
  private readonly lstrip: Set<number>;
  private readonly rstrip: Set<number>;
  // special-token matcher
  private readonly trieNext = new Map<number, number>(); // node * 65536 + UTF-16 unit → child node (root = 0)
  private readonly trieIds: (number[] | undefined)[] = [undefined]; // special ids whose text ends at a node
  private readonly firstUnit = new Uint8Array(65536);
  private readonly specialOrder: Int32Array; // id → position in llama.cpp's cache_special_tokens order, -1 if not special
  private readonly specialIds: Int32Array; // position → id
  // scratch buffers
  private cps = new Uint32Array(256);
  private offs = new Uint32Array(257);
  private bytes = new Uint8Array(256);

  constructor(data: TokenizerData) {
    const n = data.tokens.length;
    if (n === 0) throw new Lfm2Error("BAD_METADATA", "tokenizer vocabulary is empty");
    if (n >= PAIR_MUL / 2) throw new Lfm2Error("BAD_METADATA", `tokenizer vocabulary too large (${n})`);
    this.vocabSize = n;
    this.tokens = data.tokens.map((t, i) => (t === "" ? `[EMPTY_${i}]` : t)); // llama.cpp renames empty tokens
    this.types = new Int32Array(n);
    this.attrs = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const t = data.types && i < data.types.length ? data.types[i] : TokenType.NORMAL;
      this.types[i] = t;
      this.attrs[i] = typeToAttr(t);
      this.textToId.set(this.tokens[i], i); // last one wins, like llama.cpp's token_to_id
    }
    const id = (v: number | null | undefined) => (v == null || !Number.isInteger(v) || v < 0 || v >= n ? null : v);
    this.bosId = id(data.bosId);
    this.eosId = id(data.eosId);
    this.padId = id(data.padId);
    this.addBos = data.addBos ?? false;
    this.addEos = data.addEos ?? false;
    this.ignoreMerges = data.ignoreMerges ?? false;
    if (this.addBos && this.bosId === null) throw new Lfm2Error("BAD_METADATA", "add_bos_token is set but there is no valid BOS token id");
    if (this.addEos && this.eosId === null) throw new Lfm2Error("BAD_METADATA", "add_eos_token is set but there is no valid EOS token id");
    // end-of-generation set (llama.cpp: eos, eot, eom, fim pad/rep/sep, plus tokens with well-known EOG texts)
    const eog = new Set<number>();
    for (const t of EOG_TEXTS) {
      const tid = this.textToId.get(t);
      if (tid !== undefined) { eog.add(tid); this.attrs[tid] |= A_CONTROL; }
    }
    let eot = id(data.eotId);
    if (eot === null) for (const t of ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"]) {
      const tid = this.textToId.get(t);
      if (tid !== undefined && tid !== this.eosId) { eot = tid; break; }
    }
    this.eotId = eot;
    for (const v of [this.eosId, eot, id(data.eomId), ...(data.extraEogIds ?? []).map(id)]) if (v !== null) eog.add(v);
    this.eogIds = eog;
    this.lstrip = new Set(data.lstrip ?? []);
    this.rstrip = new Set(data.rstrip ?? []);
    this.bytesCache = new Array(n);

    // interning and merge ranks
    for (const [text, tid] of this.textToId) this.internMap.set(text, tid);
    for (let b = 0; b < 256; b++) this.byteSym[b] = this.intern(BYTE_TO_CHAR[b]);
    const merges = data.merges;
    for (let r = 0; r < merges.length; r++) {
      const m = merges[r];
      let left: string, right: string;
      if (typeof m === "string") {
        const sp = m.indexOf(" ", 1);
        if (sp < 0) continue; // llama.cpp keeps an empty pair that can never match
        left = m.slice(0, sp);
        right = m.slice(sp + 1);
      } else {
        [left, right] = m;
      }
      this.mergeList.push([left, right]);
      const key = this.intern(left) * PAIR_MUL + this.intern(right);
      if (!this.pairs.has(key)) this.pairs.set(key, r * PAIR_MUL + this.intern(left + right));
    }
    if (this.vocabSize + this.internExtra.length >= PAIR_MUL) throw new Lfm2Error("BAD_METADATA", "too many distinct merge strings");

    // special tokens, in llama.cpp's cache_special_tokens order (UTF-8 length descending; ties by id)
    const specials: number[] = [];
    for (let i = 0; i < n; i++) if (this.attrs[i] & (A_CONTROL | A_USER | A_UNKNOWN)) specials.push(i);
    const lens = new Map(specials.map((s) => [s, utf8Length(this.tokens[s])]));
    specials.sort((a, b) => lens.get(b)! - lens.get(a)! || a - b);
    this.specialOrder = new Int32Array(n).fill(-1);
    specials.forEach((s, k) => { this.specialOrder[s] = k; });
    this.specialIds = Int32Array.from(specials);
    for (const s of specials) {
      const text = this.tokens[s];
      let node = 0;
      for (let i = 0; i < text.length; i++) {
        const key = node * 65536 + text.charCodeAt(i);
        let nx = this.trieNext.get(key);
        if (nx === undefined) { nx = this.trieIds.length; this.trieIds.push(undefined); this.trieNext.set(key, nx); }
        node = nx;
      }
      (this.trieIds[node] ??= []).push(s);
      this.firstUnit[text.charCodeAt(0)] = 1;
    }
  }

  // ---- loaders ----

  /** Build from GGUF metadata (tokenizer.ggml.*). Only byte-level BPE ("gpt2") with the LFM2 / llama3 pre-tokenizer is supported. */
  static fromGguf(metadata: Map<string, GgufValue>): Tokenizer {
    const model = metaString(metadata, "tokenizer.ggml.model");
    if (model === undefined) throw new Lfm2Error("BAD_METADATA", "GGUF has no tokenizer (tokenizer.ggml.model missing)");
    if (model !== "gpt2") throw new Lfm2Error("BAD_METADATA", `unsupported tokenizer model "${model}" (only byte-level BPE "gpt2" is supported)`);
    const pre = metaString(metadata, "tokenizer.ggml.pre");
    if (pre === undefined || !LLAMA3_PRES.has(pre)) {
      throw new Lfm2Error("BAD_METADATA", `unsupported pre-tokenizer "${pre ?? "(missing)"}" (supported: ${[...LLAMA3_PRES].join(", ")})`);
    }
    const tokens = metaStrings(metadata, "tokenizer.ggml.tokens");
    if (!tokens) throw new Lfm2Error("BAD_METADATA", "tokenizer.ggml.tokens missing");
    const merges = metaStrings(metadata, "tokenizer.ggml.merges");
    if (!merges) throw new Lfm2Error("BAD_METADATA", "tokenizer.ggml.merges missing");
    const types = metaNumbers(metadata, "tokenizer.ggml.token_type");
    if (types && types.length < tokens.length) throw new Lfm2Error("BAD_METADATA", `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
    const num = (k: string) => metaNumber(metadata, `tokenizer.ggml.${k}`) ?? null;
    const flag = (k: string, dflt: boolean) => {
      const v = metadata.get(`tokenizer.ggml.${k}`);
      if (v === undefined) return dflt;
      if (typeof v !== "boolean") throw new Lfm2Error("BAD_METADATA", `tokenizer.ggml.${k} should be a bool`);
      return v;
    };
    return new Tokenizer({
      tokens, types, merges,
      bosId: num("bos_token_id"), eosId: num("eos_token_id"), eotId: num("eot_token_id"), eomId: num("eom_token_id"),
      padId: num("padding_token_id"),
      extraEogIds: ["fim_pad_token_id", "fim_rep_token_id", "fim_sep_token_id"].map(num).filter((v): v is number => v !== null),
      addBos: flag("add_bos_token", true), addEos: flag("add_eos_token", false), ignoreMerges: true,
    });
  }

  /** Build from a Hugging Face tokenizer.json (and optionally tokenizer_config.json) object. */
  static fromHfJson(tokenizerJson: object, tokenizerConfig?: object): Tokenizer {
    return new Tokenizer(hfJsonToTokenizerData(tokenizerJson, tokenizerConfig));
  }

  // ---- vocabulary access ----

  tokenText(id: number): string { return this.tokens[this.check(id)]; }
  tokenId(text: string): number | undefined { return this.textToId.get(text); }
  /** GGUF token type (TokenType) as stored. */
  tokenType(id: number): number { return this.types[this.check(id)]; }
  /** CONTROL / UNKNOWN tokens and end-of-generation tokens (what llama.cpp does not print without `special`). */
  isSpecial(id: number): boolean { return (this.attrs[this.check(id)] & (A_CONTROL | A_UNKNOWN)) !== 0 || this.eogIds.has(id); }
  /** The merge rules in rank order. */
  mergePairs(): ReadonlyArray<readonly [string, string]> { return this.mergeList; }

  /** The bytes a token stands for: byte-level tokens decoded through the GPT-2 alphabet; control and user-defined tokens as UTF-8 of their text; unused tokens as nothing. */
  tokenBytes(id: number): Uint8Array { return this.bytesOf(this.check(id)).slice(); }

  private check(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new Lfm2Error("BAD_INPUT", `token id ${id} out of range 0..${this.vocabSize - 1}`);
    return id;
  }

  private bytesOf(id: number): Uint8Array {
    let b = this.bytesCache[id];
    if (b) return b;
    const a = this.attrs[id], text = this.tokens[id];
    if (a & (A_CONTROL | A_UNKNOWN | A_USER)) b = utf8Encoder.encode(text);
    else if (a & A_NORMAL) {
      b = new Uint8Array(text.length);
      let ok = true;
      for (let i = 0; i < text.length; i++) {
        const v = CHAR_TO_BYTE.get(text[i]);
        if (v === undefined) { ok = false; break; }
        b[i] = v;
      }
      if (!ok) b = utf8Encoder.encode(text); // not a byte-level string: take its text (HF ByteLevel decoder behaviour)
    } else if (a & A_BYTE) {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      b = m ? Uint8Array.of(parseInt(m[1], 16)) : EMPTY;
    } else b = EMPTY;
    this.bytesCache[id] = b;
    return b;
  }

  private intern(s: string): number {
    let v = this.internMap.get(s);
    if (v === undefined) {
      v = this.vocabSize + this.internExtra.length;
      this.internExtra.push(s);
      this.internMap.set(s, v);
    }
    return v;
  }

  private internText(v: number): string { return v < this.vocabSize ? this.tokens[v] : this.internExtra[v - this.vocabSize]; }

  // ---- encoding ----

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new Lfm2Error("BAD_INPUT", "encode expects a string");
    if (opts === null || typeof opts !== "object") throw new Lfm2Error("BAD_INPUT", "encode options must be an object");
    const parseSpecial = opts.parseSpecial ?? true;
    const plain = opts.plainSpans && opts.plainSpans.length > 0 ? this.plainMask(text.length, opts.plainSpans) : null;
    const out: number[] = [];
    if (text.length > 0) this.encodeText(text, parseSpecial, out, plain);
    if ((opts.addBos ?? this.addBos) && this.bosId !== null && out[0] !== this.bosId) out.unshift(this.bosId);
    if ((opts.addEos ?? this.addEos) && this.eosId !== null) out.push(this.eosId);
    return out;
  }

  private plainMask(length: number, spans: ArrayLike<number>): Uint8Array {
    if (spans.length % 2 !== 0) throw new Lfm2Error("BAD_INPUT", "plainSpans must hold [start, end) pairs");
    const mask = new Uint8Array(length);
    for (let k = 0; k < spans.length; k += 2) {
      const a = spans[k], b = spans[k + 1];
      if (!(Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a <= b && b <= length)) {
        throw new Lfm2Error("BAD_INPUT", `plainSpans pair [${a}, ${b}) is not inside the text (length ${length})`);
      }
      mask.fill(1, a, b);
    }
    return mask;
  }

  /** The spellings of CONTROL / UNKNOWN tokens: what `parseSpecial` turns into special tokens. */
  controlTokenTexts(): readonly string[] {
    if (!this.controlTexts) {
      const t: string[] = [];
      for (let i = 0; i < this.vocabSize; i++) if (this.attrs[i] & (A_CONTROL | A_UNKNOWN) && this.tokens[i].length > 0) t.push(this.tokens[i]);
      this.controlTexts = Object.freeze(t);
    }
    return this.controlTexts;
  }
  private controlTexts: readonly string[] | undefined;

  private encodeText(text: string, parseSpecial: boolean, out: number[], plain: Uint8Array | null = null): void {
    // collect every occurrence of every special token (trie walk from each candidate start)
    const occ: number[] = []; // triples: order, start, end
    const L = text.length, first = this.firstUnit;
    for (let i = 0; i < L; i++) {
      if (!first[text.charCodeAt(i)]) continue;
      let node: number | undefined = 0, j = i;
      while (j < L && (node = this.trieNext.get(node * 65536 + text.charCodeAt(j))) !== undefined) {
        j++;
        const ends = this.trieIds[node];
        if (ends) for (const sid of ends) {
          if ((!parseSpecial || (plain !== null && plain[i])) && this.attrs[sid] & (A_CONTROL | A_UNKNOWN)) continue;
          occ.push(this.specialOrder[sid], i, j);
        }
      }
    }
    if (occ.length === 0) { this.encodeFragment(text, 0, L, out); return; }

    // llama.cpp's partition: token by token in cache order, leftmost non-overlapping matches inside still-raw text
    const nOcc = occ.length / 3;
    const idx = Array.from({ length: nOcc }, (_, k) => k);
    idx.sort((a, b) => occ[3 * a] - occ[3 * b] || occ[3 * a + 1] - occ[3 * b + 1]);
    const used = new Uint8Array(L);
    const accepted: number[] = []; // quadruples: start, end, fragment-gap-left, fragment-gap-right
    const ids: number[] = [];
    let curOrder = -1, lastEnd = 0;
    for (const k of idx) {
      const order = occ[3 * k], s = occ[3 * k + 1], e = occ[3 * k + 2];
      if (order !== curOrder) { curOrder = order; lastEnd = 0; }
      if (s < lastEnd) continue;
      let free = true;
      for (let p = s; p < e; p++) if (used[p]) { free = false; break; }
      if (!free) continue;
      const sid = this.specialIds[order];
      let ls = s, re = e;
      if (this.lstrip.has(sid)) while (ls > 0 && !used[ls - 1] && isCSpace(text.charCodeAt(ls - 1))) ls--;
      if (this.rstrip.has(sid)) while (re < L && !used[re] && isCSpace(text.charCodeAt(re))) re++;
      used.fill(1, ls, re);
      accepted.push(s, e, ls, re);
      ids.push(sid);
      lastEnd = re;
    }
    const order = Array.from({ length: ids.length }, (_, k) => k).sort((a, b) => accepted[4 * a] - accepted[4 * b]);
    let pos = 0;
    for (const k of order) {
      const ls = accepted[4 * k + 2], re = accepted[4 * k + 3];
      if (ls > pos) this.encodeFragment(text, pos, ls, out);
      out.push(ids[k]);
      pos = re;
    }
    if (pos < L) this.encodeFragment(text, pos, L, out);
  }

  private encodeFragment(text: string, start: number, end: number, out: number[]): void {
    const len = end - start;
    if (this.cps.length < len) { this.cps = new Uint32Array(len * 2); this.offs = new Uint32Array(len * 2 + 1); }
    const cps = this.cps, offs = this.offs;
    const n = decodeCodePoints(text, start, end, cps, offs);
    const cache = this.wordCache;
    splitLlama3(cps, n, cpClasses(), (a, b) => {
      const word = text.slice(offs[a], offs[b]);
      let ids = cache.get(word);
      if (ids === undefined) {
        ids = this.encodeWord(cps, a, b);
        if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
        if (word.length <= 256) cache.set(word, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    });
  }

  /** BPE of one pre-token cps[a, b). */
  private encodeWord(cps: Uint32Array, a: number, b: number): number[] {
    // UTF-8 bytes
    if (this.bytes.length < (b - a) * 4) this.bytes = new Uint8Array((b - a) * 8);
    const by = this.bytes;
    let n = 0;
    for (let i = a; i < b; i++) {
      const c = cps[i];
      if (c < 0x80) by[n++] = c;
      else if (c < 0x800) { by[n++] = 0xc0 | (c >> 6); by[n++] = 0x80 | (c & 63); }
      else if (c < 0x10000) { by[n++] = 0xe0 | (c >> 12); by[n++] = 0x80 | ((c >> 6) & 63); by[n++] = 0x80 | (c & 63); }
      else { by[n++] = 0xf0 | (c >> 18); by[n++] = 0x80 | ((c >> 12) & 63); by[n++] = 0x80 | ((c >> 6) & 63); by[n++] = 0x80 | (c & 63); }
    }
    if (this.ignoreMerges) {
      let mapped = "";
      for (let i = 0; i < n; i++) mapped += BYTE_TO_CHAR[by[i]];
      const id = this.textToId.get(mapped);
      if (id !== undefined) return [id];
    }
    const sym = new Int32Array(n);
    for (let i = 0; i < n; i++) sym[i] = this.byteSym[by[i]];
    const alive = n <= HEAP_THRESHOLD ? this.mergeScan(sym, n) : this.mergeHeap(sym, n);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!alive[i]) continue;
      const s = sym[i];
      if (s < this.vocabSize) { out.push(s); continue; }
      // not a vocabulary entry: llama.cpp looks up each byte of the symbol's UTF-8 text as a token
      for (const byte of utf8Encoder.encode(this.internText(s))) {
        if (byte >= 0x80) continue;
        const id = this.textToId.get(String.fromCharCode(byte));
        if (id !== undefined) out.push(id);
      }
    }
    return out;
  }

  /** Short words: repeatedly merge the lowest-rank adjacent pair (leftmost on ties). Returns the alive mask. */
  private mergeScan(sym: Int32Array, n: number): Uint8Array {
    const alive = new Uint8Array(n).fill(1);
    const next = new Int32Array(n), prev = new Int32Array(n);
    const rank = new Float64Array(n); // packed rank*2^23+merged of pair (i, next[i]); Infinity if none
    const pairs = this.pairs;
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    for (let i = 0; i < n; i++) rank[i] = next[i] < 0 ? Infinity : pairs.get(sym[i] * PAIR_MUL + sym[next[i]]) ?? Infinity;
    for (;;) {
      let best = -1, bestV = Infinity;
      for (let i = 0; i !== -1; i = next[i]) if (rank[i] < bestV) { bestV = rank[i]; best = i; }
      if (best < 0) break;
      const j = next[best];
      sym[best] = bestV % PAIR_MUL;
      alive[j] = 0;
      next[best] = next[j];
      if (next[j] >= 0) prev[next[j]] = best;
      rank[best] = next[best] < 0 ? Infinity : pairs.get(sym[best] * PAIR_MUL + sym[next[best]]) ?? Infinity;
      const p = prev[best];
      if (p >= 0) rank[p] = pairs.get(sym[p] * PAIR_MUL + sym[best]) ?? Infinity;
    }
    return alive;
  }

  /** Long words: the same merge order with a binary heap keyed by (rank, position) and lazy invalidation. */
  private mergeHeap(sym: Int32Array, n: number): Uint8Array {
    const alive = new Uint8Array(n).fill(1);
    const next = new Int32Array(n), prev = new Int32Array(n), stamp = new Int32Array(n);
    const pairs = this.pairs;
    // heap entries: key (packed value: rank*2^23+merged), pos, stamp
    let hk = new Float64Array(n * 2), hp = new Int32Array(n * 2), hs = new Int32Array(n * 2), size = 0;
    const less = (i: number, j: number) => hk[i] < hk[j] || (hk[i] === hk[j] && hp[i] < hp[j]);
    const swap = (i: number, j: number) => {
      const k = hk[i]; hk[i] = hk[j]; hk[j] = k;
      const p = hp[i]; hp[i] = hp[j]; hp[j] = p;
      const s = hs[i]; hs[i] = hs[j]; hs[j] = s;
    };
    const push = (pos: number) => {
      const r = next[pos];
      if (r < 0) return;
      const v = pairs.get(sym[pos] * PAIR_MUL + sym[r]);
      if (v === undefined) return;
      if (size === hk.length) {
        const k2 = new Float64Array(size * 2); k2.set(hk); hk = k2;
        const p2 = new Int32Array(size * 2); p2.set(hp); hp = p2;
        const s2 = new Int32Array(size * 2); s2.set(hs); hs = s2;
      }
      let i = size++;
      hk[i] = v; hp[i] = pos; hs[i] = stamp[pos];
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!less(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    };
    const pop = () => {
      size--;
      if (size > 0) {
        swap(0, size);
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < size && less(l, m)) m = l;
          if (r < size && less(r, m)) m = r;
          if (m === i) break;
          swap(i, m);
          i = m;
        }
      }
    };
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    for (let i = 0; i + 1 < n; i++) push(i);
    while (size > 0) {
      const v = hk[0], pos = hp[0], st = hs[0];
      pop();
      if (!alive[pos] || st !== stamp[pos] || next[pos] < 0) continue; // stale
      const j = next[pos];
      sym[pos] = v % PAIR_MUL;
      alive[j] = 0;
      next[pos] = next[j];
      if (next[j] >= 0) prev[next[j]] = pos;
      stamp[pos]++;
      push(pos);
      const p = prev[pos];
      if (p >= 0) { stamp[p]++; push(p); }
    }
    return alive;
  }

  // ---- decoding ----

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecial ?? false;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = this.check(ids[i]);
      if (skip && this.attrs[id] & (A_CONTROL | A_UNKNOWN)) continue;
      const b = this.bytesOf(id);
      parts.push(b);
      total += b.length;
    }
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) { buf.set(p, o); o += p.length; }
    const s = utf8Decoder.decode(buf);
    return opts.cleanSpaces ? cleanUpSpaces(s) : s;
  }

  createDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    const skip = opts.skipSpecial ?? false;
    let dec = new TextDecoder("utf-8");
    return {
      push: (id: number) => {
        this.check(id);
        if (skip && this.attrs[id] & (A_CONTROL | A_UNKNOWN)) return "";
        return dec.decode(this.bytesOf(id), { stream: true });
      },
      flush: () => {
        const s = dec.decode();
        dec = new TextDecoder("utf-8");
        return s;
      },
    };
  }
}

/** `tokenizer.ggml.pre` values llama.cpp maps to the LLAMA3 pre-tokenizer with ignore_merges. */
export const LLAMA3_PRES: ReadonlySet<string> = new Set(["lfm2", "llama3", "llama-v3", "llama-bpe"]);

/**
 * The tokenizer may not name rows the embedding / output tables lack: such a model loads, and then
 * every prompt holding a high id reads past the table (or every sampled id past the logits).
 */
export function assertVocabFits(tokenizer: Pick<Tokenizer, "vocabSize">, vocabRows: number): void {
  if (!Number.isInteger(vocabRows) || vocabRows <= 0) throw new Lfm2Error("BAD_INPUT", `vocabulary rows must be a positive integer, got ${vocabRows}`);
  if (tokenizer.vocabSize > vocabRows) {
    throw new Lfm2Error("SHAPE_MISMATCH", `the tokenizer has ${tokenizer.vocabSize} tokens but the embedding table only ${vocabRows} rows`);
  }
}
