"""bench/lip_gate.py runs end to end on an exported model: every SNR, gate and lips
condition decoded, and the worst margins to issue 18's floors computed from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from train_harness import REPO, Corpus


def test_bench_lip_gate_tables_every_gate(short_model: Path, corpus: Corpus,
                                          tmp_path: Path) -> None:
    model_dir = short_model
    out = tmp_path / "lip_gate.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "lip_gate.py"), "--model",
                          str(model_dir), "--data", str(corpus.cache), "--max-clips", "3",
                          "--gates", "none,0.5", "--snrs", "clean,0", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["clips"] == 3 and set(result["rows"]) == {"clean", "0"} and "cpu" in result
    for row in result["rows"].values():
        assert set(row["av"]) == set(row["wrong_lips_av"]) == {"none", "0.5"}
        assert min(row["audio"], row["video"], *row["av"].values()) >= 0
    worst = result["worst_points"]["none"]
    assert worst["wrong_lips_minus_audio"] == max(
        r["wrong_lips_av"]["none"] - r["audio"] for r in result["rows"].values())
