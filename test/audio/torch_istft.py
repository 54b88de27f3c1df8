# Independent ISTFT for test/audio/istft.test.ts. Usage: python3 torch_istft.py IN.f32 FRAMES NFFT HOP MODE OUT.f32
# IN.f32: re then im, each [frames][nfft/2+1]. MODE "center": torch.istft(center=True, Hann periodic);
# MODE "same": Vocos' ISTFT (torch.fft.irfft, window, torch.nn.functional.fold overlap-add, window-square
# envelope, (win - hop) / 2 trimmed each side).
import sys
import numpy as np
import torch

path, frames, n_fft, hop, mode, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
bins = n_fft // 2 + 1
x = np.fromfile(path, dtype=np.float32).astype(np.float64)
re = torch.from_numpy(x[: frames * bins].reshape(frames, bins)).T
im = torch.from_numpy(x[frames * bins:].reshape(frames, bins)).T
spec = torch.complex(re, im)  # [bins, frames]
win = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
if mode == "center":
    y = torch.istft(spec, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=win, center=True)
else:
    pad = (n_fft - hop) // 2
    ifft = torch.fft.irfft(spec, n_fft, dim=0, norm="backward") * win[:, None]  # [n_fft, frames]
    out_size = (frames - 1) * hop + n_fft
    y = torch.nn.functional.fold(ifft[None], output_size=(1, out_size), kernel_size=(1, n_fft), stride=(1, hop))[0, 0, 0, pad:-pad]
    env = torch.nn.functional.fold(win.square().expand(1, frames, -1).transpose(1, 2), output_size=(1, out_size),
                                   kernel_size=(1, n_fft), stride=(1, hop)).squeeze()[pad:-pad]
    y = y / env
y.float().numpy().tofile(out)
