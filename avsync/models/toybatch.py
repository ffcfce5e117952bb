"""A seeded toy batch whose audio and video share one structure, for tests and benchmarks.

Each clip is a random sequence of tokens separated by short silences. While token k is
"spoken", the audio is a tone whose pitch depends on k and the mouth ROI shows a bright blob
whose size and place depend on k; in silence the audio is faint noise and the blob is gone.
So audio and video agree step by step (sync), both predict the tokens (CTC, decoder), and
`speech_mask` marks the spoken steps (ASD) -- real data is not needed to see losses fall.
The batch follows docs/architecture.md's batch format.
"""

from __future__ import annotations

import math

import torch

from avsync import timebase
from avsync.models.config import FIRST_PIECE_ID

Batch = dict[str, torch.Tensor]


def _clip_plan(steps: int, vocab_size: int, generator: torch.Generator
               ) -> list[tuple[int, int, int]]:
    """[(token, first step, last step + 1), ...] filling `steps` with spans and gaps."""
    plan: list[tuple[int, int, int]] = []
    t = int(torch.randint(0, 3, (1,), generator=generator))
    while True:
        width = int(torch.randint(3, 6, (1,), generator=generator))
        if t + width > steps:
            return plan
        token = int(torch.randint(FIRST_PIECE_ID, vocab_size, (1,), generator=generator))
        plan.append((token, t, t + width))
        t += width + int(torch.randint(1, 3, (1,), generator=generator))


def _render(plan: list[tuple[int, int, int]], steps: int, roi: int, vocab_size: int,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (audio (steps*640,) float32, video (steps, roi, roi) uint8, speech (steps,) bool)."""
    n = steps * timebase.SAMPLES_PER_STEP
    audio = 0.003 * torch.randn(n, generator=generator)
    video = 90 + 10 * torch.randn(steps, roi, roi, generator=generator)
    speech = torch.zeros(steps, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(roi).float(), torch.arange(roi).float(), indexing="ij")
    for token, start, stop in plan:
        k = (token - FIRST_PIECE_ID) / max(vocab_size - FIRST_PIECE_ID - 1, 1)
        a, b = start * timebase.SAMPLES_PER_STEP, stop * timebase.SAMPLES_PER_STEP
        time = torch.arange(b - a).float() / timebase.SAMPLE_RATE
        audio[a:b] += 0.3 * torch.sin(2 * math.pi * (250.0 + 1500.0 * k) * time)
        cx, cy, radius = roi * (0.3 + 0.4 * k), roi * (0.7 - 0.4 * k), roi * (0.15 + 0.15 * k)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2).float()
        video[start:stop] += 120 * blob
        speech[start:stop] = True
    return audio.clamp(-1, 1), video.clamp(0, 255).to(torch.uint8), speech


def toy_batch(batch_size: int, steps: int, roi: int, vocab_size: int, seed: int = 0,
              min_steps: int | None = None) -> Batch:
    """A batch of `batch_size` clips of `min_steps`..`steps` steps, padded to `steps`.

    roi: the ROI side in pixels; vocab_size: tokens are drawn from [4, vocab_size).
    """
    generator = torch.Generator().manual_seed(seed)
    low = steps if min_steps is None else min_steps
    lengths = torch.randint(low, steps + 1, (batch_size,), generator=generator)
    lengths[0] = steps
    audio = torch.zeros(batch_size, steps * timebase.SAMPLES_PER_STEP)
    video = torch.zeros(batch_size, steps, roi, roi, dtype=torch.uint8)
    speech = torch.zeros(batch_size, steps, dtype=torch.bool)
    plans: list[list[int]] = []
    for i, length in enumerate(lengths.tolist()):
        spans = _clip_plan(length, vocab_size, generator)
        a, v, s = _render(spans, length, roi, vocab_size, generator)
        audio[i, :a.numel()], video[i, :length], speech[i, :length] = a, v, s
        plans.append([token for token, _, _ in spans])
    width = max(1, max(len(p) for p in plans))
    tokens = torch.zeros(batch_size, width, dtype=torch.long)
    for i, plan in enumerate(plans):
        tokens[i, :len(plan)] = torch.tensor(plan, dtype=torch.long)
    return {"video": video, "video_lengths": lengths.clone(), "audio": audio,
            "audio_lengths": lengths * timebase.SAMPLES_PER_STEP, "tokens": tokens,
            "token_lengths": torch.tensor([len(p) for p in plans]), "speech_mask": speech,
            "ids": [f"toy-{seed}-{i}" for i in range(batch_size)]}  # type: ignore[dict-item]
