"""Indexing LRS2 and LRS3 trees: layouts, both annotation forms, lists, problems, segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsync.data.index import Layout, Manifest, detect_layout, index_dataset
from avsync.data.report import Reason
from avsync.errors import DataError


def _reasons(manifest: Manifest) -> dict[str, str]:
    return {p.file: str(p.reason) for p in manifest.problems}


def test_lrs2_main_lists_tags_and_problems(lrs2_tree: Path) -> None:
    manifest = index_dataset(lrs2_tree)
    assert manifest.layout == "lrs2"
    assert manifest.split_counts() == {"train": 2, "test": 1, "pretrain": 1}
    by_id = {e.id: e for e in manifest.entries}
    hello = by_id["vidA/00001"]
    assert (hello.text, hello.split, hello.speaker, hello.words) == (
        "HELLO THERE WORLD", "train", "vidA", ())
    assert hello.media == "mvlrs_v1/main/vidA/00001.mp4"
    assert by_id["vidA/00002"].text == "IT'S FINE"
    assert by_id["vidB/00001"].tag == "NF"
    assert _reasons(manifest) == {
        "mvlrs_v1/main/vidX/00009.mp4": Reason.MISSING_MEDIA,
        "mvlrs_v1/main/vidB/00002.mp4": Reason.MISSING_TXT,
        "mvlrs_v1/main/vidB/00003.txt": Reason.UNPARSEABLE_TXT,
    }
    missing = next(p for p in manifest.problems if p.reason is Reason.MISSING_MEDIA)
    assert "val.txt" in missing.detail


def test_lrs2_pretrain_word_table_and_root_given_as_mvlrs_v1(lrs2_tree: Path) -> None:
    manifest = index_dataset(lrs2_tree / "mvlrs_v1")  # lists live one level above
    pretrain = manifest.split("pretrain")
    assert [e.id for e in pretrain] == ["pretrain/vidC/00001"]
    words = pretrain[0].words
    assert len(words) == 12 and words[0].word == "ONE"
    assert (words[0].start, words[0].end, words[-1].end) == (0.1, 0.55, 6.05)
    assert len(manifest.split("test")) == 1


def test_lrs3_split_by_folder_with_frame_tables(lrs3_tree: Path) -> None:
    assert detect_layout(lrs3_tree) is Layout.LRS3
    manifest = index_dataset(lrs3_tree)
    assert manifest.split_counts() == {"train": 1, "test": 1, "pretrain": 1}
    train = manifest.split("train")[0]
    assert train.id == "trainval/spk2/00001"
    assert train.text == "SO WE'RE GOING TO TALK"
    assert [w.word for w in train.words] == train.text.split()
    assert manifest.split("test")[0].text == "ONLY FRAMES"
    assert _reasons(manifest) == {"test/spk3/00001.txt": Reason.EMPTY_TRANSCRIPT,
                                  "test/spk3/00002.txt": Reason.MISSING_MEDIA}


def test_long_clips_segment_at_word_boundaries(lrs3_tree: Path) -> None:
    manifest = index_dataset(lrs3_tree, max_seconds=2.6)
    segments = [e for e in manifest.entries if e.id.startswith("pretrain/")]
    # words are 0.45 s long, 0.5 s apart: five words span 2.45 s, six would span 2.95 s.
    assert [e.id for e in segments] == [f"pretrain/spk1/00001#{k:03d}" for k in range(3)]
    assert " ".join(e.text for e in segments) == (
        "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE")
    for segment in segments:
        assert segment.end - segment.start <= 2.6
        assert segment.words[0].start == 0.0
        assert segment.words[-1].end == pytest.approx(segment.end - segment.start)
        assert segment.text == " ".join(w.word for w in segment.words)
    assert (segments[1].start, segments[1].end) == (2.6, 5.05)
    assert manifest.split("train")[0].start is None  # its words end at 2.55 s: kept whole


def test_manifest_round_trips_through_json_lines(lrs2_tree: Path, tmp_path: Path) -> None:
    manifest = index_dataset(lrs2_tree, max_seconds=3.0)
    path = manifest.save()
    assert path == lrs2_tree / ".avsync" / "manifest.jsonl"
    assert len(path.read_text().splitlines()) == len(manifest)
    loaded = Manifest.load(path)
    assert loaded == manifest
    elsewhere = manifest.save(tmp_path / "m.jsonl")
    assert Manifest.load(elsewhere).root == manifest.root  # the report remembers the root


def test_layout_override_and_unknown_roots(lrs2_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no corpus found"):
        index_dataset(tmp_path)
    synth = index_dataset(lrs2_tree / "mvlrs_v1", layout="synth")
    assert synth.layout == "synth" and synth.split("pretrain") == []
    with pytest.raises(DataError, match="not a folder"):
        index_dataset(tmp_path / "nowhere")
