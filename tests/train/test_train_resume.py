"""A training run killed (SIGKILL) after a checkpoint resumes from it and ends exactly where
an uninterrupted run ends: same global step, same optimizer state, same parameters, and the
resumed steps are the uninterrupted run's steps (no batch or epoch repeated or skipped)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from avsync.train.cli import main as train_main
from avsync.train.datamodule import AVDataModule
from train_harness import Corpus, fit_args, metric_rows, start_training

from avsync.text.tokenizer import Tokenizer

MAX_STEPS = 24
BATCH_STEPS = 150


def batches_per_epoch(corpus: Corpus) -> int:
    data = AVDataModule(str(corpus.cache), str(corpus.tokenizer), batch_steps=BATCH_STEPS,
                        max_clip_steps=150, workers=0)
    data.attach(Tokenizer.load(corpus.tokenizer), roi_size=16, roi_stored=20)
    return len(data.train_dataloader())


def run_options(every: int) -> tuple[str, ...]:
    return ("--trainer.max_steps", str(MAX_STEPS), "--trainer.max_epochs", "null",
            "--data.batch_steps", str(BATCH_STEPS), "--checkpoint.every_n_train_steps",
            str(every), "--checkpoint.at_epoch_end", "false")


def _wait_for_checkpoint(path: Path, process, min_step: int, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the training run ended before it could be killed"
        if path.is_file():
            try:
                if torch.load(path, weights_only=True)["global_step"] >= min_step:
                    return
            except (EOFError, RuntimeError):  # caught between write and rename: retry
                pass
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step >= {min_step} in {timeout} s")


def _train_rows(run: Path) -> dict[int, dict[str, float]]:
    return {int(r["step"]): r for r in metric_rows(run) if "train/loss" in r}


@pytest.mark.slow
def test_killed_run_resumes_exactly(corpus: Corpus, tmp_path: Path) -> None:
    reference, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    per_epoch = batches_per_epoch(corpus)
    assert per_epoch >= 2
    options = run_options(every=per_epoch + 1)  # checkpoints fall inside epochs
    process = start_training(fit_args(corpus, killed, *options), tmp_path / "child.log")
    try:
        _wait_for_checkpoint(killed / "checkpoints" / "last.ckpt", process, per_epoch + 1)
    finally:
        process.kill()
        process.wait()
    saved = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    resumed_from = saved["global_step"]
    position = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert 0 < position["batches"] < per_epoch, "the kill must interrupt an epoch"
    assert per_epoch < resumed_from < MAX_STEPS

    assert train_main(fit_args(corpus, killed, *options)) == 0  # resumes by default
    assert train_main(fit_args(corpus, reference, *options)) == 0

    final = {name: torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
             for name, run in (("reference", reference), ("killed", killed))}
    assert final["killed"]["global_step"] == final["reference"]["global_step"] == MAX_STEPS
    assert final["killed"]["epoch"] == final["reference"]["epoch"]
    for key, value in final["reference"]["state_dict"].items():
        assert torch.equal(value, final["killed"]["state_dict"][key]), key
    for a, b in zip(final["reference"]["optimizer_states"][0]["state"].values(),
                    final["killed"]["optimizer_states"][0]["state"].values(), strict=True):
        assert int(a["step"]) == int(b["step"]) == MAX_STEPS
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"],
                                                                       b["exp_avg_sq"])

    versions = sorted((killed / "csv").glob("version_*/metrics.csv"))
    assert len(versions) == 2, versions
    resumed_rows = {int(r["step"]): r for r in metric_rows(killed, version=1)
                    if "train/loss" in r}
    expected = _train_rows(reference)
    assert sorted(resumed_rows) == list(range(resumed_from, MAX_STEPS))
    for step, row in resumed_rows.items():  # the same batch, in the same epoch, same loss
        assert row["epoch"] == expected[step]["epoch"], step
        assert row["train/loss"] == expected[step]["train/loss"], step
