// loadModel(): source → parsed header → the architecture's tensors placed across one or more shards
// (WebAssembly memories) as the weights stream in → a Model (./model.ts). GGUF and Hugging
// Face safetensors are both accepted.
import { loadSpeechOut, type HfSpeechOutParts } from "../models/lfm2audio/speech-load.js";
import { readHfAudioHead } from "../models/lfm2audio/hf-audio-head.js";
import { fmt, MAX_BYTES } from "../../bindings/arena.js";
import { Shard } from "../../bindings/shard.js";
import { canShareMemory, chooseVariant, compileVariant } from "../../bindings/wasm.js";
import { Lfm2Error, throwIfAborted } from "../errors.js";
import { NeedMoreBytes, parseGguf, type GgufValue, type TensorInfo } from "../formats/gguf.js";
import { openSafetensorsShards, parseSafetensors, safetensorsShardNames } from "../formats/safetensors.js";
import { hfSource, isHfSpec } from "../io/hub.js";
import { assertWholeGguf, isSplitSource, openSplitParts, parseSplitName, splitSource, streamSplitGguf } from "../io/split.js";
import { cachedUrlSource } from "../io/browser-cache.js";
import { openSource, streamSource, type ByteSource, type SourceInput } from "../io/source.js";
import { optionsObject } from "./session.js";
import { checkSignal } from "./lock.js";
import type { Lfm2Config } from "../models/lfm2/config.js";
import { architecture, configFromGguf, configFromHf } from "../models/registry.js";
import { Lfm2Forward } from "../models/lfm2/forward.js";
import { assertVocabFits, Tokenizer } from "../text/tokenizer.js";
import { groupBytes, packGroups, planWeights } from "../graph/placement.js";
import { embeddingInfoOf, type RetrievalConfig } from "../models/colbert/encoder.js";
import { encoderConfigJson, encoderParts, readSentenceTransformersFolder } from "../models/colbert/hf.js";
import { VisionLanguage } from "../models/lfm2vl/vlm.js";
import { MediaRows } from "../models/media.js";
import { AudioLanguage } from "../models/lfm2audio/speech.js";
import { loadAudioMmproj, type AudioEncoder, type AudioEncoderLoadOptions } from "../models/lfm2audio/encoder.js";
import { loadHfAudio } from "../models/lfm2audio/hf.js";
import { lfm2AudioCheckpoint } from "../models/lfm2audio/hf-checkpoint.js";
import { loadVisionEncoder } from "../models/lfm2vl/encoder.js";
import type { Lfm2VlImageOptions } from "../models/lfm2vl/preprocess.js";
import type { VisionEncoder, VisionLoadOptions } from "../models/lfm2vl/encoder.js";
import { checkImageToken, isLfm2VlConfig, lfm2VlImageOptions, lfm2VlTextConfig, loadHfVision } from "../models/lfm2vl/hf.js";
import { Model, type HfModelInput, type LoadOptions, type ModelInput, type ShardInfo } from "./model.js";

interface Header { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: Lfm2Config }

interface Resolved {
  src: ByteSource;
  format: "gguf" | "safetensors";
  parse(prefix: Uint8Array, size: number): Header;
  tokenizer(h: Header): Tokenizer | null;
  chatTemplate(h: Header): string | undefined;
  /** Retrieval settings read beside the weights (PyLate's config_sentence_transformers.json). */
  retrieval?: RetrievalConfig;
  /** An LFM2-VL checkpoint: its vision tower (read from the same safetensors) and processor options. */
  vision?: { load(tok: Tokenizer, o: VisionLoadOptions): Promise<VisionEncoder>; imageOptions: Lfm2VlImageOptions };
  /** An LFM2-Audio checkpoint: its speech-in encoder (read from the same safetensors). */
  audio?: { load(o: AudioEncoderLoadOptions): Promise<AudioEncoder> };
  /** An LFM2-Audio checkpoint: its audio head (same safetensors) and `audio_detokenizer/`, for `speechOut`. */
  speechOut?: HfSpeechOutParts;
}

