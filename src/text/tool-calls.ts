// Tool-call text emitted by LFM2 models (spec §4.4), both directions:
//  * parsing the model's output into structured calls (whole text or streamed deltas), and
//  * formatting structured calls back into the text the model itself would have written, so that
//    earlier assistant turns can be replayed through the chat template.
//
// The model writes calls between <|tool_call_start|> and <|tool_call_end|>, normally as a Python list of
// keyword-argument calls:   <|tool_call_start|>[get_weather(city="Paris", days=3)]<|tool_call_end|>
// or, when asked for JSON, as JSON objects:   <|tool_call_start|>[{"name": "get_weather", "arguments": {...}}]<|tool_call_end|>
// Plain text may come before or after the block. A block that cannot be parsed is kept as text and
// reported in `errors`; parsing never throws.

export const TOOL_CALL_START = "<|tool_call_start|>";
export const TOOL_CALL_END = "<|tool_call_end|>";

export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
  id: string;
}

export interface ToolCallError {
  /** What was wrong. */
  message: string;
  /** The offending text exactly as the model wrote it (markers included); it is also kept in `text`. */
  raw: string;
}

export interface ParsedToolCalls {
  /** The output with every well-formed tool-call block removed (nothing else is trimmed or changed). */
  text: string;
  toolCalls: ToolCall[];
  errors: ToolCallError[];
}

export interface ToolCallParseOptions {
  /** Id for the n-th call found (0-based, counted over the whole text / stream). Default `call_${n}`. */
  makeId?: (index: number) => string;
}

/** A call without an id, as parsed from one block. */
export interface RawToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

class SyntaxErr extends Error {}

