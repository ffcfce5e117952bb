"""The avsync section of a training checkpoint: written by `train/`, read by eval and export.

A checkpoint from `avsync train` is a Lightning `.ckpt` (weights, optimizer, loop state) with
one extra top-level mapping, `checkpoint["avsync"]`, that makes it describe itself (STYLE.md
lesson 4): the model config that built the weights, the tokenizer model bytes and facts about
the training run. Everything that reads a checkpoint goes through `load_checkpoint`, so a
missing or stale section is one clear `ModelLoadError`, not a shape mismatch deep in torch.

    section = checkpoint_section(config, tokenizer, training={"data": ..., "global_step": 10})
    checkpoint[CHECKPOINT_KEY] = section          # in LightningModule.on_save_checkpoint
    loaded = load_checkpoint("runs/tiny/checkpoints/best.ckpt")
    loaded.model, loaded.tokenizer, loaded.config, loaded.training

The objective a run trained with (`ObjectiveConfig.to_dict()`) is a training fact,
`training["objective"]`. Checkpoints written before it moved there hold it as
`model_config["objective"]`: they still load (`stored_objective` finds it in either place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avsync.errors import ConfigError, DataError, ModelLoadError
from avsync.models.config import ModelConfig, split_legacy_objective
from avsync.models.model import AVSyncModel
from avsync.text.tokenizer import Tokenizer

CHECKPOINT_KEY = "avsync"
CHECKPOINT_FORMAT = "avsync-checkpoint"
CHECKPOINT_VERSION = 1
MODEL_PREFIX = "model."  # the LightningModule holds the bare AVSyncModel as `self.model`


def checkpoint_section(config: ModelConfig, tokenizer: Tokenizer,
                       training: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The mapping stored under `checkpoint[CHECKPOINT_KEY]`; plain types only, so a
    checkpoint loads with `torch.load(..., weights_only=True)`."""
    if tokenizer.vocab_size != config.vocab_size:
        raise ConfigError(f"the tokenizer has {tokenizer.vocab_size} pieces but the model "
                          f"config says vocab_size {config.vocab_size}; they must agree")
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "model_config": config.to_dict(), "tokenizer": tokenizer.model_bytes,
            "tokenizer_sha256": tokenizer.sha256, "training": dict(training or {})}


@dataclass
class LoadedCheckpoint:
    """A checkpoint's bare model (eval mode, CPU), its tokenizer and what it says about itself.

    training: JSON-safe facts (data, global step, epoch, best validation score, ...).
    """

    model: AVSyncModel
    tokenizer: Tokenizer
    path: Path
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def read_raw(path: str | Path) -> dict[str, Any]:
    """The unpickled checkpoint (tensors on the CPU); ModelLoadError names the file and why."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: checkpoint not found; train one with `avsync train fit` "
                             "(checkpoints go to <run dir>/checkpoints/best.ckpt and last.ckpt)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad or foreign file
        raise ModelLoadError(f"{path}: not a readable torch checkpoint ({error})") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: holds a {type(raw).__name__}, not a checkpoint mapping")
    return raw


def section_of(raw: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """The validated avsync section of an unpickled checkpoint."""
    section = raw.get(CHECKPOINT_KEY)
    if not isinstance(section, dict):
        raise ModelLoadError(f"{path}: no '{CHECKPOINT_KEY}' section, so it does not say which "
                             "model and tokenizer it holds; was it written by `avsync train`?")
    found = (section.get("format"), section.get("version"))
    if found != (CHECKPOINT_FORMAT, CHECKPOINT_VERSION):
        raise ModelLoadError(f"{path}: checkpoint format {found}, this avsync reads "
                             f"{(CHECKPOINT_FORMAT, CHECKPOINT_VERSION)}")
    for key in ("model_config", "tokenizer", "training"):
        if key not in section:
            raise ModelLoadError(f"{path}: the '{CHECKPOINT_KEY}' section lacks {key!r}")
    return section


def stored_objective(section: Mapping[str, Any]) -> dict[str, Any] | None:
    """The objective mapping a checkpoint's section says it trained with: its training
    facts' `objective`, or (older checkpoints) `model_config["objective"]`; None if neither."""
    training = section.get("training")
    if isinstance(training, Mapping) and isinstance(training.get("objective"), Mapping):
        return dict(training["objective"])
    return split_legacy_objective(section.get("model_config"))[1]


def model_weights(raw: Mapping[str, Any], path: str | Path) -> dict[str, torch.Tensor]:
    """The bare model's state dict: the `MODEL_PREFIX` entries of the Lightning state_dict."""
    state = raw.get("state_dict")
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: no 'state_dict' in the checkpoint")
    weights = {k[len(MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    if not weights:
        raise ModelLoadError(f"{path}: no weights under '{MODEL_PREFIX}' in its state_dict")
    return weights


def load_checkpoint(path: str | Path, tokenizer: str | Path | None = None) -> LoadedCheckpoint:
    """Rebuild the model a checkpoint describes, load its weights, return it with its tokenizer.

    tokenizer: a sentencepiece .model to use instead of the stored one (it must have the
    same vocabulary size).
    """
    path = Path(path)
    raw = read_raw(path)
    section = section_of(raw, path)
    try:
        config = ModelConfig.from_dict(section["model_config"])
        tok = (Tokenizer.load(tokenizer) if tokenizer is not None
               else Tokenizer(section["tokenizer"], source=f"{path}:{CHECKPOINT_KEY}.tokenizer"))
    except (ConfigError, DataError) as error:
        raise ModelLoadError(f"{path}: {error}") from None
    if tok.vocab_size != config.vocab_size:
        raise ModelLoadError(f"{path}: tokenizer {tok.source} has {tok.vocab_size} pieces, the "
                             f"model outputs {config.vocab_size}; use the tokenizer it was "
                             "trained with")
    model = AVSyncModel(config)
    try:
        model.load_state_dict(model_weights(raw, path))
    except RuntimeError as error:
        raise ModelLoadError(f"{path}: weights do not fit the stored config ({error})") from None
    training = dict(section["training"])
    objective = stored_objective(section)
    if objective is not None:
        training["objective"] = objective
    for key in ("epoch", "global_step"):
        if isinstance(raw.get(key), int):
            training.setdefault(key, raw[key])
    return LoadedCheckpoint(model.eval(), tok, path, training)
