// The LFM2-VL vision tower in WebAssembly: SigLIP2 NaFlex encoder (patch embedding as a matmul over
// patchified pixels, learned position grid resized per tile, pre-norm ViT layers with bidirectional
// attention over the tile's patches) → pixel unshuffle ×scale → LayerNorm → 2-layer GELU MLP projector.
// Follows llama.cpp v0.5.0's clip graph (models/siglip.cpp, build_vit, build_patch_merge_permute); weights in
// their file types go through Ops.matmul, so every quant type the text model supports works here too.
import { Shard } from "../../../bindings/shard.js";
import { canShareMemory, chooseVariant, compileVariant, type WasmOptions } from "../../../bindings/wasm.js";
import { Lfm2Error, throwIfAborted } from "../../errors.js";
import { NeedMoreBytes, parseGguf, type GgufValue, type TensorInfo } from "../../formats/gguf.js";
import { GGML, type Matrix } from "../../core/quant-types.js";
import { openSource, streamSource, type ByteSource, type SourceInput } from "../../io/source.js";
import { planWeights, weightArenaBytes } from "../../graph/placement.js";
import { visionConfigFromGguf, visionTensorSpecs, type VisionConfig } from "./mmproj.js";
import { expandImagePrompt, planImage, prepareTiles, type ImagePlan, type Lfm2VlImageOptions, type PreparedTile } from "./preprocess.js";
import { loadImage, type ImageInput } from "./image.js";

interface LayerWeights {
  q: Matrix; k: Matrix; v: Matrix; o: Matrix; qb: number; kb: number; vb: number; ob: number;
  ln1w: number; ln1b: number; ln2w: number; ln2b: number; up: Matrix; upb: number; down: Matrix; downb: number;
}

interface VisionWeights {
  patch: Matrix; patchBias: number; pos: number; layers: LayerWeights[]; postW: number; postB: number;
  inNormW: number; inNormB: number; mm1: Matrix; mm1b: number; mm2: Matrix; mm2b: number;
}

export interface VisionLoadOptions extends WasmOptions {
  threads?: number;
  signal?: AbortSignal;
}

/** One encoded image: its prompt layout and one projected embedding row per `<image>` token. */
export interface EncodedImage {
  plan: ImagePlan;
  /** The prompt text replacing the image (markers and `<image>` placeholders). */
  prompt: string;
  /** rows × outDim, in prompt order (tiles, then the thumbnail). */
  embeddings: Float32Array;
  rows: number;
}

/** Bilinear + antialias resize of the position grid as ggml's CPU upscale (f32 arithmetic throughout). */
function resizePositions(src: Float32Array, C: number, side: number, W: number, H: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(W * H * C);
  if (W === side && H === side) { out.set(src.subarray(0, side * side * C)); return out; }
  const sf0 = f(W / side), sf1 = f(H / side), off = 0.5;
  const support0 = Math.max(1, f(1 / sf0)), support1 = Math.max(1, f(1 / sf1));
  const inv0 = f(1 / support0), inv1 = f(1 / support1);
  const tri = (x: number) => Math.max(f(1 - Math.abs(x)), 0);
  const acc = new Float32Array(C);
  for (let i1 = 0; i1 < H; i1++) {
    const y = f(f(i1 + off) / sf1);
    const yMin = Math.max(Math.trunc(f(f(y - support1) + off)), 0), yMax = Math.min(Math.trunc(f(f(y + support1) + off)), side);
    for (let i0 = 0; i0 < W; i0++) {
      const x = f(f(i0 + off) / sf0);
      const xMin = Math.max(Math.trunc(f(f(x - support0) + off)), 0), xMax = Math.min(Math.trunc(f(f(x + support0) + off)), side);
      // per channel: val += pixel·weight in visiting order, total weight in f32, then one division
      acc.fill(0);
      let total = 0;
      for (let sy = yMin; sy < yMax; sy++) {
        const wy = tri(f(f(f(sy - y) + off) * inv1));
        for (let sx = xMin; sx < xMax; sx++) {
          const wx = tri(f(f(f(sx - x) + off) * inv0));
          const w = f(wx * wy);
          if (w <= 0) continue;
          const row = (sy * side + sx) * C;
          for (let c = 0; c < C; c++) acc[c] = f(acc[c] + f(src[row + c] * w));
          total = f(total + w);
        }
      }
      const dst = (i1 * W + i0) * C;
      for (let c = 0; c < C; c++) out[dst + c] = total > 0 ? f(acc[c] / total) : acc[c];
    }
  }
  return out;
}

export class VisionEncoder {
  private bufs: Record<string, number> | null = null;
  private capacity = 0;
  private posCache = new Map<string, number>();

  constructor(readonly config: VisionConfig, private w: VisionWeights, readonly shard: Shard, readonly threads: number,
    readonly metadata: Map<string, GgufValue>) {}

