"""From espeak phonemes to mouth shapes: viseme classes and co-articulated articulation tracks.

Why this shape: lip reading is hard because many phonemes look alike (p/b/m, f/v, t/d/n/l/s/z,
k/g/ng); a synthetic face that showed every phoneme distinctly would teach a model to read lips
far better than it ever could on real video. So phonemes collapse into 14 classes, each an
articulatory target over six parameters (`PARAMETERS`, all in [0, 1]).

Co-articulation follows Cohen and Massaro's dominance model: every segment pulls each
parameter towards its target with a strength that is flat inside the segment and decays
exponentially outside it (faster after than before, and slowest for lip rounding, which real
speakers anticipate over several phonemes). Silence is a segment too, so the mouth relaxes to
rest in pauses. The track is evaluated on a 2 ms grid and averaged over each video frame's
40 ms, so a frame shows what the mouth did while that frame's 640 audio samples were spoken:
no aliasing and no offset between lips and voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avsync.data.synth.espeak import PhonemeSegment
from avsync.timebase import FPS

PARAMETERS: tuple[str, ...] = ("jaw", "width", "round", "closure", "teeth", "tongue")
JAW, WIDTH, ROUND, CLOSURE, TEETH, TONGUE = range(len(PARAMETERS))
GRID_SECONDS: float = 0.002  # evaluation step of the dominance model
# Decay time constants of the dominance functions, per parameter. Anticipation is longer than
# carry-over, as in real speech (lips move towards a sound before it is heard); with the
# per-frame averaging this centres the mouth-opening / audio-energy correlation on lag 0
# (measured over 200 clips: bench numbers in the synth report).
ANTICIPATION: np.ndarray = np.array([0.050, 0.050, 0.110, 0.040, 0.050, 0.050])  # s
CARRY_OVER: np.ndarray = np.array([0.025, 0.025, 0.060, 0.020, 0.025, 0.025])  # s


@dataclass(frozen=True)
class Viseme:
    name: str
    target: tuple[float, float, float, float, float, float]  # PARAMETERS order, in [0, 1]
    dominance: tuple[float, float, float, float, float, float]  # strength per parameter


def _v(name: str, target: tuple, dominance: tuple) -> tuple[str, Viseme]:
    return name, Viseme(name, target, dominance)


#                 jaw  width round close teeth tongue
VISEMES: dict[str, Viseme] = dict([
    _v("sil", (0.04, 0.50, 0.00, 0.90, 0.00, 0.00), (0.8, 0.8, 0.8, 0.8, 0.8, 0.8)),
    _v("PBM", (0.06, 0.50, 0.10, 1.00, 0.00, 0.00), (2.0, 1.0, 0.5, 6.0, 3.0, 1.0)),
    _v("FV", (0.12, 0.50, 0.00, 0.35, 1.00, 0.00), (2.0, 1.0, 0.8, 4.0, 6.0, 1.0)),
    _v("TH", (0.24, 0.55, 0.00, 0.00, 0.65, 1.00), (2.0, 0.8, 0.5, 2.0, 2.0, 6.0)),
    _v("ALV", (0.20, 0.58, 0.00, 0.00, 0.55, 0.20), (1.2, 0.6, 0.3, 1.5, 1.0, 1.0)),
    _v("KG", (0.28, 0.55, 0.00, 0.00, 0.35, 0.00), (0.9, 0.5, 0.3, 1.5, 0.6, 0.6)),
    _v("SH", (0.20, 0.28, 0.70, 0.00, 0.60, 0.00), (1.5, 3.0, 3.0, 1.5, 1.5, 1.0)),
    _v("R", (0.20, 0.35, 0.55, 0.00, 0.25, 0.00), (1.0, 2.0, 2.0, 1.0, 0.8, 0.8)),
    _v("W", (0.10, 0.10, 1.00, 0.00, 0.00, 0.00), (1.5, 4.0, 5.0, 1.5, 1.0, 1.0)),
    _v("OW", (0.50, 0.25, 0.75, 0.00, 0.15, 0.00), (1.5, 2.5, 2.5, 1.0, 0.8, 0.8)),
    _v("IY", (0.18, 1.00, 0.00, 0.00, 0.70, 0.10), (1.2, 2.5, 2.0, 1.0, 1.0, 0.8)),
    _v("EH", (0.42, 0.65, 0.00, 0.00, 0.45, 0.10), (1.2, 1.0, 1.0, 1.0, 0.8, 0.8)),
    _v("AA", (0.85, 0.55, 0.00, 0.00, 0.35, 0.15), (2.0, 1.0, 1.0, 1.0, 0.8, 0.8)),
    _v("H", (0.30, 0.50, 0.00, 0.00, 0.30, 0.00), (0.15, 0.15, 0.15, 0.15, 0.15, 0.15)),
])

# espeak-ng English phoneme mnemonics (stress marks already stripped by the events) → visemes.
# Diphthongs are sequences: the segment is split evenly between their parts.
PHONEME_VISEMES: dict[str, tuple[str, ...]] = {
    **{p: ("PBM",) for p in ("p", "b", "m")},
    **{p: ("FV",) for p in ("f", "v")},
    **{p: ("TH",) for p in ("T", "D")},
    **{p: ("ALV",) for p in ("t", "d", "n", "l", "s", "z", "t#", "t[", "t2", "d#", "n-",
                             "l/", "l#", "z#")},
    **{p: ("KG",) for p in ("k", "g", "N", "x")},
    **{p: ("SH",) for p in ("S", "Z", "tS", "dZ")},
    **{p: ("R",) for p in ("r", "r-", "R")},
    **{p: ("W",) for p in ("w", "w#", "W", "u:", "U", "u")},
    **{p: ("IY",) for p in ("i:", "i", "I", "I2", "I#", "j")},
    **{p: ("EH",) for p in ("E", "e", "@", "@2", "@5", "@-", "3", "3:", "VR", "e@")},
    **{p: ("AA",) for p in ("a", "aa", "a#", "A:", "A@", "V", "a2")},
    **{p: ("OW",) for p in ("0", "O", "O:", "O@", "o@", "O2", "o")},
    **{p: ("H",) for p in ("h", "?", ";")},
    "@L": ("EH", "ALV"),
    "i@": ("IY", "EH"), "i@3": ("IY", "EH"), "IR": ("IY", "R"), "U@": ("W", "EH"),
    "eI": ("EH", "IY"), "aI": ("AA", "IY"), "aI2": ("AA", "IY"), "aI3": ("AA", "IY"),
    "aI@": ("AA", "IY", "EH"), "aU": ("AA", "W"), "aU@": ("AA", "W", "EH"),
    "oU": ("OW", "W"), "OI": ("OW", "IY"),
}
# CMU ARPAbet phones (flite's voices, `avsync.data.synth.flite`), named "arpa:<phone>".
ARPABET_VISEMES: dict[str, tuple[str, ...]] = {
    **{p: ("PBM",) for p in ("p", "b", "m")},
    **{p: ("FV",) for p in ("f", "v")},
    **{p: ("TH",) for p in ("th", "dh")},
    **{p: ("ALV",) for p in ("t", "d", "n", "l", "s", "z", "dx")},
    **{p: ("KG",) for p in ("k", "g", "ng")},
    **{p: ("SH",) for p in ("sh", "zh", "ch", "jh")},
    "r": ("R",), "er": ("R",), "w": ("W",), "uw": ("W",), "uh": ("W",),
    **{p: ("IY",) for p in ("iy", "ih", "y")},
    **{p: ("EH",) for p in ("eh", "ax", "ah", "ae")},
    **{p: ("AA",) for p in ("aa",)},
    **{p: ("OW",) for p in ("ao",)},
    "hh": ("H",),
    "ey": ("EH", "IY"), "ay": ("AA", "IY"), "aw": ("AA", "W"), "ow": ("OW", "W"),
    "oy": ("OW", "IY"),
}
ARPABET_PREFIX = "arpa:"
_VOWEL_START = set("aeiouAEIOU03@V")


def visemes_of(phoneme: str) -> tuple[str, ...]:
    """Viseme classes of one espeak phoneme; pauses ("_", "_:") are silence.

    Unknown mnemonics (another language variant's) fall back by their first character: a vowel
    to the neutral EH, anything else to the weak H, so a new espeak release cannot crash the
    generator. `known_phoneme` tells whether the table covered it.
    """
    if phoneme.startswith("_"):
        return ("sil",)
    if phoneme.startswith(ARPABET_PREFIX):
        return ARPABET_VISEMES.get(phoneme[len(ARPABET_PREFIX):], ("EH",))
    found = PHONEME_VISEMES.get(phoneme) or PHONEME_VISEMES.get(phoneme.rstrip("#;:2-"))
    if found:
        return found
    return ("EH",) if phoneme[:1] in _VOWEL_START else ("H",)


def known_phoneme(phoneme: str) -> bool:
    if phoneme.startswith(ARPABET_PREFIX):
        return phoneme[len(ARPABET_PREFIX):] in ARPABET_VISEMES
    return phoneme.startswith("_") or phoneme in PHONEME_VISEMES


@dataclass(frozen=True)
class ArticulationStyle:
    """How strongly one speaker articulates: gains on the deviation from rest, per parameter."""

    jaw: float = 1.0
    width: float = 1.0
    round: float = 1.0

    def gains(self) -> np.ndarray:
        return np.array([self.jaw, self.width, self.round, 1.0, 1.0, 1.0])


REST: np.ndarray = np.array(VISEMES["sil"].target)


def _targets(segments: Sequence[tuple[float, float, str]],
             end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends (s), targets (N, 6) and dominances (N, 6) of the viseme segments, with
    silence filling every gap and the time before the first and after the last phoneme."""
    rows: list[tuple[float, float, Viseme]] = []
    cursor = -1.0
    for start, stop, phoneme in sorted(segments):
        if start > cursor:
            rows.append((cursor, start, VISEMES["sil"]))
        parts = visemes_of(phoneme)
        step = (stop - start) / len(parts)
        rows += [(start + k * step, start + (k + 1) * step, VISEMES[name])
                 for k, name in enumerate(parts)]
        cursor = max(cursor, stop)
    rows.append((cursor, max(end, cursor) + 1.0, VISEMES["sil"]))
    return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
            np.array([r[2].target for r in rows]), np.array([r[2].dominance for r in rows]))


