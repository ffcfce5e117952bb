"""`AVSyncModel`: the three streaming encoders plus the ASD head, the attention decoder and the
learnable sync temperature, built from one `ModelConfig`.

Lightning wraps it (train/), export takes its parts (export/), and a checkpoint stores
`config.to_dict()` beside the weights so it can be rebuilt with `AVSyncModel.from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from avsync.models.config import ModelConfig
from avsync.models.decoder import AttentionDecoder
from avsync.models.encoders import (
    AudioEncoder,
    EncoderOutput,
    FusionEncoder,
    FusionOutput,
    VisualEncoder,
)
from avsync.models.heads import AsdHead, CtcHead


@dataclass
class AVOutputs:
    """What `AVSyncModel.encode` returns: each encoder's outputs (see avsync.models.encoders)."""

    audio: EncoderOutput
    visual: EncoderOutput
    fusion: FusionOutput


class AVSyncModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.audio_encoder = AudioEncoder(config)
        self.visual_encoder = VisualEncoder(config)
        self.fusion_encoder = FusionEncoder(config)
        self.asd_head = AsdHead(config.heads.embed_dim, config.heads.asd_hidden)
        self.decoder = AttentionDecoder(config.decoder, config.fusion_encoder.d_model,
                                        config.vocab_size)
        # Training-only CTC heads on the modality encoders (ObjectiveConfig.audio_ctc_weight).
        objective = config.objective
        self.audio_ctc = (CtcHead(config.audio_encoder.d_model, config.vocab_size)
                          if objective.audio_ctc_weight > 0 else None)
        self.visual_ctc = (CtcHead(config.visual_encoder.d_model, config.vocab_size)
                           if objective.visual_ctc_weight > 0 else None)
        # log(1 / temperature) of the InfoNCE logits, learnable as in CLIP.
        self.sync_log_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / objective.temperature_init)))

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> AVSyncModel:
        return cls(ModelConfig.from_dict(config))

    def sync_scale(self) -> torch.Tensor:
        """1 / temperature, clamped to the objective's [temperature_min, temperature_max]."""
        objective = self.config.objective
        return self.sync_log_scale.clamp(math.log(1.0 / objective.temperature_max),
                                         math.log(1.0 / objective.temperature_min)).exp()

    def encode(self, audio: torch.Tensor, audio_lengths: torch.Tensor, video: torch.Tensor,
               video_lengths: torch.Tensor, *, chunk_size: int | None,
               audio_present: torch.Tensor | None = None,
               video_present: torch.Tensor | None = None) -> AVOutputs:
        """Encode a batch (docs/architecture.md batch format) and fuse it.

        audio: (B, T*640) float32, audio_lengths: (B,) samples; video: (B, T, r, r) uint8,
        video_lengths: (B,) steps; chunk_size: steps or None (full); presence: (B,) {0, 1},
        default all present. The fused stream has min(audio, video) steps per clip.
        """
        audio_out = self.audio_encoder(audio, audio_lengths, chunk_size)
        visual_out = self.visual_encoder(video, video_lengths, chunk_size)
        fusion = self.fuse(audio_out.features, visual_out.features,
                           torch.minimum(audio_out.lengths, visual_out.lengths),
                           chunk_size=chunk_size, audio_present=audio_present,
                           video_present=video_present)
        return AVOutputs(audio_out, visual_out, fusion)

    def fuse(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
             lengths: torch.Tensor, *, chunk_size: int | None,
             audio_present: torch.Tensor | None = None,
             video_present: torch.Tensor | None = None) -> FusionOutput:
        """Fusion over the common steps of (B, Ta, d_audio) and (B, Tv, d_visual) features."""
        t = min(audio_features.shape[1], visual_features.shape[1])
        ones = torch.ones(lengths.shape[0], device=lengths.device)
        return self.fusion_encoder(
            audio_features[:, :t], visual_features[:, :t],
            ones if audio_present is None else audio_present,
            ones if video_present is None else video_present,
            lengths.clamp(max=t), chunk_size)