const IDENT_START = /[A-Za-z_]/;
const CALL_NAME = /[A-Za-z_][A-Za-z0-9_.\-]*/y;
const KWARG_NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const DEC_NUMBER = /[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?/y;
const RADIX_NUMBER = /([+-]?)0(?:[xX]([0-9a-fA-F](?:_?[0-9a-fA-F])*)|[oO]([0-7](?:_?[0-7])*)|[bB]([01](?:_?[01])*))/y;

/** Recursive-descent reader for Python literals (with JSON literals accepted too) and call lists. */
class PyReader {
  i = 0;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    throw new SyntaxErr(`${msg} at offset ${this.i}`);
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 32 || c === 9 || c === 10 || c === 13) this.i++;
      else break;
    }
  }

  peek(): string {
    return this.s[this.i] ?? "";
  }

  expect(ch: string): void {
    if (this.s[this.i] !== ch) this.fail(`expected '${ch}'`);
    this.i++;
  }

  atEnd(): boolean {
    return this.i >= this.s.length;
  }

  sticky(re: RegExp): RegExpExecArray | null {
    re.lastIndex = this.i;
    const m = re.exec(this.s);
    if (m) this.i = re.lastIndex;
    return m;
  }

  value(depth = 0): unknown {
    if (depth > 200) this.fail("nesting too deep");
    this.ws();
    const c = this.peek();
    if (c === "") this.fail("unexpected end of input");
    if (c === '"' || c === "'") return this.string(false);
    if (c === "[") return this.sequence("]", depth);
    if (c === "(") return this.paren(depth);
    if (c === "{") return this.braces(depth);
    if (/[0-9+\-.]/.test(c)) return this.number();
    if (IDENT_START.test(c)) {
      // string prefixes r"", u"", b"", rb"" ...
      const pm = /([rRuUbB]{1,2})(?=["'])/y;
      pm.lastIndex = this.i;
      const m = pm.exec(this.s);
      if (m && /^(?:[rR]|[uU]|[bB]|[rR][bB]|[bB][rR])$/.test(m[1]!)) {
        this.i += m[1]!.length;
        return this.string(/[rR]/.test(m[1]!));
      }
      const w = this.sticky(KWARG_NAME)![0];
      switch (w) {
        case "True": case "true": return true;
        case "False": case "false": return false;
        case "None": case "null": return null;
      }
      this.i -= w.length;
      this.fail(`unexpected name '${w}'`);
    }
    this.fail(`unexpected character '${c}'`);
  }

  number(): number {
    const r = this.sticky(RADIX_NUMBER);
    if (r) {
      const digits = (r[2] ?? r[3] ?? r[4]!).replace(/_/g, "");
      const radix = r[2] !== undefined ? 16 : r[3] !== undefined ? 8 : 2;
      const v = parseInt(digits, radix);
      return r[1] === "-" ? -v : v;
    }
    const m = this.sticky(DEC_NUMBER);
    if (!m) this.fail("bad number");
    if (IDENT_START.test(this.peek()) || /[0-9]/.test(this.peek())) this.fail("bad number");
    const text = m[0].replace(/_/g, "");
    // Python rejects leading zeros in non-zero decimal integers ("012"); so do we.
    if (/^[+-]?0\d+$/.test(text)) this.fail("leading zeros in integer");
    return Number(text);
  }

  string(raw: boolean): string {
    const s = this.s;
    const q = s[this.i]!;
    const triple = s.startsWith(q + q + q, this.i);
    this.i += triple ? 3 : 1;
    let out = "";
    for (;;) {
      if (this.i >= s.length) this.fail("unterminated string");
      const c = s[this.i]!;
      if (c === q) {
        if (!triple) { this.i++; return out; }
        if (s.startsWith(q + q + q, this.i)) { this.i += 3; return out; }
        out += c; this.i++;
        continue;
      }
      if (!triple && (c === "\n" || c === "\r")) this.fail("newline in string");
      if (c !== "\\") { out += c; this.i++; continue; }
      const e = s[this.i + 1];
      if (e === undefined) this.fail("unterminated string");
      if (raw) { out += c + e; this.i += 2; continue; }
      this.i += 2;
      switch (e) {
        case "\\": out += "\\"; break;
        case "'": out += "'"; break;
        case '"': out += '"'; break;
        case "/": out += "/"; break; // JSON escape (Python would keep the backslash)
        case "n": out += "\n"; break;
        case "r": out += "\r"; break;
        case "t": out += "\t"; break;
        case "b": out += "\b"; break;
        case "f": out += "\f"; break;
        case "v": out += "\v"; break;
        case "a": out += "\x07"; break;
        case "\n": break; // line continuation
        case "\r": if (s[this.i] === "\n") this.i++; break;
        case "x": out += String.fromCharCode(this.hex(2)); break;
        case "u": out += String.fromCharCode(this.hex(4)); break;
        case "U": {
          const cp = this.hex(8);
          if (cp > 0x10ffff) this.fail("code point out of range");
          out += String.fromCodePoint(cp);
          break;
        }
        default:
          if (e >= "0" && e <= "7") {
            let j = this.i - 1, v = 0, n = 0;
            while (n < 3 && s[j] !== undefined && s[j]! >= "0" && s[j]! <= "7") { v = v * 8 + (s.charCodeAt(j) - 48); j++; n++; }
            this.i = j;
            out += String.fromCharCode(v);
          } else {
            out += "\\" + e; // unknown escapes are kept verbatim, as Python does
          }
      }
    }
  }

  hex(n: number): number {
    const h = this.s.slice(this.i, this.i + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) this.fail("bad hex escape");
    this.i += n;
    return parseInt(h, 16);
  }

  sequence(close: string, depth: number): unknown[] {
    this.i++; // opening bracket
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.peek() === close) { this.i++; return out; }
      out.push(this.value(depth + 1));
      this.ws();
      if (this.peek() === ",") { this.i++; continue; }
      if (this.peek() === close) { this.i++; return out; }
      this.fail(`expected ',' or '${close}'`);
    }
  }

  /** `(x)` is just x; `(x,)`, `(x, y)` and `()` are tuples (→ arrays). */
  paren(depth: number): unknown {
    this.i++;
    this.ws();
    if (this.peek() === ")") { this.i++; return []; }
    const first = this.value(depth + 1);
    this.ws();
    if (this.peek() === ")") { this.i++; return first; }
    const out = [first];
    for (;;) {
      this.expect(",");
      this.ws();
      if (this.peek() === ")") { this.i++; return out; }
      out.push(this.value(depth + 1));
      this.ws();
      if (this.peek() === ")") { this.i++; return out; }
    }
  }

  /** Dicts (keys are turned into strings) and sets (→ arrays). */
  braces(depth: number): unknown {
    this.i++;
    this.ws();
    if (this.peek() === "}") { this.i++; return {}; }
    const firstKey = this.value(depth + 1);
    this.ws();
    if (this.peek() !== ":") {
      // a set literal
      const out = [firstKey];
      for (;;) {
        if (this.peek() === "}") { this.i++; return out; }
        this.expect(",");
        this.ws();
        if (this.peek() === "}") { this.i++; return out; }
        out.push(this.value(depth + 1));
        this.ws();
      }
    }
    const obj: Record<string, unknown> = {};
    let key: unknown = firstKey;
    for (;;) {
      if (key !== null && typeof key === "object") this.fail("unhashable dict key");
      this.expect(":");
      setOwn(obj, dictKey(key), this.value(depth + 1));
      this.ws();
      if (this.peek() === "}") { this.i++; return obj; }
      this.expect(",");
      this.ws();
      if (this.peek() === "}") { this.i++; return obj; }
      key = this.value(depth + 1);
      this.ws();
    }
  }

  /** `name(k=v, ...)` */
  call(): RawToolCall {
    const m = this.sticky(CALL_NAME);
    if (!m) this.fail("expected a function name");
    const name = m[0];
    this.ws();
    this.expect("(");
    const args: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.peek() === ")") { this.i++; break; }
      const start = this.i;
      const k = this.sticky(KWARG_NAME);
      this.ws();
      if (!k || this.peek() !== "=" || this.s[this.i + 1] === "=") {
        this.i = start;
        this.fail("positional arguments are not supported (expected name=value)");
      }
      this.i++; // '='
      if (Object.prototype.hasOwnProperty.call(args, k[0])) this.fail(`duplicate argument '${k[0]}'`);
      setOwn(args, k[0], this.value(1));
      this.ws();
      if (this.peek() === ",") { this.i++; continue; }
      if (this.peek() === ")") { this.i++; break; }
      this.fail("expected ',' or ')'");
    }
    return { name, arguments: args };
  }

  /** One element of a call list: a Pythonic call or a JSON/Python dict `{"name": .., "arguments": ..}`. */
  callItem(): RawToolCall {
    this.ws();
    if (this.peek() === "{") {
      const start = this.i;
      const d = this.braces(0);
      if (d === null || typeof d !== "object" || Array.isArray(d)) { this.i = start; this.fail("expected a {\"name\", \"arguments\"} object"); }
      return dictToCall(d as Record<string, unknown>, (msg) => { this.i = start; return this.fail(msg); });
    }
    return this.call();
  }
}

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function dictKey(k: unknown): string {
  if (typeof k === "string") return k;
  if (k === true) return "true";
  if (k === false) return "false";
  if (k === null) return "null";
  return String(k);
}

