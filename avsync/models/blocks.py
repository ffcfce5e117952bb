"""Encoder blocks (conformer / transformer) with chunked attention and causal convolution.

LayerNorm only: no BatchNorm, so a sample's numbers never depend on the rest of the batch
and streaming needs no running statistics. Every block has `forward` over whole padded
sequences and `step` over one chunk with named caches (see `avsync.models.state`).
"""

from __future__ import annotations

import typing

import torch
from torch import nn

from avsync.models.attention import ChunkedSelfAttention
from avsync.models.config import EncoderConfig, StreamingConfig
from avsync.models.state import COUNTER, prefixed, put, tail, take

Specs = list[tuple[str, tuple[int, ...]]]
Parts = dict[str, torch.Tensor]


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, mult * d_model), nn.SiLU(),
            nn.Linear(mult * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CausalConv1d(nn.Module):
    """Conv over time (channels -> channels) that pads only the past; state = the last
    kernel-1 inputs. `depthwise` gives the conformer's per-channel conv."""

    def __init__(self, channels: int, kernel: int, depthwise: bool = False) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(channels, channels, kernel, groups=channels if depthwise else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        if x.shape[1] == 0:
            return x
        padded = nn.functional.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        return self.conv(padded).transpose(1, 2)

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C_steps, C), cache: (B, kernel-1, C) -> (y, new cache)."""
        joined = torch.cat([cache, x], dim=1)
        return self.conv(joined.transpose(1, 2)).transpose(1, 2), tail(joined, self.kernel - 1)


class ConvModule(nn.Module):
    """Conformer convolution: LN, pointwise + GLU, causal depthwise, LN, SiLU, pointwise."""

    def __init__(self, d_model: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = CausalConv1d(d_model, kernel, depthwise=True)
        self.post = nn.Sequential(nn.LayerNorm(d_model), nn.SiLU(), nn.Linear(d_model, d_model),
                                  nn.Dropout(dropout))

    def _gated(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.pointwise_in(self.norm(x)), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.depthwise(self._gated(x)))

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, cache = self.depthwise.step(self._gated(x), cache)
        return self.post(y), cache


class EncoderBlock(nn.Module):
    """Conformer (macaron FF, MHSA, conv, FF, LN) or pre-LN transformer (MHSA, FF)."""

    def __init__(self, config: EncoderConfig, left_context: int) -> None:
        super().__init__()
        d = config.d_model
        self.conformer = config.block == "conformer"
        self.d_model, self.kernel = d, config.conv_kernel
        self.attn_norm = nn.LayerNorm(d)
        self.attn = ChunkedSelfAttention(d, config.n_heads, left_context)
        self.attn_drop = nn.Dropout(config.dropout)
        self.ff2 = FeedForward(d, config.ff_mult, config.dropout)
        if self.conformer:
            self.ff1 = FeedForward(d, config.ff_mult, config.dropout)
            self.conv = ConvModule(d, config.conv_kernel, config.dropout)
            self.final_norm = nn.LayerNorm(d)

    def state_specs(self) -> Specs:
        specs = prefixed("attn", self.attn.state_specs(self.d_model))
        if self.conformer:
            specs.append(("conv", (self.kernel - 1, self.d_model)))
        return specs

    def forward(self, x: torch.Tensor, valid: torch.Tensor, chunk_size: int) -> torch.Tensor:
        if self.conformer:
            x = x + 0.5 * self.ff1(x)
        x = x + self.attn_drop(self.attn(self.attn_norm(x), valid, chunk_size))
        if not self.conformer:
            return x + self.ff2(x)
        x = x + self.conv(x)
        return self.final_norm(x + 0.5 * self.ff2(x))

    def step(self, x: torch.Tensor, parts: Parts, n_past: torch.Tensor
             ) -> tuple[torch.Tensor, Parts]:
        new: Parts = {}
        if self.conformer:
            x = x + 0.5 * self.ff1(x)
        y, attn_cache = self.attn.step(self.attn_norm(x), take(parts, "attn"), n_past)
        put(new, "attn", attn_cache)
        x = x + y
        if not self.conformer:
            return x + self.ff2(x), new
        y, new["conv"] = self.conv.step(x, parts["conv"])
        x = x + y
        return self.final_norm(x + 0.5 * self.ff2(x)), new


class BlockStack(nn.Module):
    """`n_layers` encoder blocks sharing one step counter (valid cached steps, clamped)."""

    def __init__(self, config: EncoderConfig, streaming: StreamingConfig) -> None:
        super().__init__()
        self.left_context = streaming.left_context
        self.layers = nn.ModuleList(EncoderBlock(config, streaming.left_context)
                                    for _ in range(config.n_layers))

    def blocks(self) -> list[EncoderBlock]:
        return [typing.cast(EncoderBlock, layer) for layer in self.layers]

    def state_specs(self) -> Specs:
        specs: Specs = [(COUNTER, (1,))]
        for i, layer in enumerate(self.blocks()):
            specs += prefixed(f"layer{i}", layer.state_specs())
        return specs

    def forward(self, x: torch.Tensor, valid: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """x: (B, T, d), valid: (B, T) bool, chunk_size: steps -> (B, T, d)."""
        for layer in self.layers:
            x = layer(x, valid, chunk_size)
        return x

    def step(self, x: torch.Tensor, parts: Parts) -> tuple[torch.Tensor, Parts]:
        """x: (B, C, d) one chunk; parts: this stack's caches -> (y, new caches)."""
        n_past = parts[COUNTER][:, 0]
        new: Parts = {}
        for i, layer in enumerate(self.blocks()):
            x, layer_new = layer.step(x, take(parts, f"layer{i}"), n_past)
            put(new, f"layer{i}", layer_new)
        count = torch.clamp(n_past + x.shape[1], max=float(self.left_context))
        new[COUNTER] = count[:, None]
        return x, new
