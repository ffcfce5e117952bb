"""What `avsync eval` measures on: test clips, their babble mixtures, shifted sync windows and
the multi-face ASD scenes. numpy only; every random choice is seeded.

- Test clips come from a prepared cache (mouth ROIs at the stored size, 16 kHz audio, text).
- Babble for clip i is made from the *other* test clips (`avsync.media.noise.make_babble`),
  seeded by (seed, i), and mixed at each SNR over the clip's active speech power
  (`mix_at_snr`), so every SNR row hears the same babble at a different level.
- Sync windows: 2 s of a clip's video with 2 s of its audio taken `offset` steps earlier, so
  that the sound of frame t lies at audio step t + offset: a positive offset means the audio
  lags the video (the convention of `avsync.runtime.sync` and `avsync.models.losses`).
- ASD scenes: `<scenes>/*.mp4` with `labels.csv` rows in the AVA-ActiveSpeaker format
  (video_id, frame_timestamp, x1, y1, x2, y2, label, entity_id; boxes normalised); each
  labelled face's mouth is cropped per frame with `avsync.media.roi.crop_mouths`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.data.cache import PCM_SCALE, PreparedCache
from avsync.errors import DataError, MediaError
from avsync.media.face_tracking import FaceCentredCropper
from avsync.media.noise import NOISE_KINDS, make_babble, mix_at_snr, noise_of_kind
from avsync.media.roi import FACE_BOX, Box, check_convention, crop_mouths
from avsync.timebase import FPS, SAMPLES_PER_STEP

SPEAKING_AUDIBLE = "SPEAKING_AUDIBLE"  # the only positive label of AVA-ActiveSpeaker
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class EvalClip:
    """id; text: normalised reference; audio: (T*640,) float32 in [-1, 1] @ 16 kHz;
    rois: (T, R, R) uint8 mouth ROIs at the cache's stored size."""

    id: str
    text: str
    audio: np.ndarray
    rois: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.rois)


def load_clips(cache: PreparedCache, split: str, max_clips: int | None = None
               ) -> list[EvalClip]:
    """The clips of one split of a prepared cache (the first `max_clips`, in cache order)."""
    indices = cache.split(split)
    if not indices:
        raise DataError(f"{cache.path} has no clips in split {split!r} (it has "
                        f"{dict(cache.splits)}); choose another with --split")
    clips = []
    for index in indices[:max_clips]:
        clip = cache[index]
        clips.append(EvalClip(clip.id, clip.text, clip.audio.astype(np.float32) / PCM_SCALE,
                              np.ascontiguousarray(clip.roi)))
    return clips


def babble_for(clips: Sequence[EvalClip], index: int, seed: int, talkers: int
               ) -> np.ndarray | None:
    """(len(audio),) float32 babble of up to `talkers` other clips, or None when there is no
    other clip (one-clip test sets stay clean)."""
    others = [c.audio for i, c in enumerate(clips) if i != index and len(c.audio)]
    if not others or not len(clips[index].audio):
        return None
    rng = np.random.default_rng([seed, index])
    try:
        return make_babble(others, len(clips[index].audio), rng, min(talkers, len(others)))
    except MediaError:
        return None


def mixtures(clips: Sequence[EvalClip], babble: Sequence[np.ndarray | None], snr_db: float,
             seed: int) -> list[np.ndarray]:
    """Each clip's audio with its babble at `snr_db` (the clean audio when the clip or the
    babble is silent: an SNR is undefined then)."""
    out = []
    for i, (clip, noise) in enumerate(zip(clips, babble, strict=True)):
        if noise is None:
            out.append(clip.audio)
            continue
        try:
            out.append(mix_at_snr(clip.audio, noise, snr_db, np.random.default_rng([seed, i, 1])))
        except MediaError:
            out.append(clip.audio)
    return out


def noise_mixtures(clips: Sequence[EvalClip], kind: str, snr_db: float, seed: int
                   ) -> list[np.ndarray]:
    """Each clip's audio with non-speech noise of `kind` (white, pink, brown, keyboard) at
    `snr_db`, seeded by (seed, clip, kind) so every SNR row hears the same noise."""
    out = []
    for i, clip in enumerate(clips):
        rng = np.random.default_rng([seed, i, 2, NOISE_KINDS.index(kind)])
        try:
            noise = noise_of_kind(kind, len(clip.audio), rng)
            out.append(mix_at_snr(clip.audio, noise, snr_db, rng))
        except MediaError:  # silent clip: no SNR is defined
            out.append(clip.audio)
    return out


