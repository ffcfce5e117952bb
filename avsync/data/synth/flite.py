"""CMU flite voices built from recordings (ARCTIC slt, rms, awb; kal16), with phone timing.

Why flite: espeak-ng's formant voices are far from real speech (whisper tiny.en misreads 38 %
of open sentences said by the corpus's espeak speakers, 10-16 % said by flite's voices:
bench/results/voices.json). flite is in Debian main, runs as a command, and `-psdur` prints
every phone with its end time, which drives the lips exactly as espeak's events do. Words
are not timed by flite, so each word's phones are counted in a second call that says the
words one by one (`w1. w2. w3.`: a pause between each); the sentence's phones are then given
to its words in order, and a sentence whose counts disagree is refused (the caller draws
another), so a transcript never disagrees with what was said.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsync.data.synth.espeak import PhonemeSegment, Speech, SpokenWord, WordSpan
from avsync.errors import DataError
from avsync.timebase import SAMPLE_RATE

FLITE_VOICES: tuple[str, ...] = ("slt", "rms", "awb", "kal16")
PHONE_PREFIX = "arpa:"  # flite's phones are CMU ARPAbet; avsync.data.synth.visemes maps them
PAUSE = "pau"


@dataclass(frozen=True)
class FliteVoice:
    """name: a flite voice; stretch: its `duration_stretch` (1 = the voice's own rate, about
    190 words a minute; 0.8-1.7 spans roughly 235-110)."""

    name: str
    stretch: float = 1.0
    engine: str = field(default="flite", init=False)

    @property
    def espeak_name(self) -> str:  # the name error messages use for any voice
        return f"flite:{self.name}"


def _flite() -> str:
    path = shutil.which("flite")
    if path is None:
        raise DataError("flite is not installed; install the Debian package flite (`make "
                        "setup` does) or synthesise with espeak voices only")
    return path


def _run(voice: FliteVoice, text: str, wav: Path | None) -> list[tuple[str, float]]:
    """(phone, end seconds) of `text` said by `voice`; the audio to `wav` when given."""
    command = [_flite(), "-voice", voice.name, "--setf", f"duration_stretch={voice.stretch}",
               "-t", text, "-o", str(wav) if wav else "none", "-psdur"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise DataError(f"flite -voice {voice.name} failed ({done.stderr.strip()[:200]})")
    phones = []
    for item in done.stdout.split():
        name, _, end = item.rpartition(":")
        phones.append((name, float(end)))
    return phones


def _word_counts(voice: FliteVoice, words: Sequence[str]) -> list[int]:
    """How many phones flite gives each word said on its own."""
    phones = _run(voice, ". ".join(words) + ".", None)
    counts, current, started = [], 0, False
    for name, _ in phones:
        if name == PAUSE:
            if started:
                counts.append(current)
            current, started = 0, False
        else:
            current, started = current + 1, True
    if started:
        counts.append(current)
    return counts


def read_wav_16k(path: Path) -> np.ndarray:
    """A 16-bit mono WAV an engine wrote -> (S,) float32 @ 16 kHz."""
    from avsync.media.resample import resample_audio

    with wave.open(str(path)) as f:
        if f.getnchannels() != 1 or f.getsampwidth() != 2:
            raise DataError(f"{path}: {f.getnchannels()} channels of {8 * f.getsampwidth()} "
                            "bits, not 16-bit mono")
        rate = f.getframerate()
        pcm = np.frombuffer(f.readframes(f.getnframes()), np.int16).astype(np.float32) / 32768
    return np.asarray(resample_audio(pcm, rate, SAMPLE_RATE), np.float32)


def said_text(words: Sequence[SpokenWord]) -> str:
    """What an engine that reads text is given: the words, lower case, pauses as commas."""
    if not words:
        raise DataError("cannot synthesise an empty utterance; give at least one word")
    return " ".join(w.word.lower() + ("," if w.say.endswith(",") else "") for w in words)


def timed_speech(words: Sequence[SpokenWord], audio: np.ndarray,
                 phones: Sequence[tuple[str, float, int | None]], engine: str) -> Speech:
    """Speech from an engine's phones: (ARPAbet phone, end seconds, index of its word or None
    for a pause) in order; phones are named `arpa:<phone>`, pauses `_`. DataError when a word
    got no phone (the caller draws another sentence)."""
    segments, start = [], 0.0
    for name, end, owner in phones:
        pause = name == PAUSE or owner is None
        segments.append(PhonemeSegment("_" if pause else PHONE_PREFIX + name, start, end,
                                       None if pause else owner))
        start = end
    spans = []
    for index, word in enumerate(words):
        own = [s for s in segments if s.word == index]
        if not own:
            raise DataError(f"{engine} gave the word {word.word!r} no phones")
        spans.append(WordSpan(word.word, own[0].start, own[-1].end))
    return Speech(audio=audio, words=tuple(spans), phonemes=tuple(segments))


def synthesize_flite(words: Sequence[SpokenWord], voice: FliteVoice) -> Speech:
    """Speak `words` with a flite voice: 16 kHz audio plus word and phone timing (phones
    named `arpa:<phone>`, pauses `_`). DataError when flite's words cannot be timed."""
    text = said_text(words)
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "speech.wav"
        phones = _run(voice, text, wav)
        audio = read_wav_16k(wav)
    counts = _word_counts(voice, [w.word.lower() for w in words])
    spoken = [p for p in phones if p[0] != PAUSE]
    if len(counts) != len(words) or sum(counts) != len(spoken):
        raise DataError(f"flite -voice {voice.name}: {len(spoken)} phones in the sentence but "
                        f"{sum(counts)} in its {len(words)} words said alone")
    owners = iter(k for k, n in enumerate(counts) for _ in range(n))
    timed = [(name, end, None if name == PAUSE else next(owners)) for name, end in phones]
    return timed_speech(words, audio, timed, f"flite -voice {voice.name}")
