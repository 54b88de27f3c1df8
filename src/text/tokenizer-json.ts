// Hugging Face tokenizer.json (+ tokenizer_config.json) ⇄ TokenizerData.
// Import follows what llama.cpp's convert_hf_to_gguf.py does with the same files, so a tokenizer loaded from
// tokenizer.json behaves like the GGUF made from it: added tokens that are `special` (or look like `<|…|>`)
// become CONTROL, other added tokens USER_DEFINED (always matched verbatim), ids missing from both the
// model vocab and the added tokens become UNUSED "[PAD<id>]" placeholders.
import { Lfm2Error } from "../errors.js";
import type { Tokenizer, TokenizerData } from "./tokenizer.js";

/** The pre-tokenizer pattern of LFM2's tokenizer.json (llama3's). */
export const LFM2_PRETOKENIZER_REGEX = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/** The same pattern with the case-insensitive group expanded (llama.cpp's form). */
export const LLAMA3_EXPANDED_REGEX = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

const T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER_DEFINED = 4, T_UNUSED = 5;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const bad = (msg: string) => new Lfm2Error("BAD_METADATA", `tokenizer.json: ${msg}`);

interface AddedToken { content: string; special: boolean; lstrip: boolean; rstrip: boolean }

/** convert_hf_to_gguf's does_token_look_special. */
function looksSpecial(t: string): boolean {
  return ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(t) ||
    (t.startsWith("<|") && t.endsWith("|>")) || (t.startsWith("<｜") && t.endsWith("｜>")) ||
    (t.startsWith("<unused") && t.endsWith(">"));
}

function checkPreTokenizer(p: unknown): void {
  const steps = isObj(p) && p.type === "Sequence" && Array.isArray(p.pretokenizers) ? p.pretokenizers : [p];
  const [split, byteLevel] = steps as unknown[];
  const pattern = isObj(split) && isObj(split.pattern) ? split.pattern.Regex : undefined;
  const ok = steps.length === 2 && isObj(split) && split.type === "Split" &&
    (pattern === LFM2_PRETOKENIZER_REGEX || pattern === LLAMA3_EXPANDED_REGEX) &&
    (split.behavior ?? "Isolated") === "Isolated" && !split.invert &&
    isObj(byteLevel) && byteLevel.type === "ByteLevel" && !byteLevel.add_prefix_space && byteLevel.use_regex === false;
  if (!ok) throw bad(`unsupported pre_tokenizer ${JSON.stringify(p)?.slice(0, 300)} (only the LFM2/llama3 Split + ByteLevel sequence is supported)`);
}

function specialFromPostProcessor(pp: unknown): { bos?: number; eos?: number } {
  const list = isObj(pp) && pp.type === "Sequence" && Array.isArray(pp.processors) ? pp.processors : [pp];
  for (const p of list) {
    if (!isObj(p) || p.type !== "TemplateProcessing" || !Array.isArray(p.single) || !isObj(p.special_tokens)) continue;
    const specials = p.special_tokens;
    const idOf = (piece: unknown): number | undefined => {
      if (!isObj(piece) || !isObj(piece.SpecialToken)) return undefined;
      const st = specials[piece.SpecialToken.id as string];
      return isObj(st) && Array.isArray(st.ids) && typeof st.ids[0] === "number" ? st.ids[0] : undefined;
    };
    return { bos: idOf(p.single[0]), eos: p.single.length > 1 ? idOf(p.single[p.single.length - 1]) : undefined };
  }
  return {};
}