def articulation_track(phonemes: Sequence[PhonemeSegment], n_frames: int, offset: float = 0.0,
                       style: ArticulationStyle = ArticulationStyle()) -> np.ndarray:
    """Mouth parameters per video frame for an utterance spoken from `offset` seconds on.

    phonemes: segments with times relative to the utterance start (espeak's clock).
    Returns (n_frames, 6) float32 in [0, 1], `PARAMETERS` order; frame k averages the model
    over [k / FPS, (k + 1) / FPS), the same interval as audio step k.
    """
    return segments_track([(offset + p.start, offset + p.end, p.phoneme) for p in phonemes],
                          n_frames, style)


def segments_track(segments: Sequence[tuple[float, float, str]], n_frames: int,
                   style: ArticulationStyle = ArticulationStyle()) -> np.ndarray:
    """`articulation_track` for (start s, end s, phoneme) segments on the clip's own clock,
    e.g. several utterances of one face in a scene. Returns (n_frames, 6) float32."""
    starts, ends, targets, dominance = _targets(segments, n_frames / FPS)
    out = np.empty((n_frames, len(PARAMETERS)), np.float32)
    for first in range(0, n_frames, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, n_frames - first)
        lo, hi = first / FPS - _REACH, (first + count) / FPS + _REACH
        near = (ends > lo) & (starts < hi)
        out[first:first + count] = _evaluate(starts[near], ends[near], targets[near],
                                             dominance[near], first, count)
    out = REST + (out - REST) * style.gains()
    return np.clip(out, 0.0, 1.0).astype(np.float32)