const asJson = (v: Record<string, unknown> | string | undefined, what: string): Record<string, any> | undefined => {
  if (v === undefined) return undefined;
  let j: unknown = v;
  if (typeof v === "string") {
    try { j = JSON.parse(v); } catch (e) { throw new Lfm2Error("BAD_INPUT", `${what} is not valid JSON`, { cause: e }); }
  }
  // null, arrays and scalars would surface later as TypeErrors (or odd errors) in the config readers
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Lfm2Error("BAD_INPUT", `${what} must be a JSON object`);
  return j as Record<string, any>;
};

function isHfInput(x: unknown): x is HfModelInput {
  return typeof x === "object" && x !== null && "config" in x && "safetensors" in x;
}

/** A folder holding config.json + model.safetensors (Node, Deno). */
async function readHfFolder(path: string): Promise<HfModelInput | null> {
  if (typeof process === "undefined" && typeof (globalThis as any).Deno === "undefined") return null;
  const fs = await import("node:fs/promises");
  const st = await fs.stat(path).catch(() => null);
  if (!st?.isDirectory()) return null;
  const read = (f: string) => fs.readFile(`${path}/${f}`, "utf8").catch(() => undefined);
  const config = await read("config.json");
  if (config === undefined) throw new Lfm2Error("BAD_INPUT", `${path} is a folder without config.json`);
  const names = await fs.readdir(path);
  let safetensors: string | string[] = `${path}/model.safetensors`;
  if (!names.includes("model.safetensors")) {
    if (!names.some((n) => n.endsWith(".safetensors"))) throw new Lfm2Error("BAD_INPUT", `${path} has no model.safetensors`);
    safetensors = safetensorsShardNames(names, await read("model.safetensors.index.json")).map((n) => `${path}/${n}`);
  }
  return { config, safetensors, tokenizer: await read("tokenizer.json"), tokenizerConfig: await read("tokenizer_config.json"),
    chatTemplate: await read("chat_template.jinja"), preprocessorConfig: await read("preprocessor_config.json"),
    ...(await readAudioDetokenizerFolder(path, names)), ...(await readSentenceTransformersFolder(path)) };
}

/** LFM2.5-Audio: the checkpoint's `audio_detokenizer/` subfolder (config.json + model.safetensors), if there is one. */
async function readAudioDetokenizerFolder(path: string, names: string[]): Promise<{ audioDetokenizer?: HfModelInput }> {
  if (!names.includes("audio_detokenizer")) return {};
  const fs = await import("node:fs/promises"), dir = `${path}/audio_detokenizer`;
  const config = await fs.readFile(`${dir}/config.json`, "utf8").catch(() => undefined);
  return config === undefined ? {} : { audioDetokenizer: { config, safetensors: `${dir}/model.safetensors` } };
}

/** The byte source of a GGUF input: hub specs, split files, cached URLs, or anything openSource takes. */
async function ggufSource(input: SourceInput, opts: LoadOptions): Promise<ByteSource> {
  const { signal } = opts;
  const readTimeoutMs = opts.readTimeoutMs;
  if (typeof input === "string" && isHfSpec(input)) return hfSource(input, { signal, onProgress: opts.onProgress, readTimeoutMs });
  const isUrl = (v: string) => /^(https?|blob|data|file):/i.test(v);
  if (typeof input === "string" && !isUrl(input) && parseSplitName(input)) return splitSource(await openSplitParts(input));
  if (opts.cache && (input instanceof URL || (typeof input === "string" && /^https?:/i.test(input)))) return cachedUrlSource(input, { cache: opts.cache, signal, readTimeoutMs });
  return openSource(input, signal, { readTimeoutMs });
}

