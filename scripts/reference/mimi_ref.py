#!/usr/bin/python3
"""Independent Mimi decoder in PyTorch (torch.nn.functional primitives), following kyutai-labs/moshi:
models/compression.py (decode: quantizer → upsample → decoder_transformer → SEANet decoder), quantization/vq.py
(split RVQ), modules/conv.py (causal padding / trims), modules/transformer.py + rope.py, modules/seanet.py.
Reads a moshi-layout safetensors file with numpy (no safetensors package) and writes f32 PCM.

usage: mimi_ref.py weights.safetensors codes.i32 frames codebooks heads context out.f32
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32", t["dtype"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"]).copy())
    return out


def causal_conv(x, w, b, dilation=1):
    k = w.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), w, b, dilation=dilation)


def causal_convtr(x, w, b, stride, groups=1):
    k = w.shape[-1]
    y = F.conv_transpose1d(x, w, b, stride=stride, groups=groups)
    return y[..., : y.shape[-1] - (k - stride)]


def rope(q, k, max_period=10000.0):
    # [B, H, T, D], interleaved pairs as moshi's apply_rope
    B, H, T, D = q.shape
    ds = torch.arange(D // 2, dtype=torch.float32)
    freqs = torch.exp(ds * (-math.log(max_period) * 2 / D))
    ts = torch.arange(T, dtype=torch.float32).view(1, 1, -1, 1)
    rr, ri = torch.cos(freqs * ts), torch.sin(freqs * ts)
    def rot(x):
        x = x.view(B, H, T, D // 2, 2)
        xr, xi = x[..., 0], x[..., 1]
        return torch.stack([xr * rr - xi * ri, xr * ri + xi * rr], dim=-1).view(B, H, T, D)
    return rot(q), rot(k)


def decode(W, codes, heads, context):
    # codes [K, T]
    K, T = codes.shape
    def codebook(prefix):
        return W[prefix + "embedding_sum"] / W[prefix + "cluster_usage"].clamp(min=1e-5)[:, None]
    first = F.embedding(codes[0], codebook("quantizer.rvq_first.vq.layers.0._codebook."))
    rest = sum(F.embedding(codes[i], codebook(f"quantizer.rvq_rest.vq.layers.{i - 1}._codebook.")) for i in range(1, K))
    x = F.conv1d(first.T[None], W["quantizer.rvq_first.output_proj.weight"])
    x = x + F.conv1d(rest.T[None], W["quantizer.rvq_rest.output_proj.weight"])
    up = W["upsample.convtr.convtr.convtr.weight"]
    x = causal_convtr(x, up, None, stride=up.shape[-1] // 2, groups=up.shape[0])
    # transformer, [B, T, C]
    h = x.transpose(1, 2)
    C = h.shape[-1]
    Tt = h.shape[1]
    pos = torch.arange(Tt)
    delta = pos[:, None] - pos[None, :]
    allowed = (delta >= 0) & (delta < context)
    l = 0
    while f"decoder_transformer.transformer.layers.{l}.norm1.weight" in W:
        p = f"decoder_transformer.transformer.layers.{l}."
        y = F.layer_norm(h, (C,), W[p + "norm1.weight"], W[p + "norm1.bias"], eps=1e-5)
        qkv = y @ W[p + "self_attn.in_proj_weight"].T
        q, k, v = qkv.view(1, Tt, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, k)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(C // heads)
        s = s.masked_fill(~allowed, float("-inf"))
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(1, Tt, C)
        h = h + W[p + "layer_scale_1.scale"] * (a @ W[p + "self_attn.out_proj.weight"].T)
        y = F.layer_norm(h, (C,), W[p + "norm2.weight"], W[p + "norm2.bias"], eps=1e-5)
        h = h + W[p + "layer_scale_2.scale"] * (F.gelu(y @ W[p + "linear1.weight"].T) @ W[p + "linear2.weight"].T)
        l += 1
    x = h.transpose(1, 2)
    # SEANet decoder
    m = "decoder.model."
    x = causal_conv(x, W[m + "0.conv.conv.weight"], W[m + "0.conv.conv.bias"])
    i = 1
    while m + f"{i + 1}.convtr.convtr.weight" in W:
        w = W[m + f"{i + 1}.convtr.convtr.weight"]
        x = causal_convtr(F.elu(x), w, W[m + f"{i + 1}.convtr.convtr.bias"], stride=w.shape[-1] // 2)
        j = 0
        while m + f"{i + 2 + j}.block.1.conv.conv.weight" in W:
            b = m + f"{i + 2 + j}.block."
            r = causal_conv(F.elu(x), W[b + "1.conv.conv.weight"], W[b + "1.conv.conv.bias"], dilation=2 ** j)
            r = causal_conv(F.elu(r), W[b + "3.conv.conv.weight"], W[b + "3.conv.conv.bias"])
            x = x + r
            j += 1
        i += 2 + j
    x = causal_conv(F.elu(x), W[m + f"{i + 1}.conv.conv.weight"], W[m + f"{i + 1}.conv.conv.bias"])
    return x[0, 0]


def main():
    wpath, cpath, frames, K, heads, context, out = sys.argv[1:8]
    frames, K, heads, context = int(frames), int(K), int(heads), int(context)
    W = read_safetensors(wpath)
    codes = torch.from_numpy(np.fromfile(cpath, dtype="<i4").reshape(frames, K).T.astype(np.int64))
    with torch.no_grad():
        pcm = decode(W, codes, heads, context)
    pcm.numpy().astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
