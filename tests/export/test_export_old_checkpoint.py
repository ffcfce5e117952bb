"""A checkpoint of the layout before the objective left the model config (`model.objective`)
exports like any other: its training-only CTC heads load, and the card's export facts name the
chunk sizes its old objective trained with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from avsync.export.checkpoint import save_plain
from avsync.export.debug import debug_tokenizer
from avsync.export.exporter import ExportOptions, export_model

from avsync.models.checkpoint import CHECKPOINT_KEY, load_checkpoint
from avsync.models.config import load_config
from avsync.models.model import AVSyncModel
from avsync.models.objective import load_objective
from avsync.runtime import load_model


def old_layout_checkpoint(path: Path) -> Path:
    """A debug model with both modality CTC heads, saved as the code before the move did."""
    tokenizer = debug_tokenizer()
    config = load_config("debug")
    config = dataclasses.replace(config, vocab_size=tokenizer.vocab_size, heads=dataclasses.replace(
        config.heads, audio_ctc=True, visual_ctc=True))
    torch.manual_seed(0)
    save_plain(path, AVSyncModel(config).eval(), tokenizer, {"data": "none"})
    raw = torch.load(path, weights_only=True)
    model_config = raw[CHECKPOINT_KEY]["model_config"]
    del model_config["heads"]["audio_ctc"], model_config["heads"]["visual_ctc"]
    model_config["objective"] = {**load_objective("debug").to_dict(), "audio_ctc_weight": 0.5,
                                 "visual_ctc_weight": 0.5}
    torch.save(raw, path)
    return path


def test_an_old_layout_checkpoint_exports(tmp_path: Path) -> None:
    checkpoint = old_layout_checkpoint(tmp_path / "old.ckpt")
    loaded = load_checkpoint(checkpoint)
    assert loaded.model.audio_ctc is not None and loaded.model.visual_ctc is not None
    card = export_model(ExportOptions(checkpoint=checkpoint, out=tmp_path / "model"))
    assert card.metrics["parity"]["passed"]
    assert card.export["trained_chunk_sizes"] == [2, 4, "full"]
    assert card.training["objective"]["audio_ctc_weight"] == 0.5
    load_model(tmp_path / "model")
