"""The corpus on disk: LRS2 layout, decodable mp4s, exact annotations, determinism, splits, sync."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avsync.data.annotations import read_annotation
from avsync.data.synth.cli import main
from avsync.data.synth.clips import make_clip
from avsync.data.synth.corpus import SynthConfig, generate_corpus
from avsync.data.synth.grammar import VOCABULARY
from avsync.data.synth.measure import audio_energy, best_lag, mouth_opening
from avsync.data.synth.speakers import UTTERANCE, make_speaker, rng_for
from avsync.data.synth.workers import parallel_map
from avsync.errors import ConfigError
from avsync.media.decode import decode_media
from avsync.media.encode import write_mp4
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP


def clip_ids(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root / "main").with_suffix(""))
                  for p in (root / "main").glob("*/*.mp4"))


def test_writes_the_lrs2_layout(tiny_corpus) -> None:
    root, summary = tiny_corpus.root, tiny_corpus.summary
    ids = clip_ids(root)
    assert ids == [f"spk{s:04d}/{u:05d}" for s in range(3) for u in (1, 2)]
    for clip in ids:
        assert (root / "main" / f"{clip}.txt").is_file()
    listed = [line for split in ("train", "val", "test")
              for line in (root / f"{split}.txt").read_text().splitlines()]
    assert sorted(listed) == ids
    assert summary.clips == 6 and summary.split_clips == {"train": 2, "val": 2, "test": 2}
    assert summary.seconds > 6 and summary.clips_per_second > 0


def test_splits_are_speaker_disjoint(tiny_corpus) -> None:
    root = tiny_corpus.root
    speakers = {split: {line.split("/")[0] for line in (root / f"{split}.txt").read_text().split()}
                for split in ("train", "val", "test")}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    meta = json.loads((root / "corpus.json").read_text())
    assert meta["seed"] == tiny_corpus.config.seed and meta["config"]["speakers"] == 3
    assert {s["id"]: s["split"] for s in meta["speakers"]} == {
        s: split for split, names in speakers.items() for s in names}
    voices = {(s["voice"]["language"], s["voice"]["variant"]) for s in meta["speakers"]}
    assert len(voices) == 3  # distinct speakers get distinct voices


def test_every_mp4_decodes_on_the_time_base(tiny_corpus) -> None:
    root = tiny_corpus.root
    for clip in clip_ids(root):
        media = decode_media(root / "main" / f"{clip}.mp4", gray=False)
        assert media.fps == FPS and media.source_fps == pytest.approx(FPS)
        assert media.frames.shape[1:] == (160, 160, 3)
        assert len(media.audio) == len(media.frames) * SAMPLES_PER_STEP
        assert np.abs(media.audio).max() > 0.1  # speech is there


def test_annotations_round_trip_and_match_the_audio(tiny_corpus) -> None:
    root = tiny_corpus.root
    for clip in clip_ids(root):
        annotation = read_annotation(root / "main" / f"{clip}.txt")
        words = annotation.words
        assert annotation.text == " ".join(w.word for w in words)
        assert annotation.conf == 4
        assert all(w.start < w.end for w in words)
        assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))
        assert all(round(t, 2) == t for w in words for t in (w.start, w.end))
        media = decode_media(root / "main" / f"{clip}.mp4", video=False)
        assert words[0].start >= 0.1 and words[-1].end <= media.duration - 0.1  # silence around
        inside = np.concatenate([media.audio[int(w.start * SAMPLE_RATE):int(w.end * SAMPLE_RATE)]
                                 for w in words])
        lead = media.audio[:int(words[0].start * SAMPLE_RATE) - 800]
        assert np.sqrt(np.mean(inside**2)) > 4 * np.sqrt(np.mean(lead**2))  # noise floor >= 35 dB down


def test_same_seed_same_corpus_whatever_the_workers(tiny_corpus, tmp_path: Path) -> None:
    root = tiny_corpus.root
    again = tmp_path / "again"
    generate_corpus(replace(tiny_corpus.config, out=again, workers=2, scenes=0), progress=False)
    assert clip_ids(again) == clip_ids(root)
    for split in ("train", "val", "test"):
        assert (again / f"{split}.txt").read_bytes() == (root / f"{split}.txt").read_bytes()
    for clip in clip_ids(root):
        assert (again / "main" / f"{clip}.txt").read_bytes() == \
            (root / "main" / f"{clip}.txt").read_bytes()
        first = decode_media(root / "main" / f"{clip}.mp4")
        second = decode_media(again / "main" / f"{clip}.mp4")
        assert np.array_equal(first.audio, second.audio)
        assert np.array_equal(first.frames, second.frames)


def _rendered(job: tuple[int, int, int]) -> tuple[bytes, bytes]:
    seed, speaker, utt = job
    clip = make_clip(make_speaker(seed, speaker), rng_for(seed, UTTERANCE, speaker, utt), "mixed")
    return clip.frames.tobytes(), clip.audio.tobytes()


def test_rendered_frames_do_not_depend_on_the_process_or_history() -> None:
    jobs = [(11, 0, 1), (11, 1, 2)]
    here = [_rendered(job) for job in reversed(jobs)][::-1]  # other order, this process
    assert list(parallel_map(_rendered, jobs[:1], 2, False, "clip")) == here[:1]
    spawned = sorted(parallel_map(_rendered, jobs, 2, False, "clip"))
    assert spawned == sorted(here)


def _sync_series(paths: list[Path]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    clips = [decode_media(p) for p in paths]
    return ([mouth_opening(c.frames) for c in clips],
            [audio_energy(c.audio, len(c.frames)) for c in clips])


def test_lips_and_voice_are_in_sync(tiny_corpus) -> None:
    root = tiny_corpus.root
    opening, energy = _sync_series(sorted((root / "main").glob("*/*.mp4")))
    lag, correlations = best_lag(opening, energy, max_lag=8)
    assert abs(lag) <= 1, correlations
    assert correlations[lag] > 0.4
    assert correlations[lag] > correlations[-5] + 0.15 and correlations[lag] > correlations[5] + 0.15


def test_a_shifted_clip_is_detected_as_shifted(tiny_corpus, tmp_path: Path) -> None:
    root = tiny_corpus.root
    shift = 5
    shifted = []
    for index, path in enumerate(sorted((root / "main").glob("*/*.mp4"))):
        media = decode_media(path, gray=False)
        late = np.concatenate([np.zeros(shift * SAMPLES_PER_STEP, np.float32), media.audio])
        write_mp4(tmp_path / f"{index}.mp4", media.frames, late[:len(media.audio)])
        shifted.append(tmp_path / f"{index}.mp4")
    lag, correlations = best_lag(*_sync_series(shifted), max_lag=8)
    assert abs(lag - shift) <= 1, correlations


def test_cli_writes_a_corpus_and_a_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    code = main(["--out", str(out), "--speakers", "1", "--utts-per-speaker", "1", "--text", "grid",
                 "--workers", "1", "--seed", "3", "--quiet"])
    assert code == 0
    line = capsys.readouterr().out
    assert "1 clips" in line and "clips/s" in line and " h " in line
    words = read_annotation(out / "main/spk0000/00001.txt").text.split()
    assert len(words) == 6 and set(words) <= set(VOCABULARY)
    assert (out / "train.txt").read_text() == "spk0000/00001\n"


@pytest.mark.parametrize("bad", [dict(speakers=0), dict(text="poetry"), dict(workers=0),
                                 dict(speakers=2, val_speakers=1, test_speakers=2)])
def test_bad_configs_name_the_value(bad: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        SynthConfig(out=tmp_path, **bad)
    assert any(str(v) in str(error.value) for v in bad.values())


def test_an_interrupted_generation_resumes_clip_by_clip(tmp_path: Path) -> None:
    from avsync.data.synth.corpus import SynthConfig, generate_corpus

    config = SynthConfig(out=tmp_path / "c", speakers=2, utts_per_speaker=2, text="grid",
                         val_speakers=0, test_speakers=0, workers=1)
    generate_corpus(config, progress=False)
    clips = sorted((tmp_path / "c" / "main").glob("*/*.mp4"))
    original = {p: p.read_bytes() for p in clips}
    stamps = {p: p.stat().st_mtime_ns for p in clips}
    # what a kill leaves: one clip's mp4 half written and no .txt; nothing of another
    clips[1].write_bytes(original[clips[1]][:100])
    clips[1].with_suffix(".txt").unlink()
    clips[2].unlink()
    clips[2].with_suffix(".txt").unlink()
    summary = generate_corpus(config, progress=False)
    assert summary.clips == 4
    assert {p: p.read_bytes() for p in clips} == original  # the same clips, bit for bit
    assert clips[0].stat().st_mtime_ns == stamps[clips[0]]  # finished ones were kept