  /** The processor options this file implies (mean/std, patch size, unshuffle factor) under the caller's. */
  imageOptions(opts: Lfm2VlImageOptions = {}): Lfm2VlImageOptions {
    const c = this.config;
    return { image_mean: c.imageMean, image_std: c.imageStd, encoder_patch_size: c.patchSize, downsample_factor: c.scaleFactor, ...opts };
  }

  /** Preprocess and encode an image (any accepted input) into projected embeddings. */
  async encode(input: ImageInput, opts: Lfm2VlImageOptions & { signal?: AbortSignal } = {}): Promise<EncodedImage> {
    const img = await loadImage(input);
    const o = this.imageOptions(opts);
    const plan = planImage(img.width, img.height, o);
    const tiles = prepareTiles(img, plan, o);
    const out = new Float32Array(plan.tokens * this.config.outDim);
    let row = 0;
    for (const t of tiles) {
      throwIfAborted(opts.signal);
      out.set(this.encodeTile(t), row * this.config.outDim);
      row += t.tokens;
    }
    return { plan, prompt: expandImagePrompt(plan), embeddings: out, rows: plan.tokens };
  }

  private ensure(N: number): Record<string, number> {
    if (this.bufs && N <= this.capacity) return this.bufs;
    const a = this.shard.arena, c = this.config, C = c.hiddenSize, f = 4;
    if (this.bufs) for (const p of Object.values(this.bufs)) a.free(p);
    const M = Math.ceil(N / (c.scaleFactor * c.scaleFactor)) + N; // merged tokens (padded grids need a little more)
    const inP = C * c.scaleFactor * c.scaleFactor, dimIn = 3 * c.patchSize * c.patchSize;
    this.bufs = {
      pix: a.alloc(N * dimIn * f), x: a.alloc(N * C * f), h: a.alloc(N * C * f), q: a.alloc(N * C * f),
      k: a.alloc(N * C * f), v: a.alloc(N * C * f), att: a.alloc(N * C * f), up: a.alloc(N * c.ffDim * f),
      kc: a.alloc(N * C * 2), vc: a.alloc(N * C * 2), merged: a.alloc(M * inP * f), hid: a.alloc(M * c.projHidden * f),
      out: a.alloc(M * c.outDim * f),
      xh: a.alloc(Math.max(N, M) * Math.max(dimIn, C, c.ffDim, inP, c.projHidden) * f),
    };
    this.shard.initOps(Math.max(dimIn, C, c.ffDim, inP, c.projHidden), Math.max(N, M));
    if (this.shard.pool) this.shard.ops.executor = this.shard.pool;
    this.capacity = N;
    return this.bufs;
  }

  private positions(W: number, H: number): number {
    const key = `${W}x${H}`;
    let p = this.posCache.get(key);
    if (p === undefined) {
      const c = this.config, C = c.hiddenSize, a = this.shard.arena;
      const grid = resizePositions(a.f32(this.w.pos, c.posSide * c.posSide * C), C, c.posSide, W, H);
      p = a.alloc(grid.length * 4);
      a.f32(p, grid.length).set(grid);
      this.posCache.set(key, p);
    }
    return p;
  }

  /**
   * y = W·x for nTok rows of x at `x`. F16 weights over many tokens take matmulF16Tiled (each converted weight
   * serves four tokens; x rounded to fp16 first, as matmulF16 expects); everything else Ops.matmul.
   */
  private mm(m: Matrix, x: number, nTok: number, y: number): void {
    const ops = this.shard.ops;
    if (m.type !== GGML.F16 || m.x4 || nTok < 8 || m.nIn % 4 !== 0) { ops.matmul(m, ops.act(x, m.nIn, nTok), y); return; }
    const a = this.shard.arena, xh = this.bufs!.xh, n = m.nIn * nTok;
    a.f32(xh, n).set(a.f32(x, n));
    ops.k.roundF16(xh, n);
    const ex = ops.executor;
    if (ex && m.nOut * n >= 1 << 19) ex.matmul("matmulF16Tiled", m.ptr, xh, y, m.nIn, nTok, m.nOut, m.nOut);
    else ops.k.matmulF16Tiled(m.ptr, xh, y, m.nIn, nTok, m.nOut, 0, m.nOut);
  }

