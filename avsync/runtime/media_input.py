"""A media file -> what the runtime eats, piece by piece: 16 kHz audio and mouth ROIs at the
model's size, in memory that does not grow with the file's duration or resolution.

Frames are scaled as they are decoded to a working size (`avsync.media.mouths.working_format`:
the shorter side at most 480 lines, what face detection needs), cropped to mouth ROIs at once,
and only the ROIs travel on.

Faces, two ways: `whole` (the frame is the face box: LRS2/LRS3-style face-centred clips and
the synthetic corpus) or `detect` (face detection + landmark tracking, for arbitrary video).
`steps()` gives every face of every frame (what `avsync transcribe` hands the stream API, which
picks the lips per step as the server does), tracking the faces as it reads, in one pass.
`pieces()` gives one face per frame, the track seen on most frames (held where it is missing),
for whole-clip tools; with `detect` that needs the whole file's tracks first, so it reads the
file twice: once (video only) to track the faces, keeping only what a crop needs of each (box
and 6 points), then again for the ROIs and audio.

Mouths are cut by the model's crop convention (`model.json` roi.convention,
`avsync.media.roi`). `detect` follows faces by their landmarks (`avsync.media.face_tracking`)
for both conventions, each frame keeping the face box and 6 crop points; `whole` is the
fixed crop for a face-box model and, for a mean-face model, the clip's face by its landmarks
with the whole-frame fallback where none is found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from avsync.errors import MediaError
from avsync.media.decode import Damage, MediaReader
from avsync.media.mouths import working_format
from avsync.media.roi import FACE_BOX, Face
from avsync.runtime.chunking import FaceFrame
from avsync.runtime.model_card import ModelCard
from avsync.runtime.offline import ClipInput
from avsync.runtime.results import Box

FaceMode = Literal["whole", "detect"]


@dataclass(frozen=True)
class MediaInput:
    """A whole (short) file as one ClipInput (see `load_media`)."""

    clip: ClipInput
    duration: float  # seconds
    faces: str  # how the mouths were found ("whole", "detect", "none")
    damage: tuple[Damage, ...] = ()


def mouth_rois(frames: np.ndarray, size: int, faces: FaceMode,
               convention: str = FACE_BOX) -> np.ndarray | None:
    """frames: (T, H, W) uint8 gray -> (T, size, size) uint8 ROIs cut by `convention`
    (`avsync.media.roi`), None if no face found."""
    from avsync.media.face_tracking import FaceCentredCropper
    from avsync.media.roi import crop_faces

    if len(frames) == 0:
        return None
    if faces == "whole":
        return FaceCentredCropper(size, convention).crop(frames)
    speaker = MostSeenFace(convention)
    for frame in frames:
        speaker.add(frame)
    boxes = speaker.boxes()
    return None if boxes is None else crop_faces(frames, boxes, size, convention)


class FrameFaces:
    """Faces tracked frame by frame by their landmarks, for a one-pass reader: each frame's
    {track: `roi.Face`} (the box and 6 crop points), the largest first, as the server orders
    a frame's faces."""

    def __init__(self, convention: str = FACE_BOX) -> None:
        from avsync.media.face_tracking import LandmarkTracker
        from avsync.media.roi import check_convention

        self.convention = check_convention(convention)
        self._tracker = LandmarkTracker(max_faces=4)

    def faces(self, frame: np.ndarray) -> dict[int, Face]:
        """frame: (H, W) uint8 gray, the next frame of the video."""
        faces = {f.track_id: f.face.compact() for f in self._tracker.update(frame)}
        return dict(sorted(faces.items(), key=lambda tf: -tf[1].box.w * tf[1].box.h))


