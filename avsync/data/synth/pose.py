"""Head pose of a rendered face beyond the image plane: yaw and pitch as seen from the front.

Why a model of depth: a drawn face is flat, but a face detector and a landmark model were
trained on heads that turn; turning the drawing's points as if they lay on a head (the front
of an ellipsoid, with a nose and the mouth region standing out of it) gives the pose range
the real-faces tests need (yaw +-40, pitch +-20 degrees; roll, scale and shift are the 2D
`face.head_pose`), and tells exactly where each drawn point lands (`face.true_lips_centre`).
Coordinates are the 160-pixel canonical frame of `face.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from avsync.media.roi import MOUTH_CENTER_X, MOUTH_CENTER_Y

if TYPE_CHECKING:
    from avsync.data.synth.face import FaceIdentity, FrameState

CANVAS: int = 160  # canonical face-box side in pixels (LRS2 frames are 160×160)
MOUTH_X, MOUTH_Y = MOUTH_CENTER_X * CANVAS, MOUTH_CENTER_Y * CANVAS  # (80, 112)
NOSE_DEPTH: float = 0.35  # the nose's height above the head's sphere, of the face half-width
MUZZLE_DEPTH: float = 0.15  # how far the mouth region stands out of it (teeth and lips do)


def _rotation(state: FrameState) -> np.ndarray:
    """(3, 3) rotation of the head: pitch about the x axis, then yaw about the y axis."""
    p, y = np.radians(state.pitch), np.radians(state.yaw)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    yaw = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    return yaw @ pitch


def _nose(identity: FaceIdentity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Extra depth of the nose and the mouth region (unit-sphere units) at normalised face
    coordinates (u, v)."""
    f = identity
    nose_v = (f.eye_y + 0.75 * f.nose_length - f.face_center_y) / f.face_half_height
    width = f.nose_width / f.face_half_width
    mouth_v = (MOUTH_Y - f.face_center_y) / f.face_half_height
    mouth_u = 0.6 * f.mouth_width / f.face_half_width
    return NOSE_DEPTH * np.exp(-(u / width) ** 2 - ((v - nose_v) * f.face_half_height
                                                     / (0.5 * f.nose_length)) ** 2) \
        + MUZZLE_DEPTH * np.exp(-(u / mouth_u) ** 2 - ((v - mouth_v) / 0.35) ** 2)


def project_head(identity: FaceIdentity, state: FrameState, pts: np.ndarray) -> np.ndarray:
    """Canonical points (n, 2) -> where the head's yaw and pitch put them (canonical pixels,
    before roll, scale and shift): the face is the front of an ellipsoid (semi-axes: face
    half-width, half-height, half-width in depth) with a nose on it, seen from the front.
    Points outside the face outline (hair, ears) keep their distance ratio from the outline
    point they lie beyond; a point turned behind the head lands on its silhouette."""
    pts = np.asarray(pts, np.float64)
    if state.yaw == 0 and state.pitch == 0:
        return pts
    f = identity
    a, b = f.face_half_width, f.face_half_height
    u, v = (pts[:, 0] - MOUTH_X) / a, (pts[:, 1] - f.face_center_y) / b
    r = np.hypot(u, v)
    outside = np.maximum(r, 1.0)
    u, v = u / outside, v / outside
    w = np.sqrt(np.clip(1 - u * u - v * v, 0, None)) + _nose(f, u, v)
    x, y, z = _rotation(state) @ np.stack([u, v, w])
    behind = z < 0
    rim = np.maximum(np.hypot(x, y), 1e-9)
    x, y = np.where(behind, x / rim, x), np.where(behind, y / rim, y)
    return np.stack([MOUTH_X + a * x * outside, f.face_center_y + b * y * outside], axis=1)


def unproject_head(identity: FaceIdentity, state: FrameState, xx: np.ndarray,
                   yy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `project_head` for pixels inside the turned face (nose ignored): canonical
    (x, y) of what is seen at canonical-grid pixels (xx, yy), and a mask of pixels that show
    the face's front (elsewhere x, y are the pixels themselves)."""
    f = identity
    a, b = f.face_half_width, f.face_half_height
    u, v = (xx - MOUTH_X) / a, (yy - f.face_center_y) / b
    w = np.sqrt(np.clip(1 - u * u - v * v, 0, None))
    inside = u * u + v * v < 1
    cu, cv, cw = np.tensordot(_rotation(state).T, np.stack([u, v, w]), axes=1)
    front = inside & (cw > 0)
    return (np.where(front, MOUTH_X + a * cu, xx), np.where(front, f.face_center_y + b * cv, yy),
            front)
