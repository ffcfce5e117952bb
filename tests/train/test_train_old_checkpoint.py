"""Checkpoints of the layout before the objective left the model config (`model.objective`, in
the avsync section's model_config and in the hyper-parameters) still resume, validate and load:
a run in progress goes on across the change."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from avsync.train.cli import main as train_main
from train_harness import DEBUG_YAML, Corpus, fit_args

from avsync.errors import ConfigError
from avsync.models.checkpoint import CHECKPOINT_KEY, load_checkpoint

HEADS = ("--model.heads.audio_ctc", "true", "--model.heads.visual_ctc", "true",
         "--objective.audio_ctc_weight", "0.5", "--objective.visual_ctc_weight", "0.25",
         "--objective.p_wrong_lips", "0.2", "--data.batch_steps", "200",
         "--checkpoint.at_epoch_end", "false", "--trainer.max_epochs", "null")


def to_old_layout(path: Path) -> dict:
    """Rewrite a checkpoint as the code before the move wrote it: the objective inside the
    model config, no training-only head flags (a modality CTC weight above 0 built the head)."""
    raw = torch.load(path, weights_only=True)
    section = raw[CHECKPOINT_KEY]
    objective = section["training"].pop("objective")
    model = section["model_config"]
    del model["heads"]["audio_ctc"], model["heads"]["visual_ctc"]
    model["objective"] = objective
    hyper = raw["hyper_parameters"]
    hyper["model"] = dict(model)
    del hyper["objective"]
    torch.save(raw, path)
    return raw


def test_a_run_of_the_old_layout_resumes_validates_and_loads(corpus: Corpus,
                                                             tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train_main(fit_args(corpus, run, "--trainer.max_steps", "2", *HEADS)) == 0
    last = run / "checkpoints" / "last.ckpt"
    old = to_old_layout(last)
    assert "objective" in old[CHECKPOINT_KEY]["model_config"] and old["global_step"] == 2

    loaded = load_checkpoint(last)
    assert loaded.model.audio_ctc is not None and loaded.model.visual_ctc is not None
    assert loaded.training["objective"]["visual_ctc_weight"] == 0.25

    assert train_main(["validate", "--ckpt_path", str(last), "--data.cache", str(corpus.cache),
                       "--trainer.default_root_dir", str(tmp_path / "validate"),
                       "--trainer.enable_progress_bar", "false"]) == 0

    assert train_main(fit_args(corpus, run, "--trainer.max_steps", "4", *HEADS)) == 0
    resumed = torch.load(last, weights_only=True)
    assert resumed["global_step"] == 4
    section = resumed[CHECKPOINT_KEY]
    assert "objective" not in section["model_config"]
    assert section["model_config"]["heads"]["audio_ctc"] is True
    assert section["training"]["objective"]["p_wrong_lips"] == 0.2


def test_a_training_yaml_of_the_old_layout_is_refused_with_the_fix(corpus: Corpus,
                                                                   tmp_path: Path) -> None:
    document = yaml.safe_load(DEBUG_YAML.read_text(encoding="utf-8"))
    document["model"]["objective"] = document.pop("objective")
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="move its `objective:` block out of `model:`"):
        train_main(["fit", "--config", str(path), "--data.cache", str(corpus.cache)])
