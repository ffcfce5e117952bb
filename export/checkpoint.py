"""Checkpoints for export: read through `avsync.models.checkpoint` (the one reader of the
`avsync train` format), and a writer of the same layout for hand-made models and tests.

A checkpoint is a Lightning `.ckpt` whose `state_dict` holds the bare model under `model.` and
whose top-level `avsync` section holds the model config, the tokenizer bytes and facts about
the run; `save_plain` writes that layout without optimizer or loop state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avsync.models.checkpoint import (
    CHECKPOINT_KEY,
    MODEL_PREFIX,
    LoadedCheckpoint,
    checkpoint_section,
    load_checkpoint,
)
from avsync.models.model import AVSyncModel
from avsync.text.tokenizer import Tokenizer

__all__ = ["LoadedCheckpoint", "load_checkpoint", "save_plain"]


def save_plain(path: str | Path, model: AVSyncModel, tokenizer: Tokenizer,
               training: dict[str, Any] | None = None) -> Path:
    """Write `model` + `tokenizer` as an `avsync train` checkpoint (weights only)."""
    path = Path(path)
    torch.save({"state_dict": {MODEL_PREFIX + k: v for k, v in model.state_dict().items()},
                CHECKPOINT_KEY: checkpoint_section(model.config, tokenizer, training)}, path)
    return path
