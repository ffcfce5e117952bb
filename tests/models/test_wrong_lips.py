"""Training with lips that are not the voice's: the fusion sees another clip's lips, frozen
lips or lips shifted past the sync window, and learns to fall back to the audio."""

from __future__ import annotations

import dataclasses

import torch

from avsync.models.config import ModelConfig
from avsync.models.model import AVSyncModel
from avsync.models.objective import (
    WRONG_SHIFT,
    ContrastiveGenerativeObjective,
    ObjectiveConfig,
    load_objective,
)
from avsync.models.toybatch import toy_batch


def _wrong(p: float, eligible: list[bool], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    visual = torch.randn(len(eligible), 60, 8, generator=torch.Generator().manual_seed(1))
    objective = ContrastiveGenerativeObjective(ObjectiveConfig(p_wrong_lips=p))
    out = objective.wrong_lips(visual, torch.tensor(eligible),
                               torch.Generator().manual_seed(seed))
    return visual, out


def test_every_chosen_clip_gets_lips_that_are_not_its_own() -> None:
    kinds = set()
    for seed in range(12):
        visual, out = _wrong(1.0, [True] * 4, seed)
        for i in range(4):
            row = out[i]
            assert not torch.equal(row, visual[i])
            if torch.equal(row, visual[(i - 1) % 4]):
                kinds.add("another clip's")
            elif torch.equal(row, visual[i, :1].expand_as(row)):
                kinds.add("frozen")
            else:
                shift = int((row.abs().sum(-1) == 0).sum())
                assert shift >= WRONG_SHIFT and torch.equal(row[shift:], visual[i, :60 - shift])
                kinds.add("shifted")
    assert kinds == {"another clip's", "frozen", "shifted"}


def test_only_audio_visual_clips_and_only_at_the_rate_asked() -> None:
    visual, out = _wrong(1.0, [False, True, False, True])
    assert torch.equal(out[0], visual[0]) and torch.equal(out[2], visual[2])
    visual, out = _wrong(0.0, [True] * 4)
    assert out is visual  # off: not even a random draw
    changed = [not torch.equal(a, b) for a, b in zip(*_wrong(0.3, [True] * 400), strict=True)]
    assert 0.2 < sum(changed) / 400 < 0.4


def test_a_training_step_with_wrong_lips_learns(debug_config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = AVSyncModel(debug_config).train()
    objective = ContrastiveGenerativeObjective(dataclasses.replace(load_objective("debug"),
                                                                   p_wrong_lips=0.5))
    batch = toy_batch(4, 24, debug_config.visual_frontend.roi_stored, debug_config.vocab_size,
                      seed=1, min_steps=16)
    loss, metrics = objective(model, batch, chunk_size=2, modality="av",
                              generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in metrics.values())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.fusion_encoder.parameters())
