"""AdamW with linear warm-up then cosine decay, stepped every optimizer step.

The `optim:` section of a training YAML is an `OptimConfig`. Norms, biases, embeddings and the
learnable sync temperature get no weight decay (decaying a temperature or a LayerNorm gain
towards zero is never what one wants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from avsync.errors import ConfigError


@dataclass(frozen=True)
class OptimConfig:
    """lr: peak learning rate, reached after `warmup_steps` optimizer steps, then cosine
    decay to `lr * min_lr_ratio` at the last step of the run (max_steps or max_epochs)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError(f"optim needs lr > 0, weight_decay >= 0, warmup_steps >= 0: {self}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """The learning-rate factor at optimizer step `step` (0-based): (step+1)/warmup during
    warm-up, then cosine from 1 down to `min_ratio` at `total_steps`; flat after that."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _no_decay(name: str, parameter: nn.Parameter) -> bool:
    return parameter.ndim < 2 or "embed" in name or "norm" in name


def build_optimizer(model: nn.Module, config: OptimConfig, total_steps: int) -> dict[str, Any]:
    """-> what `LightningModule.configure_optimizers` returns: AdamW + a per-step scheduler."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if not _no_decay(n, p)],
         "weight_decay": config.weight_decay},
        {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    total = max(int(total_steps), 1)
    warmup = min(config.warmup_steps, max(total - 1, 0))

    def factor(step: int) -> float:
        return warmup_cosine(step, warmup, total, config.min_lr_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
