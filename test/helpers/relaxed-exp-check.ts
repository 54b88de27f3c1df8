// Run by test/attention.test.ts in a child node with --experimental-wasm-relaxed-simd: attentionTiles and
// swiglu (both through expF32x4) in the plain SIMD and the relaxed build on the same inputs; prints which differ.
import { Arena, createMemory } from "../../bindings/arena.js";
import { compileVariant, hasRelaxedSimd, instantiateKernels, type KernelExports } from "../../bindings/wasm.js";
import { mulberry32 } from "../../src/models/synthetic.js";

const builds: { k: KernelExports; a: Arena }[] = [];
for (const v of ["lfm2-simd", "lfm2-relaxed"] as const) {
  const a = new Arena(createMemory(64 << 20, false));
  builds.push({ k: await instantiateKernels(await compileVariant(v), a.memory), a });
}

function attention({ k, a }: { k: KernelExports; a: Arena }, dh: number, nHeads: number, nKv: number, nTok: number,
  pos0: number, causal: boolean, seed: number): Uint32Array {
  const rand = mulberry32(seed), kvLen = pos0 + nTok + (causal ? 0 : 9), kvw = nKv * dh, qn = nTok * nHeads * dh;
  const fill = (n: number, amp: number) => { const p = a.alloc(n * 4); const f = a.f32(p, n); for (let i = 0; i < n; i++) f[i] = (rand() - 0.5) * amp; return p; };
  const q = fill(qn, 40), kSrc = fill(kvLen * kvw, 3), vSrc = fill(kvLen * kvw, 2); // large q: scores reach the clamp
  const kc = a.alloc(kvLen * kvw * 2), vc = a.alloc(kvLen * kvw * 2), out = a.alloc(qn * 4);
  k.kvStore(kSrc, kc, kvw, 0, kvLen); k.kvStore(vSrc, vc, kvw, 0, kvLen);
  const scr = a.alloc(k.attentionTileScratch(nHeads / nKv, dh, 16, kvLen));
  k.attentionTiles(q, kc, vc, out, nHeads, nKv, dh, nTok, pos0, kvLen, causal ? 1 : 0, 1 / Math.sqrt(dh), 16, 0, Math.ceil(nTok / 16) * nKv, scr);
  return new Uint32Array(a.f32(out, qn).slice().buffer);
}

const attentionDiffers: string[] = [];
let attentionCases = 0, seed = 1;
for (const dh of [12, 64]) for (const [nHeads, nKv] of [[2, 2], [6, 2], [16, 8]])
  for (const [nTok, pos0] of [[1, 0], [5, 3], [21, 0], [40, 67], [64, 300]]) for (const causal of [true, false]) {
    const [x, y] = builds.map((b) => attention(b, dh, nHeads, nKv, nTok, pos0, causal, seed));
    seed++; attentionCases++;
    if (x.some((v, i) => v !== y[i])) attentionDiffers.push(`dh ${dh} ${nHeads}/${nKv} ${nTok}@${pos0} ${causal}`);
  }

// SwiGLU across the exp clamp range and past it: zeros of both signs, ±Infinity, NaN
const xs = [-1e30, -200, -88.3, -87.3, -20, -1, -0, 0, 1e-30, 0.5, 3, 87.3, 88.3, 100, Infinity, -Infinity, NaN, 42];
const g = Float32Array.from({ length: 256 }, (_, i) => (i < xs.length ? xs[i] : (i - 128) * 0.77));
const u = Float32Array.from({ length: 256 }, (_, i) => 1 + (i % 5));
const [sp, sr] = builds.map(({ k, a }) => {
  const gp = a.alloc(1024), up = a.alloc(1024), op = a.alloc(1024);
  a.f32(gp, 256).set(g); a.f32(up, 256).set(u);
  k.swiglu(gp, up, op, 256);
  return a.f32(op, 256).slice();
});
const bp = new Uint32Array(sp.buffer), br = new Uint32Array(sr.buffer);
const swigluDiffers = [...bp.keys()].filter((i) => bp[i] !== br[i] && !(Number.isNaN(sp[i]) && Number.isNaN(sr[i])));
console.log(JSON.stringify({ relaxed: hasRelaxedSimd(), attentionCases, attentionDiffers, swigluDiffers, nanStaysNan: Number.isNaN(sr[16]) && Number.isNaN(sp[16]) }));
