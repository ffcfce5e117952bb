"""Additive noise at a requested SNR, and babble made from other talkers.

The SNR is measured against the speech's *active* power (frames within 40 dB of the loudest
40 ms frame), not its mean over pauses: a clip that is half silence would otherwise get 3 dB
less noise than asked for. When the mixture would clip, speech and noise are scaled down
together, so the SNR stays exactly what was asked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avsync.errors import MediaError
from avsync.timebase import SAMPLES_PER_STEP

ACTIVITY_FLOOR_DB: float = 40.0  # frames this far below the loudest one count as pauses
PEAK_LIMIT: float = 0.99  # mixtures are scaled so that no sample exceeds this
BABBLE_RMS: float = 0.1  # babble comes out at -20 dBFS (mix_at_snr rescales it anyway)


def active_power(audio: np.ndarray, frame: int = SAMPLES_PER_STEP,
                 floor_db: float = ACTIVITY_FLOOR_DB) -> float:
    """Mean power of the frames within `floor_db` of the loudest frame.

    audio: (S,) float; frame: samples per frame (40 ms at 16 kHz). Returns mean(x^2) over the
    active frames (0.0 for silence). A trailing partial frame counts as a frame.
    """
    audio = np.asarray(audio, np.float64)
    if len(audio) == 0:
        return 0.0
    padded = np.pad(audio, (0, -len(audio) % frame))
    counts = np.minimum(frame, len(audio) - np.arange(0, len(padded), frame))
    energy = (padded.reshape(-1, frame) ** 2).sum(axis=1)
    power = energy / counts
    if power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10 ** (-floor_db / 10)
    return float(energy[active].sum() / counts[active].sum())


def fit_length(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A `length`-sample stretch of `noise` from a random start, looped if it is shorter."""
    noise = np.asarray(noise, np.float32)
    if noise.ndim != 1 or len(noise) == 0:
        raise MediaError(f"noise must be non-empty mono (S,) audio, got shape {noise.shape}")
    start = int(rng.integers(len(noise)))
    return np.take(noise, np.arange(start, start + length), mode="wrap")


def mix_components(speech: np.ndarray, noise: np.ndarray, snr_db: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of `mix_at_snr`'s result: (speech part, noise part), each (S,) float32.

    Their sum is the mixture; their active-speech-to-noise power ratio is exactly snr_db.
    """
    speech = np.asarray(speech, np.float32)
    if speech.ndim != 1:
        raise MediaError(f"speech must be mono (S,) audio, got shape {speech.shape}")
    if not np.isfinite(snr_db):
        raise MediaError(f"snr_db must be a finite number of dB, got {snr_db}")
    segment = fit_length(noise, len(speech), rng).astype(np.float64)
    speech_power = active_power(speech)
    noise_power = float(np.mean(segment ** 2)) if len(segment) else 0.0
    if speech_power <= 0:
        raise MediaError("speech is silent: an SNR is undefined; skip the clip or add the "
                         "noise at a fixed level")
    if noise_power <= 0:
        raise MediaError("noise is silent (zero power): choose another noise source")
    gain = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    noise_part = gain * segment
    peak = float(np.max(np.abs(speech + noise_part))) if len(speech) else 0.0
    scale = min(1.0, PEAK_LIMIT / peak) if peak > 0 else 1.0
    return (scale * speech).astype(np.float32), (scale * noise_part).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """Speech plus noise at `snr_db` dB (over the speech's active power), without clipping.

    speech: (S,) float32 in [-1, 1]; noise: (S',) float32, any length (looped or cropped from
    a random start drawn from `rng`). Returns (S,) float32 with |x| <= 0.99; if the mixture
    would exceed that, speech and noise are scaled down together (the SNR is unchanged).
    """
    speech_part, noise_part = mix_components(speech, noise, snr_db, rng)
    return speech_part + noise_part


def make_babble(sources: Sequence[np.ndarray], length: int, rng: np.random.Generator,
                talkers: int) -> np.ndarray:
    """Babble noise: `talkers` random stretches of speech summed at equal active power.

    sources: mono (S_i,) float speech recordings (at least one, not silent); talkers are
    drawn without replacement when there are enough sources. Returns (length,) float32 at
    -20 dBFS RMS.
    """
    if talkers < 1 or not sources:
        raise MediaError(f"babble needs at least one talker and one source, got talkers="
                         f"{talkers} and {len(sources)} sources")
    chosen = rng.choice(len(sources), size=talkers, replace=talkers > len(sources))
    babble = np.zeros(length, np.float64)
    for index in chosen:
        stretch = fit_length(sources[index], length, rng).astype(np.float64)
        power = active_power(stretch)
        if power > 0:
            babble += stretch / np.sqrt(power)
    rms = np.sqrt(np.mean(babble ** 2)) if length else 0.0
    if rms <= 0:
        raise MediaError("babble came out silent: the chosen sources have no speech")
    return (babble * (BABBLE_RMS / rms)).astype(np.float32)
