"""One synthetic utterance: text → espeak speech → articulation → rendered frames, in sync.

Why one place: the three time bases (espeak's event clock, the 16 kHz samples, the 25 fps
frames) meet here. The speech is placed after a lead-in of a whole number of samples, the
clip is a whole number of 40 ms steps (T frames, T·640 samples), and the articulation track is
evaluated on exactly those frames, so frame k shows the mouth while audio step k is heard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avsync.data.annotations import Annotation, WordTiming
from avsync.data.synth.english import english_sentences
from avsync.data.synth.espeak import Speech, SpokenWord, synthesize
from avsync.data.synth.face import render_clip
from avsync.data.synth.festival import FestivalVoice, synthesize_festival
from avsync.data.synth.flite import FliteVoice, synthesize_flite
from avsync.data.synth.grammar import grid_sentence
from avsync.data.synth.sentences import open_sentence
from avsync.data.synth.speakers import AnyVoice, Speaker
from avsync.data.synth.visemes import articulation_track, idle_track
from avsync.errors import ConfigError, DataError
from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP

TEXT_SOURCES: tuple[str, ...] = ("grid", "open", "mixed", "english")
SYNTH_ATTEMPTS: int = 10  # sentences tried before giving up on an utterance
CONF: float = 4.0  # the LRS `Conf:` value written for every synthetic clip
IDLE_DURING_CLIP: float = 0.35  # amount of non-speech mouth motion added to every clip


@dataclass(frozen=True)
class Clip:
    """frames: (T, 160, 160, 3) uint8 RGB @ 25 fps; audio: (T·640,) float32 in [-1, 1] @ 16 kHz."""

    frames: np.ndarray
    audio: np.ndarray
    annotation: Annotation

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def choose_words(rng: np.random.Generator, text: str, split: str = "train"
                 ) -> tuple[SpokenWord, ...]:
    """A sentence from the source `text` ("grid", "open", "mixed": half of each, or "english":
    open English whose sentences belong to one split, drawn from `split`'s)."""
    if text not in TEXT_SOURCES:
        raise ConfigError(f"text source {text!r} is not one of {', '.join(TEXT_SOURCES)}")
    if text == "english":
        pool = english_sentences(split)
        return pool[int(rng.integers(len(pool)))]
    if text == "grid" or (text == "mixed" and rng.random() < 0.5):
        return grid_sentence(rng)
    return open_sentence(rng)


def speak(rng: np.random.Generator, voice: AnyVoice, text: str, split: str = "train"
          ) -> Speech:
    """Synthesise a sentence drawn by `rng`, drawing another when the engine cannot time
    one."""
    errors = []
    engine = (synthesize_flite if isinstance(voice, FliteVoice) else synthesize_festival
              if isinstance(voice, FestivalVoice) else synthesize)
    for _ in range(SYNTH_ATTEMPTS):
        words = choose_words(rng, text, split)
        try:
            return engine(words, voice)  # type: ignore[arg-type]
        except DataError as error:
            errors.append(str(error))
    raise DataError(f"voice {voice.espeak_name} failed on {SYNTH_ATTEMPTS} sentences; "
                    f"last error: {errors[-1]}")


def word_timings(speech: Speech, offset: float) -> tuple[WordTiming, ...]:
    """Word times in clip seconds, rounded to the 2 decimals an LRS `.txt` holds."""
    return tuple(WordTiming(w.word, round(offset + w.start, 2), round(offset + w.end, 2))
                 for w in speech.words)


def level_and_noise(speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The speech at a random level (peak 0.3-0.85) and a faint noise floor 35-50 dB below."""
    peak = float(rng.uniform(0.3, 0.85))
    scaled = speech * (peak / max(float(np.abs(speech).max()), 1e-6))
    noise_std = peak * 10 ** (-float(rng.uniform(35, 50)) / 20)
    return scaled.astype(np.float32), noise_std


def place(pieces: Sequence[tuple[int, np.ndarray]], n_samples: int, noise_std: float,
          rng: np.random.Generator) -> np.ndarray:
    """One track of `n_samples`: each (start sample, audio) piece added in, plus the noise floor."""
    out = rng.normal(0.0, noise_std, n_samples).astype(np.float32)
    for start, audio in pieces:
        out[start:start + len(audio)] += audio[:max(0, n_samples - start)]
    return np.clip(out, -1.0, 1.0)


def make_clip(speaker: Speaker, rng: np.random.Generator, text: str,
              silence: tuple[float, float] = (0.15, 0.5), split: str = "train") -> Clip:
    """One LRS-style clip of `speaker` saying a sentence from `text` (of `split`'s sentences,
    for the english source), with `silence` seconds (drawn uniformly) before and after."""
    speech = speak(rng, speaker.voice, text, split)
    lead = int(rng.uniform(*silence) * SAMPLE_RATE)
    tail = int(rng.uniform(*silence) * SAMPLE_RATE)
    n_frames = -(-(lead + len(speech.audio) + tail) // SAMPLES_PER_STEP)
    voice, noise_std = level_and_noise(speech.audio, rng)
    audio = place([(lead, voice)], n_frames * SAMPLES_PER_STEP, noise_std, rng)
    offset = lead / SAMPLE_RATE
    mouth = articulation_track(speech.phonemes, n_frames, offset, speaker.face.style)
    mouth = np.clip(mouth + idle_track(rng, n_frames, IDLE_DURING_CLIP), 0.0, 1.0)
    frames = render_clip(speaker.face, mouth, rng)
    words = word_timings(speech, offset)
    annotation = Annotation(text=" ".join(w.word for w in words), conf=CONF, words=words)
    return Clip(frames=frames, audio=audio, annotation=annotation)
