"""Read a training checkpoint into the bare `AVSyncModel`, its tokenizer and what it knows.

Accepted (checkpoints are trusted input: they are unpickled):
- an `avsync train` checkpoint: a Lightning `.ckpt` whose `state_dict` holds the model's
  weights under `model.` and whose top-level `avsync` section holds the model config
  (`ModelConfig.to_dict()`), the tokenizer bytes and facts about the run (`save_plain` writes
  the same layout without the optimizer);
- other Lightning checkpoints: the weights under any prefix, the config somewhere under
  `hyper_parameters`, the tokenizer as a path under a key containing `tokenizer`.
`--tokenizer` on the command line overrides whatever the checkpoint says.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avsync.errors import ConfigError, ModelLoadError
from avsync.models.config import ModelConfig
from avsync.models.model import AVSyncModel
from avsync.text.tokenizer import Tokenizer


@dataclass
class LoadedCheckpoint:
    model: AVSyncModel  # in eval mode, on the CPU
    tokenizer: Tokenizer
    path: Path
    training: dict[str, Any] = field(default_factory=dict)  # data, steps, metrics: for the card


SECTION = "avsync"  # the top-level key `avsync train` checkpoints describe themselves under


def save_plain(path: str | Path, model: AVSyncModel, tokenizer: Tokenizer,
               training: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint in the `avsync train` layout, without optimizer or loop state (for
    tests and hand-made models)."""
    path = Path(path)
    section = {"format": "avsync-checkpoint", "version": 1,
               "model_config": model.config.to_dict(), "tokenizer": tokenizer.model_bytes,
               "tokenizer_sha256": tokenizer.sha256, "training": dict(training or {})}
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                SECTION: section}, path)
    return path


def load_checkpoint(path: str | Path, tokenizer: str | Path | None = None) -> LoadedCheckpoint:
    """-> the model (eval, CPU), its tokenizer and training facts; ModelLoadError if the
    checkpoint lacks a config, matching weights or a tokenizer."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: checkpoint not found") from None
    except Exception as error:
        raise ModelLoadError(f"{path}: cannot read the checkpoint ({error})") from None
    if not isinstance(raw, Mapping) or "state_dict" not in raw:
        raise ModelLoadError(f"{path}: not a checkpoint (no 'state_dict'); pass a Lightning "
                             ".ckpt from `avsync train` or a plain avsync checkpoint")
    config = _find_config(raw, path)
    model = AVSyncModel(config)
    model.load_state_dict(_strip_prefix(raw["state_dict"], model, path))
    model.eval()
    tok = _find_tokenizer(raw, path, tokenizer)
    if tok.vocab_size != config.vocab_size:
        raise ModelLoadError(f"{path}: the tokenizer has {tok.vocab_size} pieces but the model "
                             f"{config.vocab_size} outputs; pass the tokenizer it was trained "
                             "with (--tokenizer)")
    return LoadedCheckpoint(model, tok, path, _training_facts(raw))


def _mappings(value: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        if depth < 3:
            for inner in value.values():
                yield from _mappings(inner, depth + 1)
    elif hasattr(value, "__dict__") and depth < 3 and not isinstance(value, torch.Tensor):
        yield from _mappings(vars(value), depth + 1)


def _find_config(raw: Mapping[str, Any], path: Path) -> ModelConfig:
    for candidate in _mappings({SECTION: raw.get(SECTION),
                                "hyper_parameters": raw.get("hyper_parameters")}):
        if "vocab_size" in candidate and "streaming" in candidate:
            try:
                return ModelConfig.from_dict(dict(candidate))
            except ConfigError:
                continue
    raise ModelLoadError(f"{path}: no model config (ModelConfig.to_dict()) in its "
                         f"'{SECTION}' section or 'hyper_parameters'; was it written by "
                         "`avsync train`?")


def _strip_prefix(state: Mapping[str, torch.Tensor], model: AVSyncModel, path: Path
                  ) -> dict[str, torch.Tensor]:
    wanted = list(model.state_dict())
    first = wanted[0]
    for key in state:
        if key.endswith(first):
            prefix = key[:len(key) - len(first)]
            if all(prefix + k in state for k in wanted):
                return {k: state[prefix + k] for k in wanted}
    raise ModelLoadError(f"{path}: its state_dict does not hold the weights of the model its "
                         f"config describes (looked for {first!r} under any prefix)")


def _find_tokenizer(raw: Mapping[str, Any], path: Path, override: str | Path | None
                    ) -> Tokenizer:
    if override is not None:
        return Tokenizer.load(override)
    section = raw.get(SECTION)
    if isinstance(section, Mapping) and isinstance(section.get("tokenizer"), bytes):
        return Tokenizer(section["tokenizer"], source=f"{path}:{SECTION}.tokenizer")
    for mapping in _mappings(raw.get("hyper_parameters")):
        for key, value in mapping.items():
            if "tokenizer" in str(key).lower() and isinstance(value, (str, Path)) \
                    and Path(value).is_file():
                return Tokenizer.load(value)
    raise ModelLoadError(f"{path}: no tokenizer in the checkpoint and none found at a "
                         "'tokenizer' path in its hyper_parameters; pass --tokenizer MODEL")


def _training_facts(raw: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe facts for the card: what the checkpoint says about its data and progress."""
    facts: dict[str, Any] = {}
    section = raw.get(SECTION)
    if isinstance(section, Mapping) and isinstance(section.get("training"), Mapping):
        facts.update(section["training"])
    for key in ("epoch", "global_step"):
        if isinstance(raw.get(key), int):
            facts[key] = raw[key]
    hyper = raw.get("hyper_parameters")
    if isinstance(hyper, Mapping):
        for key, value in hyper.items():
            if key != "model" and _json_safe(value):
                facts.setdefault("hyper_parameters", {})[str(key)] = value
    for callback in (raw.get("callbacks") or {}).values():
        if isinstance(callback, Mapping) and "best_model_score" in callback:
            score = callback["best_model_score"]
            if isinstance(score, torch.Tensor):
                facts["best_model_score"] = float(score)
                facts["monitor"] = str(callback.get("monitor"))
    return facts


def _json_safe(value: Any) -> bool:
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
