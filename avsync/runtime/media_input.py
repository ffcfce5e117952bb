"""A media file -> what the runtime eats: 16 kHz audio and mouth ROIs at the model's size.

Faces, two ways: `whole` (the frame is the face box: LRS2/LRS3-style face-centred clips and
the synthetic corpus) or `detect` (OpenCV detection + tracking by `avsync.media.faces`, for
arbitrary video): the track seen on most frames is the speaker whose lips are read; on frames
where it is missing its nearest known box is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from avsync.errors import MediaError
from avsync.runtime.model_card import ModelCard
from avsync.runtime.offline import ClipInput

FaceMode = Literal["whole", "detect"]


@dataclass(frozen=True)
class MediaInput:
    clip: ClipInput
    duration: float  # seconds
    faces: str  # how the mouths were found ("whole", "detect", "none")


def mouth_rois(frames: np.ndarray, size: int, faces: FaceMode) -> np.ndarray | None:
    """frames: (T, H, W) uint8 gray -> (T, size, size) uint8 ROIs, None if no face found."""
    from avsync.media.roi import crop_mouths, whole_frame_face

    if len(frames) == 0:
        return None
    height, width = frames.shape[1:3]
    if faces == "whole":
        return crop_mouths(frames, whole_frame_face(width, height), size)
    boxes = _tracked_boxes(frames)
    return None if boxes is None else crop_mouths(frames, boxes, size)


def _tracked_boxes(frames: np.ndarray) -> list | None:
    from avsync.media.faces import FaceDetector, FaceTracker, track_faces

    per_frame = track_faces(frames, FaceTracker(FaceDetector()))
    counts: dict[int, int] = {}
    for faces in per_frame:
        for face in faces:
            counts[face.track_id] = counts.get(face.track_id, 0) + 1
    if not counts:
        return None
    speaker = max(counts, key=lambda t: (counts[t], -t))
    known = {i: f.box for i, faces in enumerate(per_frame) for f in faces
             if f.track_id == speaker}
    indices = np.array(sorted(known))
    nearest = indices[np.abs(np.arange(len(frames))[:, None] - indices[None, :]).argmin(1)]
    return [known[int(i)] for i in nearest]


def load_media(path: str | Path, card: ModelCard, *, audio: bool = True, video: bool = True,
               faces: FaceMode = "whole") -> MediaInput:
    """Decode `path` (any container PyAV reads) into a ClipInput for this model. A modality
    the file lacks is left out; MediaError when nothing usable remains."""
    from avsync.media.decode import decode_media

    media = decode_media(path, gray=True, video=video, audio=audio)
    pcm = media.audio if audio and media.has_audio and len(media.audio) else None
    rois = None
    if video and media.has_video:
        rois = mouth_rois(media.frames, card.roi.stored, faces)
    if pcm is None and rois is None:
        wanted = " and ".join(m for m, on in (("audio", audio), ("a face", video)) if on)
        raise MediaError(f"{path}: no {wanted} to recognise (has audio: {media.has_audio}, "
                         f"has video: {media.has_video})")
    return MediaInput(ClipInput(pcm, rois), media.duration,
                      faces if rois is not None else "none")
