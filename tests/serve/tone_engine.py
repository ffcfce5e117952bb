"""A deterministic TEST engine for the server tests — not a speech recogniser.

`ToneEngine` satisfies `serve.engine.Engine` so the server's machinery can be tested before an
exported model exists. Its "speech" is a code that survives every media path the server has
(PCM, resampling, raw and JPEG frames, mouth cropping):
- audio: each 40 ms step holds one sine tone; tone i (500 + 100 i Hz) is character
  ALPHABET[i]; a quiet step is silence; 4 quiet steps end a segment (endpointing).
- video: the mouth ROI's mean brightness 8 (i + 1) is character i (video-only streams);
  a face whose ROI is brighter than 4 is "speaking".
- sync: the lag (±15 steps) that best lines up audio activity with lip activity.
Every character, step and frame the server drops or reorders changes the transcript, which is
what makes the tests able to fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP, STEP_MS, SYNC_MAX_SHIFT
from serve.engine import ChunkInput, ChunkOutput, EngineInfo, Segment, SyncEstimate
from serve.protocol import Task, Word

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
BASE_HZ, STEP_HZ, AMPLITUDE = 500.0, 100.0, 0.3
ENDPOINT_STEPS = 4
ROI = 24
QUIET_RMS, DARK_LEVEL = 0.14, 4.0  # a step less than ~40% covered by a tone is quiet


def symbol_from_audio(step: np.ndarray) -> int | None:
    """step: (640,) float32 → character index, or None for silence."""
    if float(np.sqrt(np.mean(step.astype(np.float64) ** 2))) < QUIET_RMS:
        return None
    spectrum = np.abs(np.fft.rfft(step * np.hanning(len(step))))
    hz = np.argmax(spectrum) * SAMPLE_RATE / len(step)
    index = int(round((hz - BASE_HZ) / STEP_HZ))
    return index if 0 <= index < len(ALPHABET) else None


def symbol_from_roi(roi: np.ndarray) -> int | None:
    """roi: (R, R) uint8 → character index from its mean brightness, None if dark."""
    mean = float(roi.mean())
    return None if mean < DARK_LEVEL else max(0, int(round(mean / 8)) - 1)


@dataclass
class ToneStream:
    tasks: frozenset[Task]
    open_chars: list[tuple[int, str]] = field(default_factory=list)  # (step, character)
    quiet: int = 0
    audio_active: list[int] = field(default_factory=list)
    video_active: list[int] = field(default_factory=list)


class ToneEngine:
    """Satisfies serve.engine.Engine; `delay_s` simulates a slow model for overload tests."""

    def __init__(self, chunk_steps: int = 4, delay_s: float = 0.0) -> None:
        self.info = EngineInfo(name="tone-test-engine", version="0", chunk_steps=chunk_steps,
                               roi_stored=ROI, tasks=tuple(Task))
        self.delay_s = delay_s
        self.calls: list[int] = []  # batch size of every advance() call

    def open_stream(self, tasks: frozenset[Task], audio: bool, video: bool) -> ToneStream:
        return ToneStream(tasks)

    def advance(self, batch: Sequence[tuple[ToneStream, ChunkInput]]) -> list[ChunkOutput]:
        self.calls.append(len(batch))
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        return [self._advance_one(stream, chunk) for stream, chunk in batch]

    def finish(self, stream: ToneStream) -> ChunkOutput:
        final = self._close_segment(stream)
        return ChunkOutput(finals=(final,) if final else ())

    def _advance_one(self, stream: ToneStream, chunk: ChunkInput) -> ChunkOutput:
        finals: list[Segment] = []
        primary = chunk.faces.get(chunk.primary_face) if chunk.primary_face is not None else None
        for k in range(chunk.steps):
            step = chunk.start_step + k
            a = None if chunk.audio is None else symbol_from_audio(
                chunk.audio[k * SAMPLES_PER_STEP:(k + 1) * SAMPLES_PER_STEP])
            v = None if primary is None else symbol_from_roi(primary[k])
            stream.audio_active.append(int(a is not None))
            stream.video_active.append(int(v is not None))
            symbol = a if chunk.audio is not None else v
            if symbol is None:
                stream.quiet += 1
                if stream.quiet == ENDPOINT_STEPS and (final := self._close_segment(stream)):
                    finals.append(final)
            else:
                stream.quiet = 0
                stream.open_chars.append((step, ALPHABET[symbol]))
        speaking = {track: float(np.clip(rois[-1].mean() / 16.0, 0.0, 1.0))
                    for track, rois in chunk.faces.items()}
        return ChunkOutput(partial=_text(stream.open_chars), finals=tuple(finals),
                           speaking=speaking, sync=self._sync(stream, chunk.primary_face))

    def _close_segment(self, stream: ToneStream) -> Segment | None:
        chars, stream.open_chars = stream.open_chars, []
        words = _words(chars)
        if not words:
            return None
        return Segment(" ".join(w.word for w in words), words[0].start_ms, words[-1].end_ms,
                       tuple(words))

    @staticmethod
    def _sync(stream: ToneStream, track: int | None) -> SyncEstimate | None:
        a = np.array(stream.audio_active[-75:], float)
        v = np.array(stream.video_active[-75:], float)
        if track is None or len(a) < 2 * SYNC_MAX_SHIFT or a.sum() == 0:
            return None
        scores = []
        for lag in range(-SYNC_MAX_SHIFT, SYNC_MAX_SHIFT + 1):  # audio[t] vs video[t - lag]
            x, y = (a[lag:], v[:len(v) - lag]) if lag >= 0 else (a[:lag], v[-lag:])
            scores.append(float(np.mean(x == y)))
        best = int(np.argmax(scores))
        return SyncEstimate((best - SYNC_MAX_SHIFT) * STEP_MS,
                            scores[best] - float(np.median(scores)), track)


def _text(chars: list[tuple[int, str]]) -> str:
    return " ".join("".join(c for _, c in chars).split())


def _words(chars: list[tuple[int, str]]) -> list[Word]:
    words: list[Word] = []
    steps: list[int] = []
    letters: list[str] = []
    for step, char in [*chars, (-1, " ")]:
        if char != " ":
            steps.append(step)
            letters.append(char)
        elif steps:
            words.append(Word("".join(letters), steps[0] * STEP_MS, (steps[-1] + 1) * STEP_MS,
                              1.0))
            steps, letters = [], []
    return words


# --- clips the tests stream --------------------------------------------------------------

@dataclass(frozen=True)
class ToneClip:
    """audio: (T*640,) float32 @ 16 kHz; levels: (T,) per-step lip brightness; texts: finals."""

    audio: np.ndarray
    levels: np.ndarray
    texts: tuple[str, ...]

    @property
    def steps(self) -> int:
        return len(self.levels)

    def frames(self, width: int = 64, height: int = 64) -> np.ndarray:
        """(T, H, W) uint8 gray frames, uniformly lit at each step's level."""
        return np.broadcast_to(self.levels[:, None, None].astype(np.uint8),
                               (self.steps, height, width)).copy()


def tone_clip(texts: Sequence[str], gap_steps: int = 6, lead_steps: int = 2,
              audio_delay_steps: int = 0) -> ToneClip:
    """A clip whose finals are `texts` (one segment each, separated by `gap_steps` silence).

    audio_delay_steps > 0 delays the audio against the lips (a planted AV offset).
    """
    symbols: list[int | None] = [None] * lead_steps
    for text in texts:
        symbols += [ALPHABET.index(c) for c in text] + [None] * gap_steps
    t = np.arange(SAMPLES_PER_STEP) / SAMPLE_RATE
    audio = np.concatenate([
        np.zeros(SAMPLES_PER_STEP) if s is None
        else AMPLITUDE * np.sin(2 * np.pi * (BASE_HZ + STEP_HZ * s) * t) for s in symbols])
    levels = np.array([0 if s is None else 8 * (s + 1) for s in symbols], np.uint8)
    if audio_delay_steps:
        audio = np.concatenate([np.zeros(audio_delay_steps * SAMPLES_PER_STEP), audio])
        levels = np.concatenate([levels, np.zeros(audio_delay_steps, np.uint8)])
    return ToneClip(audio.astype(np.float32), levels, tuple(texts))
