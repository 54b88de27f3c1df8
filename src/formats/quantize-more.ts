// Codecs for Q4_1, Q5_0, Q5_1 (ggml's reference formulas) and Q4_K, Q5_K, Q6_K (a simple range-covering
// quantizer; dequantization exactly as ggml's dequantize_row_*). Byte layouts follow spec §3.5 / ggml's
// block structs:
//   block_q4_1 {f16 d; f16 m; u8 qs[16]}                                     20 bytes / 32 weights
//   block_q5_0 {f16 d; u8 qh[4]; u8 qs[16]}                                  22 bytes / 32 weights
//   block_q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}                           24 bytes / 32 weights
//   block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}                  144 bytes / 256 weights
//   block_q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}       176 bytes / 256 weights
//   block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}                 210 bytes / 256 weights
//
// quantize.ts registers these codecs via registerMoreCodecs. Besides the codecs this module exports `unpackBlock`, which decodes one block of any supported
// quantized type into integer quants plus per-group (scale, offset) with w = scale·q + offset, where
// both products are exact in f32. The dequantizers and `dotReference` (activation-quant.ts) use it.
import { f16ToF32, f32ToF16 } from "./fp16.js";
import { GGML, type GgmlType } from "../core/quant-types.js";
import type { BlockCodec } from "./quantize.js";

const fr = Math.fround;

/** ggml's nearest_int (round half to even, via the 1.5·2^23 trick). */
export function nearestInt(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** C's (int8_t)/(uint8_t) cast of a non-negative float: truncation. */
const trunc = Math.trunc;

/** Smallest fp16 value ≥ v (v ≥ 0), as a bit pattern. */
function f16Up(v: number): number {
  let h = f32ToF16(v);
  if (f16ToF32(h) < v) h++;
  return h;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const put16 = (b: Uint8Array, o: number, h: number) => { b[o] = h & 0xff; b[o + 1] = h >>> 8; };

// ---- unpacked representation ------------------------------------------------------------------

/** One decoded block: w[j] = scale[g]·q[j] + offset[g] with g = floor(j / groupSize). */
export interface UnpackedBlock {
  q: Int32Array;          // blockSize integer quants (already re-centred: Q4_0 → q−8, Q6_K → q−32, …)
  groupSize: number;
  scale: Float64Array;    // per group, exactly representable in f32
  offset: Float64Array;   // per group (Q4_1/Q5_1: +m; K-quants: −dmin·m), exactly representable in f32
}

export function newUnpacked(t: GgmlType): UnpackedBlock {
  const groupSize = t.id === GGML.Q6_K.id ? 16 : 32;
  const nGroups = t.blockSize / groupSize;
  return { q: new Int32Array(t.blockSize), groupSize, scale: new Float64Array(nGroups), offset: new Float64Array(nGroups) };
}

/** get_scale_min_k4: 6-bit scale and min of sub-block j from the 12 packed bytes at `o`. */
export function scaleMinK4(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j] & 63, s[o + j + 4] & 63];
  return [(s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4), (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4)];
}

