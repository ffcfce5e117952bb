"""`avsync train fit` on the debug config: real Lightning steps, finite losses, validation
metrics for every mode and modality, checkpoints that describe themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from avsync.train.cli import main as train_main
from avsync.train.datamodule import AVDataModule
from train_harness import Corpus, finite, metric_rows

from avsync.errors import ConfigError, ModelLoadError
from avsync.models.checkpoint import CHECKPOINT_KEY, load_checkpoint
from avsync.models.config import load_config
from avsync.text.tokenizer import Tokenizer


def test_training_steps_run_with_finite_losses(short_run: Path) -> None:
    rows = metric_rows(short_run)
    steps = [r for r in rows if "train/loss" in r]
    assert [int(r["step"]) for r in steps] == [0, 1, 2]
    for row in steps:
        losses = {k: v for k, v in row.items() if k.startswith("train/loss")}
        assert set(losses) == {"train/loss", "train/loss_ctc", "train/loss_attention",
                               "train/loss_sync", "train/loss_asd"}
        assert all(finite(v) for v in losses.values()), losses


def test_validation_logs_wer_per_modality_and_mode(short_run: Path) -> None:
    val = {k: v for row in metric_rows(short_run) for k, v in row.items() if k.startswith("val/")}
    for mode in ("stream", "full"):
        for modality in ("audio", "video", "av"):
            assert 0.0 <= val[f"val/{mode}/wer_{modality}"] <= 10.0
            assert f"val/{mode}/cer_{modality}" in val
        for name in ("loss_ctc", "loss_attention", "loss_sync", "loss_asd", "sync_top1",
                     "sync_clip_acc", "late_start_sync_clip_acc", "modality_gap"):
            assert finite(val[f"val/{mode}/{name}"]), name


def test_checkpoints_hold_config_and_tokenizer(short_run: Path, corpus: Corpus) -> None:
    directory = short_run / "checkpoints"
    assert {p.name for p in directory.glob("*.ckpt")} == {"best.ckpt", "last.ckpt"}
    loaded = load_checkpoint(directory / "last.ckpt")
    tokenizer = Tokenizer.load(corpus.tokenizer)
    expected = load_config("debug")
    assert loaded.config.vocab_size == tokenizer.vocab_size
    assert loaded.config.to_dict() | {"vocab_size": 0} == expected.to_dict() | {"vocab_size": 0}
    assert loaded.tokenizer.sha256 == tokenizer.sha256
    assert loaded.training["global_step"] == 3  # the end of fit is always saved
    assert loaded.training["data"]["splits"] == {"train": 6, "val": 3, "test": 3}
    raw = torch.load(directory / "last.ckpt", weights_only=True)
    state = {k[len("model."):]: v for k, v in raw["state_dict"].items()}
    assert all(torch.equal(state[k], v) for k, v in loaded.model.state_dict().items())
    assert raw[CHECKPOINT_KEY]["tokenizer_sha256"] == tokenizer.sha256
    agreement = json.loads((short_run / "rank_agreement.json").read_text())
    assert agreement["world_size"] == 1 and agreement["agree"]


def test_a_foreign_checkpoint_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ModelLoadError, match="no 'avsync' section"):
        load_checkpoint(path)
    with pytest.raises(ModelLoadError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_cache_with_other_roi_size_is_a_config_error(corpus: Corpus) -> None:
    data = AVDataModule(str(corpus.cache), str(corpus.tokenizer))
    with pytest.raises(ConfigError, match="--roi-size 40"):
        data.attach(Tokenizer.load(corpus.tokenizer), roi_size=36, roi_stored=40)


def test_validate_a_checkpoint_without_model_yaml(short_run: Path, corpus: Corpus,
                                                   tmp_path: Path) -> None:
    """The checkpoint says which model and tokenizer it is: no --config needed."""
    assert train_main(["validate", "--ckpt_path", str(short_run / "checkpoints" / "last.ckpt"),
                       "--data.cache", str(corpus.cache), "--data.workers", "0",
                       "--threads", "1", "--trainer.accelerator", "cpu",
                       "--trainer.default_root_dir", str(tmp_path),
                       "--trainer.enable_progress_bar", "false"]) == 0
    val = {k for row in metric_rows(tmp_path) for k in row}
    assert {"val/stream/wer_av", "val/full/wer_video"} <= val
