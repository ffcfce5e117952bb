"""A debug-size, untrained model directory in seconds: for tests and for building on the
runtime before a trained checkpoint exists (the server's protocol work, the embedding docs).

Its transcripts are noise; everything else (graphs, states, card, calibration keys, int8) is
a real export that passed the parity check.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch
from avsync.export.checkpoint import save_plain
from avsync.export.exporter import ExportOptions, export_model

from avsync.models.config import load_config
from avsync.models.model import AVSyncModel
from avsync.runtime.model_card import ModelCard
from avsync.text.tokenizer import Tokenizer

SENTENCES: tuple[str, ...] = (
    "bin blue at f two now", "place red by g nine again", "set white with p four please",
    "lay green in s zero soon", "bin red at t one now", "place white by j seven again",
    "set green with k eight please", "lay blue in u three soon")


def debug_tokenizer() -> Tokenizer:
    """A small character-level tokenizer over GRID-style sentences (trains in ~0.1 s)."""
    return Tokenizer.train(list(SENTENCES) * 4, vocab_size=40, model_type="char")


def debug_checkpoint(path: Path, seed: int = 0, chunk_size: int | None = None) -> Path:
    """Write a plain checkpoint of a freshly initialised (seeded) debug model."""
    tokenizer = debug_tokenizer()
    config = load_config("debug")
    config = dataclasses.replace(config, vocab_size=tokenizer.vocab_size)
    if chunk_size is not None:
        config = dataclasses.replace(config, streaming=dataclasses.replace(
            config.streaming, chunk_size=chunk_size))
    torch.manual_seed(seed)
    model = AVSyncModel(config).eval()
    return save_plain(path, model, tokenizer, {"data": "none (untrained debug model)"})


def export_debug_model(out: Path, *, int8: bool = False, seed: int = 0, force: bool = False
                       ) -> ModelCard:
    """Export an untrained debug model to `out` (parity-checked like any export)."""
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = debug_checkpoint(Path(scratch) / "debug.ckpt", seed)
        return export_model(ExportOptions(checkpoint=checkpoint, out=Path(out), int8=int8,
                                          force=force))


def cached_debug_model(cache_root: Path) -> Path:
    """`cache_root/debug-model`, exported (with int8) on first use: test sessions share one."""
    out = Path(cache_root) / "debug-model"
    if not (out / "model.json").is_file():
        export_debug_model(out, int8=True, force=True)
    return out
