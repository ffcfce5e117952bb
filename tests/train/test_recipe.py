"""`train/recipes/synth-tiny.sh` runs every step (synth, index, tokenizer, prepare, fit, stream,
export, eval, first-pass, card) at a toy size with the debug model, and a second run skips what is done."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from train_harness import REPO, child_env

RECIPE = REPO / "train" / "recipes" / "synth-tiny.sh"


@pytest.mark.slow
def test_recipe_runs_end_to_end_at_toy_size(tmp_path: Path) -> None:
    env = {**child_env(), "CONFIG": "train/configs/debug.yaml", "ROI": "20",
           "DATA": str(tmp_path / "data"), "RUN": str(tmp_path / "run"),
           "RESULTS": str(tmp_path / "results"), "MODEL": str(tmp_path / "model"), "SPEAKERS": "3",
           "VAL_SPEAKERS": "1", "TEST_SPEAKERS": "1",
           "UTTS": "2", "SCENES": "1",
           "EPOCHS": "1", "STREAM_EPOCHS": "1", "WORKERS": "1", "THREADS": "1",
           "INT8_MAX_WER_INCREASE": "1000"}  # a one-epoch toy model's WER is noise
    done = subprocess.run(["bash", str(RECIPE)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    steps = [line.split(" ", 2)[2] for line in done.stderr.splitlines() if line.startswith("== ")]
    assert [s.split(":")[0].split(" ")[0] for s in steps] == [
        "synth", "index", "tokenizer", "prepare", "fit", "stream", "export", "eval", "first-pass",
        "card", "done"]
    result = json.loads((tmp_path / "results" / "eval.json").read_text())
    assert result["split"] == "test" and result["asd"]["scenes"] == 1
    assert (tmp_path / "results" / "wer_snr.png").is_file()
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert (tmp_path / "results" / "eval.md").read_text().strip() in card
    assert result["model"]["transcripts"].startswith("finals") and "The first pass alone" in card
    assert (tmp_path / "results-first-pass" / "eval.json").is_file()
    stamp = (tmp_path / "data" / "corpus.json").stat().st_mtime_ns
    last = (tmp_path / "run" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = subprocess.run(["bash", str(RECIPE)], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-4000:]
    assert (tmp_path / "data" / "corpus.json").stat().st_mtime_ns == stamp  # not re-made
    # finished training steps are skipped (Lightning refuses a checkpoint past max_epochs)
    assert (tmp_path / "run" / "fit.done").is_file()
    assert (tmp_path / "run" / "stream.done").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == last