_CHUNK_FRAMES = 50  # evaluate 2 s at a time: memory stays small for long scenes
_REACH = 1.0  # s; segments further away than this have a dominance below exp(-9)


def _evaluate(starts: np.ndarray, ends: np.ndarray, targets: np.ndarray, dominance: np.ndarray,
              first: int, count: int) -> np.ndarray:
    """The dominance-weighted target average, averaged over each frame's 40 ms: (count, 6)."""
    per_frame = int(round(1.0 / (FPS * GRID_SECONDS)))
    t = first / FPS + (np.arange(count * per_frame) + 0.5) * GRID_SECONDS
    before = np.clip(starts[:, None] - t[None, :], 0.0, None)  # (N, M) seconds before a segment
    after = np.clip(t[None, :] - ends[:, None], 0.0, None)
    decay = np.exp(-before[:, :, None] / ANTICIPATION - after[:, :, None] / CARRY_OVER)
    weight = dominance[:, None, :] * decay  # (N, M, 6)
    value = (weight * targets[:, None, :]).sum(0) / np.maximum(weight.sum(0), 1e-9)
    return value.reshape(count, per_frame, len(PARAMETERS)).mean(axis=1)


def idle_track(rng: np.random.Generator, n_frames: int, amount: float = 1.0) -> np.ndarray:
    """Small non-speech mouth movements (lip presses, slight parting, smiles) around rest.

    Returns (n_frames, 6) float32 deviations to add to a track; smooth (a few per second) so a
    silent face is never perfectly still and motion alone does not reveal who is speaking.
    """
    out = np.zeros((n_frames, len(PARAMETERS)), np.float32)
    scale = amount * np.array([0.10, 0.18, 0.08, 0.35, 0.05, 0.0])
    for p in np.nonzero(scale)[0]:
        out[:, p] = scale[p] * smooth_noise(rng, n_frames, cutoff_hz=rng.uniform(0.3, 1.2))
    out[:, JAW] = np.abs(out[:, JAW])  # a closed mouth cannot open less than closed
    out[:, CLOSURE] = -np.abs(out[:, CLOSURE])
    return out


def smooth_noise(rng: np.random.Generator, n: int, cutoff_hz: float) -> np.ndarray:
    """Unit-peak band-limited noise on the frame grid (Gaussian-filtered white noise)."""
    sigma = FPS / (2 * np.pi * cutoff_hz)
    radius = int(3 * sigma) + 1
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    noise = np.convolve(rng.standard_normal(n + 2 * radius), kernel / kernel.sum(), mode="valid")
    return noise / max(float(np.abs(noise).max()), 1e-9)