async function resolveInput(input: ModelInput, opts: LoadOptions): Promise<Resolved> {
  const { signal, readTimeoutMs } = opts;
  if (typeof input === "string" && !isHfSpec(input)) {
    const folder = await readHfFolder(input);
    if (folder) input = folder;
  }
  if (isHfInput(input)) {
    const hf = input;
    const cfgJson = asJson(hf.config, "config.json")!;
    const tokJson = asJson(hf.tokenizer, "tokenizer.json");
    const tokCfg = asJson(hf.tokenizerConfig, "tokenizer_config.json");
    // LFM2-Audio: the text tower under lfm.* (beside the speech-in encoder), or the LFM2.5 detokenizer's backbone
    const audioHf = lfm2AudioCheckpoint(cfgJson);
    const parts = Array.isArray(hf.safetensors)
      ? await Promise.all(hf.safetensors.map((p) => openSource(p, signal, { readTimeoutMs }))) : undefined;
    const sharded = parts ? await openSafetensorsShards(parts, signal, audioHf?.rename) : undefined;
    const trunk = sharded?.src ?? await openSource(hf.safetensors as SourceInput, signal, { readTimeoutMs });
    // a retrieval encoder: the Dense module's file follows the trunk's bytes, its tensors named dense_2.*
    const enc = await encoderParts(trunk, hf, cfgJson, (s) => openSource(s, signal, { readTimeoutMs }), signal);
    const vl = isLfm2VlConfig(cfgJson), preJson = vl ? asJson(hf.preprocessorConfig, "preprocessor_config.json") : undefined;
    // LFM2-VL: the vision tower streams from the same safetensors (its text tensors skipped)
    const vision = vl ? {
      imageOptions: lfm2VlImageOptions(cfgJson, preJson),
      load: (tok: Tokenizer, o: VisionLoadOptions) => { checkImageToken(cfgJson, tok); return loadHfVision(parts ?? [trunk], cfgJson, preJson, o); },
    } : undefined;
    const audio = audioHf?.speechIn ? { load: (o: AudioEncoderLoadOptions) => loadHfAudio(parts ?? [trunk], cfgJson, o) } : undefined;
    const speechOut = audioHf?.speechIn
      ? { head: () => readHfAudioHead(parts ?? [trunk], cfgJson, signal), detokenizer: hf.audioDetokenizer } : undefined;
    return {
      src: enc?.src ?? trunk, format: "safetensors", retrieval: enc?.retrieval, vision, audio, speechOut,
      parse(prefix, size) {
        const f = sharded?.file ?? parseSafetensors(prefix, enc ? trunk.size : size, audioHf?.rename);
        const metadata = new Map<string, GgufValue>(Object.entries(f.metadata));
        const config = audioHf?.config ?? configFromHf(encoderConfigJson(vl ? lfm2VlTextConfig(cfgJson) : cfgJson));
        return enc ? { tensors: [...f.tensors, ...enc.tensors], metadata, config: enc.config(config, cfgJson) } : { tensors: f.tensors, metadata, config };
      },
      tokenizer: () => (tokJson ? Tokenizer.fromHfJson(tokJson, tokCfg) : null),
      chatTemplate: () => hf.chatTemplate ?? (typeof tokCfg?.chat_template === "string" ? tokCfg.chat_template : undefined),
    };
  }
  const src = await ggufSource(input, opts);
  return {
    src, format: "gguf",
    parse(prefix, size) {
      const f = parseGguf(prefix, size);
      assertWholeGguf(f.metadata, src.name); // one part of a split model alone: a clear error
      return { tensors: f.tensors, metadata: f.metadata, config: configFromGguf(f.metadata) };
    },
    tokenizer: (h) => (h.metadata.has("tokenizer.ggml.tokens") ? Tokenizer.fromGguf(h.metadata) : null),
    chatTemplate: (h) => { const t = h.metadata.get("tokenizer.chat_template"); return typeof t === "string" ? t : undefined; },
  };
}

/** Hardware threads of this machine (Node 20 has no navigator: ask node:os). */
async function hardwareThreads(): Promise<number> {
  const n = (globalThis as any).navigator?.hardwareConcurrency;
  if (Number.isInteger(n) && n > 0) return n;
  if (typeof process !== "undefined" && process.versions?.node) {
    try {
      const os = await import("node:os");
      return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
    } catch { /* no node:os (a bundler stub): fall through */ }
  }
  return 2;
}

/** Default weight bytes per shard: the rest of the 4 GiB holds the KV cache, scratch and growth. */
const SHARD_CAPACITY = Math.floor(MAX_BYTES * 0.85);

/**
 * Load a model of the LFM2 family: a GGUF (path, URL, bytes, Blob) or a Hugging Face model (folder
 * path, or `{ config, safetensors, tokenizer?, tokenizerConfig?, chatTemplate? }`). Weights stream
 * straight into WebAssembly memory — several memories when they exceed one; every malformed input
 * ends in an Lfm2Error.
 */
