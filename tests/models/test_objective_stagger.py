"""Staggered stream starts: content stays on the clip's time axis, positions do not."""

from __future__ import annotations

import torch

from avsync.models.encoders import EncoderOutput
from avsync.models.model import delay, shift_left


def test_shift_left_then_delay_puts_every_step_back_in_place() -> None:
    x = torch.arange(2 * 7, dtype=torch.float32).reshape(2, 7, 1) + 1
    skip = torch.tensor([0, 3])
    moved = shift_left(x, skip)
    assert torch.equal(moved[1, :4, 0], x[1, 3:, 0]) and torch.all(moved[1, 4:] == 0)
    back = delay(EncoderOutput(moved, moved, torch.tensor([7, 4])), skip)
    assert torch.equal(back.features[0], x[0])
    assert torch.all(back.features[1, :3] == 0) and torch.equal(back.features[1, 3:], x[1, 3:])
    assert back.lengths.tolist() == [7, 7]


def test_shift_left_moves_audio_samples_by_whole_steps() -> None:
    audio = torch.randn(1, 640 * 5)
    moved = shift_left(audio, torch.tensor([640 * 2]))
    assert torch.equal(moved[0, :640 * 3], audio[0, 640 * 2:])
    assert torch.all(moved[0, 640 * 3:] == 0)