def speaker_of(clip_id: str) -> str:
    """The speaker (LRS: the video folder) of a clip id `speaker/utterance`."""
    return clip_id.split("/", 1)[0]


def mismatched_lips(clips: Sequence[EvalClip]) -> list[np.ndarray]:
    """For each clip, the lips of another speaker's clip, looped or cut to its length: the
    video of an off-screen speaker, a listener, a dub. The next clip (in order) of a different
    speaker; the clip's own lips reversed in time when the split has one speaker only."""
    out = []
    for i, clip in enumerate(clips):
        other = next((clips[(i + k) % len(clips)] for k in range(1, len(clips))
                      if speaker_of(clips[(i + k) % len(clips)].id) != speaker_of(clip.id)),
                     None)
        source = other.rois if other is not None else clip.rois[::-1]
        out.append(np.ascontiguousarray(np.take(source, np.arange(clip.steps), axis=0,
                                                mode="wrap")))
    return out


def training_vocabulary(cache: PreparedCache, split: str = "train") -> frozenset[str]:
    """The words of a split's transcripts (what the tokenizer and the LM were built from)."""
    return frozenset(word for i in cache.split(split)
                     for word in str(cache.record(i).get("text", "")).split())


def clip_engines(cache: PreparedCache) -> dict[str, str]:
    """Speaker -> the synthesis engine of its voice, from the synthetic corpus's corpus.json;
    {} for other corpora (LRS), whose speakers are people."""
    import json

    root = cache.config.get("source_root")
    path = Path(root) / "corpus.json" if root else None
    if path is None or not path.is_file():
        return {}
    speakers = json.loads(path.read_text()).get("speakers", [])
    return {s["id"]: _engine(s.get("voice", {})) for s in speakers}


def _engine(voice: dict) -> str:
    """flite voices name their engine; festival's have an HTS `speed`; espeak's a language."""
    if "engine" in voice:
        return str(voice["engine"])
    return "festival" if "speed" in voice else "espeak"


@dataclass(frozen=True)
class SceneTurn:
    start: float  # seconds
    end: float
    face: int  # index of the speaking face, left to right
    text: str


def scene_turns(mp4: Path) -> list[SceneTurn]:
    """The reference turns of a synthetic multi-face scene (`<scene>.json` beside its mp4)."""
    import json

    meta = json.loads(mp4.with_suffix(".json").read_text())
    turns = [SceneTurn(float(t["start"]), float(t["end"]), int(t["entity_id"].rsplit(":", 1)[1]),
                       str(t["text"])) for t in meta.get("turns", [])]
    return sorted(turns, key=lambda t: t.start)


@dataclass(frozen=True)
class SyncWindow:
    """A `window` steps of video and audio whose audio lags the video by `offset` steps."""

    clip_id: str
    offset: int
    audio: np.ndarray  # (window * 640,) float32
    rois: np.ndarray  # (window, R, R) uint8


def sync_windows(clips: Sequence[EvalClip], offsets: Sequence[int], window: int
                 ) -> tuple[list[SyncWindow], int]:
    """One window per (clip, offset) that fits inside the clip, taken from the middle of the
    possible start steps. -> (windows, how many (clip, offset) pairs did not fit)."""
    windows, skipped = [], 0
    for clip in clips:
        for offset in offsets:
            # video steps [s, s + window), audio steps [s - offset, s - offset + window)
            low, high = max(0, offset), min(clip.steps - window, clip.steps - window + offset)
            if high < low:
                skipped += 1
                continue
            s = (low + high) // 2
            a = (s - offset) * SAMPLES_PER_STEP
            windows.append(SyncWindow(clip.id, offset,
                                      clip.audio[a:a + window * SAMPLES_PER_STEP],
                                      clip.rois[s:s + window]))
    return windows, skipped


@dataclass(frozen=True)
class FaceTrack:
    """One labelled face of a scene: rois (T, R, R) uint8 over the whole scene (each frame
    cropped with the nearest labelled box); labelled frames (K,) int and positives (K,) bool."""

    entity_id: str
    rois: np.ndarray
    frames: np.ndarray
    positive: np.ndarray


@dataclass(frozen=True)
class AsdScene:
    video_id: str
    audio: np.ndarray  # (T * 640,) float32 @ 16 kHz
    faces: tuple[FaceTrack, ...]


Row = tuple[int, tuple[float, float, float, float], bool]  # frame, box, SPEAKING_AUDIBLE


