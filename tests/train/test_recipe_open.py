"""`train/recipes/synth-open.sh` runs every step (english synth with three engines, tokenizer,
LM, mean-face prepare, fit of `small`, checkpoint averaging, export, the LM tuned on val, evals,
card) at a toy size, and a second run skips what is done."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from train_harness import REPO, child_env

RECIPE = REPO / "train" / "recipes" / "synth-open.sh"


@pytest.mark.slow
def test_open_recipe_runs_end_to_end_at_toy_size(tmp_path: Path) -> None:
    env = {**child_env(), "DATA": str(tmp_path / "data"), "RUN": str(tmp_path / "run"),
           "RESULTS": str(tmp_path / "results"), "MODEL": str(tmp_path / "model"),
           "SPEAKERS": "4", "VAL_SPEAKERS": "1", "TEST_SPEAKERS": "1", "UTTS": "3",
           "SCENES": "1", "VOCAB": "64", "EPOCHS": "2", "MAX_TIME": "00:00:05:00",
           "WORKERS": "1", "THREADS": "1", "INT8_MAX_WER_INCREASE": "1000"}
    done = subprocess.run(["bash", str(RECIPE)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    steps = [line.split(" ", 2)[2].split(":")[0].split(" ")[0]
             for line in done.stderr.splitlines() if line.startswith("== ")]
    assert steps == ["synth", "index", "tokenizer", "language", "prepare", "fit", "average",
                     "export", "LM", "eval", "first-pass", "card", "done"]
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("epoch-*.ckpt"))
    assert kept == ["epoch-000.ckpt", "epoch-001.ckpt"]  # AVERAGE=5 > EPOCHS: every epoch
    averaged = json.loads((tmp_path / "run" / "checkpoints" / "averaged.json").read_text())
    assert len(averaged["scores"]) == 2 and averaged["chosen"] in averaged["scores"]
    corpus = json.loads((tmp_path / "data" / "corpus.json").read_text())
    assert corpus["config"]["text"] == "english"
    assert {s["voice"].get("engine", "espeak") for s in corpus["speakers"]} == {
        "espeak", "flite", "festival"}
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["roi"]["convention"] == "mean-face" and card["lm"]["file"] == "lm.arpa.gz"
    assert card["lm"]["tuned"]["split"] == "val"  # weight and bonus chosen on held-out clips
    assert f"{card['lm']['weight']:g}/{card['lm']['word_bonus']:g}" in card["lm"]["tuned"][
        "wer_percent"]
    assert json.loads((tmp_path / "results" / "eval.json").read_text())["split"] == "test"
    stamp = (tmp_path / "data" / "corpus.json").stat().st_mtime_ns
    again = subprocess.run(["bash", str(RECIPE)], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert (tmp_path / "data" / "corpus.json").stat().st_mtime_ns == stamp  # not re-made
