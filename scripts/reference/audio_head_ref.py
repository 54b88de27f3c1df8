# Independent PyTorch reference of LFM2-Audio's audio head ("depthformer"), written from liquid-audio's
# lfm2_audio.py / transformer.py (Liquid4All/liquid-audio @ 251949e; facts only, see docs/lfm2-audio-out.md §1).
# Reads a vocoder GGUF (llama.cpp convert_vocoder_to_gguf.py names) with its own small GGUF parser, so nothing of
# the TypeScript runtime is shared.
#
# Usage: python3 audio_head_ref.py VOCODER.gguf HIDDEN.f32 N FORCED.i32 OUT_PREFIX
#   HIDDEN.f32  N backbone hidden states (N × D, float32)
#   FORCED.i32  N × 8 codes fed back (teacher forcing)
# Writes OUT_PREFIX.forced.f32 (N × 8 × 2049 logits with the forced codes fed back), OUT_PREFIX.greedy.i32
# (N × 8 greedy codes, all 2048 when codebook 0 ends the audio), OUT_PREFIX.greedy.f32 (their logits) and
# OUT_PREFIX.frame.f32 (N × D: the backbone input of each forced frame, Σ_c audio_embedding[c·2049 + code_c]).
# Everything is computed in float64.
import struct
import sys

import numpy as np
import torch

CODEBOOKS, VOCAB, HEADS, KV_HEADS, EPS, THETA = 8, 2049, 32, 8, 1e-5, 1e6


def read_gguf(path):
    """GGUF v2/v3: metadata (scalars and arrays) and F32/F16 tensors as torch float64, in torch's [rows, cols]."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version in (2, 3)
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        n = int(np.prod(dims))
        dtype = {0: np.float32, 1: np.float16}[typ]
        arr = np.frombuffer(buf, dtype=dtype, count=n, offset=data + off).astype(np.float64)
        tensors[name] = torch.from_numpy(arr.reshape(list(reversed(dims))).copy())  # ggml ne0 is the fastest axis
    return meta, tensors


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope_adjacent(x, pos, head_dim):
    """liquid-audio apply_rotary_emb: pairs (2i, 2i+1) as one complex number, rotated by pos·θ^(−2i/dh)."""
    freqs = 1.0 / (THETA ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    rot = torch.polar(torch.ones_like(freqs), pos * freqs)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], head_dim // 2, 2).contiguous())
    return torch.view_as_real(z * rot).reshape(x.shape)


class Depthformer:
    def __init__(self, t, n_layers, dim):
        self.t, self.n_layers, self.dim, self.dh = t, n_layers, dim, dim // HEADS

    def layer(self, l, x, pos, cache):
        """StandardBlock(MHA): h = x + out_proj(attn(operator_norm(x))); h + w2(silu(w1 u) * w3 u), u = ffn_norm(h)."""
        p, t, dh = f"depthformer.layers.{l}.", self.t, self.dh
        qkv = t[p + "operator.qkv_proj.weight"] @ rms_norm(x, t[p + "operator_norm.weight"])
        q, k, v = torch.split(qkv, [self.dim, KV_HEADS * dh, KV_HEADS * dh])
        q = rms_norm(q.reshape(HEADS, dh), t[p + "operator.attention.q_layernorm.weight"])
        k = rms_norm(k.reshape(KV_HEADS, dh), t[p + "operator.attention.k_layernorm.weight"])
        q, k = rope_adjacent(q, pos, dh), rope_adjacent(k, pos, dh)
        cache.append((k, v.reshape(KV_HEADS, dh)))
        keys = torch.stack([c[0] for c in cache], 1)  # KV_HEADS × positions × dh
        vals = torch.stack([c[1] for c in cache], 1)
        # enable_gqa: query head h reads KV head h // (HEADS / KV_HEADS)
        keys = keys.repeat_interleave(HEADS // KV_HEADS, 0)
        vals = vals.repeat_interleave(HEADS // KV_HEADS, 0)
        w = torch.softmax(torch.einsum("hd,hpd->hp", q, keys) / dh ** 0.5, -1)  # the newest position sees all cached
        att = torch.einsum("hp,hpd->hd", w, vals).reshape(self.dim)
        h = x + t[p + "operator.out_proj.weight"] @ att
        u = rms_norm(h, t[p + "ffn_norm.weight"])
        g = torch.nn.functional.silu(t[p + "feed_forward.w1.weight"] @ u) * (t[p + "feed_forward.w3.weight"] @ u)
        return h + t[p + "feed_forward.w2.weight"] @ g

    def frame(self, hidden, forced=None):
        """8 codebooks in turn (KV cache over depth positions 0..7); codes fed back = forced, or greedy."""
        t = self.t
        depth_in = (t["depth_linear.weight"] @ hidden + t["depth_linear.bias"]).reshape(CODEBOOKS, self.dim)  # (C D)
        caches = [[] for _ in range(self.n_layers)]
        fed = torch.zeros(self.dim, dtype=torch.float64)
        codes, logits = [], []
        for c in range(CODEBOOKS):
            x = depth_in[c] + fed
            for l in range(self.n_layers):
                x = self.layer(l, x, c, caches[l])
            e = f"depth_embeddings.{c}."
            out_w = t.get(e + "to_logits.weight", t[e + "embedding.weight"])  # tied when the file has no to_logits
            lg = out_w @ rms_norm(x, t[e + "embedding_norm.weight"])
            code = int(forced[c]) if forced is not None else int(torch.argmax(lg))
            codes.append(code)
            logits.append(lg)
            fed = t[e + "embedding.weight"][code]  # depth_embeddings[c](code) feeds codebook c + 1
        if forced is None and codes[0] == VOCAB - 1:
            codes = [VOCAB - 1] * CODEBOOKS
        return codes, torch.stack(logits)


def main():
    gguf, hidden_path, n, forced_path, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    meta, t = read_gguf(gguf)
    n_layers, dim = int(meta["depthformer_n_layer"]), int(meta["depthformer_n_embd"])
    model = Depthformer(t, n_layers, dim)
    D = t["depth_linear.weight"].shape[1]
    hidden = torch.from_numpy(np.fromfile(hidden_path, dtype=np.float32).astype(np.float64)).reshape(n, D)
    forced = np.fromfile(forced_path, dtype=np.int32).reshape(n, CODEBOOKS)
    table = t["audio_embedding.embedding.weight"]  # (8·2049) × D
    offsets = np.arange(CODEBOOKS) * VOCAB
    forced_logits, greedy_codes, greedy_logits, frames = [], [], [], []
    for i in range(n):
        forced_logits.append(model.frame(hidden[i], forced[i])[1])
        codes, lg = model.frame(hidden[i])
        greedy_codes.append(codes)
        greedy_logits.append(lg)
        frames.append(table[torch.from_numpy(forced[i] + offsets).long()].sum(0))
    torch.stack(forced_logits).float().numpy().tofile(out + ".forced.f32")
    np.array(greedy_codes, dtype=np.int32).tofile(out + ".greedy.i32")
    torch.stack(greedy_logits).float().numpy().tofile(out + ".greedy.f32")
    torch.stack(frames).float().numpy().tofile(out + ".frame.f32")


if __name__ == "__main__":
    main()
