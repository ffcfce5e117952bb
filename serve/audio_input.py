"""PCM payloads → mono float32 samples, with NaN/inf repaired instead of silently kept.

Resampling to 16 kHz happens after this, in `avsync.media.resample.StreamingResampler`
(bit-identical to resampling the whole stream at once).
"""

from __future__ import annotations

import numpy as np
from avsync.serve.protocol import AudioEncoding, AudioSpec, ErrorCode

from avsync.errors import ProtocolError


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
