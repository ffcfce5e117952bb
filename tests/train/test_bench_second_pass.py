"""bench/second_pass.py runs end to end on an exported debug model and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from train_harness import REPO, Corpus


def test_bench_second_pass_writes_every_figure(short_model: Path, corpus: Corpus,
                                               tmp_path: Path) -> None:
    model_dir = short_model
    out = tmp_path / "second_pass.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "second_pass.py"), "--model",
                          str(model_dir), "--data", str(corpus.cache), "--clips", "2", "--out",
                          str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["clips"] == 2 and result["median_reread_ms_per_clip"] > 0
    assert result["median_reread_over_stream"] > 0 and result["median_reread_ms_per_speech_s"] > 0
    assert set(result["wer_percent"]) == {f"{m}_wer_{p}" for m in ("audio", "av")
                                          for p in ("first_pass_only", "second_pass")}
