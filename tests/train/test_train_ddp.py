"""`avsync train fit` with Lightning's DDP strategy on 2 CPU processes (gloo, 127.0.0.1):
the run completes and both ranks end with identical parameters."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from avsync.train.callbacks import parameter_digest
from train_harness import REPO, Corpus, avsync_command, child_env, fit_args, metric_rows

from avsync.models.checkpoint import load_checkpoint


@pytest.mark.slow
def test_two_process_cpu_ddp_run_completes_and_ranks_agree(corpus: Corpus,
                                                            tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    args = fit_args(corpus, run, "--trainer.accelerator", "cpu", "--trainer.devices", "2",
                    "--trainer.strategy", "ddp", "--trainer.max_steps", "3",
                    "--trainer.max_epochs", "null", "--data.batch_steps", "150")
    done = subprocess.run(avsync_command("train", *args), cwd=REPO, env=child_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    agreement = json.loads((run / "rank_agreement.json").read_text())
    assert agreement["world_size"] == 2 and agreement["global_step"] == 3
    assert len(agreement["digests"]) == 2 and agreement["agree"]
    # the gathered digest is the digest of the weights rank 0 saved
    loaded = load_checkpoint(run / "checkpoints" / "last.ckpt")
    wrapped = torch.nn.Module()
    wrapped.model = loaded.model
    assert parameter_digest(wrapped) == agreement["digests"][0]
    rows = metric_rows(run)
    losses = [r["train/loss"] for r in rows if "train/loss" in r]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    # validation ran on both ranks and its WER was summed over them
    assert any(r.get("val/stream/wer_av", -1.0) >= 0.0 for r in rows)
