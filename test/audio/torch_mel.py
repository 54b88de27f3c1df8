# Independent log-mel for test/audio/mel.test.ts: torch.stft + torchaudio's Slaney filterbank, with the
# NeMo/LFM2-Audio settings (pre-emphasis 0.97, n_fft 512, Hann 400 periodic, hop 160, centre zero padding,
# power, 128 Slaney mels 0-8 kHz, ln with floor 2^-24, per-feature normalisation over n//160 frames).
# Usage: python3 torch_mel.py IN.f32 OUT.f32   (writes [128][frames] float32)
import sys
import numpy as np
import torch
import torchaudio

x = torch.from_numpy(np.fromfile(sys.argv[1], dtype=np.float32).astype(np.float64))
n = x.numel()
y = torch.cat([x[:1], x[1:] - 0.97 * x[:-1]])
win = torch.hann_window(400, periodic=True, dtype=torch.float64)
spec = torch.stft(y, n_fft=512, hop_length=160, win_length=400, window=win, center=True, pad_mode="constant",
                  return_complex=True)
power = spec.abs() ** 2  # [257, frames]
fb = torchaudio.functional.melscale_fbanks(257, 0.0, 8000.0, 128, 16000, norm="slaney", mel_scale="slaney")
mel = torch.log(torch.clamp(fb.double().T @ power, min=2.0 ** -24))
valid = n // 160
mean = mel[:, :valid].mean(dim=1, keepdim=True)
std = torch.sqrt(mel[:, :valid].var(dim=1, unbiased=True, keepdim=True) + 1e-5)
out = torch.zeros_like(mel)
out[:, :valid] = (mel[:, :valid] - mean) / std
out.float().numpy().tofile(sys.argv[2])