  /** One tile's patches → its tokens' projected embeddings (tokens × outDim, a fresh array). */
  encodeTile(t: PreparedTile): Float32Array {
    const c = this.config, C = c.hiddenSize, F = c.ffDim, H = c.nHeads, dh = c.headDim;
    const W = t.patchesW, Hh = t.patchesH, N = W * Hh, dimIn = 3 * c.patchSize * c.patchSize;
    if (t.patches.length !== N * dimIn) throw new Lfm2Error("BAD_INPUT", `tile has ${t.patches.length} values, expected ${N * dimIn}`);
    const b = this.ensure(N);
    const a = this.shard.arena, ops = this.shard.ops, k = ops.k, w = this.w;
    a.f32(b.pix, N * dimIn).set(t.patches);
    // patch embedding: one matmul over patchified pixels (an F16 kernel rounds the pixels to fp16, as ggml's conv)
    this.mm(w.patch, b.pix, N, b.x);
    if (w.patchBias) k.addBias(b.x, w.patchBias, C, N);
    k.addInPlace(b.x, this.positions(W, Hh), N * C);
    for (const L of w.layers) {
      k.layerNorm(b.x, L.ln1w, L.ln1b, b.h, C, N, c.eps);
      if (L.q.type === GGML.F16) { this.mm(L.q, b.h, N, b.q); this.mm(L.k, b.h, N, b.k); this.mm(L.v, b.h, N, b.v); } else {
        const x = ops.act(b.h, C, N); // one quantization of the activations for the three matmuls
        ops.matmul(L.q, x, b.q); ops.matmul(L.k, x, b.k); ops.matmul(L.v, x, b.v);
      }
      k.addBias(b.q, L.qb, C, N); k.addBias(b.k, L.kb, C, N); k.addBias(b.v, L.vb, C, N);
      // every patch attends to every patch: K/V in fp16 as llama.cpp's flash-attention path casts them
      k.kvStore(b.k, b.kc, C, 0, N); k.kvStore(b.v, b.vc, C, 0, N);
      ops.attention(b.q, b.kc, b.vc, b.att, H, H, dh, N, 0, N, false, 1 / Math.sqrt(dh));
      this.mm(L.o, b.att, N, b.h);
      k.addBias(b.h, L.ob, C, N);
      k.addInPlace(b.x, b.h, N * C);
      k.layerNorm(b.x, L.ln2w, L.ln2b, b.h, C, N, c.eps);
      this.mm(L.up, b.h, N, b.up);
      k.addBias(b.up, L.upb, F, N);
      (c.activation === "gelu" ? k.gelu : k.geluQuick)(b.up, N * F);
      this.mm(L.down, b.up, N, b.h);
      k.addBias(b.h, L.downb, C, N);
      k.addInPlace(b.x, b.h, N * C);
    }
    if (w.postW || w.postB) k.layerNorm(b.x, w.postW, w.postB, b.x, C, N, c.eps);
    // pixel unshuffle: token (Y, X) = patches (s·Y + dy, s·X + dx) concatenated with dy outer, dx inner
    const s = c.scaleFactor, Wm = Math.ceil(W / s), Hm = Math.ceil(Hh / s), M = Wm * Hm, inP = C * s * s;
    const x = a.f32(b.x, N * C), merged = a.f32(b.merged, M * inP);
    merged.fill(0);
    for (let Y = 0; Y < Hm; Y++) for (let X = 0; X < Wm; X++) {
      for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) {
        const py = s * Y + dy, px = s * X + dx;
        if (py >= Hh || px >= W) continue; // ggml_pad: zeros
        merged.set(x.subarray((py * W + px) * C, (py * W + px + 1) * C), (Y * Wm + X) * inP + (dy * s + dx) * C);
      }
    }
    if (w.inNormW || w.inNormB) k.layerNorm(b.merged, w.inNormW, w.inNormB, b.merged, inP, M, 1e-5);
    this.mm(w.mm1, b.merged, M, b.hid);
    k.addBias(b.hid, w.mm1b, c.projHidden, M);
    k.gelu(b.hid, M * c.projHidden);
    this.mm(w.mm2, b.hid, M, b.out);
    k.addBias(b.out, w.mm2b, c.outDim, M);
    return a.f32(b.out, M * c.outDim).slice();
  }

  dispose(): void { this.shard.stopThreads(); }
}

/** The parsed header of a vision weights file: tensors under their mmproj (GGUF) names, and the config. */
export interface VisionHeader { tensors: TensorInfo[]; metadata: Map<string, GgufValue>; config: VisionConfig }

/** Where vision weights stream from: an mmproj GGUF, or a Hugging Face checkpoint (hf.ts). */
export interface VisionWeightsSource {
  src: ByteSource;
  /** The header from a prefix of the file; undefined while more bytes are needed. */
  parse(prefix: Uint8Array): VisionHeader | undefined;
  /** Wraps the weight sink, e.g. to rearrange a tensor's bytes on their way into memory. */
  wrapSink?(h: VisionHeader, sink: (offset: number, bytes: Uint8Array) => void): (offset: number, bytes: Uint8Array) => void;
}

