"""The attention decoder: a small transformer decoder over the fusion memory.

Trained with teacher forcing (bos + tokens -> tokens + eos); at run time it rescores the
n-best list of a CTC prefix beam search for finals. It is not streaming: it reads the memory of
a whole segment, so it may use absolute positions (sinusoidal, added to the memory it reads).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avsync.models.attention import CausalSelfAttention, CrossAttention
from avsync.models.blocks import FeedForward
from avsync.models.config import BOS_ID, EOS_ID, PAD_ID, DecoderConfig

IGNORE_INDEX: int = -100


def sinusoids(length: int, channels: int, device: torch.device) -> torch.Tensor:
    """(length, channels) sinusoidal absolute positions (Vaswani et al.)."""
    position = torch.arange(length, device=device).float()[:, None]
    rate = torch.exp(torch.arange(0, channels, 2, device=device).float()
                     * (-math.log(10_000.0) / channels))
    table = torch.zeros(length, channels, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


def teacher_forcing(tokens: torch.Tensor, lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens: (B, U) int64 padded with 0, lengths: (B,) ->
    (inputs (B, U+1) = bos + tokens, targets (B, U+1) = tokens + eos with IGNORE_INDEX after,
    lengths + 1)."""
    b, u = tokens.shape
    positions = torch.arange(u + 1, device=tokens.device)[None, :]
    bos = torch.full((b, 1), BOS_ID, dtype=tokens.dtype, device=tokens.device)
    inputs = torch.cat([bos, tokens], dim=1)
    inputs = inputs.masked_fill(positions > lengths[:, None], PAD_ID)
    targets = torch.cat([tokens, torch.zeros_like(bos)], dim=1)
    targets = targets.masked_fill(positions == lengths[:, None], EOS_ID)
    targets = targets.masked_fill(positions > lengths[:, None], IGNORE_INDEX)
    return inputs, targets, lengths + 1


class DecoderLayer(nn.Module):
    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        d = config.d_model
        self.self_norm, self.cross_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = CausalSelfAttention(d, config.n_heads, config.dropout)
        self.cross_attn = CrossAttention(d, d, config.n_heads, config.dropout)
        self.ff = FeedForward(d, config.ff_mult, config.dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, memory: torch.Tensor,
                memory_allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.self_attn(self.self_norm(x), valid))
        x = x + self.drop(self.cross_attn(self.cross_norm(x), memory, memory_allowed))
        return x + self.ff(x)


class AttentionDecoder(nn.Module):
    """tokens so far + fusion memory -> next-token logits."""

    def __init__(self, config: DecoderConfig, memory_dim: int, vocab_size: int) -> None:
        super().__init__()
        d = config.d_model
        self.embed = nn.Embedding(vocab_size, d)
        self.memory_proj = nn.Linear(memory_dim, d)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab_size)
        self.scale = math.sqrt(d)

    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, memory: torch.Tensor,
                memory_lengths: torch.Tensor) -> torch.Tensor:
        """tokens: (B, U) int64 (starting with bos); token_lengths: (B,);
        memory: (B, T, d_fusion); memory_lengths: (B,) steps -> logits (B, U, V) float32."""
        t = memory.shape[1]
        mem = self.memory_proj(memory) + sinusoids(t, self.embed.embedding_dim, memory.device)
        memory_allowed = (torch.arange(t, device=memory.device)[None, :]
                          < memory_lengths[:, None])[:, None, :]
        valid = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < token_lengths[:, None]
        x = self.embed(tokens) * self.scale
        for layer in self.layers:
            x = layer(x, valid, mem, memory_allowed)
        return self.out(self.norm(x)).float()

    @torch.no_grad()
    def score(self, hypotheses: list[list[int]], memory: torch.Tensor,
              memory_length: int | None = None) -> torch.Tensor:
        """Rescoring: log P(hyp + eos | memory) of each hypothesis of one segment.

        hypotheses: token id lists (no bos/eos); memory: (T, d_fusion) or (1, T, d_fusion)
        -> (N,) float32 summed log-probabilities.
        """
        memory = memory.reshape(1, memory.shape[-2], memory.shape[-1])
        n = len(hypotheses)
        if n == 0:
            return torch.zeros(0, device=memory.device)
        t = memory.shape[1] if memory_length is None else memory_length
        width = max(len(h) for h in hypotheses)
        tokens = torch.zeros(n, width, dtype=torch.long, device=memory.device)
        for i, h in enumerate(hypotheses):
            tokens[i, :len(h)] = torch.tensor(h, dtype=torch.long)
        lengths = torch.tensor([len(h) for h in hypotheses], device=memory.device)
        inputs, targets, in_lengths = teacher_forcing(tokens, lengths)
        logits = self(inputs, in_lengths, memory.expand(n, -1, -1),
                      torch.full((n,), t, device=memory.device))
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
        return (picked * (targets != IGNORE_INDEX)).sum(dim=1)