export async function loadModel(input: ModelInput, options: LoadOptions = {}): Promise<Model> {
  const opts = optionsObject(options, "load options");
  checkSignal(opts.signal);
  throwIfAborted(opts.signal);
  if (opts.threads !== undefined && !(typeof opts.threads === "number" && Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new Lfm2Error("BAD_INPUT", `threads must be a positive integer, got ${String(opts.threads)}`);
  }
  const cores = await hardwareThreads();
  const r = await resolveInput(input, opts);
  const src = r.src;
  const parse = (prefix: Uint8Array): Header | undefined => {
    try { return r.parse(prefix, src.size); } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
  };
  let threads = opts.threads ?? Math.min(4, cores);
  let threadsNote: string | undefined;
  if (threads > cores) {
    // more threads than cores only time-slice: each hand-off waits for a descheduled worker
    threadsNote = `threads capped at this machine's ${cores} hardware threads (asked for ${threads})`;
    threads = cores;
  }
  if (threads > 1 && !canShareMemory()) {
    threads = 1;
    threadsNote = "shared WebAssembly memory is unavailable here (no SharedArrayBuffer or not cross-origin isolated)";
  }
  const shared = threads > 1;
  const variant = chooseVariant(shared, opts);
  const modulePromise = compileVariant(variant, opts);
  const capacity = opts.maxShardBytes ?? SHARD_CAPACITY;
  if (!(capacity > 0)) throw new Lfm2Error("BAD_INPUT", `maxShardBytes must be a positive number, got ${opts.maxShardBytes}`);
  const chunk = opts.chunkSize ?? 64;
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 4096) throw new Lfm2Error("BAD_INPUT", `chunkSize must be an integer in 1..4096, got ${chunk}`);
  let plan: ReturnType<typeof planWeights> | undefined;
  const shards: Shard[] = [];
  let shardOf = new Map<number, number>();
  const sink = (h: Header, offset: number, bytes: Uint8Array) => {
    if (!plan) {
      const specs = architecture(h.config.architecture).tensors(h.config);
      const groups = groupBytes(specs, h.tensors);
      const total = [...groups.values()].reduce((a, b) => a + b, 0);
      const largest = Math.max(...groups.values());
      if (largest > Math.min(capacity, MAX_BYTES * 0.95)) {
        throw new Lfm2Error("MODEL_TOO_LARGE", `${src.name} holds ${fmt(total)} of weights; one WebAssembly memory holds at most ` +
          `${fmt(MAX_BYTES)} and one layer (or the embedding) alone needs ${fmt(largest)}`);
      }
      const packed = packGroups(groups, capacity);
      shardOf = packed.shardOf;
      packed.shardBytes.forEach((b, i) => shards.push(Shard.create(i, b, shared)));
      plan = planWeights(specs, h.tensors, (g) => shards[shardOf.get(g)!].arena);
    }
    plan.sink(offset, bytes);
  };
  let header: Header;
  if (r.format === "gguf" && isSplitSource(src)) {
    // parts of a split GGUF: one virtual file, tensors addressed across parts
    let h: Header | undefined;
    const f = await streamSplitGguf([...src.parts], (file, offset, bytes) =>
      sink(h ??= { tensors: file.tensors, metadata: file.metadata, config: configFromGguf(file.metadata) }, offset, bytes),
    { signal: opts.signal, onProgress: opts.onProgress });
    header = h ?? { tensors: f.tensors, metadata: f.metadata, config: configFromGguf(f.metadata) };
  } else header = await streamSource(src, parse, sink, { signal: opts.signal, onProgress: opts.onProgress });
  const module = await modulePromise;
  for (const s of shards) await s.instantiate(module);
  throwIfAborted(opts.signal); // an abort during the last chunk (or the compile) still counts
  const c = header.config;
  const placed = plan!.finish((arena) => shards.find((s) => s.arena === arena)!.kernels);
  const weights = architecture(c.architecture).bind(c, placed);
  const widest = Math.max(c.hiddenSize * 3, c.ffDim, c.moe?.expertFfDim ?? 0, c.kvHeads.some((h) => h > 0) ? c.nHeads * c.headDim : 0);
  // a bidirectional or pooled encoder sees the whole sequence in one step
  const encLen = opts.encoderLength ?? 512;
  if (!Number.isInteger(encLen) || encLen < 1 || encLen > 8192) throw new Lfm2Error("BAD_INPUT", `encoderLength must be an integer in 1..8192, got ${encLen}`);
  const stepTokens = !c.causal || (c.pooling ?? 0) !== 0 ? Math.max(chunk, encLen) : chunk;
  for (const s of shards) s.initOps(widest, stepTokens);
  const layerShard = Array.from({ length: c.nLayers }, (_, l) => shardOf.get(l)!);
  const tokenizer = r.tokenizer(header);
  // a vocabulary past the embedding rows would load, then fail (or read out of bounds) on every prompt
  if (tokenizer) assertVocabFits(tokenizer, c.vocabSize);
  const fwd = new Lfm2Forward(c, weights, { shards, headShard: shardOf.get(-1)!, layerShard }, stepTokens);
  if (threads > 1) {
    try {
      for (const s of shards) await s.startThreads(threads, module);
    } catch (e) {
      for (const s of shards) s.stopThreads();
      threadsNote = `worker threads could not start: ${(e as Error).message}`;
      threads = 1;
    }
  }
  let vision: VisionLanguage | null = null, audio: AudioLanguage | null = null, media: MediaRows | null = null;
  if (opts.mmproj !== undefined || r.vision || r.audio) {
    if (!tokenizer) throw new Lfm2Error("BAD_INPUT", "an mmproj needs a text model with a tokenizer");
    media = new MediaRows(fwd);
    // an LFM2-VL / LFM2-Audio HF checkpoint carries its vision tower / audio encoder (an explicit mmproj replaces it)
    const audioEncoder = opts.mmproj === undefined ? (await r.audio?.load({ ...opts, threads })) ?? null
      : await loadAudioMmproj(opts.mmproj, { ...opts, threads });
    if (opts.mmproj === undefined && r.vision) {
      const encoder = await r.vision!.load(tokenizer, { ...opts, threads });
      const imageOptions = { ...r.vision!.imageOptions, ...opts.imageOptions };
      try { vision = new VisionLanguage(encoder, media, tokenizer, imageOptions); } catch (e) { encoder.dispose(); throw e; }
    } else if (audioEncoder) {
      try { audio = new AudioLanguage(audioEncoder, media); } catch (e) { audioEncoder.dispose(); throw e; }
    } else {
      const encoder = await loadVisionEncoder(opts.mmproj!, { ...opts, threads });
      try { vision = new VisionLanguage(encoder, media, tokenizer, opts.imageOptions); } catch (e) { encoder.dispose(); throw e; }
    }
  }
  const types: Record<string, number> = {};
  let params = 0;
  for (const t of header.tensors) { types[t.type.name] = (types[t.type.name] ?? 0) + 1; params += t.shape.reduce((a, b) => a * b, 1); }
  const name = header.metadata.get("general.name");
  const embedding = embeddingInfoOf(fwd);
  const shardInfo: ShardInfo[] = shards.map((s) => ({ weightBytes: 0, layers: [], head: false }));
  for (const [g, s] of shardOf) if (g < 0) shardInfo[s].head = true; else shardInfo[s].layers.push(g);
  const gb = groupBytes(architecture(c.architecture).tensors(c), header.tensors);
  for (const [g, b] of gb) shardInfo[shardOf.get(g)!].weightBytes += b;
  const model = new Model({
    architecture: c.architecture, name: typeof name === "string" ? name : undefined, format: r.format, config: c,
    tensorTypes: types, parameters: params, weightBytes: plan!.weightBytes, wasmVariant: variant, shards: shardInfo,
    threads, threadsNote, metadata: header.metadata, ...(embedding ? { embedding } : {}),
  }, media?.forward ?? fwd, shards, tokenizer, r.chatTemplate(header), vision, audio);
  if (r.retrieval) model.retrieval = r.retrieval;
  if (opts.speechOut) {
    if (!tokenizer) throw new Lfm2Error("BAD_INPUT", "speech output needs a text model with a tokenizer");
    // the head, code decoder and code table: from the files given, or from an LFM2-Audio HF checkpoint itself
    try {
      model.speech = await loadSpeechOut(opts.speechOut, { fwd: media?.forward ?? fwd, tok: tokenizer, media: model.media,
        hf: r.speechOut, signal: opts.signal, threads,
        load: (input, chunkSize) => loadModel(input, { threads, signal: opts.signal, chunkSize }) });
    } catch (e) { model.dispose(); throw e; }
  }
  return model;
}
