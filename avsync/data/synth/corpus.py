"""`generate_corpus`: a synthetic corpus in exactly the LRS2 layout, speaker-disjoint splits.

Layout written under `out` (the same reader serves it and a real LRS2 copy):
    main/<speaker>/<utt:05d>.mp4   H.264 + AAC, 160×160 RGB @ 25 fps, 16 kHz mono
    main/<speaker>/<utt:05d>.txt   Text, Conf, blank line, WORD START END ASDSCORE table
    train.txt, val.txt, test.txt   one `<speaker>/<utt>` per line; val and test speakers
                                   never appear in train
    corpus.json                    seed, config, every speaker's voice and face parameters
    scenes/                        multi-face ASD scenes when `scenes > 0` (see scenes.py)

Every clip comes from a generator seeded by (seed, speaker, utterance), so the output is the
same whatever the worker count and order. libespeak-ng is process-global and not thread-safe,
so parallelism is by processes (spawned, so no engine state is ever inherited).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avsync.data.annotations import write_annotation
from avsync.data.synth.clips import TEXT_SOURCES, make_clip
from avsync.data.synth.face import APPEARANCES
from avsync.data.synth.speakers import RATE_WPM, UTTERANCE, Speaker, make_speaker, rng_for
from avsync.data.synth.workers import parallel_map
from avsync.errors import ConfigError
from avsync.timebase import FPS, SAMPLE_RATE

FORMAT = "avsync-synth"
VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. val/test speakers default to max(1, speakers // 8) each (none with
    fewer than 3 speakers); the rest train."""

    out: Path
    speakers: int = 8
    utts_per_speaker: int = 25
    text: str = "mixed"  # grid | open | mixed
    val_speakers: int | None = None
    test_speakers: int | None = None
    seed: int = 0
    workers: int = 1
    scenes: int = 0
    silence: tuple[float, float] = (0.15, 0.5)  # seconds before and after the speech
    crf: int = 18  # x264 quality of the written mp4s
    engines: tuple[str, ...] = ("espeak",)  # speakers take turns (avsync.data.synth.speakers)
    rate_wpm: tuple[int, int] = RATE_WPM  # speaking rates drawn from this range
    appearance: str = "standard"  # standard | varied (lips, pose, place, light: face.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.speakers < 1 or self.utts_per_speaker < 1:
            raise ConfigError(f"need at least 1 speaker and 1 utterance each, got "
                              f"speakers={self.speakers}, utts_per_speaker={self.utts_per_speaker}")
        if self.text not in TEXT_SOURCES:
            raise ConfigError(f"text={self.text!r}: choose one of {', '.join(TEXT_SOURCES)}")
        if self.workers < 1 or self.scenes < 0:
            raise ConfigError(f"workers must be >= 1 and scenes >= 0, got workers={self.workers}, "
                              f"scenes={self.scenes}")
        val, test = self.held_out()
        if val < 0 or test < 0 or val + test > self.speakers:
            raise ConfigError(f"val_speakers={val} + test_speakers={test} must be >= 0 and at most "
                              f"speakers={self.speakers}")
        if self.appearance not in APPEARANCES:
            raise ConfigError(f"appearance={self.appearance!r}: choose one of "
                              f"{', '.join(APPEARANCES)}")
        if not 0 < self.rate_wpm[0] <= self.rate_wpm[1]:
            raise ConfigError(f"rate_wpm={self.rate_wpm}: need 0 < slowest <= fastest")
        if not 0 <= self.silence[0] <= self.silence[1]:
            raise ConfigError(f"silence={self.silence}: need 0 <= min <= max seconds")

    def held_out(self) -> tuple[int, int]:
        default = max(1, self.speakers // 8) if self.speakers >= 3 else 0
        val = default if self.val_speakers is None else self.val_speakers
        test = default if self.test_speakers is None else self.test_speakers
        return val, test

    def split_of(self, speaker: int) -> str:
        val, test = self.held_out()
        train = self.speakers - val - test
        return "train" if speaker < train else "val" if speaker < train + val else "test"

    def to_json(self) -> dict:
        out = asdict(self)
        out["out"] = str(self.out)
        out["silence"] = list(self.silence)
        out["engines"], out["rate_wpm"] = list(self.engines), list(self.rate_wpm)
        out["val_speakers"], out["test_speakers"] = self.held_out()
        return out


@dataclass(frozen=True)
class CorpusSummary:
    out: Path
    clips: int
    seconds: float  # total media duration of the clips
    elapsed: float  # wall-clock seconds taken by the clips (scenes not included)
    split_clips: dict[str, int] = field(default_factory=dict)
    scenes: int = 0
    scene_seconds: float = 0.0  # total media duration of the scenes
    scene_elapsed: float = 0.0  # wall-clock seconds taken by the scenes

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def clips_per_second(self) -> float:
        return self.clips / max(self.elapsed, 1e-9)

    def line(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.split_clips.items())
        scenes = (f"; {self.scenes} scenes ({self.scene_seconds / 60:.1f} min) in "
                  f"{self.scene_elapsed:.1f} s" if self.scenes else "")
        return (f"{self.clips} clips ({splits}), {self.hours:.3f} h in {self.elapsed:.1f} s, "
                f"{self.clips_per_second:.2f} clips/s{scenes} -> {self.out}")


@dataclass(frozen=True)
class _Task:
    config: SynthConfig
    speaker_index: int
    speaker: Speaker
    utt: int  # 1-based, as LRS numbers them

    @property
    def clip_id(self) -> str:
        return f"{self.speaker.id}/{self.utt:05d}"


def _make_one(task: _Task) -> tuple[str, float]:
    """Generate and write one clip (runs in a worker process). Returns (clip id, seconds).

    A clip whose .txt exists is kept: the .txt is written after the mp4, so it marks a
    finished clip, and a long generation killed midway resumes where it stopped (every clip
    depends only on its own seed, so the resumed corpus equals an uninterrupted one)."""
    from avsync.media.encode import write_mp4

    stem = task.config.out / "main" / task.clip_id
    if stem.with_suffix(".txt").is_file() and stem.with_suffix(".mp4").is_file():
        return task.clip_id, _duration(stem.with_suffix(".mp4"))
    rng = rng_for(task.config.seed, UTTERANCE, task.speaker_index, task.utt)
    clip = make_clip(task.speaker, rng, task.config.text, task.config.silence,
                     task.config.split_of(task.speaker_index))
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(stem.with_suffix(".mp4"), clip.frames, clip.audio, fps=FPS,
              sample_rate=SAMPLE_RATE, crf=task.config.crf)
    partial = stem.with_suffix(".txt.partial")  # renamed into place: a .txt is always whole
    write_annotation(partial, clip.annotation)
    os.replace(partial, stem.with_suffix(".txt"))
    return task.clip_id, clip.duration


def _duration(mp4: Path) -> float:
    """Seconds of a written clip, from its container header (nothing decoded)."""
    import av

    with av.open(str(mp4)) as container:
        return float(container.duration or 0) / 1_000_000


def _write_lists(config: SynthConfig, clip_ids: list[str], speakers: list[Speaker]) -> dict:
    split_by_speaker = {s.id: config.split_of(i) for i, s in enumerate(speakers)}
    counts = {}
    for split in SPLITS:
        ids = sorted(c for c in clip_ids if split_by_speaker[c.split("/")[0]] == split)
        (config.out / f"{split}.txt").write_text("".join(f"{c}\n" for c in ids))
        counts[split] = len(ids)
    return counts


def _write_metadata(config: SynthConfig, speakers: list[Speaker], clips: int,
                    seconds: float) -> None:
    meta = {
        "format": FORMAT, "version": VERSION, "seed": config.seed, "config": config.to_json(),
        "clips": clips, "seconds": round(seconds, 3),
        "speakers": [dict(s.to_json(), split=config.split_of(i)) for i, s in enumerate(speakers)],
    }
    (config.out / "corpus.json").write_text(json.dumps(meta, indent=1) + "\n")


def generate_corpus(config: SynthConfig, progress: bool = True) -> CorpusSummary:
    """Write the corpus described by `config` (see the module docstring for the layout)."""
    started = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    speakers = [make_speaker(config.seed, i, engines=config.engines, rate_wpm=config.rate_wpm,
                             appearance=config.appearance) for i in range(config.speakers)]
    tasks = [_Task(config, i, s, u) for i, s in enumerate(speakers)
             for u in range(1, config.utts_per_speaker + 1)]
    results = dict(parallel_map(_make_one, tasks, config.workers, progress, "clip"))
    seconds = sum(results.values())
    counts = _write_lists(config, list(results), speakers)
    _write_metadata(config, speakers, len(results), seconds)
    elapsed = time.perf_counter() - started
    scenes, scene_seconds = 0, 0.0
    if config.scenes:
        from avsync.data.synth.scenes import generate_scenes

        scenes, scene_seconds = generate_scenes(config.seed, config.scenes, config.out,
                                                config.text, config.workers, progress,
                                                config.appearance, config.engines,
                                                config.rate_wpm)
    return CorpusSummary(out=config.out, clips=len(results), seconds=seconds, elapsed=elapsed,
                         split_clips=counts, scenes=scenes, scene_seconds=scene_seconds,
                         scene_elapsed=time.perf_counter() - started - elapsed)
