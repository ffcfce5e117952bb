"""Clips the exporter checks a model on: a split of a prepared cache, or seeded toy clips.

Toy clips (`avsync.models.toybatch`) have lengths that are neither the traced chunk nor a
multiple of it, and come three at a time (the graphs were traced with a batch of two), so the
parity check exercises dynamic batch and length (STYLE.md lesson 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.data.cache import PCM_SCALE, PreparedCache
from avsync.errors import DataError
from avsync.models.config import ModelConfig
from avsync.runtime.offline import ClipInput
from avsync.timebase import SAMPLES_PER_STEP


@dataclass(frozen=True)
class LabelledClip:
    """audio: (T*640,) float32 in [-1, 1] @ 16 kHz; rois: (T, R, R) uint8 at roi_stored;
    speech: (T,) bool (inside a word); text: the normalised reference ('' if unknown)."""

    id: str
    audio: np.ndarray
    rois: np.ndarray
    text: str
    speech: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.rois)

    def runtime_input(self, audio: bool = True, video: bool = True) -> ClipInput:
        return ClipInput(self.audio if audio else None, self.rois if video else None)


def cache_clips(cache_dir: str | Path, split: str, roi_stored: int, limit: int | None = None,
                convention: str = "face-box") -> list[LabelledClip]:
    """The first `limit` clips of `split` from a prepared cache (DataError if the cache's ROI
    size or crop convention is not the model's, or the split is empty)."""
    cache = PreparedCache(cache_dir)
    if cache.roi_size != roi_stored:
        raise DataError(f"{cache_dir}: ROIs are {cache.roi_size} px but the model takes "
                        f"{roi_stored} px; prepare the data with --roi-size {roi_stored}")
    if cache.roi_convention != convention:
        raise DataError(f"{cache_dir}: mouths were cut by {cache.roi_convention!r} but the "
                        f"model takes {convention!r} crops; prepare the data with "
                        f"--roi-convention {convention}")
    indices = cache.split(split)[:limit]
    if not indices:
        raise DataError(f"{cache_dir}: no clips in split {split!r} (splits: {cache.splits})")
    out = []
    for i in indices:
        clip = cache[i]
        out.append(LabelledClip(clip.id, np.asarray(clip.audio, np.float32) / PCM_SCALE,
                                np.array(clip.roi), clip.text,
                                np.asarray(clip.speech_mask)))
    return out


def toy_clips(config: ModelConfig, count: int = 3, seed: int = 7) -> list[LabelledClip]:
    """`count` seeded toy clips of about 5.5, 7.5, 9.5 ... chunks: for any chunk > 1 step, never
    a whole number of chunks, so the last chunk of each is short."""
    from avsync.models.toybatch import toy_batch

    c = config.streaming.chunk_size
    lengths = [c * (5 + 2 * k) + max(1, c // 2) for k in range(count)]
    out = []
    for k, steps in enumerate(lengths):
        batch = toy_batch(1, steps, config.visual_frontend.roi_stored, config.vocab_size,
                          seed=seed + k)
        out.append(LabelledClip(f"toy-{k}", batch["audio"][0].numpy(),
                                batch["video"][0].numpy(), "", batch["speech_mask"][0].numpy()))
    assert all(len(x.audio) == x.steps * SAMPLES_PER_STEP for x in out)
    return out
