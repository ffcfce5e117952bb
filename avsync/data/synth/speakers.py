"""Synthetic speakers: an espeak voice plus a rendered face, derived from (seed, speaker index).

Why derived and not sampled in sequence: a speaker must be the same whatever the worker count
or the order in which clips are made, and whether or not other speakers exist, so everything
about speaker k comes from its own seeded generator. Distinct speakers get distinct
(language, variant) pairs first (8 English accents × 12 variants = 96 before any repeats),
then their own rate, pitch and pitch range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from avsync.data.synth.espeak import Voice, english_voices
from avsync.data.synth.face import FaceIdentity, random_identity

VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
                             "f5")
RATE_WPM: tuple[int, int] = (140, 195)
PITCH: tuple[int, int] = (30, 70)
PITCH_RANGE: tuple[int, int] = (30, 85)

# Stream tags keep the generators of different purposes apart for the same seed.
VOICE_ORDER, SPEAKER, UTTERANCE, SCENE = 1, 2, 3, 4


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one purpose (a tag above) and item, independent of every other."""
    return np.random.default_rng([int(seed), *map(int, keys)])


@dataclass(frozen=True)
class Speaker:
    id: str  # directory name under main/, e.g. "spk0003"
    voice: Voice
    face: FaceIdentity

    def to_json(self) -> dict:
        return {"id": self.id, "voice": asdict(self.voice), "face": self.face.to_json()}


def _voice_pairs(seed: int) -> list[tuple[tuple[str, str], str]]:
    pairs = [(language, variant) for language in english_voices() for variant in VARIANTS]
    order = rng_for(seed, VOICE_ORDER).permutation(len(pairs))
    return [pairs[i] for i in order]


def make_speaker(seed: int, index: int, namespace: int = SPEAKER, prefix: str = "spk") -> Speaker:
    """Speaker `index` of a corpus with `seed` (other namespaces give other people)."""
    pairs = _voice_pairs(seed + namespace - SPEAKER)
    (language, voice_file), variant = pairs[index % len(pairs)]
    rng = rng_for(seed, namespace, index)
    voice = Voice(language=language, voice_file=voice_file, variant=variant,
                  rate=int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                  pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                  pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)))
    face = random_identity(rng, feminine=variant.startswith("f"))
    return Speaker(id=f"{prefix}{index:04d}", voice=voice, face=face)
