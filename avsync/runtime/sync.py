"""Audio-visual offset, SyncNet's way, over a sliding window of per-step sync embeddings.

For every shift s in [-max_shift, +max_shift] steps, the mean Euclidean distance between the
visual embedding of step t and the audio embedding of step t + s (over the steps where both
exist); offset = the shift with the smallest mean distance; confidence = median distance minus
that smallest distance (SyncNet reports it so; about 0 means "no evidence").

Sign convention (the same as `avsync.models.losses.shift_similarities`): a POSITIVE offset
means the AUDIO LAGS the video: the sound of what the lips do at step t arrives at step t + s.
To repair such a clip, move the audio earlier by offset_ms.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from avsync.errors import ConfigError
from avsync.runtime.model import ChunkResult, TrackId
from avsync.timebase import STEP_MS, SYNC_MAX_SHIFT


@dataclass(frozen=True)
class SyncConfig:
    window_steps: int = 100  # 4 s of the most recent steps
    max_shift: int = SYNC_MAX_SHIFT
    min_overlap: int = 10  # steps that must pair up at the largest shift

    def __post_init__(self) -> None:
        if self.max_shift < 0 or self.min_overlap < 1:
            raise ConfigError(f"sync max_shift must be >= 0 and min_overlap >= 1, got "
                              f"{self.max_shift}, {self.min_overlap}")
        if self.window_steps < self.max_shift + self.min_overlap:
            raise ConfigError(f"sync window_steps ({self.window_steps}) must be >= max_shift + "
                              f"min_overlap ({self.max_shift + self.min_overlap})")


@dataclass(frozen=True)
class SyncResult:
    """offset_steps/offset_ms: positive = audio lags video; confidence: median - min distance;
    distances: mean distance per shift from -max_shift to +max_shift; steps: window used."""

    offset_steps: int
    offset_ms: int
    confidence: float
    distances: tuple[float, ...]
    steps: int


def estimate_offset(audio_embed: np.ndarray, visual_embed: np.ndarray,
                    max_shift: int = SYNC_MAX_SHIFT, min_overlap: int = 10,
                    step_ms: int = STEP_MS) -> SyncResult | None:
    """audio_embed, visual_embed: (T, E) float32 of the same steps -> the offset, or None when
    T < max_shift + min_overlap (too short to compare every shift)."""
    a = np.asarray(audio_embed, np.float32)
    v = np.asarray(visual_embed, np.float32)
    t = min(len(a), len(v))
    if t < max_shift + min_overlap:
        return None
    a, v = a[:t], v[:t]
    squared = (v * v).sum(1)[:, None] + (a * a).sum(1)[None, :] - 2.0 * (v @ a.T)
    distance = np.sqrt(np.maximum(squared, 0.0))  # (T visual, T audio)
    means = np.array([np.diagonal(distance, offset=s).mean()
                      for s in range(-max_shift, max_shift + 1)])
    best = int(np.argmin(means))
    offset = best - max_shift
    return SyncResult(offset, offset * step_ms, float(np.median(means) - means[best]),
                      tuple(round(float(m), 6) for m in means), t)


class RunningOffset:
    """`estimate_offset` over a whole stream of any length, in constant memory: each pushed
    step is paired with the last `max_shift` steps of the other modality as it arrives, and
    the distance sums per shift are all that is kept. `result()` equals `estimate_offset` of
    everything pushed (up to float rounding)."""

    def __init__(self, max_shift: int = SYNC_MAX_SHIFT, min_overlap: int = 10,
                 step_ms: int = STEP_MS) -> None:
        self.max_shift, self.min_overlap, self.step_ms = max_shift, min_overlap, step_ms
        self.steps = 0
        self._audio: deque[np.ndarray] = deque(maxlen=max_shift)  # the last steps, oldest first
        self._visual: deque[np.ndarray] = deque(maxlen=max_shift)
        self._sums = np.zeros(2 * max_shift + 1)  # index s + max_shift
        self._counts = np.zeros(2 * max_shift + 1)

    def push(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> None:
        """audio_embed, visual_embed: (C, E) of the same C steps."""
        for a, v in zip(np.asarray(audio_embed, np.float32),
                        np.asarray(visual_embed, np.float32), strict=True):
            m = self.max_shift
            earlier_v = np.stack([v, *reversed(self._visual)])  # v[t], v[t-1], ...: shifts 0, 1, ..
            k = len(earlier_v)
            self._sums[m:m + k] += _distances(earlier_v, a)
            self._counts[m:m + k] += 1
            if self._audio:  # a[t-1], a[t-2], ...: shifts -1, -2, ...
                d = _distances(np.stack(list(reversed(self._audio))), v)
                self._sums[m - len(d):m] += d[::-1]
                self._counts[m - len(d):m] += 1
            self._audio.append(a)
            self._visual.append(v)
            self.steps += 1

    def result(self) -> SyncResult | None:
        """The offset over everything pushed, None when shorter than max_shift + min_overlap."""
        if self.steps < self.max_shift + self.min_overlap:
            return None
        means = self._sums / self._counts
        best = int(np.argmin(means))
        offset = best - self.max_shift
        return SyncResult(offset, offset * self.step_ms, float(np.median(means) - means[best]),
                          tuple(round(float(m), 6) for m in means), self.steps)


def _distances(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of (K, E) `rows` to (E,) `x`, as estimate_offset has it."""
    squared = (rows * rows).sum(1) + (x * x).sum() - 2.0 * (rows @ x)
    return np.sqrt(np.maximum(squared, 0.0))


class SyncEstimator:
    """Per-stream offset of one face track (default: each chunk's primary face).

    `accept(result)` after each chunk -> the current estimate over the last `window_steps`
    (None until enough steps). A chunk without audio or without the track breaks the pairing,
    so the window starts again.
    """

    def __init__(self, config: SyncConfig | None = None, track: TrackId | None = None,
                 step_ms: int = STEP_MS) -> None:
        self.config = config or SyncConfig()
        self.track = track
        self.step_ms = step_ms
        self._audio: deque[np.ndarray] = deque(maxlen=self.config.window_steps)
        self._visual: deque[np.ndarray] = deque(maxlen=self.config.window_steps)
        self.latest: SyncResult | None = None

    def reset(self) -> None:
        self._audio.clear()
        self._visual.clear()

    def push(self, audio_embed: np.ndarray, visual_embed: np.ndarray) -> None:
        """Add C steps: audio_embed and visual_embed (C, E) of the same steps."""
        if len(audio_embed) != len(visual_embed):
            raise ConfigError(f"sync push needs embeddings of the same steps, got "
                              f"{len(audio_embed)} audio and {len(visual_embed)} visual")
        self._audio.extend(audio_embed)
        self._visual.extend(visual_embed)

    def accept(self, result: ChunkResult) -> SyncResult | None:
        track = self.track if self.track is not None else result.primary_face
        if result.audio_embed is None or track not in result.visual_embed:
            self.reset()
            return self.latest
        self.push(result.audio_embed, result.visual_embed[track])
        estimate = self.estimate()
        if estimate is not None:
            self.latest = estimate
        return self.latest

    def estimate(self) -> SyncResult | None:
        """The offset over the current window, or None when it is still too short."""
        if not self._audio:
            return None
        c = self.config
        return estimate_offset(np.stack(self._audio), np.stack(self._visual), c.max_shift,
                               c.min_overlap, self.step_ms)