/** Decode the block of type `t` starting at byte `o` of `b` into `u` (from newUnpacked(t)). */
export function unpackBlock(t: GgmlType, b: Uint8Array, o: number, u: UnpackedBlock): void {
  const q = u.q;
  switch (t.id) {
    case GGML.Q8_0.id: {
      u.scale[0] = f16ToF32(u16(b, o)); u.offset[0] = 0;
      for (let j = 0; j < 32; j++) q[j] = (b[o + 2 + j] << 24) >> 24;
      return;
    }
    case GGML.Q4_0.id:
    case GGML.Q4_1.id: {
      const one = t.id === GGML.Q4_1.id;
      u.scale[0] = f16ToF32(u16(b, o));
      u.offset[0] = one ? f16ToF32(u16(b, o + 2)) : 0;
      const qs = o + (one ? 4 : 2), bias = one ? 0 : 8;
      for (let j = 0; j < 16; j++) { q[j] = (b[qs + j] & 15) - bias; q[j + 16] = (b[qs + j] >> 4) - bias; }
      return;
    }
    case GGML.Q5_0.id:
    case GGML.Q5_1.id: {
      const one = t.id === GGML.Q5_1.id;
      u.scale[0] = f16ToF32(u16(b, o));
      u.offset[0] = one ? f16ToF32(u16(b, o + 2)) : 0;
      const h = o + (one ? 4 : 2), qs = h + 4, bias = one ? 0 : 16;
      const qh = (b[h] | (b[h + 1] << 8) | (b[h + 2] << 16) | (b[h + 3] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        q[j] = ((b[qs + j] & 15) | (((qh >>> j) & 1) << 4)) - bias;
        q[j + 16] = ((b[qs + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - bias;
      }
      return;
    }
    case GGML.Q4_K.id:
    case GGML.Q5_K.id: {
      const five = t.id === GGML.Q5_K.id;
      const d = f16ToF32(u16(b, o)), dmin = f16ToF32(u16(b, o + 2));
      const sc = o + 4, qh = o + 16, ql = five ? o + 48 : o + 16;
      for (let c = 0; c < 4; c++) {
        for (let h = 0; h < 2; h++) {
          const g = 2 * c + h;
          const [s, m] = scaleMinK4(b, sc, g);
          u.scale[g] = d * s; u.offset[g] = -(dmin * m);
          const hbit = 1 << g;
          for (let l = 0; l < 32; l++) {
            const byte = b[ql + 32 * c + l];
            let v = h ? byte >> 4 : byte & 15;
            if (five && (b[qh + l] & hbit)) v += 16;
            q[32 * g + l] = v;
          }
        }
      }
      return;
    }
    case GGML.Q6_K.id: {
      const d = f16ToF32(u16(b, o + 208));
      for (let g = 0; g < 16; g++) { u.scale[g] = d * ((b[o + 192 + g] << 24) >> 24); u.offset[g] = 0; }
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n, qh = o + 128 + 32 * n, y = 128 * n;
        for (let l = 0; l < 32; l++) {
          const h = b[qh + l];
          q[y + l] = ((b[ql + l] & 15) | ((h & 3) << 4)) - 32;
          q[y + l + 32] = ((b[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
          q[y + l + 64] = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
          q[y + l + 96] = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        }
      }
      return;
    }
  }
  throw new Error(`unpackBlock: unsupported type ${t.name}`);
}

/** Dequantize via unpackBlock; every product is exact in f32, so the single f32 rounding of
 *  scale·q + offset reproduces ggml's dequantize_row_* bit for bit. */
function dequantizeWith(t: GgmlType) {
  return (src: Uint8Array, y: Float32Array) => {
    const u = newUnpacked(t);
    const nb = y.length / t.blockSize;
    for (let i = 0; i < nb; i++) {
      unpackBlock(t, src, i * t.blockBytes, u);
      const base = i * t.blockSize;
      for (let j = 0; j < t.blockSize; j++) {
        const g = (j / u.groupSize) | 0;
        y[base + j] = u.scale[g] * u.q[j] + u.offset[g];
      }
    }
  };
}

// ---- registration -----------------------------------------------------------------------------
// quantize.ts calls registerMoreCodecs(registerCodec) at its end. (A plain side-effect import in both
// directions would run this module's body before quantize.ts has created its registry: ESM hoists
// imports, so the registry Map would still be in its temporal dead zone.)

const codecs: [GgmlType, BlockCodec][] = [];

export function registerMoreCodecs(register: (t: GgmlType, c: BlockCodec) => void): void {
  for (const [t, c] of codecs) register(t, c);
}

// ---- Q4_1 / Q5_1: min/max, ggml quantize_row_q4_1_ref / q5_1_ref -------------------------------

function quantizeMinMax(x: Float32Array, out: Uint8Array, bits: 4 | 5) {
  const levels = (1 << bits) - 1, bytes = bits === 4 ? 20 : 24;
  for (let i = 0; i < x.length / 32; i++) {
    const xo = 32 * i, o = bytes * i;
    let min = Infinity, max = -Infinity;
    for (let j = 0; j < 32; j++) { const v = x[xo + j]; if (v < min) min = v; if (v > max) max = v; }
    const d = fr(fr(max - min) / levels), id = d ? fr(1 / d) : 0;
    put16(out, o, f32ToF16(d));
    put16(out, o + 2, f32ToF16(min));
    const qs = o + (bits === 4 ? 4 : 8);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      let q0 = trunc(fr(fr(fr(x[xo + j] - min) * id) + 0.5));
      let q1 = trunc(fr(fr(fr(x[xo + 16 + j] - min) * id) + 0.5));
      if (bits === 4) { q0 = Math.min(15, q0); q1 = Math.min(15, q1); }
      out[qs + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    if (bits === 5) { out[o + 4] = qh & 0xff; out[o + 5] = (qh >>> 8) & 0xff; out[o + 6] = (qh >>> 16) & 0xff; out[o + 7] = qh >>> 24; }
  }
}

codecs.push([GGML.Q4_1, { quantize: (x, out) => quantizeMinMax(x, out, 4), dequantize: dequantizeWith(GGML.Q4_1) }]);
codecs.push([GGML.Q5_1, { quantize: (x, out) => quantizeMinMax(x, out, 5), dequantize: dequantizeWith(GGML.Q5_1) }]);

// ---- Q5_0: d = max/−16, ggml quantize_row_q5_0_ref --------------------------------------------

codecs.push([GGML.Q5_0, {
  quantize(x, out) {
    for (let i = 0; i < x.length / 32; i++) {
      const xo = 32 * i, o = 22 * i;
      let amax = 0, max = 0;
      for (let j = 0; j < 32; j++) { const v = x[xo + j]; if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; } }
      const d = fr(max / -16), id = d ? fr(1 / d) : 0;
      put16(out, o, f32ToF16(d));
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(31, trunc(fr(fr(x[xo + j] * id) + 16.5)));
        const q1 = Math.min(31, trunc(fr(fr(x[xo + 16 + j] * id) + 16.5)));
        out[o + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
        qh |= ((q0 >> 4) & 1) << j;
        qh |= ((q1 >> 4) & 1) << (j + 16);
      }
      out[o + 2] = qh & 0xff; out[o + 3] = (qh >>> 8) & 0xff; out[o + 4] = (qh >>> 16) & 0xff; out[o + 5] = qh >>> 24;
    }
  },
  dequantize: dequantizeWith(GGML.Q5_0),
}]);

// ---- Q4_K / Q5_K ------------------------------------------------------------------------------
// Per 32-weight sub-block: min (clamped to ≤ 0 as ggml does) and max. The super-block dmin and d are
// rounded UP to fp16 and the 6-bit sub-block min/scale indices are rounded up too, so the grid
// −dmin·m + d·sc·[0, nmax] always covers [min, max]: |error| ≤ d·sc/2 for every weight.

function quantizeK45(x: Float32Array, out: Uint8Array, five: boolean) {
  const nmax = five ? 31 : 15, bytes = five ? 176 : 144;
  const mins = new Float64Array(8), scales = new Float64Array(8);
  const Ls = new Int32Array(8), Lm = new Int32Array(8), L = new Uint8Array(256);
  for (let i = 0; i < x.length / 256; i++) {
    const xo = 256 * i, o = bytes * i;
    let maxMin = 0;
    const maxs = new Float64Array(8);
    for (let g = 0; g < 8; g++) {
      let mn = Infinity, mx = -Infinity;
      for (let l = 0; l < 32; l++) { const v = x[xo + 32 * g + l]; if (v < mn) mn = v; if (v > mx) mx = v; }
      mins[g] = Math.max(0, -mn); maxs[g] = mx;
      maxMin = Math.max(maxMin, mins[g]);
    }
    const hmin = f16Up(maxMin / 63), dmin = f16ToF32(hmin);
    let maxScale = 0;
    for (let g = 0; g < 8; g++) {
      Lm[g] = dmin ? Math.min(63, Math.ceil(mins[g] / dmin)) : 0;
      scales[g] = Math.max(0, (maxs[g] + dmin * Lm[g]) / nmax);
      maxScale = Math.max(maxScale, scales[g]);
    }
    const hd = f16Up(maxScale / 63), d = f16ToF32(hd);
    for (let g = 0; g < 8; g++) Ls[g] = d ? Math.min(63, Math.ceil(scales[g] / d)) : 0;
    for (let g = 0; g < 8; g++) {
      const step = d * Ls[g], off = dmin * Lm[g];
      for (let l = 0; l < 32; l++) {
        const k = 32 * g + l;
        L[k] = step ? Math.max(0, Math.min(nmax, nearestInt((x[xo + k] + off) / step))) : 0;
      }
    }
    put16(out, o, hd);
    put16(out, o + 2, hmin);
    const sc = o + 4;
    out.fill(0, sc, sc + 12);
    for (let j = 0; j < 8; j++) {
      if (j < 4) { out[sc + j] = Ls[j]; out[sc + j + 4] = Lm[j]; }
      else {
        out[sc + j + 4] = (Ls[j] & 15) | ((Lm[j] & 15) << 4);
        out[sc + j - 4] |= (Ls[j] >> 4) << 6;
        out[sc + j] |= (Lm[j] >> 4) << 6;
      }
    }
    const qh = o + 16, ql = five ? o + 48 : o + 16;
    if (five) out.fill(0, qh, qh + 32);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        let lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        if (five) {
          if (lo > 15) { lo -= 16; out[qh + l] |= 1 << (2 * c); }
          if (hi > 15) { hi -= 16; out[qh + l] |= 2 << (2 * c); }
        }
        out[ql + 32 * c + l] = lo | (hi << 4);
      }
    }
  }
}

codecs.push([GGML.Q4_K, { quantize: (x, out) => quantizeK45(x, out, false), dequantize: dequantizeWith(GGML.Q4_K) }]);
codecs.push([GGML.Q5_K, { quantize: (x, out) => quantizeK45(x, out, true), dequantize: dequantizeWith(GGML.Q5_K) }]);

// ---- Q6_K ---------------------------------------------------------------------------------------
// Per 16-weight sub-block: the signed value of largest magnitude maps to −32 (as in ggml's
// make_qx_quants), giving scale = max/−32. Super-block d = max|scale|/127 rounded up to fp16, the int8
// sub-block scale rounded away from zero, so the largest weight never clips: |error| ≤ |d·sc|/2
// (one step for a weight equal to −max, which clamps at +31).

codecs.push([GGML.Q6_K, {
  quantize(x, out) {
    const scales = new Float64Array(16), Ls = new Int32Array(16), L = new Uint8Array(256);
    for (let i = 0; i < x.length / 256; i++) {
      const xo = 256 * i, o = 210 * i;
      let maxAbsScale = 0;
      for (let g = 0; g < 16; g++) {
        let amax = 0, max = 0;
        for (let l = 0; l < 16; l++) { const v = x[xo + 16 * g + l]; if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; } }
        scales[g] = max / -32;
        maxAbsScale = Math.max(maxAbsScale, amax / 32);
      }
      const hd = f16Up(maxAbsScale / 127), d = f16ToF32(hd);
      for (let g = 0; g < 16; g++) {
        Ls[g] = d ? Math.sign(scales[g]) * Math.min(127, Math.ceil(Math.abs(scales[g]) / d)) : 0;
        const step = d * Ls[g];
        for (let l = 0; l < 16; l++) {
          const k = 16 * g + l;
          L[k] = step ? Math.max(-32, Math.min(31, nearestInt(x[xo + k] / step))) + 32 : 32;
        }
      }
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n, qh = o + 128 + 32 * n, y = 128 * n;
        for (let l = 0; l < 32; l++) {
          const a = L[y + l], b = L[y + l + 32], c = L[y + l + 64], e = L[y + l + 96];
          out[ql + l] = (a & 15) | ((c & 15) << 4);
          out[ql + l + 32] = (b & 15) | ((e & 15) << 4);
          out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
        }
      }
      for (let g = 0; g < 16; g++) out[o + 192 + g] = Ls[g] & 0xff;
      put16(out, o + 208, hd);
    }
  },
  dequantize: dequantizeWith(GGML.Q6_K),
}]);