class MostSeenFace:
    """Tracks faces frame by frame by their landmarks (`FrameFaces`) and keeps only what a
    crop needs (`roi.Face`: the face box and 6 crop points, not 468); `boxes()` then gives the
    face of the track seen most (ties: the older track) for every frame, held where it is
    missing. Both conventions crop from these faces (face-box from the box)."""

    def __init__(self, convention: str = FACE_BOX) -> None:
        self._faces = FrameFaces(convention)
        self.convention = self._faces.convention
        self._seen: dict[int, dict[int, Face]] = {}  # track -> {frame index: Face}
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        """frame: (H, W) uint8 gray, the next frame of the video."""
        for track, face in self._faces.faces(frame).items():
            self._seen.setdefault(track, {})[self.frames] = face
        self.frames += 1

    def boxes(self) -> list | None:
        if not self._seen:
            return None
        speaker = max(self._seen, key=lambda t: (len(self._seen[t]), -t))
        known = self._seen[speaker]
        indices = np.array(sorted(known))
        frames = np.arange(self.frames)
        after = np.clip(np.searchsorted(indices, frames), 0, len(indices) - 1)
        before = np.clip(after - 1, 0, len(indices) - 1)
        nearest = np.where(np.abs(frames - indices[before]) <= np.abs(indices[after] - frames),
                           indices[before], indices[after])
        return [known[int(i)] for i in nearest]


