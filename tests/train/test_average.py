"""`avsync train average`: the mean of a run's checkpoints, loadable like any checkpoint, chosen
over the original only when it validates better; a run keeps its last epochs for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from avsync.train.average import average_checkpoints
from avsync.train.cli import main as train_main
from train_harness import Corpus, fit_args

from avsync.errors import ModelLoadError
from avsync.models.checkpoint import CHECKPOINT_KEY, load_checkpoint


def shifted_copy(source: Path, target: Path, shift: float) -> Path:
    """`source` with every floating-point weight plus `shift`."""
    raw = torch.load(source, map_location="cpu", weights_only=True)
    raw["state_dict"] = {k: v + shift if v.is_floating_point() else v
                         for k, v in raw["state_dict"].items()}
    torch.save(raw, target)
    return target


def test_the_average_is_the_mean_of_the_weights_and_loads(short_run: Path,
                                                          tmp_path: Path) -> None:
    last = short_run / "checkpoints" / "last.ckpt"
    a = shifted_copy(last, tmp_path / "a.ckpt", 0.0)
    b = shifted_copy(last, tmp_path / "b.ckpt", 1.0)
    out = average_checkpoints([a, b], tmp_path / "averaged.ckpt")
    raw = torch.load(out, map_location="cpu", weights_only=True)
    original = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    for name, tensor in raw["state_dict"].items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, original[name] + 0.5, atol=1e-5), name
        else:
            assert torch.equal(tensor, original[name]), name
    assert "optimizer_states" not in raw  # weights, not a point to resume from
    assert raw[CHECKPOINT_KEY]["training"]["averaged"]["checkpoints"] == ["a.ckpt", "b.ckpt"]
    loaded = load_checkpoint(out)
    first = next(iter(loaded.model.state_dict().items()))
    assert torch.allclose(first[1], original["model." + first[0]] + 0.5, atol=1e-5)


def test_checkpoints_of_another_model_are_refused(short_run: Path, tmp_path: Path) -> None:
    last = short_run / "checkpoints" / "last.ckpt"
    raw = torch.load(last, map_location="cpu", weights_only=True)
    raw[CHECKPOINT_KEY]["model_config"] = {**raw[CHECKPOINT_KEY]["model_config"],
                                           "name": "another"}
    other = tmp_path / "other.ckpt"
    torch.save(raw, other)
    with pytest.raises(ModelLoadError, match="only checkpoints of one run"):
        average_checkpoints([last, other], tmp_path / "averaged.ckpt")


def test_a_run_keeps_its_last_epochs_and_the_better_checkpoint_is_chosen(
        corpus: Corpus, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train_main(fit_args(corpus, run, "--trainer.max_steps", "-1",
                               "--trainer.max_epochs", "2", "--data.batch_steps", "600",
                               "--checkpoint.keep_last_epochs", "1",
                               "--checkpoint.every_n_train_steps", "null")) == 0
    kept = sorted(p.name for p in (run / "checkpoints").glob("epoch-*.ckpt"))
    assert kept == ["epoch-001.ckpt"]  # the last of 2 epochs (numbered from 0)
    # an average of the kept epoch and a copy of it with its weights shifted, against the
    # kept epoch: both are validated, and the one with the lower monitor is chosen
    wrecked = shifted_copy(run / "checkpoints" / "epoch-001.ckpt", tmp_path / "z.ckpt", 5.0)
    out = tmp_path / "averaged.ckpt"
    assert train_main(["average", str(run / "checkpoints" / "epoch-001.ckpt"), str(wrecked),
                       "--out", str(out), "--against",
                       str(run / "checkpoints" / "epoch-001.ckpt"), "--",
                       "--data.cache", str(corpus.cache), "--data.workers", "0",
                       "--threads", "1", "--trainer.accelerator", "cpu",
                       "--trainer.default_root_dir", str(tmp_path / "validate")]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    scores = report["scores"]
    assert report["monitor"] == "val/stream/wer_av" and len(scores) == 2
    assert scores[report["chosen"]] == min(scores.values())
    if len(set(scores.values())) == 1:  # a tie keeps the original (an untrained model's WER)
        assert report["chosen"] == str(run / "checkpoints" / "epoch-001.ckpt")
