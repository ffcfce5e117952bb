"""One tiny synthetic corpus for the training tests, made once per session through the real
commands (`avsync synth`, `avsync data index|tokenizer|prepare`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from avsync.train.cli import main as train_main
from train_harness import Corpus, fit_args

from avsync.data.cli import main as data_main
from avsync.data.synth.cli import main as synth_main


@pytest.fixture(autouse=True)
def keep_thread_count():
    """`avsync train` and `avsync eval` set torch's thread count for their whole process
    (`threads: 1` in debug.yaml, `--threads 1`); give the next test the count it had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """4 speakers x 3 GRID clips (train 2 speakers, val 1, test 1) + 1 ASD scene, cached with
    20 px ROIs (the debug model's roi_stored) and a tokenizer."""
    root = tmp_path_factory.mktemp("train_corpus") / "synth"
    assert synth_main(["--out", str(root), "--speakers", "4", "--utts-per-speaker", "3",
                       "--val-speakers", "1", "--test-speakers", "1", "--text", "grid",
                       "--scenes", "1", "--seed", "3", "--workers", "1", "--quiet"]) == 0
    tokenizer = root / ".avsync" / "tok"
    cache = root / ".avsync" / "cache"
    assert data_main(["index", str(root)]) == 0
    assert data_main(["tokenizer", str(root), "--vocab-size", "48", "--out", str(tokenizer)]) == 0
    assert data_main(["prepare", str(root), "--roi-size", "20", "--workers", "1",
                      "--tokenizer", f"{tokenizer}.model", "--no-progress"]) == 0
    return Corpus(root, cache, tokenizer.with_suffix(".model"))


@pytest.fixture(scope="session")
def short_run(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step debug training run (its checkpoints, logs and rank check) in this process;
    last.ckpt at step 2 and, as at the end of every fit, at step 3."""
    run = tmp_path_factory.mktemp("fit") / "run"
    threads = torch.get_num_threads()
    assert train_main(fit_args(corpus, run, "--trainer.max_steps", "3",
                               "--data.batch_steps", "200", "--checkpoint.every_n_train_steps",
                               "2", "--checkpoint.at_epoch_end", "false")) == 0
    torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="session")
def short_model(short_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`short_run`'s last checkpoint exported (fp32, no LM), for the bench scripts' tests;
    they only read it."""
    from avsync.export.cli import main as export_main

    model_dir = tmp_path_factory.mktemp("short-model") / "model"
    assert export_main([str(short_run / "checkpoints" / "last.ckpt"), "--out",
                        str(model_dir)]) == 0
    return model_dir
