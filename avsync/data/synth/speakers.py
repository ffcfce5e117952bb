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
from avsync.data.synth.face import APPEARANCES, FaceIdentity, random_identity, vary_identity
from avsync.data.synth.festival import FESTIVAL_VOICES, FestivalVoice
from avsync.data.synth.flite import FLITE_VOICES, FliteVoice
from avsync.errors import ConfigError

VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
                             "f5")
RATE_WPM: tuple[int, int] = (140, 195)
ENGINES: tuple[str, ...] = ("espeak", "flite", "festival")
OWN_WPM = 190  # a flite or festival voice's own rate, words a minute with pauses
FEMININE = frozenset({"slt", "cmu_us_slt_arctic_hts"})
AnyVoice = Voice | FliteVoice | FestivalVoice
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
    voice: AnyVoice
    face: FaceIdentity

    def to_json(self) -> dict:
        return {"id": self.id, "voice": asdict(self.voice), "face": self.face.to_json()}


def _voice_pairs(seed: int) -> list[tuple[tuple[str, str], str]]:
    pairs = [(language, variant) for language in english_voices() for variant in VARIANTS]
    order = rng_for(seed, VOICE_ORDER).permutation(len(pairs))
    return [pairs[i] for i in order]


def make_speaker(seed: int, index: int, namespace: int = SPEAKER, prefix: str = "spk",
                 engines: tuple[str, ...] = ("espeak",),
                 rate_wpm: tuple[int, int] = RATE_WPM, appearance: str = "standard") -> Speaker:
    """Speaker `index` of a corpus with `seed` (other namespaces give other people).

    engines: the synthesis engines speakers take turns with (speaker k gets engines[k % n]);
    rate_wpm: the range speaking rates are drawn from; appearance: `standard` (frontal, centred,
    soft light) or `varied` (`face.vary_identity`). The defaults give today's espeak
    speakers, unchanged."""
    unknown = set(engines) - set(ENGINES)
    if not engines or unknown:
        raise ConfigError(f"engines {engines}: choose from {', '.join(ENGINES)}")
    if appearance not in APPEARANCES:
        raise ConfigError(f"appearance {appearance!r}: choose from {', '.join(APPEARANCES)}")
    pairs = _voice_pairs(seed + namespace - SPEAKER)
    (language, voice_file), variant = pairs[index % len(pairs)]
    rng = rng_for(seed, namespace, index)
    rate = int(rng.integers(rate_wpm[0], rate_wpm[1] + 1))
    pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
    pitch_range = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
    engine = engines[index % len(engines)]
    voice: AnyVoice
    turn = index // len(engines)
    if engine == "flite":
        voice = FliteVoice(FLITE_VOICES[turn % len(FLITE_VOICES)], round(OWN_WPM / rate, 3))
        feminine = voice.name in FEMININE
    elif engine == "festival":
        voice = FestivalVoice(FESTIVAL_VOICES[turn % len(FESTIVAL_VOICES)],
                              round(rate / OWN_WPM, 3), round((pitch - 50) / 5, 1))
        feminine = voice.name in FEMININE
    else:
        voice = Voice(language=language, voice_file=voice_file, variant=variant, rate=rate,
                      pitch=pitch, pitch_range=pitch_range)
        feminine = variant.startswith("f")
    face = random_identity(rng, feminine=feminine)
    if appearance == "varied":
        face = vary_identity(rng, face)
    return Speaker(id=f"{prefix}{index:04d}", voice=voice, face=face)
