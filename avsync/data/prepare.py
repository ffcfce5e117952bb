"""Decode every manifest entry once into a prepared cache that training reads fast.

Each clip: read piece by piece with `avsync.media.mouths.read_mouths` in worker processes
(frames scaled to a working size as decoded, then cropped at once: memory does not grow with
resolution), mouth ROIs cropped with the fixed LRS convention (`mouth_box(whole_frame_face(w,
h))`, area-resized to `roi_size`), audio as int16 @ 16 kHz trimmed/padded to exactly T * 640 samples, word times
in steps. Tokens: stored when a tokenizer is given, else left empty and computed at load time
by `AVSpeechDataset` (sentencepiece encodes a transcript in microseconds, so a cache need
not be rebuilt when the vocabulary changes).

Bad inputs (see `report.Reason`) are skipped, counted and written to `report.json`; the run
never stops for them. A journal makes a re-run resume (or, when all is done, return at once),
and `manifest.json` is written last, so an interrupted prepare never reads as complete. A
clip is redone when its manifest entry or its file (size, mtime) changed; a different ROI
size, tokenizer or check threshold starts the cache over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avsync.data.cache import (
    CACHE_FORMAT,
    CACHE_VERSION,
    MANIFEST_FILE,
    PCM_SCALE,
    REPORT_FILE,
)
from avsync.data.index import Manifest, ManifestEntry
from avsync.data.partition import Part, part_config, part_manifest
from avsync.data.report import Problem, Reason, report_dict, summarize, write_json_atomic
from avsync.data.shards import Journal, JournalLine, ShardWriter
from avsync.errors import ConfigError, MediaError
from avsync.timebase import FPS, ROI_STORED, SAMPLES_PER_STEP, seconds_to_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareConfig:
    """How clips become cache records.

    roi_size: stored mouth-ROI side in pixels (96 is the published convention; the CPU model
        uses 40). workers: decoding processes (1 = in this process). shard_bytes: ROI bytes
        per shard before a new one starts. fps_tolerance: |source fps - 25| allowed.
    max_length_mismatch: audio and video may disagree by at most this fraction of the clip
        (and always by 0.2 s) before the clip counts as broken.
    roi_convention: how mouths are cut (`avsync.media.roi`): "face-box" (the fixed crop of
        the face-centred frame) or "mean-face" (landmarks tracked over the clip, auto_avsr's
        way); the cache records it and training checks it against the model's.
    """

    roi_size: int = ROI_STORED
    roi_convention: str = "face-box"
    workers: int = 1
    shard_bytes: int = 1 << 30
    fps_tolerance: float = 0.05
    max_length_mismatch: float = 0.1

    def __post_init__(self) -> None:
        if self.roi_size <= 0 or self.workers <= 0 or self.shard_bytes <= 0:
            raise ConfigError(f"roi_size, workers and shard_bytes must be positive: {self}")
        from avsync.media.roi import check_convention

        check_convention(self.roi_convention)


@dataclass(frozen=True)
class PrepareResult:
    path: Path
    kept: dict[str, int]
    problems: tuple[Problem, ...]
    decoded: int  # clips decoded in this run
    reused: int  # clips found done by an earlier run
    seconds: float
    summary: str = field(repr=False, default="")


# ------------------------------------------------------------------- worker side (no state)
@dataclass(frozen=True)
class _Job:
    media: str  # absolute path
    start: float | None
    end: float | None
    config: PrepareConfig


def _media_problem(error: MediaError) -> tuple[Reason, str]:
    message = str(error)
    if "audio" in message and "no samples" in message:
        return Reason.ZERO_LENGTH_AUDIO, message
    return Reason.CORRUPT_MEDIA, message


def _check_clip(clip: Any, config: PrepareConfig) -> tuple[Reason, str] | None:
    """clip: a MouthClip (rois, audio, source_fps, has_video, has_audio)."""
    if not clip.has_video:
        return Reason.NO_VIDEO, "no video stream"
    if not clip.has_audio:
        return Reason.ZERO_LENGTH_AUDIO, "no audio samples (no audio stream)"
    if clip.source_fps is None or abs(clip.source_fps - FPS) > config.fps_tolerance:
        return Reason.WRONG_FPS, (f"{clip.source_fps} fps; avsync needs {FPS} fps video "
                                  f"(re-encode with: ffmpeg -i IN -r {FPS} OUT)")
    video_s, audio_s = len(clip.rois) / FPS, len(clip.audio) / (FPS * SAMPLES_PER_STEP)
    if abs(video_s - audio_s) > max(0.2, config.max_length_mismatch * max(video_s, audio_s)):
        return Reason.LENGTH_MISMATCH, f"video {video_s:.2f} s but audio {audio_s:.2f} s"
    return None


def to_int16(audio: np.ndarray) -> np.ndarray:
    """(S,) float32 in [-1, 1] -> (S,) int16 PCM (x * 32768, rounded, clipped)."""
    return np.clip(np.rint(audio * PCM_SCALE), -32768, 32767).astype(np.int16)


def clip_arrays(frames: np.ndarray, audio: np.ndarray, roi_size: int, first: int = 0,
                last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What the cache stores for steps [first, last) of a decoded clip.

    frames: (T, H, W) uint8 gray; audio: (S,) float32 @ 16 kHz. Returns ROIs (n, R, R) uint8
    and audio (n * 640,) int16, padded with silence or trimmed to match the video exactly.
    """
    from avsync.media.mouths import whole_frame_mouths

    last = len(frames) if last is None else last
    return roi_arrays(whole_frame_mouths(frames[first:last], roi_size), audio, len(frames),
                      first)


