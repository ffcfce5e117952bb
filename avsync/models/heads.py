"""Per-step heads: sync projections, CTC, active-speaker detection.

All of them act on each 40 ms step independently, so they stream for free and add no state.
"""

from __future__ import annotations

import torch
from torch import nn


class SyncProjection(nn.Module):
    """Encoder features -> L2-normalised sync embedding; cosine similarity is a dot product."""

    def __init__(self, d_model: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d_model) -> (B, T, embed_dim) float32, unit norm (zero rows stay finite)."""
        return nn.functional.normalize(self.proj(x).float(), dim=-1, eps=1e-6)


class CtcHead(nn.Module):
    """Fused features -> log-probabilities over the vocabulary (blank = 0), in float32."""

    def __init__(self, d_model: int, vocab_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d_model) -> (B, T, vocab) float32 log-probabilities."""
        return torch.log_softmax(self.proj(x).float(), dim=-1)


class AsdHead(nn.Module):
    """Is this face the one speaking in this audio, at this step? One logit per step.

    Input per step: the visual embedding (what the lips do), the audio embedding (what is
    heard), their product and their cosine similarity (whether they agree). The output is a
    logit, not a probability: the runtime calibrates it (BACKGROUND.md: users ask for one).
    """

    def __init__(self, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3 * embed_dim + 1, hidden), nn.GELU(),
                                 nn.Linear(hidden, 1))

    def forward(self, visual_embed: torch.Tensor, audio_embed: torch.Tensor) -> torch.Tensor:
        """visual_embed, audio_embed: (B, T, E) unit-norm -> logits (B, T) float32."""
        product = visual_embed * audio_embed
        cosine = product.sum(dim=-1, keepdim=True)
        features = torch.cat([visual_embed, audio_embed, product, cosine], dim=-1)
        return self.net(features).squeeze(-1).float()
