# Independent code-embedding step of the LFM2.5-Audio detokenizer for test/audio/code-embedding-torch.test.ts, as
# liquid-audio's detokenizer builds it: one nn.Embedding over 8 x 2048 rows indexed by code + 2048 * codebook,
# the mean over the codebooks, then F.interpolate(scale_factor=6, mode="nearest-exact") along time.
# Usage: python3 torch_code_embedding.py TABLE.f32 DIM CODES.i32 FRAMES OUT.f32
import sys
import numpy as np
import torch

table_path, dim, codes_path, frames, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
table = torch.from_numpy(np.fromfile(table_path, dtype=np.float32).reshape(-1, dim))
codes = torch.from_numpy(np.fromfile(codes_path, dtype=np.int32).astype(np.int64).reshape(frames, 8))
emb = torch.nn.Embedding(table.shape[0], dim)
with torch.no_grad():
    emb.weight.copy_(table)
    x = emb(codes + 2048 * torch.arange(8)).mean(dim=1)            # [frames, dim]
    x = torch.nn.functional.interpolate(x.T[None], scale_factor=6, mode="nearest-exact")[0].T  # [6 frames, dim]
x.contiguous().numpy().astype(np.float32).tofile(out)
