// JSON-Schema-constrained decoding.
//
// JsonSchemaMatcher is a character-level pushdown recogniser for the JSON texts a schema allows,
// written without whitespace (minimal JSON, as JSON.stringify prints it). Its state is a small set of
// alternative stacks made of immutable frames, so clone() is O(1) and trying a token costs only the
// token's characters. Every accepted prefix can still be completed (no dead ends), provided the schema
// itself is satisfiable.
//
// Supported: type (string | list of: object, array, string, number, integer, boolean, null), properties,
// required, additionalProperties (false by default when `properties` is given; an object schema without
// `properties` accepts any keys), items, minItems, maxItems, minLength, maxLength, enum, const, anyOf,
// oneOf (treated as anyOf), $ref to "#..." JSON pointers ($defs / definitions), nullable (OpenAPI),
// and annotations (title, description, default, examples, format, ...), which are ignored.
// Other validation keywords throw BAD_INPUT unless `ignoreUnsupported` is set.
import { Lfm2Error } from "../errors.js";
import { selectTopCandidates, type Sampler } from "./sampler.js";

export type JsonSchema = boolean | { [key: string]: unknown };

export interface JsonSchemaMatcherOptions {
  /** Ignore validation keywords this matcher cannot enforce instead of throwing. */
  ignoreUnsupported?: boolean;
  /** Longest number literal accepted, in characters (default 24). */
  maxNumberLength?: number;
}

const ANNOTATIONS = new Set([
  "title", "description", "default", "examples", "$schema", "$id", "$comment", "format", "deprecated",
  "readOnly", "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding",
]);
const SUPPORTED = new Set([
  "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
  "maxLength", "enum", "const", "anyOf", "oneOf", "$ref", "nullable",
]);
const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;
type TypeName = typeof TYPES[number];

// ---------------------------------------------------------------------------------------------------
// Schema → alternatives

interface StrAlt { kind: "string"; min: number; max: number }
interface NumAlt { kind: "number"; integer: boolean }
interface LitAlt { kind: "literal"; text: string }
interface ObjAlt {
  kind: "object";
  props: Map<string, JsonSchema>;
  /** Canonical raw key text (JSON.stringify without the quotes), for prefix checks. */
  rawKeys: Map<string, string>;
  required: string[];
  /** false = no other keys; otherwise the schema for other keys' values. */
  additional: false | JsonSchema;
}
interface ArrAlt { kind: "array"; items: JsonSchema; min: number; max: number }
type Alt = StrAlt | NumAlt | LitAlt | ObjAlt | ArrAlt;

type Obj = { [key: string]: unknown };

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deepest nesting of subschemas accepted (deeper would overflow the stack in the recursive passes). */
export const MAX_SCHEMA_DEPTH = 256;

/** A value for an error message; never throws (BigInt, cycles). */
function describe(v: unknown): string {
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
}

function bad(msg: string): never {
  throw new Lfm2Error("BAD_INPUT", `JSON schema: ${msg}`);
}

function valueType(v: unknown): TypeName[] {
  if (v === null) return ["null"];
  if (typeof v === "boolean") return ["boolean"];
  if (typeof v === "string") return ["string"];
  if (typeof v === "number") return Number.isInteger(v) ? ["number", "integer"] : ["number"];
  if (Array.isArray(v)) return ["array"];
  return ["object"];
}

class SchemaCompiler {
  private readonly cache = new Map<JsonSchema, Alt[]>();
  private readonly expanding = new Set<JsonSchema>();

  constructor(readonly root: JsonSchema, readonly opts: JsonSchemaMatcherOptions) {
    this.check(root, new Set());
  }