def roi_arrays(rois: np.ndarray, audio: np.ndarray, steps: int, first: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """rois: (n, R, R) uint8 of steps [first, first + n) of a clip of `steps` steps; audio:
    (S,) float32 of the whole clip -> (rois, (n * 640,) int16 of the same steps), the audio
    padded with silence or trimmed to match the video exactly."""
    padded = np.zeros(steps * SAMPLES_PER_STEP, np.float32)
    usable = min(len(audio), padded.size)
    padded[:usable] = audio[:usable]
    last = first + len(rois)
    return rois, to_int16(padded[first * SAMPLES_PER_STEP:last * SAMPLES_PER_STEP])


def _decode_job(job: _Job) -> tuple[np.ndarray, np.ndarray] | tuple[Reason, str]:
    """Worker: the arrays of one entry, or (reason, detail) when the input is bad."""
    from avsync.media.mouths import read_mouths

    try:
        clip = read_mouths(job.media, job.config.roi_size, job.config.roi_convention)
    except MediaError as error:
        return _media_problem(error)
    if clip.damage:  # decodable in part: not what a training example should be
        return Reason.CORRUPT_MEDIA, "; ".join(d.describe() for d in clip.damage)
    problem = _check_clip(clip, job.config)
    if problem is not None:
        return problem
    steps = len(clip.rois)
    first = 0 if job.start is None else min(seconds_to_steps(job.start), steps)
    last = steps if job.end is None else min(seconds_to_steps(job.end), steps)
    if last <= first:
        return Reason.EMPTY_SEGMENT, (f"segment {job.start}-{job.end} s lies outside the "
                                      f"{steps / FPS:.2f} s clip")
    return roi_arrays(clip.rois[first:last], clip.audio, steps, first)


# ------------------------------------------------------------------- parent side
def _entry_key(entry: ManifestEntry, media: Path) -> str:
    """Changes when the entry or its video file changes, so stale work is never reused."""
    try:
        stat = media.stat()
        signature = [stat.st_size, stat.st_mtime_ns]
    except FileNotFoundError:
        signature = None
    payload = json.dumps([entry.to_json(), signature], sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()


def _fingerprint(config: PrepareConfig, tokenizer_sha: str | None) -> str:
    payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "roi_size": config.roi_size,
               "tokenizer": tokenizer_sha, "fps_tolerance": config.fps_tolerance,
               "max_length_mismatch": config.max_length_mismatch}
    if config.roi_convention != "face-box":  # caches cut before conventions keep their print
        payload["roi_convention"] = config.roi_convention
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def word_steps(entry: ManifestEntry, steps: int) -> list[list[Any]]:
    """Word timings in steps [start, end) relative to the entry, clamped to the clip."""
    out: list[list[Any]] = []
    for word in entry.words:
        start = min(seconds_to_steps(word.start), steps)
        end = min(max(seconds_to_steps(word.end), start + 1), steps)
        out.append([word.word, start, end])
    return out


def _results(jobs: list[_Job], workers: int) -> Iterator[Any]:
    """Decoded results in job order; worker processes when workers > 1."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_decode_job, jobs)
        return
    # forkserver: workers start from a clean process, not a fork of a (maybe torch-laden,
    # multi-threaded) parent.
    context = multiprocessing.get_context("forkserver")
    with context.Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_decode_job, jobs, chunksize=1)


def _progress(items: Iterable[Any], total: int, enabled: bool) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc="prepare", unit="clip", disable=not enabled,
                dynamic_ncols=True)


def prepare_cache(manifest: Manifest, out: str | Path, config: PrepareConfig | None = None,
                  tokenizer: Any | None = None, progress: bool = True,
                  part: Part | None = None) -> PrepareResult:
    """Write (or resume, or confirm) the cache of `manifest` at `out`; see the module doc.

    tokenizer: an `avsync.text.Tokenizer` whose ids are stored with each clip, or None.
    part: only that part of the manifest, into `out/part-K-of-N` (`avsync.data.partition`;
    `merge_parts` joins the parts). Returns counts and every problem (the manifest's own plus
    the decoding ones); never raises for a bad input.
    """
    config = config or PrepareConfig()
    out = Path(out)
    placement: dict[str, Any] = {"entries": list(range(len(manifest.entries))), "part": None}
    if part is not None:
        whole = manifest
        manifest, placement["entries"] = part_manifest(whole, part)
        placement["part"] = part_config(whole, part, manifest)
        out = out / part.dirname
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_sha = None if tokenizer is None else tokenizer.sha256
    journal = Journal(out, _fingerprint(config, tokenizer_sha))
    keys = [_entry_key(e, manifest.media_path(e)) for e in manifest.entries]
    todo = [i for i, key in enumerate(keys) if key not in journal.done]
    reused = len(keys) - len(todo)
    try:
        if todo:
            (out / MANIFEST_FILE).unlink(missing_ok=True)  # complete only once this run ends
            _run(manifest, out, config, tokenizer, journal, keys, todo, progress)
    finally:
        journal.close()
    return _finish(manifest, out, config, tokenizer_sha, journal, keys, len(todo), reused,
                   time.perf_counter() - began, placement)


def _run(manifest: Manifest, out: Path, config: PrepareConfig, tokenizer: Any | None,
         journal: Journal, keys: list[str], todo: list[int], progress: bool) -> None:
    shard, offsets = journal.resume_point()
    writer = ShardWriter(out, config.roi_size, config.shard_bytes, shard, offsets)
    jobs = [_Job(str(manifest.media_path(manifest.entries[i])), manifest.entries[i].start,
                 manifest.entries[i].end, config) for i in todo]
    try:
        results = zip(todo, _results(jobs, config.workers), strict=True)
        for i, result in _progress(results, len(todo), progress):
            entry = manifest.entries[i]
            if isinstance(result[0], Reason):
                problem = Problem(entry.media, result[0], result[1]).to_json()
                journal.add(JournalLine(keys[i], None, problem))
                continue
            roi, audio = result
            tokens = np.asarray(tokenizer.encode(entry.text) if tokenizer else [], np.int32)
            record = writer.append(roi, audio, tokens)
            journal.add(JournalLine(keys[i], record, None))
    finally:
        writer.close()


def _clip_record(entry: ManifestEntry, index: int, placed: dict[str, Any]) -> dict[str, Any]:
    """index: the entry's place in the whole manifest (a part's clips keep it for merging)."""
    segment = None if entry.start is None else [entry.start, entry.end]
    return {"id": entry.id, "entry": index, "split": entry.split, "speaker": entry.speaker,
            "text": entry.text, "source": entry.media, "segment": segment, "tag": entry.tag,
            "words": word_steps(entry, placed["steps"]), **placed}


def _finish(manifest: Manifest, out: Path, config: PrepareConfig, tokenizer_sha: str | None,
            journal: Journal, keys: list[str], decoded: int, reused: int,
            seconds: float, placement: dict[str, Any]) -> PrepareResult:
    clips, problems = [], list(manifest.problems)
    for entry, index, key in zip(manifest.entries, placement["entries"], keys, strict=True):
        line = journal.done[key]
        if line.record is not None:
            clips.append(_clip_record(entry, index, line.record))
        else:
            assert line.problem is not None
            problems.append(Problem.from_json(line.problem))
    kept = dict(Counter(c["split"] for c in clips))
    summary = summarize(f"prepared {out}", kept, problems)
    write_json_atomic(out / REPORT_FILE, report_dict(
        kept, problems, source_root=str(manifest.root), decoded=decoded, reused=reused))
    cache_config = {**asdict(config), "source_root": str(manifest.root),
                    "layout": manifest.layout, "tokenizer_sha256": tokenizer_sha}
    cache_config.pop("workers")
    if placement["part"] is not None:
        cache_config["part"] = placement["part"]
    write_json_atomic(out / MANIFEST_FILE, {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                                            "config": cache_config, "clips": clips}, indent=None)
    log.debug("%s", summary)
    return PrepareResult(out, kept, tuple(problems), decoded, reused, seconds, summary)