def read_labels(path: Path) -> dict[str, dict[str, list[Row]]]:
    """AVA-ActiveSpeaker CSV -> {video_id: {entity_id: [(frame, box, positive), ...]}}.

    A header line, if any, is skipped; frame = round(timestamp * 25), so timestamps count
    seconds from the start of the scene's mp4 (AVA's own files count from the start of the
    movie: subtract the clip's start first)."""
    table: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row:
                continue
            try:
                video, stamp, x1, y1, x2, y2, label, entity = row[:8]
                box = (float(x1), float(y1), float(x2), float(y2))
                frame = int(round(float(stamp) * FPS))
            except ValueError:
                if number == 1:
                    continue  # a header
                raise DataError(f"{path}:{number}: not an AVA-ActiveSpeaker row: {row}") from None
            table[video][entity].append((frame, box, label == SPEAKING_AUDIBLE))
    return {video: dict(faces) for video, faces in table.items()}


def _crops(frames: np.ndarray, first: int, rows: list[Row], roi: int,
           cropper: FaceCentredCropper | None = None) -> np.ndarray:
    """Mouth ROIs of one face in frames [first, first + len(frames)) of a scene: each frame's
    box is that of the face's last labelled frame at or before it (the first one before).
    cropper: for a mean-face model, the face's own cropper (its landmarks tracked inside its
    box, which is the fallback face where none is found); None: the face-box crop."""
    height, width = frames.shape[1:]
    labelled = np.array([r[0] for r in rows])
    nearest = np.clip(np.searchsorted(labelled, first + np.arange(len(frames)), side="right")
                      - 1, 0, len(rows) - 1)
    boxes = [Box(x1 * width, y1 * height, (x2 - x1) * width, (y2 - y1) * height)
             for _, (x1, y1, x2, y2), _ in rows]
    if cropper is None:
        return crop_mouths(frames, [boxes[i] for i in nearest], roi)
    out = []
    for frame, index in zip(frames, nearest, strict=True):
        box = boxes[index]
        x0, y0 = max(0, round(box.x)), max(0, round(box.y))
        x1, y1 = min(width, round(box.x + box.w)), min(height, round(box.y + box.h))
        out.append(cropper.crop(frame[None, y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]))
    return np.concatenate(out)


def _scene(path: Path, faces: dict[str, list[Row]], roi: int,
           convention: str = FACE_BOX) -> AsdScene:
    """A scene read piece by piece (`read_mouths`' working size): only its crops are kept,
    cut by the model's `convention`."""
    from avsync.media.decode import MediaReader
    from avsync.media.mouths import working_format

    labelled = {entity: sorted(r for r in rows if r[0] >= 0) for entity, rows in faces.items()}
    croppers = {entity: None if convention == FACE_BOX else FaceCentredCropper(roi, convention)
                for entity in faces}
    crops: dict[str, list[np.ndarray]] = {entity: [] for entity in faces}
    audio, steps = [], 0
    with MediaReader(path, frames=working_format(roi)) as reader:
        for piece in reader.pieces():
            if len(piece.frames):
                for entity, rows in labelled.items():
                    if rows:
                        crops[entity].append(_crops(piece.frames, steps, rows, roi,
                                                    croppers[entity]))
                steps += len(piece.frames)
            audio.append(piece.audio)
    samples = np.concatenate(audio)
    steps = min(steps, len(samples) // SAMPLES_PER_STEP)
    tracks = []
    for entity, rows in sorted(faces.items()):
        inside = sorted(r for r in rows if 0 <= r[0] < steps)
        if not inside:
            raise DataError(f"face {entity}: no labelled frame inside the video")
        tracks.append(FaceTrack(entity, np.concatenate(crops[entity])[:steps],
                                np.array([r[0] for r in inside]),
                                np.array([r[2] for r in inside])))
    return AsdScene(path.stem, samples[:steps * SAMPLES_PER_STEP], tuple(tracks))


def load_scenes(directory: Path, roi: int, max_scenes: int | None = None,
                convention: str = FACE_BOX) -> list[AsdScene]:
    """Every labelled scene of `directory` (mp4 + labels.csv), faces cropped at `roi` px by
    the crop `convention` (`avsync.media.roi`)."""
    labels_path = directory / LABELS_FILE
    if not labels_path.is_file():
        raise DataError(f"{labels_path}: no ASD labels; generate scenes with `avsync synth "
                        "--scenes N` or pass --no-asd")
    return [_scene(directory / f"{video_id}.mp4", faces, roi, check_convention(convention))
            for video_id, faces in sorted(read_labels(labels_path).items())[:max_scenes]]