@dataclass
class MediaStream:
    """A media file as a stream of ClipInput pieces for one `StreamingRecognizer`.

        stream = MediaStream(path, card, audio=True, video=True, faces="whole")
        for piece in stream.pieces(): recognizer.feed(audio=piece.audio, frames=piece.rois)
        stream.damage, stream.duration, stream.warnings   # once the pieces are read

    `has_audio`/`has_rois` (known before the first piece) say which modalities the pieces
    carry. A modality the file lacks is left out with a warning; MediaError when nothing
    usable remains. With `detect`, a video in which no face is found is too: `pieces()` finds
    that before its first piece, `steps()` (one pass) once it has read the file, when
    `has_rois` turns False.
    """

    path: str | Path
    card: ModelCard
    audio: bool = True
    video: bool = True
    faces: FaceMode = "whole"
    has_audio: bool = field(init=False, default=False)
    has_rois: bool = field(init=False, default=False)
    duration: float = field(init=False, default=0.0)
    damage: tuple[Damage, ...] = field(init=False, default=())
    warnings: list[str] = field(init=False, default_factory=list)
    _boxes: list | None = field(init=False, default=None, repr=False)
    _speaker: MostSeenFace | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._format = working_format(self.card.roi.stored)
        with MediaReader(self.path, video=self.video, audio=self.audio,
                         frames=self._format) as reader:
            self._check_streams(reader)
            self.has_audio, self.has_rois = reader.has_audio, reader.has_video

    @property
    def face_mode(self) -> str:
        """How the mouths were found: "whole", "detect", or "none" (no lips read)."""
        return self.faces if self.has_rois else "none"

    def _check_streams(self, reader: MediaReader) -> None:
        name = str(self.path)
        still = " (its video stream is a still image, e.g. cover art)" \
            if reader.still_image else ""
        if self.audio and not reader.file_has_audio:
            if not self.video:
                raise MediaError(f"{name}: no audio stream to transcribe; the file has only "
                                 "video: drop --audio-only to read the lips")
            if reader.file_has_video:
                self.warnings.append("the file has no audio: transcribed from the lips alone")
        if self.video and not reader.file_has_video:
            if not self.audio:
                raise MediaError(f"{name}: no video to read lips from; the file has only "
                                 f"audio{still}: drop --video-only")
            if reader.still_image:
                self.warnings.append("the video stream is a still image (cover art): "
                                     "transcribed from the audio alone")

    def _find_speaker(self) -> None:
        """The first read (video only): every frame's faces, then the speaker's boxes."""
        speaker = MostSeenFace(self.card.roi.convention)
        with MediaReader(self.path, audio=False, frames=self._format) as video:
            for piece in video.pieces():
                for frame in piece.frames:
                    speaker.add(frame)
        self._speaker, self._boxes = speaker, speaker.boxes()
        if self._boxes is None:
            self._no_face()

    def _no_face(self) -> None:
        """`detect` found no face: the audio alone, or MediaError without it."""
        if not self.has_audio:
            raise MediaError(f"{self.path}: no face found in the video (--faces detect), so "
                             "no lips to read; try --faces whole for face-centred video")
        self.has_rois = False
        self.warnings.append("no face found (--faces detect): transcribed from the audio "
                             "alone")

    def pieces(self) -> Iterator[ClipInput]:
        """The file in order: ClipInput(audio (n,) float32 @ 16 kHz or None, rois (k, R, R)
        uint8 or None), each continuing the previous piece."""
        from avsync.media.face_tracking import FaceCentredCropper

        if self.has_rois and self.faces == "detect" and self._speaker is None:
            self._find_speaker()
        whole = FaceCentredCropper(self.card.roi.stored, self.card.roi.convention)
        with MediaReader(self.path, video=self.has_rois, audio=self.has_audio,
                         frames=self._format) as reader:
            index = 0
            for piece in reader.pieces():
                rois = None
                if self.has_rois:
                    rois = self._crop(piece.frames, index, whole)
                    index += len(piece.frames)
                yield ClipInput(piece.audio if self.has_audio else None, rois)
            self.duration, self.damage = reader.duration, tuple(reader.damage)

    def steps(self) -> Iterator[tuple[np.ndarray | None, list[FaceFrame] | None]]:
        """The file in order, as (audio (n,) float32 @ 16 kHz or None, one FaceFrame per
        video frame or None): every face of each frame, {track: (mouth ROI, face box)}."""
        from avsync.media.face_tracking import FaceCentredCropper
        from avsync.media.roi import crop_face, whole_frame_face

        size, convention = self.card.roi.stored, self.card.roi.convention
        whole = FaceCentredCropper(size, convention)
        tracker = FrameFaces(convention) if self.has_rois and self.faces == "detect" else None
        seen = False
        with MediaReader(self.path, video=self.has_rois, audio=self.has_audio,
                         frames=self._format) as reader:
            for piece in reader.pieces():
                frames: list[FaceFrame] | None = None
                if self.has_rois and tracker is None:
                    rois = whole.crop(piece.frames)
                    frames = [{0: (roi, _box(whole_frame_face(f.shape[1], f.shape[0])))}
                              for roi, f in zip(rois, piece.frames, strict=True)]
                elif self.has_rois:
                    assert tracker is not None
                    frames = [{t: (crop_face(f, face, size, convention), _box(face.box))
                               for t, face in tracker.faces(f).items()}
                              for f in piece.frames]
                    seen = seen or any(frames)
                yield (piece.audio if self.has_audio else None), frames
            self.duration, self.damage = reader.duration, tuple(reader.damage)
        if tracker is not None and not seen:
            self._no_face()

    def _crop(self, frames: np.ndarray, first: int, whole) -> np.ndarray:
        """whole: the FaceCentredCropper of face-centred (`whole`) streams."""
        from avsync.media.roi import crop_faces

        size = self.card.roi.stored
        if self._boxes is None or len(frames) == 0:
            return whole.crop(frames)
        last = len(self._boxes) - 1
        boxes = [self._boxes[min(first + i, last)] for i in range(len(frames))]
        return crop_faces(frames, boxes, size, self.card.roi.convention)


def load_media(path: str | Path, card: ModelCard, *, audio: bool = True, video: bool = True,
               faces: FaceMode = "whole") -> MediaInput:
    """A whole (short) file as one ClipInput for this model, through `MediaStream`."""
    stream = MediaStream(path, card, audio=audio, video=video, faces=faces)
    pieces = list(stream.pieces())
    pcm = np.concatenate([p.audio for p in pieces]) if stream.has_audio else None
    rois = np.concatenate([p.rois for p in pieces]) if stream.has_rois else None
    return MediaInput(ClipInput(pcm, rois), stream.duration, stream.face_mode, stream.damage)


def _box(box) -> Box:
    """A `roi.Box` as the (x, y, w, h) tuple results carry."""
    return (float(box.x), float(box.y), float(box.w), float(box.h))
