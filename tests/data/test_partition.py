"""prepare --shard K/N and merge: the same training batches as one prepare; parts resume;
missing and mismatched parts are refused by name; the assignment is balanced and stable."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avsync.data.cache import PreparedCache
from avsync.data.cli import main as data_main
from avsync.data.dataset import AVSpeechDataset, LengthBucketSampler, collate
from avsync.data.index import Manifest, ManifestEntry, index_dataset
from avsync.data.partition import Part, assign, estimated_seconds, merge_parts
from avsync.data.prepare import PrepareConfig, prepare_cache
from avsync.data.shards import JOURNAL_FILE
from avsync.errors import DataError

PREPARED_ROI = 24  # the `prepared` fixture's ROI size (tests/data/conftest.py)

PARTS = 3


def _prepare_parts(corpus: Path, out: Path, tokenizer, roi: int = PREPARED_ROI,
                   only: tuple[int, ...] = tuple(range(PARTS))) -> None:
    for k in only:
        prepare_cache(index_dataset(corpus), out, PrepareConfig(roi_size=roi),
                      tokenizer=tokenizer, progress=False, part=Part(k, PARTS))


@pytest.fixture(scope="module")
def merged(prepared, bad_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, (_, tokenizer) = prepared
    out = tmp_path_factory.mktemp("parts") / "cache"
    _prepare_parts(bad_corpus, out, tokenizer)
    merge_parts(out)
    return out


def _batches(cache: PreparedCache, split: str) -> list[dict]:
    dataset = AVSpeechDataset(cache, split, roi_size=20, train=True, seed=3)
    sampler = LengthBucketSampler(dataset.lengths, 40, seed=3)
    return [collate([dataset[i] for i in batch]) for batch in sampler]


def test_merged_parts_give_the_same_training_batches(prepared, merged: Path) -> None:
    whole, parts = PreparedCache(prepared[0]), PreparedCache(merged)
    assert parts.ids == whole.ids and parts.splits == whole.splits
    for i in range(len(whole)):
        a, b = whole[i], parts[i]
        assert (a.id, a.text, a.words) == (b.id, b.text, b.words)
        for name in ("roi", "audio", "tokens"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for split in whole.splits:
        for x, y in zip(_batches(whole, split), _batches(parts, split), strict=True):
            assert x.keys() == y.keys()
            for key, value in x.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, y[key]), key
                else:
                    assert value == y[key], key
    report = json.loads((merged / "report.json").read_text())
    expected = json.loads((prepared[0] / "report.json").read_text())
    assert sorted(map(json.dumps, report["problems"])) == sorted(map(json.dumps,
                                                                      expected["problems"]))
    assert all(p.is_symlink() for p in (merged / "shards").iterdir())  # nothing copied


def test_a_killed_part_resumes(prepared, merged: Path, bad_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    shutil.copytree(merged, out, symlinks=True)
    part = out / "part-0-of-3"
    (part / "manifest.json").unlink()  # what a kill leaves: no manifest, a torn journal
    journal = (part / JOURNAL_FILE).read_text().splitlines()
    (part / JOURNAL_FILE).write_text("\n".join(journal[:2]) + "\n" + journal[2][:20])
    with pytest.raises(DataError, match="part-0-of-3.*unfinished"):
        merge_parts(out)
    result = prepare_cache(index_dataset(bad_corpus), out, PrepareConfig(roi_size=PREPARED_ROI),
                           tokenizer=prepared[1][1], progress=False, part=Part(0, PARTS))
    assert result.reused == 1 and result.decoded == len(journal) - 2  # header + one done
    merge_parts(out)
    assert PreparedCache(out).ids == PreparedCache(prepared[0]).ids


def test_missing_and_mismatched_parts_are_refused_by_name(prepared, merged: Path,
                                                          bad_corpus: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "cache"
    shutil.copytree(merged, out, symlinks=True)
    shutil.rmtree(out / "part-2-of-3")
    with pytest.raises(DataError, match="part-2-of-3: part 2/3 is missing"):
        merge_parts(out, 3)
    _prepare_parts(bad_corpus, out, prepared[1][1], roi=PREPARED_ROI - 4, only=(2,))
    with pytest.raises(DataError, match=r"part-2-of-3: part 2 does not match.*roi_size: 20 vs 24"):
        merge_parts(out)


def test_the_command_line_prepares_parts_and_merges(bad_corpus: Path, tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "cli-cache"
    for k in range(2):
        data_main(["prepare", str(bad_corpus), "--out", str(out), "--roi-size", "16",
                   "--workers", "1", "--shard", f"{k}/2", "--no-progress"])
    assert data_main(["merge", str(out)]) == 0
    assert "merged 2 parts" in capsys.readouterr().out
    assert len(PreparedCache(out)) == 3
    with pytest.raises(SystemExit):
        data_main(["prepare", str(bad_corpus), "--shard", "2/2"])  # K must be < N


def _entry(i: int, seconds: float) -> ManifestEntry:
    return ManifestEntry(id=f"c{i}", split="train", media=f"c{i}.mp4", text="A", speaker="s",
                         layout="synth", start=0.0, end=seconds)


def test_assignment_is_balanced_by_duration_and_stable_when_appending() -> None:
    rng = np.random.default_rng(0)
    seconds = rng.uniform(1.0, 15.0, 400)
    manifest = Manifest(Path("/nowhere"), "synth", tuple(_entry(i, s) for i, s in
                                                        enumerate(seconds)))
    parts = assign(manifest, 7)
    loads = [sum(estimated_seconds(manifest, e) for e, k in zip(manifest.entries, parts,
                                                                strict=True) if k == p)
             for p in range(7)]
    assert max(loads) - min(loads) <= seconds.max()  # within one clip of each other
    grown = dataclasses.replace(manifest, entries=manifest.entries + tuple(
        _entry(400 + i, 3.0) for i in range(50)))
    assert assign(grown, 7)[:400] == parts
