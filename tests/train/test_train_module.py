"""The late-start sync check of validation tells embeddings of content from embeddings of the
position in the stream (what a model that found InfoNCE's shortcut produces)."""

from __future__ import annotations

import torch
from avsync.train.module import AVSyncLightning
from torch import nn

from avsync.models.config import load_config
from avsync.models.encoders import EncoderOutput
from avsync.text.tokenizer import Tokenizer
from avsync.timebase import SAMPLES_PER_STEP

STEPS, DIM = 40, 64


class OneHotEncoder(nn.Module):
    """Step t -> one-hot of (what the input shows at t) or of t itself."""

    def __init__(self, by_content: bool, audio: bool) -> None:
        super().__init__()
        self.by_content, self.audio = by_content, audio

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, chunk_size=None) -> EncoderOutput:
        if self.audio:
            steps = x.shape[1] // SAMPLES_PER_STEP
            lengths = lengths // SAMPLES_PER_STEP
            shown = x[:, ::SAMPLES_PER_STEP][:, :steps].round().long()
        else:
            steps = x.shape[1]
            shown = x[:, :, 0, 0].long()
        index = shown if self.by_content else torch.arange(steps).expand(x.shape[0], -1)
        embeddings = nn.functional.one_hot(index % DIM, DIM).float()
        return EncoderOutput(embeddings, embeddings, lengths)


def _batch() -> dict[str, torch.Tensor]:
    """Frame t shows value t, audio step t carries value t: content aligned at offset 0."""
    values = torch.arange(STEPS, dtype=torch.float32)
    audio = values.repeat_interleave(SAMPLES_PER_STEP)[None].repeat(2, 1)
    video = values.to(torch.uint8)[None, :, None, None].expand(2, STEPS, 4, 4).contiguous()
    return {"audio": audio, "audio_lengths": torch.full((2,), STEPS * SAMPLES_PER_STEP),
            "video": video, "video_lengths": torch.full((2,), STEPS)}


def _module(by_content: bool) -> AVSyncLightning:
    tokenizer = Tokenizer.train(["BIN BLUE AT F TWO NOW"] * 4, 20)
    module = AVSyncLightning(load_config("debug"), tokenizer)
    module.model.audio_encoder = OneHotEncoder(by_content, audio=True)
    module.model.visual_encoder = OneHotEncoder(by_content, audio=False)
    return module


def test_late_start_sync_passes_content_and_fails_stream_position() -> None:
    assert float(_module(by_content=True).late_start_sync(_batch(), None)[
        "late_start_sync_clip_acc"]) == 1.0
    assert float(_module(by_content=False).late_start_sync(_batch(), None)[
        "late_start_sync_clip_acc"]) == 0.0