/** Parse tokenizer.json (and tokenizer_config.json) into the data a Tokenizer is built from. */
export function hfJsonToTokenizerData(json: object, config?: object): TokenizerData {
  if (!isObj(json)) throw bad("not an object");
  const model = json.model;
  if (!isObj(model)) throw bad("no model");
  if (model.type !== undefined && model.type !== "BPE") throw bad(`unsupported model type "${String(model.type)}" (only BPE)`);
  if (!isObj(model.vocab) || !Array.isArray(model.merges)) throw bad("BPE model needs vocab and merges");
  if (model.continuing_subword_prefix || model.end_of_word_suffix) throw bad("continuing_subword_prefix / end_of_word_suffix are not supported");
  if (json.normalizer != null) throw bad(`unsupported normalizer ${JSON.stringify(json.normalizer).slice(0, 200)}`);
  checkPreTokenizer(json.pre_tokenizer);
  if (json.decoder != null && !(isObj(json.decoder) && json.decoder.type === "ByteLevel")) throw bad("decoder must be ByteLevel");
  if (config !== undefined && !isObj(config)) throw new Lfm2Error("BAD_METADATA", "tokenizer_config.json: not an object");
  const cfg: Obj = (config as Obj | undefined) ?? {};

  const checkId = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= 1 << 24) throw bad(`bad id ${String(v)} for ${what}`);
    return v;
  };
  const vocab = new Map<number, string>();
  const textToId = new Map<string, number>();
  for (const [text, id] of Object.entries(model.vocab)) {
    vocab.set(checkId(id, text), text);
    textToId.set(text, id as number);
  }
  const added = new Map<number, AddedToken>();
  const addAdded = (id: number, t: Obj) => {
    if (typeof t.content !== "string") throw bad(`added token ${id} has no content`);
    added.set(id, { content: t.content, special: t.special === true, lstrip: t.lstrip === true, rstrip: t.rstrip === true });
  };
  if (json.added_tokens !== undefined) {
    if (!Array.isArray(json.added_tokens)) throw bad("added_tokens must be an array");
    for (const t of json.added_tokens) if (isObj(t)) addAdded(checkId(t.id, "added token"), t);
  }
  if (isObj(cfg.added_tokens_decoder)) {
    for (const [k, t] of Object.entries(cfg.added_tokens_decoder)) if (isObj(t)) addAdded(checkId(Number(k), `added_tokens_decoder ${k}`), t);
  }
  for (const [id, t] of added) textToId.set(t.content, id);

  let maxId = -1;
  for (const id of vocab.keys()) maxId = Math.max(maxId, id);
  for (const id of added.keys()) maxId = Math.max(maxId, id);
  const tokens: string[] = new Array(maxId + 1);
  const types = new Int32Array(maxId + 1);
  for (let i = 0; i <= maxId; i++) {
    const a = added.get(i);
    if (a) { tokens[i] = a.content; types[i] = a.special || looksSpecial(a.content) ? T_CONTROL : T_USER_DEFINED; }
    else if (vocab.has(i)) { tokens[i] = vocab.get(i)!; types[i] = T_NORMAL; }
    else { tokens[i] = `[PAD${i}]`; types[i] = T_UNUSED; }
  }

  const merges: (string | [string, string])[] = model.merges.map((m, r) => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") return [m[0], m[1]] as [string, string];
    throw bad(`merge ${r} is malformed`);
  });

  const ref = (v: unknown): number | null => {
    const text = typeof v === "string" ? v : isObj(v) && typeof v.content === "string" ? v.content : undefined;
    return text === undefined ? null : textToId.get(text) ?? null;
  };
  const pp = specialFromPostProcessor(json.post_processor);
  const bosId = cfg.bos_token !== undefined ? ref(cfg.bos_token) : pp.bos ?? null;
  const addBos = typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : pp.bos !== undefined;
  const addEos = typeof cfg.add_eos_token === "boolean" ? cfg.add_eos_token : pp.eos !== undefined;
  return {
    tokens, types, merges,
    bosId,
    eosId: cfg.eos_token !== undefined ? ref(cfg.eos_token) : pp.eos ?? null,
    padId: cfg.pad_token !== undefined ? ref(cfg.pad_token) : null,
    addBos, addEos,
    ignoreMerges: model.ignore_merges === true,
    lstrip: [...added].filter(([, t]) => t.lstrip).map(([id]) => id),
    rstrip: [...added].filter(([, t]) => t.rstrip).map(([id]) => id),
  };
}

function addedEntries(t: Tokenizer): { id: number; content: string; special: boolean }[] {
  const out: { id: number; content: string; special: boolean }[] = [];
  for (let id = 0; id < t.vocabSize; id++) {
    const ty = t.tokenType(id);
    if (ty === T_CONTROL || ty === T_UNKNOWN || ty === T_USER_DEFINED) out.push({ id, content: t.tokenText(id), special: ty !== T_USER_DEFINED });
  }
  return out;
}

/** Export a tokenizer as an HF tokenizer.json object (BPE, LFM2 Split + ByteLevel pre-tokenizer, ignore_merges, added tokens). */
export function toHfTokenizerJson(t: Tokenizer): object {
  const vocab: Record<string, number> = {};
  for (let id = 0; id < t.vocabSize; id++) {
    const text = t.tokenText(id);
    if (t.tokenType(id) === T_UNUSED && text === `[PAD${id}]`) continue; // a gap in the original
    vocab[text] = id;
  }
  const pairs = t.mergePairs();
  const needPairs = pairs.some(([a, b]) => a.includes(" ") || b.includes(" "));
  const merges = needPairs ? pairs.map(([a, b]) => [a, b]) : pairs.map(([a, b]) => `${a} ${b}`);
  const bosText = t.bosId !== null ? t.tokenText(t.bosId) : null;
  const eosText = t.eosId !== null ? t.tokenText(t.eosId) : null;
  let post: object | null = null;
  if ((t.addBos && bosText !== null) || (t.addEos && eosText !== null)) {
    const pre = t.addBos && bosText !== null ? [{ SpecialToken: { id: bosText, type_id: 0 } }] : [];
    const suf = t.addEos && eosText !== null ? [{ SpecialToken: { id: eosText, type_id: 0 } }] : [];
    const special_tokens: Record<string, object> = {};
    if (pre.length) special_tokens[bosText!] = { id: bosText, ids: [t.bosId], tokens: [bosText] };
    if (suf.length) special_tokens[eosText!] = { id: eosText, ids: [t.eosId], tokens: [eosText] };
    post = {
      type: "TemplateProcessing",
      single: [...pre, { Sequence: { id: "A", type_id: 0 } }, ...suf],
      pair: [...pre, { Sequence: { id: "A", type_id: 0 } }, ...suf, ...pre.map((p) => ({ SpecialToken: { ...p.SpecialToken, type_id: 1 } })), { Sequence: { id: "B", type_id: 1 } }, ...suf.map((p) => ({ SpecialToken: { ...p.SpecialToken, type_id: 1 } }))],
      special_tokens,
    };
  }
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedEntries(t).map(({ id, content, special }) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LFM2_PRETOKENIZER_REGEX }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: post,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: t.ignoreMerges, vocab, merges,
    },
  };
}

/** The matching tokenizer_config.json object (special token names, add_bos/add_eos, added_tokens_decoder). */
export function toHfTokenizerConfig(t: Tokenizer): object {
  const decoder: Record<string, object> = {};
  for (const { id, content, special } of addedEntries(t)) decoder[id] = { content, lstrip: false, normalized: !special, rstrip: false, single_word: false, special };
  const name = (id: number | null) => (id === null ? null : t.tokenText(id));
  return {
    add_bos_token: t.addBos,
    add_eos_token: t.addEos,
    added_tokens_decoder: decoder,
    bos_token: name(t.bosId),
    eos_token: name(t.eosId),
    pad_token: name(t.padId),
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
}
