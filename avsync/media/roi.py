"""Mouth region of interest: the one place that says where a mouth is in a face box.

The convention (docs/architecture.md): a face box is the square face-centred crop LRS2/LRS3
videos already are; the mouth box sits at fixed fractions of it. Training data, the synthetic
renderer, server-side detection and client-sent boxes all go through these functions, so a
model never sees mouths cropped two different ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    side = MOUTH_SIDE * max(face.w, face.h)
    cx = face.x + MOUTH_CENTER_X * face.w
    cy = face.y + MOUTH_CENTER_Y * face.h
    return Box(cx - side / 2, cy - side / 2, side, side)
