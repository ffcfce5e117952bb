"""A file's mouth ROIs and audio, read piece by piece: frames are scaled to a working size as
they are decoded and cropped at once, so no full-size frame, and no whole clip of frames, is
ever held.

The working size: the shorter side at most `WORKING_SHORT_SIDE` lines (what face detection
needs: a Haar face of 0.15 of it is 72 px), but never so small that a whole-frame mouth box
(MOUTH_SIDE of the shorter side) drops below twice the ROI. LRS2/LRS3 (160/224 px) and the
synthetic corpus are below it, so their ROIs are exactly those cropped from the full frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

import numpy as np

from avsync.media.decode import Damage, MediaReader, MediaSource
from avsync.media.placement import FrameFormat

WORKING_SHORT_SIDE: int = 480


def working_format(roi_size: int) -> FrameFormat:
    """Gray frames at the working size for mouth ROIs of `roi_size` pixels."""
    from avsync.media.roi import MOUTH_SIDE

    return FrameFormat(gray=True, short_side=max(WORKING_SHORT_SIDE,
                                                 ceil(2 * roi_size / MOUTH_SIDE)))


def whole_frame_mouths(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W) uint8 gray face-centred frames -> (T, size, size) uint8 mouth ROIs."""
    from avsync.media.roi import crop_mouths, whole_frame_face

    if len(frames) == 0:
        return np.zeros((0, size, size), np.uint8)
    return crop_mouths(frames, whole_frame_face(frames.shape[2], frames.shape[1]), size)


@dataclass(frozen=True)
class MouthClip:
    """rois: (T, R, R) uint8 at 25 fps (whole-frame faces); audio: (S,) float32 @ 16 kHz;
    source_fps: the video's declared rate; damage: what could not be decoded."""

    rois: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    source_fps: float | None
    has_video: bool
    has_audio: bool
    damage: tuple[Damage, ...] = ()


def read_mouths(source: MediaSource | Path, roi_size: int,
                convention: str = "face-box") -> MouthClip:
    """Decode a face-centred (LRS-style) clip into mouth ROIs and audio, piece by piece, the
    mouths cut by `convention` (`avsync.media.roi`; mean-face tracks landmarks over the clip:
    `face_tracking.FaceCentredCropper`). Raises MediaError as `MediaReader` does."""
    from avsync.media.face_tracking import FaceCentredCropper

    cropper = FaceCentredCropper(roi_size, convention)
    with MediaReader(source, frames=working_format(roi_size)) as reader:
        rois: list[np.ndarray] = []
        audio: list[np.ndarray] = []
        for piece in reader.pieces():
            rois.append(cropper.crop(piece.frames))
            audio.append(piece.audio)
        all_rois = np.concatenate(rois) if rois else np.zeros((0, roi_size, roi_size), np.uint8)
        samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        return MouthClip(all_rois, samples, reader.source_fps, len(all_rois) > 0,
                         len(samples) > 0, tuple(reader.damage))
