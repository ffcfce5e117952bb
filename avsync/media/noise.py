"""Additive noise at a requested SNR: babble made from other talkers, white, pink and brown
noise, and typing made of real key recordings (Debian's bucklespring-data).

The SNR is measured against the speech's *active* power (frames within 40 dB of the loudest
40 ms frame), not its mean over pauses: a clip that is half silence would otherwise get 3 dB
less noise than asked for. When the mixture would clip, speech and noise are scaled down
together, so the SNR stays exactly what was asked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avsync.errors import MediaError
from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP

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


# ------------------------------------------------------------------ non-speech noise kinds
NOISE_KINDS: tuple[str, ...] = ("babble", "white", "pink", "brown", "keyboard")
COLOUR_EXPONENTS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power ~ 1/f^x
KEYBOARD_DIR = Path("/usr/share/buckle/wav")  # Debian bucklespring-data: real key recordings
KEYS_PER_SECOND = 6.0  # a fast typist


def coloured_noise(length: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """(length,) float32 Gaussian noise whose power falls as 1/f^exponent (0 white, 1 pink,
    2 brown), at -20 dBFS RMS."""
    if length <= 0:
        return np.zeros(0, np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1] if length > 1 else 1.0
    shaped = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=length)
    rms = float(np.sqrt(np.mean(shaped ** 2)))
    return (shaped * (BABBLE_RMS / max(rms, 1e-12))).astype(np.float32)


@functools.cache
def keyboard_sounds(folder: str = str(KEYBOARD_DIR)) -> tuple[np.ndarray, ...]:
    """The recorded key presses and releases of Debian's bucklespring-data, mono 16 kHz."""
    from avsync.media.decode import decode_media

    paths = sorted(Path(folder).glob("*.wav"))
    if not paths:
        raise MediaError(f"{folder}: no key recordings; install the Debian package "
                         "bucklespring-data (`make setup` does) or leave out the keyboard noise")
    return tuple(decode_media(p, video=False).audio for p in paths)


def keyboard_noise(length: int, rng: np.random.Generator,
                   sounds: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """(length,) float32 typing: recorded key sounds at random moments (`KEYS_PER_SECOND` on
    average), at -20 dBFS RMS."""
    sounds = keyboard_sounds() if sounds is None else sounds
    out = np.zeros(length, np.float64)
    at = int(rng.exponential(SAMPLE_RATE / KEYS_PER_SECOND))
    while at < length:
        key = sounds[int(rng.integers(len(sounds)))]
        end = min(length, at + len(key))
        out[at:end] += key[:end - at]
        at += max(1, int(rng.exponential(SAMPLE_RATE / KEYS_PER_SECOND)))
    rms = float(np.sqrt(np.mean(out ** 2))) if length else 0.0
    if rms <= 0:
        return coloured_noise(length, rng, 0.0)  # too short for a key: hiss instead
    return (out * (BABBLE_RMS / rms)).astype(np.float32)


def noise_of_kind(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """Non-speech noise of `kind` (white, pink, brown, keyboard); babble needs other speech
    and is `make_babble`'s."""
    if kind in COLOUR_EXPONENTS:
        return coloured_noise(length, rng, COLOUR_EXPONENTS[kind])
    if kind == "keyboard":
        return keyboard_noise(length, rng)
    raise MediaError(f"noise kind {kind!r}: choose one of {', '.join(NOISE_KINDS[1:])} "
                     "(babble is made from speech)")