function dictToCall(d: Record<string, unknown>, fail: (msg: string) => never): RawToolCall {
  const fn = d.function !== null && typeof d.function === "object" && !Array.isArray(d.function) ? d.function as Record<string, unknown> : d;
  const name = fn.name;
  if (typeof name !== "string" || name === "") fail("tool call object has no string \"name\"");
  let args: unknown = "arguments" in fn ? fn.arguments : "parameters" in fn ? fn.parameters : {};
  if (typeof args === "string") {
    try { args = JSON.parse(args); } catch { fail("\"arguments\" is a string that is not JSON"); }
  }
  if (args === null || args === undefined) args = {};
  if (typeof args !== "object" || Array.isArray(args)) fail("\"arguments\" is not an object");
  return { name, arguments: args as Record<string, unknown> };
}

/**
 * Parse the text between the markers: `[call, call]`, `[{..}, {..}]`, a bare `call, call` or a single
 * object. Throws SyntaxError-like `Error` on malformed input (callers turn it into an error entry).
 */
export function parseToolCallBody(body: string): RawToolCall[] {
  const r = new PyReader(body);
  r.ws();
  const calls: RawToolCall[] = [];
  if (r.peek() === "[") {
    r.i++;
    for (;;) {
      r.ws();
      if (r.peek() === "]") { r.i++; break; }
      calls.push(r.callItem());
      r.ws();
      if (r.peek() === ",") { r.i++; continue; }
      if (r.peek() === "]") { r.i++; break; }
      r.fail("expected ',' or ']'");
    }
  } else {
    for (;;) {
      calls.push(r.callItem());
      r.ws();
      if (r.peek() !== ",") break;
      r.i++;
      r.ws();
      if (r.atEnd()) break;
    }
  }
  r.ws();
  if (!r.atEnd()) r.fail("unexpected trailing text");
  return calls;
}

