"""Mouth region of interest: the one place that says where a mouth is in a face box.

The convention (docs/architecture.md): a face box is the square face-centred crop LRS2/LRS3
videos already are; the mouth box sits at fixed fractions of it. Training data, the synthetic
renderer, server-side detection and client-sent boxes all go through these functions, so a
model never sees mouths cropped two different ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avsync.errors import MediaError
from avsync.media.opencv import cv2_module

MOUTH_CENTER_X: float = 0.50  # of the face box width, from its left edge
MOUTH_CENTER_Y: float = 0.70  # of the face box height, from its top edge
MOUTH_SIDE: float = 0.40  # of the face box side


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width w, height h."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def scaled(self, sx: float, sy: float | None = None) -> Box:
        sy = sx if sy is None else sy
        return Box(self.x * sx, self.y * sy, self.w * sx, self.h * sy)

    def normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in [0, 1], as AVA-ActiveSpeaker CSV rows store a face."""
        return (self.x / width, self.y / height, (self.x + self.w) / width,
                (self.y + self.h) / height)


def whole_frame_face(width: int, height: int) -> Box:
    """The face box of a face-centred (LRS-style) frame: its largest centred square."""
    side = min(width, height)
    return Box((width - side) / 2, (height - side) / 2, side, side)


def mouth_box(face: Box) -> Box:
    """The square mouth box of a face box (fixed fractions of its side; see module doc)."""
    side = MOUTH_SIDE * max(face.w, face.h)
    cx = face.x + MOUTH_CENTER_X * face.w
    cy = face.y + MOUTH_CENTER_Y * face.h
    return Box(cx - side / 2, cy - side / 2, side, side)


def _pixel_span(start: float, length: float) -> tuple[int, int]:
    """Integer [lo, hi) pixel range of a box edge pair (at least one pixel)."""
    lo = int(round(start))
    return lo, max(lo + 1, int(round(start + length)))


def _check_box(face: Box) -> None:
    values = (face.x, face.y, face.w, face.h)
    if not all(np.isfinite(values)) or face.w <= 0 or face.h <= 0:
        raise MediaError(f"face box {face} is not a finite box with positive width and "
                         "height; boxes are (x, y, w, h) in pixels")


def _check_size(size: int) -> None:
    if int(size) <= 0:
        raise MediaError(f"ROI size must be a positive number of pixels, got {size}")


def _mouth_indices(face: Box, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the mouth box, clipped so outside pixels repeat the border."""
    _check_box(face)
    mouth = mouth_box(face)
    y0, y1 = _pixel_span(mouth.y, mouth.h)
    x0, x1 = _pixel_span(mouth.x, mouth.w)
    return np.clip(np.arange(y0, y1), 0, height - 1), np.clip(np.arange(x0, x1), 0, width - 1)


def _resize(region: np.ndarray, size: int) -> np.ndarray:
    """(h, w) uint8 -> (size, size) uint8 with area interpolation.

    One frame per call on purpose: cv2's multi-channel path rounds differently (off by one
    grey level), and training and serving crops must be identical.
    """
    cv2 = cv2_module()
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)


def crop_mouths(frames: np.ndarray, faces: Box | Sequence[Box], size: int) -> np.ndarray:
    """Mouth ROIs of a clip: the mouth box of each frame's face box, resized to size x size.

    frames: (T, H, W) uint8 gray. faces: one face box for every frame (fixed crop, e.g.
    `whole_frame_face(W, H)` for LRS-style video) or a sequence of T boxes (tracked faces), in
    pixels. Parts of a mouth box outside the frame replicate the border pixels.
    Returns (T, size, size) uint8 (area interpolation).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise MediaError(f"crop_mouths needs (T, H, W) uint8 gray frames, got "
                         f"{frames.shape} {frames.dtype}")
    _check_size(size)
    height, width = frames.shape[1:]
    out = np.empty((len(frames), size, size), np.uint8)
    if isinstance(faces, Box):
        rows, cols = _mouth_indices(faces, height, width)
        for i, region in enumerate(frames[:, rows][:, :, cols]):
            out[i] = _resize(region, size)
        return out
    if len(faces) != len(frames):
        raise MediaError(f"crop_mouths got {len(faces)} face boxes for {len(frames)} frames; "
                         "pass one box per frame or a single Box for all")
    for i, (frame, face) in enumerate(zip(frames, faces, strict=True)):
        rows, cols = _mouth_indices(face, height, width)
        out[i] = _resize(frame[np.ix_(rows, cols)], size)
    return out


def crop_mouth(frame: np.ndarray, face: Box, size: int) -> np.ndarray:
    """The mouth ROI of one (H, W) uint8 gray frame: (size, size) uint8 (see crop_mouths)."""
    if frame.ndim != 2 or frame.dtype != np.uint8:
        raise MediaError(f"crop_mouth needs an (H, W) uint8 gray frame, got "
                         f"{frame.shape} {frame.dtype}")
    _check_size(size)
    rows, cols = _mouth_indices(face, *frame.shape)
    return _resize(frame[np.ix_(rows, cols)], size)
