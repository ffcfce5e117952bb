"""Model-free lip-sync measurement for face-centred clips: mouth opening vs. audio energy.

Why: the corpus is only worth training on if lips and voice are in sync, and that must be
checked on the decoded mp4 (what training sees), not on the renderer's own parameters. The
mouth is measured inside the fixed crop of the ROI convention, as the area of pixels much
darker than the crop's median (the open mouth's cavity); audio as log energy per 40 ms step.

Lag convention: `best_lag` returns k > 0 when the audio comes k frames *after* the video
(energy[t + k] matches opening[t]), i.e. the audio must be advanced by k frames to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avsync.media.roi import mouth_box, whole_frame_face
from avsync.timebase import SAMPLES_PER_STEP

DARK_FRACTION: float = 0.5  # pixels darker than this fraction of the crop median count


def mouth_opening(frames: np.ndarray) -> np.ndarray:
    """Dark-cavity "mass" per frame inside the fixed mouth crop.

    frames: (T, H, W) uint8 gray (or (T, H, W, 3) RGB), face-centred.
    Returns (T,) float64: the sum over the crop of how far each pixel falls below
    DARK_FRACTION × the crop's median, in units of that threshold (about a pixel count of the
    open mouth's cavity, but without a hard threshold that dark lips could flicker across).
    """
    frames = np.asarray(frames)
    if frames.ndim == 4:
        frames = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    box = mouth_box(whole_frame_face(frames.shape[2], frames.shape[1]))
    x0, y0 = int(round(box.x)), int(round(box.y))
    crop = frames[:, y0:y0 + int(round(box.h)), x0:x0 + int(round(box.w))].astype(np.float32)
    threshold = DARK_FRACTION * np.median(crop.reshape(len(crop), -1), axis=1)[:, None, None]
    below = np.clip(threshold - crop, 0.0, None) / np.maximum(threshold, 1.0)
    return below.sum(axis=(1, 2)).astype(np.float64)


def audio_energy(audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """Log energy (dB) of each 40 ms step. audio: (S,) float32 @ 16 kHz → (T,) float64."""
    steps = len(audio) // SAMPLES_PER_STEP if n_frames is None else n_frames
    padded = np.zeros(steps * SAMPLES_PER_STEP, np.float64)
    usable = min(len(audio), len(padded))
    padded[:usable] = audio[:usable]
    power = (padded.reshape(steps, SAMPLES_PER_STEP) ** 2).mean(axis=1)
    return 10 * np.log10(power + 1e-10)


def lag_correlations(opening: Sequence[np.ndarray], energy: Sequence[np.ndarray],
                     max_lag: int) -> dict[int, float]:
    """Pearson correlation of opening[t] with energy[t + k] for k in [-max_lag, max_lag],
    pooled over clips (each clip's series standardised on its own)."""
    out = {}
    for k in range(-max_lag, max_lag + 1):
        xs, ys = [], []
        for o, e in zip(opening, energy, strict=True):
            n = min(len(o), len(e))
            a, b = (o[:n - k], e[k:n]) if k >= 0 else (o[-k:n], e[:n + k])
            if len(a) > 2:
                xs.append(_standard(a))
                ys.append(_standard(b))
        out[k] = float(np.mean(np.concatenate(xs) * np.concatenate(ys)))
    return out


def best_lag(opening: Sequence[np.ndarray], energy: Sequence[np.ndarray],
             max_lag: int = 10) -> tuple[int, dict[int, float]]:
    """The lag (frames, convention above) with the highest pooled correlation, and all of them."""
    correlations = lag_correlations(opening, energy, max_lag)
    return max(correlations, key=correlations.__getitem__), correlations


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-9)
