"""Chunked self-attention with window-local rotary positions, and plain multi-head attention.

Chunked attention: a step in chunk c sees every step of its own chunk and at most
`left_context` steps before the chunk's start, never a later chunk. Training (`forward`) cuts
the sequence into chunks and gathers, for each chunk, the same window of `left_context + C`
keys that streaming (`step`) rebuilds from its cache, with the same rotary positions counted
from the window's start (0 .. left_context + C - 1). So a step's numbers do not depend on how
long the stream has run, cached keys are stored un-rotated, and step and forward agree to
float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avsync.models.state import tail

ROTARY_BASE: float = 10_000.0
# Scale of the output projection's initial weights (times PyTorch's default). At init the
# scores are near zero, so attention returns the window's average value at every step; at full
# scale that average swamps each step's own features in the residual stream, and a stack of
# blocks (the fusion encoder on top of the modality encoders) sat on CTC's blank plateau for
# hundreds of steps. Starting the branch small lets the conv and feed-forward paths learn
# the per-step mapping first (an 8-clip overfit: CTC 0.52 after 100 steps vs 2.21 at full scale).
ATTENTION_OUT_INIT: float = 0.05


def rotary(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) of x: (..., N, D) by positions: (N,) float."""
    angles = positions[:, None] * inv_freq[None, :]  # (N, D/2)
    cos, sin = torch.cos(angles), torch.sin(angles)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
           dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """Softmax attention. q: (..., Nq, D), k/v: (..., Nk, D), allowed: bool broadcastable to
    (..., Nq, Nk) -> (..., Nq, D).

    Masked scores are replaced by the dtype's minimum, not -inf: a row with nothing allowed
    (a padded query) averages instead of producing NaN, and a masked key gets weight exactly 0.
    """
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if dropout > 0.0 and training:
        weights = nn.functional.dropout(weights, p=dropout)
    return weights @ v


class RotaryMixin(nn.Module):
    inv_freq: torch.Tensor  # (head_dim / 2,) rotation rate of each channel pair

    def _init_rotary(self, head_dim: int) -> None:
        inv_freq = 1.0 / ROTARY_BASE ** (torch.arange(0, head_dim, 2).float() / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _positions(self, start: int, count: int, device: torch.device) -> torch.Tensor:
        return torch.arange(count, device=device).float() + start


class ChunkedSelfAttention(RotaryMixin):
    """Multi-head self-attention over chunks with a bounded left context.

    State per layer: the last `left_context` projected keys and values (un-rotated),
    (B, left_context, d_model) each.
    """

    def __init__(self, d_model: int, n_heads: int, left_context: int) -> None:
        super().__init__()
        self.n_heads, self.left_context = n_heads, left_context
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        with torch.no_grad():
            self.out.weight.mul_(ATTENTION_OUT_INIT)
            self.out.bias.zero_()
        self._init_rotary(self.head_dim)

    def state_specs(self, d_model: int) -> list[tuple[str, tuple[int, ...]]]:
        return [("key", (self.left_context, d_model)), ("value", (self.left_context, d_model))]

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., N, d_model) -> (..., H, N, head_dim)."""
        return x.unflatten(-1, (self.n_heads, self.head_dim)).transpose(-3, -2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-3, -2).flatten(-2)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """x: (B, T, d) float, valid: (B, T) bool, chunk_size: steps >= 1 -> (B, T, d)."""
        b, t, d = x.shape
        if t == 0:
            return self.out(x)
        c, left = chunk_size, self.left_context
        n = -(-t // c)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = nn.functional.pad(q, (0, 0, 0, n * c - t)).reshape(b, n, c, d)
        pad = (0, 0, left, n * c - t)
        k_windows = nn.functional.pad(k, pad).unfold(1, left + c, c).transpose(-1, -2)
        v_windows = nn.functional.pad(v, pad).unfold(1, left + c, c).transpose(-1, -2)
        key_valid = nn.functional.pad(valid, (left, n * c - t), value=False)
        allowed = key_valid.unfold(1, left + c, c)[:, :, None, None, :]  # (B, n, 1, 1, L+C)
        q = rotary(self._heads(q), self._positions(left, c, x.device), self.inv_freq)
        k_windows = rotary(self._heads(k_windows), self._positions(0, left + c, x.device),
                           self.inv_freq)
        y = attend(q, k_windows, self._heads(v_windows), allowed)
        return self.out(self._merge(y).reshape(b, n * c, d)[:, :t])

    def step(self, x: torch.Tensor, cache: dict[str, torch.Tensor], n_past: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: (B, C, d); cache: key/value (B, left, d); n_past: (B,) valid cached steps
        -> ((B, C, d), new cache)."""
        c, left = x.shape[1], self.left_context
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        keys = torch.cat([cache["key"], k], dim=1)
        values = torch.cat([cache["value"], v], dim=1)
        slot = torch.arange(left + c, device=x.device).float()
        allowed = slot[None, :] >= (left - n_past)[:, None]  # (B, L+C)
        q = rotary(self._heads(q), self._positions(left, c, x.device), self.inv_freq)
        k_rot = rotary(self._heads(keys), self._positions(0, left + c, x.device), self.inv_freq)
        y = attend(q, k_rot, self._heads(values), allowed[:, None, None, :])
        return self.out(self._merge(y)), {"key": tail(keys, left), "value": tail(values, left)}


class CrossAttention(nn.Module):
    """Plain multi-head attention of queries over a memory (the decoder's cross-attention)."""

    def __init__(self, d_model: int, memory_dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(memory_dim, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor
                ) -> torch.Tensor:
        """x: (B, U, d), memory: (B, T, m), allowed: bool (B, 1|U, T) -> (B, U, d)."""
        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)

        k, v = self.kv(memory).chunk(2, dim=-1)
        y = attend(heads(self.q(x)), heads(k), heads(v), allowed[:, None], self.dropout,
                   self.training)
        return self.out(y.transpose(1, 2).flatten(2))


class CausalSelfAttention(RotaryMixin):
    """Decoder self-attention: each token sees itself and earlier tokens (rotary positions)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self._init_rotary(d_model // n_heads)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x: (B, U, d), valid: (B, U) bool -> (B, U, d)."""
        u = x.shape[1]
        positions = self._positions(0, u, x.device)
        q, k, v = (y.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)
                   for y in self.qkv(x).chunk(3, dim=-1))
        q, k = rotary(q, positions, self.inv_freq), rotary(k, positions, self.inv_freq)
        causal = torch.ones(u, u, dtype=torch.bool, device=x.device).tril()
        allowed = causal[None, None] & valid[:, None, None, :]
        y = attend(q, k, v, allowed, self.dropout, self.training)
        return self.out(y.transpose(1, 2).flatten(2))