/** Load an LFM2-VL mmproj GGUF (path, URL, bytes, Blob) into its own WebAssembly memory. */
export async function loadVisionEncoder(input: SourceInput, opts: VisionLoadOptions = {}): Promise<VisionEncoder> {
  throwIfAborted(opts.signal);
  const src = await openSource(input, opts.signal);
  return loadVisionWeights({ src, parse(prefix) {
    try {
      const f = parseGguf(prefix, src.size);
      return { tensors: f.tensors, metadata: f.metadata, config: visionConfigFromGguf(f.metadata, f.tensors) };
    } catch (e) { if (e instanceof NeedMoreBytes) return undefined; throw e; }
  } }, opts);
}

/** Load the vision encoder + projector from any weights source into its own WebAssembly memory. */
export async function loadVisionWeights(vs: VisionWeightsSource, opts: VisionLoadOptions = {}): Promise<VisionEncoder> {
  throwIfAborted(opts.signal);
  const src = vs.src;
  let threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new Lfm2Error("BAD_INPUT", `threads must be a positive integer, got ${threads}`);
  if (threads > 1 && !canShareMemory()) threads = 1;
  const shared = threads > 1;
  const modulePromise = compileVariant(chooseVariant(shared, opts), opts);
  let plan: ReturnType<typeof planWeights> | undefined;
  let shard: Shard | undefined;
  let sink: ((offset: number, bytes: Uint8Array) => void) | undefined;
  const header = await streamSource<VisionHeader>(src, (prefix) => vs.parse(prefix), (h, offset, bytes) => {
    if (!sink) {
      const specs = visionTensorSpecs(h.config);
      const pe = h.tensors.find((t) => t.name === "v.patch_embd.weight");
      if (pe && ![GGML.F16, GGML.F32, GGML.BF16].includes(pe.type as never)) {
        throw new Lfm2Error("UNSUPPORTED_TYPE", `v.patch_embd.weight is ${pe.type.name}; expected F16, BF16 or F32 (as converters write it)`);
      }
      shard = Shard.create(0, weightArenaBytes(specs, h.tensors), shared);
      plan = planWeights(specs, h.tensors, () => shard!.arena);
      sink = vs.wrapSink ? vs.wrapSink(h, plan.sink) : plan.sink;
    }
    sink(offset, bytes);
  }, { signal: opts.signal });
  const module = await modulePromise;
  await shard!.instantiate(module);
  const placed = plan!.finish(() => shard!.kernels);
  const c = header.config, C = c.hiddenSize, dimIn = 3 * c.patchSize * c.patchSize;
  const opt = (name: string) => (placed.has(name) ? placed.vector(name) : 0);
  const pm = placed.matrix("v.patch_embd.weight");
  const weights: VisionWeights = {
    patch: { ...pm, nIn: dimIn, nOut: C, rowBytes: pm.rowBytes * (pm.nOut / C) },
    patchBias: opt("v.patch_embd.bias"), pos: placed.vector("v.position_embd.weight"),
    layers: Array.from({ length: c.nLayers }, (_, l) => {
      const p = `v.blk.${l}`;
      return {
        q: placed.matrix(`${p}.attn_q.weight`), k: placed.matrix(`${p}.attn_k.weight`), v: placed.matrix(`${p}.attn_v.weight`),
        o: placed.matrix(`${p}.attn_out.weight`), qb: placed.vector(`${p}.attn_q.bias`), kb: placed.vector(`${p}.attn_k.bias`),
        vb: placed.vector(`${p}.attn_v.bias`), ob: placed.vector(`${p}.attn_out.bias`),
        ln1w: placed.vector(`${p}.ln1.weight`), ln1b: placed.vector(`${p}.ln1.bias`),
        ln2w: placed.vector(`${p}.ln2.weight`), ln2b: placed.vector(`${p}.ln2.bias`),
        up: placed.matrix(`${p}.ffn_up.weight`), upb: placed.vector(`${p}.ffn_up.bias`),
        down: placed.matrix(`${p}.ffn_down.weight`), downb: placed.vector(`${p}.ffn_down.bias`),
      };
    }),
    postW: opt("v.post_ln.weight"), postB: opt("v.post_ln.bias"),
    inNormW: opt("mm.input_norm.weight"), inNormB: opt("mm.input_norm.bias"),
    mm1: placed.matrix("mm.1.weight"), mm1b: placed.vector("mm.1.bias"), mm2: placed.matrix("mm.2.weight"), mm2b: placed.vector("mm.2.bias"),
  };
  const enc = new VisionEncoder(c, weights, shard!, threads, header.metadata);
  if (threads > 1) {
    shard!.initOps(Math.max(dimIn, C, c.ffDim, c.projHidden, C * c.scaleFactor ** 2), 1);
    try { await shard!.startThreads(threads, module); } catch { shard!.stopThreads(); }
  }
  return enc;
}
