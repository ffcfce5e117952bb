"""`avsync data audit`: every clip measured, classified by the thresholds, clean lists (the
corpus side in avsync.data.audit, the measuring in avsync.runtime.audit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avsync.data.cli import main as data_main
from avsync.runtime.audit import AuditConfig, classify


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic corpus (3 speakers x 2 clips) plus one truncated, undecodable clip."""
    from avsync.data.synth.cli import main as synth_main

    root = tmp_path_factory.mktemp("audit") / "synth"
    assert synth_main(["--out", str(root), "--speakers", "3", "--utts-per-speaker", "2",
                       "--val-speakers", "1", "--test-speakers", "1", "--text", "grid",
                       "--workers", "1", "--quiet", "--seed", "4"]) == 0
    broken = root / "main" / "spk0000" / "00009"
    shutil.copy(broken.with_name("00001.txt"), broken.with_suffix(".txt"))
    data = broken.with_name("00001.mp4").read_bytes()
    broken.with_suffix(".mp4").write_bytes(data[:len(data) // 3])
    with (root / "train.txt").open("a") as lists:
        lists.write("spk0000/00009\n")
    assert data_main(["index", str(root)]) == 0
    return root


def test_thresholds() -> None:
    config = AuditConfig(max_offset_ms=40, min_confidence=0.2)
    assert classify(40, 0.5, config) == "ok" and classify(-80, 0.5, config) == "misaligned"
    assert classify(-400, 0.1, config) == "uncertain"


def test_every_clip_is_reported_and_clean_lists_drop_the_bad_ones(corpus: Path,
                                                                  model_dir: Path) -> None:
    # judge every clip (min confidence below any) with zero tolerance: the untrained model's
    # offsets are arbitrary, so which clips go is read from the report itself
    assert data_main(["audit", str(corpus), "--model", str(model_dir), "--max-offset-ms", "0",
                      "--min-confidence", "-1", "--write-clean-split"]) == 0
    report = json.loads((corpus / ".avsync" / "audit.json").read_text())
    clips = {c["id"]: c for c in report["clips"]}
    assert len(clips) == 7 and report["summary"]["clips"] == 7
    assert clips["spk0000/00009"]["status"] == "error"
    config = AuditConfig(max_offset_ms=0, min_confidence=-1)
    for clip in clips.values():
        if clip["status"] != "error":
            assert clip["steps"] > 25 and -600 <= clip["offset_ms"] <= 600
            assert clip["status"] == classify(clip["offset_ms"], clip["confidence"], config)
    for split in ("train", "val", "test"):
        listed = (corpus / ".avsync" / f"{split}.clean.txt").read_text().split()
        expected = [c["id"] for c in clips.values()
                    if c["split"] == split and c["status"] == "ok"]
        assert sorted(listed) == sorted(expected)
    # a generous tolerance keeps every decodable clip of the audited split
    assert data_main(["audit", str(corpus), "--model", str(model_dir), "--max-offset-ms",
                      "1000", "--min-confidence", "-1", "--splits", "train", "--out",
                      str(corpus / "r.json"), "--write-clean-split"]) == 0
    listed = (corpus / ".avsync" / "train.clean.txt").read_text().split()
    assert listed == ["spk0000/00001", "spk0000/00002"]
    summary = json.loads((corpus / "r.json").read_text())["summary"]
    assert summary["clips"] == 3 and summary["error"] == 1