/** Parse a single Python (or JSON) literal; throws on malformed input. */
export function parsePythonLiteral(src: string): unknown {
  const r = new PyReader(src);
  const v = r.value();
  r.ws();
  if (!r.atEnd()) r.fail("unexpected trailing text");
  return v;
}

export interface ToolCallStreamResult {
  /** Plain text that is safe to show now (never part of a tool-call marker or block). */
  text: string;
  /** Calls completed by this chunk. */
  toolCalls: ToolCall[];
  /** Blocks found malformed in this chunk (their raw text is included in `text`). */
  errors: ToolCallError[];
}

function partialSuffixLength(buf: string, marker: string): number {
  const max = Math.min(buf.length, marker.length - 1);
  for (let n = max; n > 0; n--) {
    if (marker.startsWith(buf.slice(buf.length - n))) return n;
  }
  return 0;
}

/**
 * Incremental tool-call extraction for streamed output. Text that could be the beginning of
 * `<|tool_call_start|>` is held back until it is decided; everything inside a block is held back until
 * `<|tool_call_end|>` arrives. Call `end()` once the stream is over to flush what is held.
 */
export class ToolCallStreamParser {
  private buf = "";
  private inCall = false;
  private searchFrom = 0;
  private count = 0;
  private readonly makeId: (index: number) => string;

  constructor(opts: ToolCallParseOptions = {}) {
    this.makeId = opts.makeId ?? ((i) => `call_${i}`);
  }

  /** True while the parser is inside an unterminated tool-call block. */
  get insideToolCall(): boolean {
    return this.inCall;
  }

  push(delta: string): ToolCallStreamResult {
    const out: ToolCallStreamResult = { text: "", toolCalls: [], errors: [] };
    this.buf += delta;
    for (;;) {
      if (!this.inCall) {
        const k = this.buf.indexOf(TOOL_CALL_START);
        if (k >= 0) {
          out.text += this.buf.slice(0, k);
          this.buf = this.buf.slice(k + TOOL_CALL_START.length);
          this.inCall = true;
          this.searchFrom = 0;
          continue;
        }
        const hold = partialSuffixLength(this.buf, TOOL_CALL_START);
        out.text += this.buf.slice(0, this.buf.length - hold);
        this.buf = this.buf.slice(this.buf.length - hold);
        return out;
      }
      const k = this.buf.indexOf(TOOL_CALL_END, this.searchFrom);
      if (k < 0) {
        this.searchFrom = Math.max(0, this.buf.length - TOOL_CALL_END.length + 1);
        return out;
      }
      const body = this.buf.slice(0, k);
      this.buf = this.buf.slice(k + TOOL_CALL_END.length);
      this.inCall = false;
      this.finishBlock(body, out);
    }
  }

