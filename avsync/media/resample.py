"""Audio sample-rate conversion: a Kaiser-windowed sinc, polyphase, in numpy.

Why our own: the filter is symmetric (zero phase), so output sample n sits exactly at input
time n / to_rate; lips and voice stay aligned through any rate change (espeak's 22050 Hz,
browsers' 44100/48000 Hz). Stopband attenuation is about 80 dB, passband flat to 0.94 of the
lower Nyquist frequency (tests/media/test_resample.py measures both).
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil, gcd

import numpy as np

from avsync.errors import MediaError

ZERO_CROSSINGS: int = 32  # sinc lobes on each side of the centre, at the cutoff frequency
ROLLOFF: float = 0.94  # cutoff as a fraction of the lower Nyquist frequency
KAISER_BETA: float = 8.0
_CHUNK: int = 8192  # output samples computed at once (bounds memory to a few MB)


@lru_cache(maxsize=16)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """(up, 2L) float32 taps, one row per output phase, and L (taps each side)."""
    cutoff = ROLLOFF * min(1.0, up / down)  # of the input Nyquist frequency
    half_width = ZERO_CROSSINGS / cutoff  # in input samples
    taps = ceil(half_width)
    offsets = np.arange(-taps + 1, taps + 1)  # input index relative to floor(position)
    phases = np.arange(up)[:, None] / up  # fractional input position of each output phase
    t = phases - offsets[None, :]  # distance from the output position to each input sample
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1.0 - (t / half_width) ** 2, 0.0, None)))
    bank = cutoff * np.sinc(cutoff * t) * window / np.i0(KAISER_BETA)
    bank[np.abs(t) >= half_width] = 0.0
    bank /= bank.sum(axis=1, keepdims=True)  # exact unity gain at DC for every phase
    return bank.astype(np.float32), taps


def resample_audio(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono audio from `from_rate` to `to_rate` Hz.

    audio: (S,) float in [-1, 1], sample k at k / from_rate seconds.
    Returns (ceil(S * to_rate / from_rate),) float32, sample n at n / to_rate seconds on the
    same time axis: the filter is zero-phase, so nothing is delayed.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise MediaError(f"resample_audio needs mono (S,) audio, got shape {audio.shape}; "
                         "downmix first (e.g. audio.mean(axis=0))")
    if int(from_rate) <= 0 or int(to_rate) <= 0:
        raise MediaError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or len(audio) == 0:
        return audio.astype(np.float32, copy=True)
    g = gcd(int(from_rate), int(to_rate))
    up, down = int(to_rate) // g, int(from_rate) // g
    bank, taps = _filter_bank(up, down)
    padded = np.pad(audio.astype(np.float32), (taps, taps + 1))
    count = ceil(len(audio) * up / down)
    out = np.empty(count, np.float32)
    offsets = np.arange(-taps + 1, taps + 1) + taps  # into `padded`
    for start in range(0, count, _CHUNK):
        n = np.arange(start, min(count, start + _CHUNK))
        base, phase = np.divmod(n * down, up)
        window = padded[base[:, None] + offsets[None, :]]
        out[start:start + len(n)] = np.einsum("ij,ij->i", window, bank[phase])
    return out
