"""Active-speaker detection: calibrated, smoothed speaking probabilities per face track.

The ASD graph gives a raw logit per step and track (BACKGROUND.md: users of TalkNet and
Light-ASD ask how to get a probability). The export fits Platt scaling on validation clips,
P = sigmoid(a * logit + b), and stores (a, b) in the card; here each step's probability is
then averaged over the last `smooth_steps` steps of its track (causal, so no added latency
beyond the chunk), which removes single-step flicker between turns.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from avsync.errors import ConfigError
from avsync.runtime.model import ChunkResult, TrackId
from avsync.runtime.model_card import AsdCalibration


def calibrate(logits: np.ndarray, calibration: AsdCalibration) -> np.ndarray:
    """Raw ASD logits (any shape) -> P(speaking) in [0, 1], float32."""
    z = calibration.a * np.asarray(logits, np.float64) + calibration.b
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)  # sigmoid without overflow


@dataclass(frozen=True)
class AsdConfig:
    smooth_steps: int = 5  # 200 ms moving average
    forget_steps: int = 50  # a track unseen for 2 s is dropped

    def __post_init__(self) -> None:
        if self.smooth_steps < 1 or self.forget_steps < 1:
            raise ConfigError(f"asd smooth_steps and forget_steps must be >= 1, got "
                              f"{self.smooth_steps}, {self.forget_steps}")


class ActiveSpeakerDetector:
    """Per-stream speaking probabilities of N face tracks (the audio is encoded once a chunk
    by `Model.advance` and paired with every track there)."""

    def __init__(self, calibration: AsdCalibration, config: AsdConfig | None = None) -> None:
        self.calibration = calibration
        self.config = config or AsdConfig()
        self._history: dict[TrackId, deque[float]] = {}
        self._last_seen: dict[TrackId, int] = {}
        self.probabilities: dict[TrackId, float] = {}  # latest smoothed value per track

    def accept(self, result: ChunkResult) -> dict[TrackId, np.ndarray]:
        """-> {track: (C,) smoothed P(speaking) per step of this chunk}; tracks without ASD
        logits in the chunk (no audio) are left out."""
        out = {}
        end = result.start_step + result.steps
        for track, logits in result.asd_logits.items():
            history = self._history.setdefault(track, deque(maxlen=self.config.smooth_steps))
            smoothed = np.empty(len(logits), np.float32)
            for k, p in enumerate(calibrate(logits, self.calibration).tolist()):
                history.append(p)
                smoothed[k] = _mean(history)
            out[track] = smoothed
            self._last_seen[track] = end
            if len(smoothed):
                self.probabilities[track] = float(smoothed[-1])
        for track in [t for t, seen in self._last_seen.items()
                      if end - seen >= self.config.forget_steps]:
            self._history.pop(track, None)
            self._last_seen.pop(track, None)
            self.probabilities.pop(track, None)
        return out

    def speaking(self, threshold: float = 0.5) -> list[TrackId]:
        """Tracks whose latest probability is at least `threshold`, most likely first."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])
        return [t for t, p in ranked if p >= threshold]


def _mean(values: deque[float]) -> float:
    """np.mean of the values, bit for bit, without an array per step for the usual few (numpy
    sums fewer than 8 floats in order)."""
    if len(values) >= 8:
        return float(np.mean(values))
    total = 0.0
    for value in values:
        total += value
    return total / len(values)
