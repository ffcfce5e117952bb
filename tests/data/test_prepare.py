"""prepare: bad inputs are skipped and reported; good clips read back bit-exactly; resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avsync.data.cache import PreparedCache
from avsync.data.index import index_dataset
from avsync.data.prepare import PrepareConfig, prepare_cache
from avsync.data.shards import JOURNAL_FILE
from avsync.errors import DataError
from avsync.media.decode import decode_media
from avsync.media.roi import crop_mouths, whole_frame_face
from avsync.timebase import SAMPLES_PER_STEP

ROI = 24
EXPECTED_BAD = {
    "main/spk2/00002.mp4": "corrupt-media",
    "main/spk2/00003.mp4": "missing-txt",
    "main/spk3/00001.mp4": "zero-length-audio",
    "main/spk3/00002.mp4": "wrong-fps",
    "main/spk3/00003.txt": "empty-transcript",
    "main/spk3/00004.mp4": "length-mismatch",
    "main/spk3/00005.mp4": "no-video",
}
GOOD = {"spk1/00001": 12, "spk1/00002": 20, "spk2/00001": 9}


def _expected(root: Path, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode and crop independently of prepare: what the cache must hold, bit for bit."""
    clip = decode_media(root / "main" / f"{clip_id}.mp4")
    t, h, w = clip.frames.shape
    roi = crop_mouths(clip.frames, whole_frame_face(w, h), ROI)
    audio = np.zeros(t * SAMPLES_PER_STEP, np.float32)
    audio[: min(audio.size, clip.audio.size)] = clip.audio[: audio.size]
    return roi, np.clip(np.rint(audio * 32768), -32768, 32767).astype(np.int16)


def _check_cache(cache: PreparedCache, root: Path) -> None:
    assert sorted(cache.ids) == sorted(GOOD)
    for i, clip_id in enumerate(cache.ids):
        clip = cache[i]
        roi, audio = _expected(root, clip_id)
        assert clip.steps == GOOD[clip_id] == cache.lengths[i]
        np.testing.assert_array_equal(clip.roi, roi)
        np.testing.assert_array_equal(clip.audio, audio)


def test_bad_inputs_are_reported_by_name_and_reason(prepared, bad_corpus: Path) -> None:
    out, (result, _) = prepared
    report = json.loads((out / "report.json").read_text())
    named = {p["file"]: p["reason"] for p in report["problems"]}
    assert named == EXPECTED_BAD
    assert report["skipped"] == len(EXPECTED_BAD) and report["kept"] == 3
    assert report["skipped_per_reason"]["wrong-fps"] == 1
    assert "30" in next(p["detail"] for p in report["problems"] if p["reason"] == "wrong-fps")
    for name, reason in EXPECTED_BAD.items():
        assert f"{name}: {reason}" in result.summary
    assert result.kept == {"train": 2, "test": 1}


def test_good_clips_read_back_bit_exactly(prepared, bad_corpus: Path) -> None:
    out, (_, tokenizer) = prepared
    cache = PreparedCache(out)
    _check_cache(cache, bad_corpus)
    assert cache.split("train") == [cache.ids.index("spk1/00001"), cache.ids.index("spk1/00002")]
    clip = cache[cache.ids.index("spk1/00002")]
    assert tokenizer.decode(clip.tokens.tolist()) == clip.text == "GOOD MORNING TO YOU"
    assert cache.tokenizer_sha256 == tokenizer.sha256 and cache.roi_size == ROI
    # words 0.16 s apart, 0.11 s long: steps [0, 3), [4, 7), [8, 11), [12, 15)
    assert [w[1:] for w in clip.words] == [(0, 3), (4, 7), (8, 11), (12, 15)]
    assert clip.speech_mask.tolist() == [i % 4 != 3 and i < 15 for i in range(20)]
    assert not clip.roi.flags.writeable


def test_rerun_reuses_everything(prepared, bad_corpus: Path) -> None:
    out, (first, tokenizer) = prepared
    again = prepare_cache(index_dataset(bad_corpus), out, PrepareConfig(roi_size=ROI),
                          tokenizer=tokenizer, progress=False)
    assert (again.decoded, again.reused) == (0, 8)  # 8 entries reach decoding
    assert again.kept == first.kept


def test_an_interrupted_prepare_never_reads_as_complete_and_resumes(
        prepared, bad_corpus: Path, tmp_path: Path) -> None:
    source, (_, tokenizer) = prepared
    out = tmp_path / "killed"
    shutil.copytree(source, out)
    # What a kill mid-run leaves: no manifest.json yet, a journal with a torn last line, and
    # bytes of a half-written clip at the end of the shards.
    (out / "manifest.json").unlink()
    journal = (out / JOURNAL_FILE).read_text().splitlines()
    (out / JOURNAL_FILE).write_text("\n".join(journal[:3]) + "\n" + journal[3][:25])
    for shard in (out / "shards").iterdir():
        with shard.open("ab") as handle:
            handle.write(b"\x07" * 1000)
    with pytest.raises(DataError, match="unfinished prepare"):
        PreparedCache(out)
    resumed = prepare_cache(index_dataset(bad_corpus), out, PrepareConfig(roi_size=ROI),
                            tokenizer=tokenizer, progress=False)
    assert resumed.reused == 2 and resumed.decoded == 6
    _check_cache(PreparedCache(out), bad_corpus)


def test_worker_processes_give_the_same_cache(bad_corpus: Path, tmp_path: Path) -> None:
    result = prepare_cache(index_dataset(bad_corpus), tmp_path / "c2",
                           PrepareConfig(roi_size=ROI, workers=2, shard_bytes=ROI * ROI * 15),
                           progress=False)
    assert sorted(p.file for p in result.problems) == sorted(EXPECTED_BAD)
    cache = PreparedCache(tmp_path / "c2")
    assert len({cache.record(i)["shard"] for i in range(len(cache))}) >= 2  # shards rolled
    assert all(cache[i].tokens.size == 0 for i in range(len(cache)))
    _check_cache(cache, bad_corpus)
