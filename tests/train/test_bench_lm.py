"""bench/lm.py runs end to end: a model without an LM gets one attached in a scratch copy,
every condition is decoded at each weight, and the LM's cost is its time above weight 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from train_harness import REPO, Corpus


def test_bench_lm_measures_wer_and_cost_per_weight(short_model: Path, corpus: Corpus,
                                                   tmp_path: Path) -> None:
    model_dir = short_model
    lm = tmp_path / "lm.arpa.gz"
    built = subprocess.run([str(Path(sys.executable).parent / "avsync"), "data", "lm",
                            str(corpus.root), "--order", "2", "--splits", "train", "--out",
                            str(lm)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    out = tmp_path / "lm.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "lm.py"), "--model",
                          str(model_dir), "--data", str(corpus.cache), "--lm", str(lm),
                          "--max-clips", "2", "--weights", "0,0.5", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["clips"] == 2 and "cpu" in result
    assert set(result["rows"]) == {"audio clean", "av clean", "audio 0 dB", "av 0 dB"}
    for rows in result["rows"].values():
        assert set(rows) == {"0", "0.5"} and rows["0"]["lm_cpu_s_per_audio_s"] == 0
        assert all(row["wer"] >= 0 and row["cpu_s_per_audio_s"] > 0 for row in rows.values())
    assert not (model_dir / "lm.arpa.gz").exists()  # the model itself is left as it was
