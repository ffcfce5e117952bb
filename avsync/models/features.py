"""Causal log-mel features computed inside the model, as plain matmuls.

Framing, a Hann-windowed DFT held as fixed cos/sin matrices, power, the HTK mel filterbank and
`log(x + eps)` with a fixed affine scaling: no STFT operator, so the exported ONNX graph runs
the same numbers in onnxruntime, and no app can compute the features subtly differently
(DESIGN.md section 2).

Time base (docs/architecture.md): mel frame k covers samples [160k - 240, 160k + 160) of the
stream (zeros before it starts), so step i owns frames 4i..4i+3 and a stream keeps the last
240 samples as state.
"""

from __future__ import annotations

import contextlib

import torch
import torchaudio
from torch import nn

from avsync import timebase

LOOKBACK: int = timebase.MEL_WINDOW - timebase.MEL_HOP  # 240 samples of past per frame
N_FREQS: int = timebase.MEL_WINDOW // 2 + 1  # 201 one-sided DFT bins (n_fft = window)
LOG_EPS: float = 1e-6
# Fixed affine map of ln(mel power + eps) to roughly unit scale; constants, not data statistics,
# so that training and every runtime agree without a stats file.
LOG_OFFSET: float = -4.0
LOG_SCALE: float = 4.0
_BLOCK: int = 80  # gcd(window 400, hop 160): frames are 5 blocks, hops 2 blocks


def _fp32(x: torch.Tensor) -> contextlib.AbstractContextManager[object]:
    """Disable autocast around the feature matmuls (bf16 would cost the low bins)."""
    if x.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


class LogMel(nn.Module):
    """PCM -> causal 80-bin log-mel at 100 Hz, 4 frames per 40 ms step."""

    dft: torch.Tensor  # (400, 2 * 201) Hann-windowed cos | -sin
    fbank: torch.Tensor  # (201, 80) HTK mel filterbank, unnormalised

    def __init__(self) -> None:
        super().__init__()
        # Computed on the CPU in float64, then moved where the model is being built (a
        # `with torch.device(...)` block, e.g. "meta" for FLOP counting).
        target = torch.empty(0).device
        cpu, n = torch.device("cpu"), timebase.MEL_WINDOW
        window = torch.hann_window(n, periodic=True, dtype=torch.float64, device=cpu)
        t = torch.arange(n, dtype=torch.float64, device=cpu)[:, None]
        f = torch.arange(N_FREQS, dtype=torch.float64, device=cpu)[None, :]
        angle = 2 * torch.pi * t * f / n
        dft = torch.cat([window[:, None] * torch.cos(angle),
                         -window[:, None] * torch.sin(angle)], dim=1)
        self.register_buffer("dft", dft.float().to(target), persistent=False)  # (400, 2 * 201)
        with torch.device(cpu):
            fbank = torchaudio.functional.melscale_fbanks(
                n_freqs=N_FREQS, f_min=0.0, f_max=timebase.SAMPLE_RATE / 2,
                n_mels=timebase.MEL_BINS, sample_rate=timebase.SAMPLE_RATE, norm=None,
                mel_scale="htk")
        self.register_buffer("fbank", fbank.float().to(target), persistent=False)  # (201, 80)

    def power(self, padded: torch.Tensor) -> torch.Tensor:
        """Mel power of every full frame of an already left-padded signal.

        padded: (B, LOOKBACK + n*160) float32, n a multiple of 4 -> (B, n, 80) power (unlogged).
        """
        with _fp32(padded):
            blocks = padded.float().reshape(padded.shape[0], -1, _BLOCK)
            n_frames = (blocks.shape[1] - 3) // 2
            span = timebase.MEL_WINDOW // _BLOCK
            frames = torch.cat([blocks[:, j:j + 2 * n_frames:2] for j in range(span)], dim=2)
            spectrum = frames @ self.dft
            real, imag = spectrum[..., :N_FREQS], spectrum[..., N_FREQS:]
            return (real * real + imag * imag) @ self.fbank

    def scale(self, power: torch.Tensor) -> torch.Tensor:
        return (torch.log(power + LOG_EPS) - LOG_OFFSET) / LOG_SCALE

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio: (B, S) float32 in [-1, 1] @ 16 kHz, S a multiple of 640 -> (B, S/160, 80)."""
        padded = nn.functional.pad(audio, (LOOKBACK, 0))
        return self.scale(self.power(padded))

    def step(self, chunk: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk of a stream.

        chunk: (B, C*640) float32; past: (B, 240) the stream's previous samples (zeros at start)
        -> (features (B, 4C, 80), new past (B, 240)).
        """
        joined = torch.cat([past, chunk.float()], dim=1)
        return self.scale(self.power(joined)), joined[:, joined.shape[1] - LOOKBACK:]
