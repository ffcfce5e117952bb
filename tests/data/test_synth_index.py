"""End to end through the CLI mains: `avsync synth` then `avsync data index|prepare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avsync import cli
from avsync.data.cache import PreparedCache
from avsync.data.index import Manifest
from avsync.timebase import FPS


def _raw_annotation(path: Path) -> tuple[str, list[tuple[str, float, float]]]:
    """The .txt read by hand (not through the parser under test): text and word rows."""
    lines = path.read_text().splitlines()
    text = lines[0].split(":", 1)[1].strip()
    header = lines.index("WORD START END ASDSCORE")
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    return text, [(w, float(s), float(e)) for w, s, e, *_ in rows]


def test_synth_then_index_round_trips_every_transcript_and_word_timing(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    assert cli.main(["synth", "--out", str(root), "--speakers", "2", "--utts-per-speaker", "2",
                     "--workers", "1", "--quiet"]) == 0
    assert cli.main(["data", "index", str(root)]) == 0
    manifest = Manifest.load(root / ".avsync" / "manifest.jsonl")
    listed = {line for name in ("train.txt", "val.txt", "test.txt")
              for line in (root / name).read_text().split()}
    assert {e.id for e in manifest.entries} == listed and len(manifest) == 4
    assert manifest.layout == "synth" and not manifest.problems
    for entry in manifest.entries:
        text, words = _raw_annotation(root / "main" / f"{entry.id}.txt")
        assert entry.text == text
        assert [(w.word, w.start, w.end) for w in entry.words] == words
        assert entry.speaker == entry.id.split("/")[0]

    cache_dir = tmp_path / "cache"
    assert cli.main(["data", "prepare", str(root), "--out", str(cache_dir), "--roi-size", "40",
                     "--tokenizer", str(_tokenizer(root, tmp_path)), "--workers", "1",
                     "--no-progress"]) == 0
    cache = PreparedCache(cache_dir)
    assert sorted(cache.ids) == sorted(e.id for e in manifest.entries)
    for i in range(len(cache)):
        clip = cache[i]
        entry = next(e for e in manifest.entries if e.id == clip.id)
        assert clip.roi.shape[1:] == (40, 40) and clip.audio.shape == (clip.steps * 640,)
        assert [w for w, _, _ in clip.words] == entry.text.split()
        assert clip.words[-1][2] <= clip.steps
        assert abs(clip.words[0][1] - entry.words[0].start * FPS) <= 0.5
        assert np.abs(clip.audio).max() > 1000  # real speech, not silence


def _tokenizer(root: Path, tmp_path: Path) -> Path:
    prefix = tmp_path / "tok"
    assert cli.main(["data", "tokenizer", str(root), "--vocab-size", "60", "--out", str(prefix),
                     "--splits", "train,val,test"]) == 0
    return prefix.with_suffix(".model")