  /** Walk the whole schema once to reject unsupported keywords early. */
  private check(s: unknown, seen: Set<unknown>, depth = 0): void {
    if (typeof s === "boolean") return;
    if (!isObj(s)) bad(`a schema must be an object or a boolean, got ${describe(s)}`);
    // recursion below (check, expand, merge) follows the nesting: refuse before the stack runs out
    if (depth > MAX_SCHEMA_DEPTH) bad(`the schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (seen.has(s)) return;
    seen.add(s);
    const sub = (v: unknown) => this.check(v, seen, depth + 1);
    for (const k of Object.keys(s)) {
      if (SUPPORTED.has(k) || ANNOTATIONS.has(k)) continue;
      if (!this.opts.ignoreUnsupported) bad(`keyword "${k}" is not supported (pass ignoreUnsupported to skip it)`);
    }
    if (s.type !== undefined) {
      const ts = Array.isArray(s.type) ? s.type : [s.type];
      for (const t of ts) if (!TYPES.includes(t as TypeName)) bad(`unknown type ${describe(t)}`);
    }
    if (s.properties !== undefined) {
      if (!isObj(s.properties)) bad("properties must be an object");
      for (const v of Object.values(s.properties)) sub(v);
    }
    if (s.required !== undefined && !(Array.isArray(s.required) && s.required.every((x) => typeof x === "string"))) bad("required must be a list of strings");
    if (s.additionalProperties !== undefined) sub(s.additionalProperties);
    if (s.items !== undefined) {
      if (Array.isArray(s.items)) bad("tuple-form items is not supported");
      sub(s.items);
    }
    for (const k of ["anyOf", "oneOf"]) {
      if (s[k] !== undefined) {
        if (!Array.isArray(s[k]) || (s[k] as unknown[]).length === 0) bad(`${k} must be a non-empty list`);
        for (const v of s[k] as unknown[]) sub(v);
      }
    }
    if (s.enum !== undefined && !Array.isArray(s.enum)) bad("enum must be a list");
    for (const k of ["enum", "const"]) {
      if (s[k] === undefined) continue;
      try { JSON.stringify(s[k]); } catch { bad(`${k} must be JSON data`); }
    }
    for (const k of ["minItems", "maxItems", "minLength", "maxLength"]) {
      if (s[k] !== undefined && !(Number.isInteger(s[k]) && (s[k] as number) >= 0)) bad(`${k} must be a non-negative integer`);
    }
    if (typeof s.$ref === "string") sub(this.resolveRef(s.$ref));
    else if (s.$ref !== undefined) bad("$ref must be a string");
    for (const k of ["$defs", "definitions"]) {
      if (isObj(s[k])) for (const v of Object.values(s[k] as Obj)) sub(v);
    }
  }

  resolveRef(ref: string): JsonSchema {
    if (!ref.startsWith("#")) bad(`only local $ref ("#/...") is supported: ${ref}`);
    let cur: unknown = this.root;
    const path = ref.slice(1);
    if (path !== "") {
      if (!path.startsWith("/")) bad(`bad $ref ${ref}`);
      for (const raw of path.slice(1).split("/")) {
        const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
        if (!isObj(cur) && !Array.isArray(cur)) bad(`$ref ${ref} does not resolve`);
        cur = (cur as Obj)[key];
      }
    }
    if (typeof cur !== "boolean" && !isObj(cur)) bad(`$ref ${ref} does not resolve to a schema`);
    return cur as JsonSchema;
  }

  expand(s: JsonSchema): Alt[] {
    const hit = this.cache.get(s);
    if (hit) return hit;
    if (this.expanding.has(s) || this.expanding.size > 100) bad("schema refers to itself without consuming input ($ref / anyOf cycle)");
    this.expanding.add(s);
    try {
      const alts = this.expandUncached(s);
      this.cache.set(s, alts);
      return alts;
    } finally {
      this.expanding.delete(s);
    }
  }

  private expandUncached(s: JsonSchema): Alt[] {
    if (s === true) return this.anyAlts();
    if (s === false) return [];
    if (typeof s.$ref === "string") {
      const rest = Object.keys(s).filter((k) => k !== "$ref" && !ANNOTATIONS.has(k) && (this.opts.ignoreUnsupported ? SUPPORTED.has(k) : true));
      if (rest.length > 0) return this.expand(mergeSchemas(this.resolveRef(s.$ref), withoutKeys(s, ["$ref"])));
      return this.expand(this.resolveRef(s.$ref));
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      const branches = s[key];
      if (Array.isArray(branches)) {
        const siblings = withoutKeys(s, [key]);
        const hasSiblings = Object.keys(siblings).some((k) => SUPPORTED.has(k));
        const out: Alt[] = [];
        for (const b of branches as JsonSchema[]) {
          out.push(...this.expand(hasSiblings ? mergeSchemas(siblings, b) : b));
        }
        return out;
      }
    }
    let types: TypeName[];
    if (s.type !== undefined) {
      types = (Array.isArray(s.type) ? s.type : [s.type]) as TypeName[];
    } else if (s.enum === undefined && s.const === undefined) {
      const inferred: TypeName[] = [];
      if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined) inferred.push("object");
      if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) inferred.push("array");
      if (s.minLength !== undefined || s.maxLength !== undefined) inferred.push("string");
      types = inferred.length > 0 ? inferred : [...TYPES];
    } else {
      types = [...TYPES];
    }
    if (s.nullable === true && !types.includes("null")) types = [...types, "null"];
    if (types.includes("integer") && types.includes("number")) types = types.filter((t) => t !== "integer");

    if (s.const !== undefined || s.enum !== undefined) {
      let values: unknown[] = s.const !== undefined ? [s.const] : [...(s.enum as unknown[])];
      if (s.const !== undefined && Array.isArray(s.enum)) {
        const c = JSON.stringify(s.const);
        if (!(s.enum as unknown[]).some((e) => JSON.stringify(e) === c)) values = [];
      }
      const seen = new Set<string>();
      const out: Alt[] = [];
      for (const v of values) {
        if (!valueType(v).some((t) => types.includes(t))) continue;
        const text = JSON.stringify(v);
        if (text === undefined || seen.has(text)) continue;
        seen.add(text);
        out.push({ kind: "literal", text });
      }
      return out;
    }

    const out: Alt[] = [];
    for (const t of types) {
      switch (t) {
        case "string": {
          const min = (s.minLength as number | undefined) ?? 0;
          const max = (s.maxLength as number | undefined) ?? Infinity;
          if (min <= max) out.push({ kind: "string", min, max });
          break;
        }
        case "number": out.push({ kind: "number", integer: false }); break;
        case "integer": out.push({ kind: "number", integer: true }); break;
        case "boolean": out.push({ kind: "literal", text: "true" }, { kind: "literal", text: "false" }); break;
        case "null": out.push({ kind: "literal", text: "null" }); break;
        case "object": out.push(this.objectAlt(s)); break;
        case "array": {
          const min = (s.minItems as number | undefined) ?? 0;
          const max = (s.maxItems as number | undefined) ?? Infinity;
          const items = (s.items as JsonSchema | undefined) ?? true;
          if (min <= max) out.push({ kind: "array", items, min, max });
          break;
        }
      }
    }
    return out;
  }

  private objectAlt(s: Obj): ObjAlt {
    const props = new Map<string, JsonSchema>();
    const rawKeys = new Map<string, string>();
    if (isObj(s.properties)) {
      for (const [k, v] of Object.entries(s.properties)) {
        if (v === false) continue; // a property that can never be present
        props.set(k, v as JsonSchema);
        rawKeys.set(k, JSON.stringify(k).slice(1, -1));
      }
    }
    const required = Array.isArray(s.required) ? [...new Set(s.required as string[])] : [];
    for (const r of required) {
      if (!props.has(r) && (s.additionalProperties === false || (s.additionalProperties === undefined && s.properties !== undefined))) {
        bad(`required property "${r}" is not allowed by the schema`);
      }
    }
    let additional: false | JsonSchema;
    if (s.additionalProperties !== undefined) additional = s.additionalProperties as JsonSchema;
    else additional = s.properties === undefined ? true : false;
    return { kind: "object", props, rawKeys, required, additional };
  }

  private anyCache: Alt[] | undefined;
  private anyAlts(): Alt[] {
    if (!this.anyCache) {
      this.anyCache = [
        { kind: "string", min: 0, max: Infinity },
        { kind: "number", integer: false },
        { kind: "literal", text: "true" },
        { kind: "literal", text: "false" },
        { kind: "literal", text: "null" },
        { kind: "object", props: new Map(), rawKeys: new Map(), required: [], additional: true },
        { kind: "array", items: true, min: 0, max: Infinity },
      ];
    }
    return this.anyCache;
  }
}

function withoutKeys(s: Obj, keys: string[]): Obj {
  const o: Obj = {};
  for (const [k, v] of Object.entries(s)) if (!keys.includes(k)) o[k] = v;
  return o;
}

/** Intersection of two schemas for the keyword combinations this module supports. */
function mergeSchemas(a: JsonSchema, b: JsonSchema): JsonSchema {
  if (a === false || b === false) return false;
  if (a === true) return b;
  if (b === true) return a;
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (ANNOTATIONS.has(k)) continue;
    if (!(k in out)) { out[k] = v; continue; }
    const cur = out[k];
    switch (k) {
      case "type": {
        const ta = Array.isArray(cur) ? cur : [cur];
        const tb = Array.isArray(v) ? v : [v];
        const both = ta.filter((t) => tb.includes(t) || (t === "integer" && tb.includes("number")))
          .concat(tb.filter((t) => t === "integer" && ta.includes("number") && !ta.includes("integer")));
        out[k] = both;
        break;
      }
      case "required": out[k] = [...new Set([...(cur as string[]), ...(v as string[])])]; break;
      case "properties": {
        const p: Obj = { ...(cur as Obj) };
        for (const [pk, pv] of Object.entries(v as Obj)) p[pk] = pk in p ? mergeSchemas(p[pk] as JsonSchema, pv as JsonSchema) : pv;
        out[k] = p;
        break;
      }
      case "enum": {
        const bs = new Set((v as unknown[]).map((x) => JSON.stringify(x)));
        out[k] = (cur as unknown[]).filter((x) => bs.has(JSON.stringify(x)));
        break;
      }
      case "minItems": case "minLength": out[k] = Math.max(cur as number, v as number); break;
      case "maxItems": case "maxLength": out[k] = Math.min(cur as number, v as number); break;
      case "items": case "additionalProperties": out[k] = mergeSchemas(cur as JsonSchema, v as JsonSchema); break;
      case "anyOf": case "oneOf": {
        // (a1 | a2) & (b1 | b2) = union of pairwise intersections
        const pairs: JsonSchema[] = [];
        for (const x of cur as JsonSchema[]) for (const y of v as JsonSchema[]) pairs.push(mergeSchemas(x, y));
        out[k] = pairs;
        break;
      }
      default:
        if (JSON.stringify(cur) !== JSON.stringify(v)) bad(`cannot combine two different "${k}" constraints`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Frames (immutable). `up` is the continuation taken when this value is complete.

type Frame = DoneF | LitF | StrF | NumF | ObjF | KeyF | ArrF | StartF;
interface DoneF { k: 0 }
/** Before the first character: feeds it into the root schema. */
interface StartF { k: 7 }
interface LitF { k: 1; up: Frame; text: string; pos: number }
/** st: 0 plain, 1 after '\', 2..5 = that many \u hex digits read minus 2 (2 → expecting the 1st) */
interface StrF { k: 2; up: Frame; st: number; len: number; alt: StrAlt }
/** number states as in the JSON grammar; accepting: 2, 3, 5, 8 */
interface NumF { k: 3; up: Frame; st: number; len: number; integer: boolean }
/** st: 0 after '{', 1 after key (expects ':'), 2 after ':', 3 after value, 4 after ',' */
interface ObjF { k: 4; up: Frame; st: number; alt: ObjAlt; seen: readonly string[]; cur: JsonSchema | null }
interface KeyF { k: 5; obj: ObjF; raw: string; st: number }
/** st: 0 after '[', 1 after an element, 2 after ',' */
interface ArrF { k: 6; up: Frame; st: number; alt: ArrAlt; count: number }

const DONE: DoneF = { k: 0 };
const START: StartF = { k: 7 };

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

function isHex(c: string): boolean {
  return (c >= "0" && c <= "9") || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");
}

class Machine {
  constructor(readonly compiler: SchemaCompiler, readonly maxNumberLength: number) {}

  startValue(schema: JsonSchema, up: Frame, c: string, out: Frame[]): void {
    for (const alt of this.compiler.expand(schema)) {
      switch (alt.kind) {
        case "string":
          if (c === '"') out.push({ k: 2, up, st: 0, len: 0, alt } as StrF);
          break;
        case "number":
          this.feed({ k: 3, up, st: 0, len: 0, integer: alt.integer } as NumF, c, out);
          break;
        case "literal":
          if (alt.text[0] === c) out.push(alt.text.length === 1 ? up : ({ k: 1, up, text: alt.text, pos: 1 } as LitF));
          break;
        case "object":
          if (c === "{") out.push({ k: 4, up, st: 0, alt, seen: [], cur: null } as ObjF);
          break;
        case "array":
          if (c === "[") out.push({ k: 6, up, st: 0, alt, count: 0 } as ArrF);
          break;
      }
    }
  }

  private canAddKey(f: ObjF): boolean {
    if (f.alt.additional !== false) return true;
    for (const k of f.alt.props.keys()) if (!f.seen.includes(k)) return true;
    return false;
  }

  private canClose(f: ObjF): boolean {
    for (const r of f.alt.required) if (!f.seen.includes(r)) return false;
    return true;
  }

  feed(f: Frame, c: string, out: Frame[]): void {
    switch (f.k) {
      case 0:
        return;
      case 1: {
        if (f.text[f.pos] !== c) return;
        out.push(f.pos + 1 === f.text.length ? f.up : { k: 1, up: f.up, text: f.text, pos: f.pos + 1 });
        return;
      }
      case 2: {
        const { st, len, alt } = f;
        if (st === 0) {
          if (c === '"') { if (len >= alt.min) out.push(f.up); return; }
          if (c === "\\") { if (len < alt.max) out.push({ ...f, st: 1 }); return; }
          const code = c.charCodeAt(0);
          if (code < 0x20) return;
          // a low surrogate completes a pair already counted by its high surrogate
          const add = code >= 0xdc00 && code <= 0xdfff ? 0 : 1;
          if (len + add <= alt.max) out.push({ ...f, len: len + add });
          return;
        }
        if (st === 1) {
          if (c === "u") out.push({ ...f, st: 2 });
          else if ('"\\/bfnrt'.includes(c)) out.push({ ...f, st: 0, len: len + 1 });
          return;
        }
        if (!isHex(c)) return;
        out.push(st === 5 ? { ...f, st: 0, len: len + 1 } : { ...f, st: st + 1 });
        return;
      }
      case 3:
        this.feedNumber(f, c, out);
        return;
      case 7:
        this.startValue(this.compiler.root, DONE, c, out);
        return;
      case 4:
        this.feedObject(f, c, out);
        return;
      case 5:
        this.feedKey(f, c, out);
        return;
      case 6: {
        const a = f.alt;
        if (f.st === 0) {
          if (c === "]") { if (a.min === 0) out.push(f.up); return; }
          if (a.max > 0) this.startValue(a.items, { ...f, st: 1, count: 1 }, c, out);
          return;
        }
        if (f.st === 1) {
          if (c === ",") { if (f.count < a.max) out.push({ ...f, st: 2 }); return; }
          if (c === "]") { if (f.count >= a.min) out.push(f.up); }
          return;
        }
        this.startValue(a.items, { ...f, st: 1, count: f.count + 1 }, c, out);
        return;
      }
    }
  }

  private feedNumber(f: NumF, c: string, out: Frame[]): void {
    const d = isDigit(c);
    let next = -1;
    switch (f.st) {
      case 0: next = c === "-" ? 1 : c === "0" ? 2 : d ? 3 : -1; break;
      case 1: next = c === "0" ? 2 : d ? 3 : -1; break;
      case 2: next = f.integer ? -1 : c === "." ? 4 : c === "e" || c === "E" ? 6 : -1; break;
      case 3: next = d ? 3 : f.integer ? -1 : c === "." ? 4 : c === "e" || c === "E" ? 6 : -1; break;
      case 4: next = d ? 5 : -1; break;
      case 5: next = d ? 5 : c === "e" || c === "E" ? 6 : -1; break;
      case 6: next = c === "+" || c === "-" ? 7 : d ? 8 : -1; break;
      case 7: next = d ? 8 : -1; break;
      case 8: next = d ? 8 : -1; break;
    }
    if (next >= 0) {
      // never enter a non-accepting state that cannot be completed within the length limit
      const needs = next === 1 || next === 4 || next === 6 || next === 7 ? 1 : 0;
      if (f.len + 1 + needs <= this.maxNumberLength) out.push({ ...f, st: next, len: f.len + 1 });
    }
    if (f.st === 2 || f.st === 3 || f.st === 5 || f.st === 8) this.feed(f.up, c, out);
  }

  private feedObject(f: ObjF, c: string, out: Frame[]): void {
    switch (f.st) {
      case 0:
        if (c === "}") { if (this.canClose(f)) out.push(f.up); return; }
        if (c === '"' && this.canAddKey(f)) out.push({ k: 5, obj: f, raw: "", st: 0 });
        return;
      case 1:
        if (c === ":") out.push({ ...f, st: 2 });
        return;
      case 2:
        this.startValue(f.cur!, { ...f, st: 3, cur: null }, c, out);
        return;
      case 3:
        if (c === "}") { if (this.canClose(f)) out.push(f.up); return; }
        if (c === "," && this.canAddKey(f)) out.push({ ...f, st: 4 });
        return;
      case 4:
        if (c === '"') out.push({ k: 5, obj: f, raw: "", st: 0 });
        return;
    }
  }

  private feedKey(f: KeyF, c: string, out: Frame[]): void {
    const obj = f.obj;
    const alt = obj.alt;
    if (f.st === 0 && c === '"') {
      let name: string;
      try { name = JSON.parse('"' + f.raw + '"') as string; } catch { return; }
      if (obj.seen.includes(name)) return;
      const schema = alt.props.get(name) ?? (alt.additional !== false && !alt.props.has(name) ? alt.additional : undefined);
      if (schema === undefined) return;
      out.push({ k: 4, up: obj.up, st: 1, alt, seen: [...obj.seen, name], cur: schema });
      return;
    }
    let st: number;
    if (f.st === 0) {
      if (c === "\\") st = 1;
      else if (c.charCodeAt(0) < 0x20) return;
      else st = 0;
    } else if (f.st === 1) {
      if (c === "u") st = 2;
      else if ('"\\/bfnrt'.includes(c)) st = 0;
      else return;
    } else {
      if (!isHex(c)) return;
      st = f.st === 5 ? 0 : f.st + 1;
    }
    const raw = f.raw + c;
    if (alt.additional === false) {
      let ok = false;
      for (const [name, rk] of alt.rawKeys) {
        if (rk.startsWith(raw) && !obj.seen.includes(name)) { ok = true; break; }
      }
      if (!ok) return;
    }
    out.push({ k: 5, obj, raw, st });
  }
}

function frameComplete(f: Frame): boolean {
  if (f.k === 0) return true;
  // a number at the top level ends implicitly
  return f.k === 3 && (f.st === 2 || f.st === 3 || f.st === 5 || f.st === 8) && f.up.k === 0;
}

/** Incremental recogniser for minimal JSON texts matching a schema. */
export class JsonSchemaMatcher {
  private readonly machine: Machine;
  private alts: Frame[];
  private text: string;

  constructor(schema: JsonSchema, opts: JsonSchemaMatcherOptions = {}) {
    const maxNum = opts.maxNumberLength ?? 24;
    if (!(Number.isInteger(maxNum) && maxNum >= 1)) bad("maxNumberLength must be a positive integer");
    this.machine = new Machine(new SchemaCompiler(schema, opts), maxNum);
    this.alts = [START];
    this.text = "";
    if (this.machine.compiler.expand(schema).length === 0) bad("the schema allows no value");
  }

  /** An independent copy (O(1): states are immutable and shared). */
  clone(): JsonSchemaMatcher {
    const m = Object.create(JsonSchemaMatcher.prototype) as JsonSchemaMatcher;
    const w = m as unknown as { machine: Machine; alts: Frame[]; text: string };
    w.machine = this.machine;
    w.alts = this.alts;
    w.text = this.text;
    return m;
  }

  /** Everything accepted so far. */
  get consumed(): string {
    return this.text;
  }

  private step(alts: Frame[], c: string): Frame[] {
    const out: Frame[] = [];
    for (const f of alts) this.machine.feed(f, c, out);
    return out;
  }

  /** Would all of `text` be accepted? Does not change the state. */
  canAccept(text: string): boolean {
    let alts = this.alts;
    for (let i = 0; i < text.length; i++) {
      alts = this.step(alts, text[i]!);
      if (alts.length === 0) return false;
    }
    return true;
  }

  /** Advance over `text` if every character is valid; otherwise leave the state unchanged. */
  accept(text: string): boolean {
    let alts = this.alts;
    for (let i = 0; i < text.length; i++) {
      alts = this.step(alts, text[i]!);
      if (alts.length === 0) return false;
    }
    this.alts = alts;
    this.text += text;
    return true;
  }

  /** The text so far is a complete JSON value matching the schema. */
  isComplete(): boolean {
    return this.alts.some(frameComplete);
  }

  /** Nothing more can be appended. */
  isFinished(): boolean {
    return this.alts.every((f) => f.k === 0);
  }
}

// ---------------------------------------------------------------------------------------------------
// Token level

export interface ConstraintVocabulary {
  vocabSize: number;
  /** Decoded text of a token. Special/control tokens should be reported through `isSpecial`. */
  tokenText: (id: number) => string;
  /** End-of-generation ids (e.g. <|im_end|> and <|endoftext|>). */
  eogIds: Iterable<number>;
  /** Tokens never allowed inside the JSON (control tokens). Default: none besides eog ids. */
  isSpecial?: (id: number) => boolean;
}

/** What `sampleConstrained` needs from a constraint. */
export interface TokenFilter {
  allowed(id: number): boolean;
}

/**
 * Token-level view of a JsonSchemaMatcher: `allowed(id)` for the current state (cached until the next
 * `advance`), end-of-generation allowed exactly when the JSON is complete.
 */
export class TokenConstraint implements TokenFilter {
  readonly matcher: JsonSchemaMatcher;
  private readonly vocab: ConstraintVocabulary;
  private readonly eog: Set<number>;
  private readonly texts: Array<string | null | undefined>;
  private readonly stamp: Uint32Array;
  private readonly answer: Uint8Array;
  private gen = 1;
  private ended = false;

  constructor(matcher: JsonSchemaMatcher, vocab: ConstraintVocabulary) {
    if (!Number.isInteger(vocab.vocabSize) || vocab.vocabSize <= 0) bad("vocabSize must be a positive integer");
    this.matcher = matcher;
    this.vocab = vocab;
    this.eog = new Set(vocab.eogIds);
    this.texts = new Array(vocab.vocabSize);
    this.stamp = new Uint32Array(vocab.vocabSize);
    this.answer = new Uint8Array(vocab.vocabSize);
  }

  /** An end-of-generation token has been accepted. */
  get finished(): boolean {
    return this.ended;
  }

  isComplete(): boolean {
    return this.matcher.isComplete();
  }

  private text(id: number): string | null {
    let t = this.texts[id];
    if (t === undefined) {
      t = this.vocab.isSpecial?.(id) ? null : this.vocab.tokenText(id);
      if (t === "") t = null; // an empty token would allow endless no-op steps
      this.texts[id] = t;
    }
    return t;
  }

  allowed(id: number): boolean {
    if (this.ended || !(id >= 0 && id < this.vocab.vocabSize)) return false;
    if (this.eog.has(id)) return this.matcher.isComplete();
    if (this.stamp[id] === this.gen) return this.answer[id] === 1;
    const t = this.text(id);
    const ok = t !== null && this.matcher.canAccept(t);
    this.stamp[id] = this.gen;
    this.answer[id] = ok ? 1 : 0;
    return ok;
  }

  /** Consume a token (must be allowed). */
  advance(id: number): void {
    if (!this.allowed(id)) throw new Lfm2Error("BAD_INPUT", `token ${id} is not allowed by the JSON schema here`);
    if (this.eog.has(id)) this.ended = true;
    else this.matcher.accept(this.text(id)!);
    this.gen++;
    if (this.gen === 0xffffffff) { this.stamp.fill(0); this.gen = 1; }
  }

  /** Every allowed id (a full scan; for tests and diagnostics). */
  allowedIds(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.vocab.vocabSize; i++) if (this.allowed(i)) out.push(i);
    return out;
  }
}

export interface SampleConstrainedOptions {
  /** How many best candidates to test before falling back to a full scan (default 256). */
  candidates?: number;
}

const scratch = new WeakMap<Sampler, { ids: Int32Array; scores: Float64Array; picked: Int32Array }>();

/**
 * Sample a token the constraint allows, asking it about as few tokens as possible.
 * Greedy samplers test candidates in logit order and return the first allowed one (exactly the argmax
 * over allowed tokens). Stochastic samplers take the `candidates` best tokens by logit, keep the allowed
 * ones and sample among them with the sampler's settings; only if none is allowed are all tokens
 * scanned. Bias and penalties are applied before ordering. Does not advance the constraint.
 */
export function sampleConstrained(sampler: Sampler, logits: Float32Array, history: ArrayLike<number>, constraint: TokenFilter, opts: SampleConstrainedOptions = {}): number {
  const V = sampler.vocabSize;
  let buf = scratch.get(sampler);
  if (!buf) {
    buf = { ids: new Int32Array(V), scores: new Float64Array(V), picked: new Int32Array(V) };
    scratch.set(sampler, buf);
  }
  const { ids, scores, picked } = buf;
  const w = sampler.prepare(logits, history);
  let n = 0;
  for (let i = 0; i < V; i++) {
    const s = w[i]!;
    if (s === -Infinity) continue;
    ids[n] = i;
    scores[n] = s;
    n++;
  }
  const first = Math.max(1, Math.floor(opts.candidates ?? 256));
  if (sampler.greedy) {
    let start = 0;
    let chunk = first;
    while (start < n) {
      const m = Math.min(chunk, n - start);
      selectTopCandidates(ids.subarray(start, n), scores.subarray(start, n), n - start, m);
      for (let i = start; i < start + m; i++) if (constraint.allowed(ids[i]!)) return ids[i]!;
      start += m;
      chunk *= 4;
    }
    throw new Lfm2Error("BAD_INPUT", "constrained sampling: no token is allowed");
  }
  const m = Math.min(first, n);
  selectTopCandidates(ids, scores, n, m);
  let c = 0;
  for (let i = 0; i < m; i++) if (constraint.allowed(ids[i]!)) picked[c++] = ids[i]!;
  if (c === 0) {
    for (let i = m; i < n; i++) if (constraint.allowed(ids[i]!)) picked[c++] = ids[i]!;
  }
  if (c === 0) throw new Lfm2Error("BAD_INPUT", "constrained sampling: no token is allowed");
  return sampler.sampleCandidates(w, picked, c);
}
