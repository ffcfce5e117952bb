"""Seeded inputs shared by the runtime tests."""

from __future__ import annotations

import numpy as np

from avsync.runtime import Model


def random_chunk(model: Model, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(audio (steps*640,) float32, rois (steps, R, R) uint8), seeded noise."""
    rng = np.random.default_rng(seed)
    r = model.card.roi.stored
    audio = (0.1 * rng.standard_normal(steps * model.card.samples_per_step)).astype(np.float32)
    return audio, rng.integers(0, 256, (steps, r, r), dtype=np.uint8)
