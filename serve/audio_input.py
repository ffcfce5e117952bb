"""PCM payloads → 16 kHz mono float32, incrementally, without shifting anything in time.

Why incremental: a session's audio arrives in small pieces at the client's rate (browsers run
at 44.1/48 kHz), and resampling each piece on its own would click at every boundary.
`StreamResampler` runs `avsync.media.resample_audio` (zero-phase) over a sliding window and
only emits output samples whose whole filter support has arrived, so the concatenated output
equals resampling the whole stream at once.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np

from avsync.errors import ProtocolError
from avsync.media.resample import ROLLOFF, ZERO_CROSSINGS, resample_audio
from avsync.timebase import SAMPLE_RATE
from serve.protocol import AudioEncoding, AudioSpec, ErrorCode


def pcm_to_float(payload: bytes | memoryview, spec: AudioSpec) -> tuple[np.ndarray, int]:
    """payload: interleaved PCM → ((S,) float32 mono in [-1, 1] at spec.sample_rate, repaired).

    `repaired` counts NaN/inf samples replaced by 0 (pcm_f32le only); values beyond ±1 are
    clipped. The payload size was checked by the session (whole frames of all channels).
    """
    if spec.encoding is AudioEncoding.PCM_S16LE:
        samples = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
        repaired = 0
    else:
        samples = np.frombuffer(payload, dtype="<f4").astype(np.float32)
        bad = ~np.isfinite(samples)
        repaired = int(bad.sum())
        if repaired:
            samples = np.where(bad, np.float32(0.0), samples)
        samples = np.clip(samples, -1.0, 1.0)
    if spec.channels > 1:
        samples = samples.reshape(-1, spec.channels).mean(axis=1, dtype=np.float32)
    return samples, repaired


def invalid_samples_error(repaired: int, seq: int) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_SAMPLES,
                         f"audio message {seq} had {repaired} NaN/inf samples; they were "
                         "replaced by silence to keep the timing (send finite floats in [-1, 1])")


class StreamResampler:
    """Incremental `resample_audio(from_rate → 16 kHz)`; push pieces, then `flush()` once."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE) -> None:
        g = gcd(from_rate, to_rate)
        self.up, self.down = to_rate // g, from_rate // g
        self.from_rate, self.to_rate = from_rate, to_rate
        cutoff = ROLLOFF * min(1.0, self.up / self.down)
        self.margin = ceil(ZERO_CROSSINGS / cutoff) + 2  # input samples of filter support
        self._pending = np.zeros(0, np.float32)  # input from index self._origin on
        self._origin = 0  # input index of _pending[0]; always a multiple of self.down
        self._emitted = 0  # output samples produced so far

    def push(self, samples: np.ndarray) -> np.ndarray:
        """samples: (S,) float32 at from_rate → the output samples that are final now."""
        if self.up == self.down:
            return samples
        self._pending = np.concatenate([self._pending, samples])
        complete = self._origin + len(self._pending) - self.margin  # inputs with full support
        ready = max(0, (complete * self.up) // self.down + 1 - self._emitted)
        return self._emit(ready)

    def flush(self) -> np.ndarray:
        """The rest, as if the stream ended with silence (what `resample_audio` assumes)."""
        if self.up == self.down:
            return np.zeros(0, np.float32)
        total = ceil((self._origin + len(self._pending)) * self.up / self.down)
        return self._emit(total - self._emitted)

    def _emit(self, count: int) -> np.ndarray:
        if count <= 0:
            return np.zeros(0, np.float32)
        out_origin = self._origin * self.up // self.down
        out = resample_audio(self._pending, self.from_rate, self.to_rate)
        start = self._emitted - out_origin
        result = out[start:start + count]
        self._emitted += len(result)
        self._trim()
        return result

    def _trim(self) -> None:
        """Drop input no future output needs (keep `margin` before the next output sample)."""
        next_input = self._emitted * self.down // self.up
        keep_from = max(0, next_input - self.margin)
        keep_from -= keep_from % self.down
        cut = keep_from - self._origin
        if cut > 0:
            self._pending = self._pending[cut:]
            self._origin = keep_from