  /** Flush at end of stream: held text is released; an unterminated block becomes text plus an error. */
  end(): ToolCallStreamResult {
    const out: ToolCallStreamResult = { text: "", toolCalls: [], errors: [] };
    if (this.inCall) {
      const raw = TOOL_CALL_START + this.buf;
      out.text = raw;
      out.errors.push({ message: "unterminated tool call (no <|tool_call_end|>)", raw });
    } else {
      out.text = this.buf;
    }
    this.buf = "";
    this.inCall = false;
    this.searchFrom = 0;
    return out;
  }

  private finishBlock(body: string, out: ToolCallStreamResult): void {
    let calls: RawToolCall[];
    try {
      calls = parseToolCallBody(body);
    } catch (e) {
      const raw = TOOL_CALL_START + body + TOOL_CALL_END;
      out.text += raw;
      out.errors.push({ message: e instanceof Error ? e.message : String(e), raw });
      return;
    }
    for (const c of calls) out.toolCalls.push({ name: c.name, arguments: c.arguments, id: this.makeId(this.count++) });
  }
}

/** Parse complete model output. Never throws. */
export function parseToolCalls(output: string, opts: ToolCallParseOptions = {}): ParsedToolCalls {
  const p = new ToolCallStreamParser(opts);
  const a = p.push(output);
  const b = p.end();
  return { text: a.text + b.text, toolCalls: [...a.toolCalls, ...b.toolCalls], errors: [...a.errors, ...b.errors] };
}

// ---------------------------------------------------------------------------------------------------
// Formatting (structured call → the text the model writes)

const PY_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CALL_NAME_FULL = /^[A-Za-z_][A-Za-z0-9_.\-]*$/;

/** Python literal for a JSON-like value: strings double-quoted, True/False/None, `[a, b]`, `{"k": v}`. */
export function formatPythonValue(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "None";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(formatPythonValue).join(", ") + "]";
  if (typeof v === "object") {
    return "{" + Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => JSON.stringify(k) + ": " + formatPythonValue(x)).join(", ") + "}";
  }
  return JSON.stringify(String(v));
}

/** JSON with Python `json.dumps` default separators (", " and ": "), as Jinja's `tojson` prints. */
export function formatJsonValue(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "null";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(formatJsonValue).join(", ") + "]";
  if (typeof v === "object") {
    return "{" + Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => JSON.stringify(k) + ": " + formatJsonValue(x)).join(", ") + "}";
  }
  return JSON.stringify(String(v));
}

export type ToolCallFormat = "pythonic" | "json";

/** A call as accepted for formatting; `arguments` may be an object or a JSON string (OpenAI style). */
export interface ToolCallInput {
  name: string;
  arguments?: Record<string, unknown> | string;
  id?: string;
}

function argsObject(c: ToolCallInput): Record<string, unknown> {
  let a: unknown = c.arguments ?? {};
  if (typeof a === "string") {
    try { a = JSON.parse(a); } catch { a = undefined; }
  }
  if (a === null || typeof a !== "object" || Array.isArray(a)) {
    throw new TypeError(`tool call '${c.name}': arguments must be an object or a JSON object string`);
  }
  return a as Record<string, unknown>;
}

/**
 * The text LFM2 emits for these calls, markers included. Pythonic by default; falls back to the JSON
 * form when a name or an argument key cannot be written as Python (e.g. `"my key"`).
 */
export function formatToolCalls(calls: ToolCallInput[], format: ToolCallFormat = "pythonic"): string {
  const norm = calls.map((c) => ({ name: c.name, arguments: argsObject(c) }));
  const pythonOk = format === "pythonic" &&
    norm.every((c) => CALL_NAME_FULL.test(c.name) && Object.keys(c.arguments).every((k) => PY_IDENT.test(k)));
  let body: string;
  if (pythonOk) {
    body = "[" + norm.map((c) => c.name + "(" + Object.entries(c.arguments)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatPythonValue(v)}`).join(", ") + ")").join(", ") + "]";
  } else {
    body = formatJsonValue(norm.map((c) => ({ name: c.name, arguments: c.arguments })));
  }
  return TOOL_CALL_START + body + TOOL_CALL_END;
}
