"""Mouth region of interest: the one place that says where a mouth is, and how it is cut out.

Two crop conventions; a model's `model.json` (`roi.convention`) names the one it was trained
on, and every producer of crops (data preparation, the synthetic corpus through it,
`avsync transcribe`, the server) cuts by the convention asked for (`crop_face`/`crop_faces`):

- "face-box" (FACE_BOX, the first models'): a face box is the square face-centred crop
  LRS2/LRS3 videos already are; the mouth box sits at fixed fractions of it (mouth centre at
  (0.50, 0.70), side 0.40), area-resized to the stored size.
- "mean-face" (MEAN_FACE, auto_avsr's way, which CoGenAV's preprocessing follows): facial
  landmarks (smoothed over time by the tracker) are mapped by a similarity transform onto a
  mean face (stable points: the eye corners and the nose tip, auto_avsr's choice; the mouth
  corners move with speech, so they would make the scale speak too), and a 96x96 crop of that
  frame, centred on the mean of the lip landmarks, is stored (resampled to the stored size).
  Without landmarks (client boxes, whole-frame LRS input) the documented fallback places the
  mean face in the face box by fixed fractions (`mean_face_fallback`).

Training data, the synthetic renderer, server-side detection and client-sent boxes all go
through these functions, so a model never sees mouths cropped two different ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avsync.errors import ConfigError, MediaError
from avsync.media.opencv import cv2_module

FACE_BOX: str = "face-box"
MEAN_FACE: str = "mean-face"
CONVENTIONS: dict[str, str] = {
    FACE_BOX: "mouth box at fixed fractions of a square face-centred face box",
    MEAN_FACE: "landmarks -> similarity to a mean face -> 96x96 crop centred on the lips",
}

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


# --- crop conventions -------------------------------------------------------------------------

def check_convention(name: str) -> str:
    """`name` if it is a crop convention this avsync cuts, else ConfigError naming them."""
    if name not in CONVENTIONS:
        known = ", ".join(f"{k!r} ({v})" for k, v in CONVENTIONS.items())
        raise ConfigError(f"unknown mouth-crop convention {name!r}; this avsync knows {known}. "
                          "A model trained on another convention needs the avsync release "
                          "that made it")
    return name


# The mean face (MEAN_FACE): face-mesh point -> its place in mean-face pixels (eye line at
# y = 0, centred between the outer eye corners, 94 px apart). Measured once on a frontal real
# face (skimage's astronaut, eyes levelled, made symmetric); at this scale a 96 px crop holds
# a neutral mouth about 50 px wide, the nose tip's lower edge and the chin's upper part.
MEAN_FACE_POINTS: dict[int, tuple[float, float]] = {
    33: (-47.0, 0.0), 133: (-17.7, 2.7), 362: (17.7, 2.7), 263: (47.0, 0.0), 1: (0.0, 42.0),
}
MEAN_FACE_CROP: int = 96  # side of the stored mouth crop, in mean-face pixels
# The fallback without landmarks: in a face box of the FACE_BOX convention, the outer eye
# corners span this fraction of its side (LRS-style crops and the synthetic faces: 0.34-0.40),
# and the lips' centre sits at the FACE_BOX mouth point.
FALLBACK_EYE_SPAN: float = 0.37
_MEAN_FACE_IDS = np.array(list(MEAN_FACE_POINTS))
_MEAN_FACE_XY = np.array(list(MEAN_FACE_POINTS.values()))
_LIPS = np.array((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267,
                  269, 270, 409, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81,
                  82, 13, 312, 311, 310, 415))


@dataclass(frozen=True)
class Face:
    """One face on one frame, as a crop needs it: its box (the FACE_BOX convention's, pixels)
    and, when known, its face-mesh landmarks ((468, 2) float pixels, smoothed; or the 6 that
    a MEAN_FACE crop reads, `mouth_points`, to keep long tracks small)."""

    box: Box
    landmarks: np.ndarray | None = None

    def compact(self) -> Face:
        """The same face with only the landmarks a crop reads (6 points instead of 468)."""
        if self.landmarks is None or len(self.landmarks) == len(MEAN_FACE_POINTS) + 1:
            return self
        return Face(self.box, mouth_points(self.landmarks))


def mouth_points(landmarks: np.ndarray) -> np.ndarray:
    """(6, 2): the mean-face points (MEAN_FACE_POINTS order) and the lips' centre of
    face-mesh landmarks (468, 2); already reduced points come back as they are."""
    points = np.asarray(landmarks, np.float64)
    if len(points) == len(_MEAN_FACE_IDS) + 1:
        return points
    return np.vstack([points[_MEAN_FACE_IDS], points[_LIPS].mean(axis=0)])


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, shift) taking points `source`
    (n, 2) onto `target` (n, 2) (Umeyama, no reflection), as a (2, 3) affine matrix."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    s, t = source - mu_s, target - mu_t
    # complex form: target ~ z * source, z = sum(conj(s) t) / sum(|s|^2)
    zs, zt = s[:, 0] + 1j * s[:, 1], t[:, 0] + 1j * t[:, 1]
    z = np.vdot(zs, zt) / max(float(np.vdot(zs, zs).real), 1e-12)
    a, b = float(z.real), float(z.imag)
    rotation = np.array([[a, -b], [b, a]])
    return np.hstack([rotation, (mu_t - rotation @ mu_s)[:, None]])


def mean_face_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) affine from frame pixels to the (size x size) MEAN_FACE crop of a face with
    face-mesh `landmarks` ((468, 2), or their `mouth_points`): similarity onto the mean face,
    then the 96 px square centred on the lips, scaled to `size`."""
    points = mouth_points(landmarks)
    to_mean = similarity(points[:-1], _MEAN_FACE_XY)
    lips = to_mean[:, :2] @ points[-1] + to_mean[:, 2]
    k = size / MEAN_FACE_CROP
    out = to_mean * k
    out[:, 2] += size / 2 - k * lips
    return out


def mean_face_fallback(face: Box, size: int) -> np.ndarray:
    """The MEAN_FACE crop's (2, 3) affine for a face box without landmarks: upright, the
    outer eye corners FALLBACK_EYE_SPAN of the box side apart, the lips at the FACE_BOX mouth
    point (documented fallback for client boxes and whole-frame face-centred video)."""
    _check_box(face)
    side = max(face.w, face.h)
    k = size / MEAN_FACE_CROP * (_MEAN_FACE_XY[3, 0] - _MEAN_FACE_XY[0, 0]) / (
        FALLBACK_EYE_SPAN * side)
    cx = face.x + MOUTH_CENTER_X * face.w
    cy = face.y + MOUTH_CENTER_Y * face.h
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])


def mouth_centre(face: Face | Box, convention: str) -> tuple[float, float]:
    """Where the crop of `face` is centred in the frame (pixels), by `convention`."""
    if check_convention(convention) == MEAN_FACE:
        matrix = _mean_face_matrix(face if isinstance(face, Face) else Face(face), 2)
        x, y = (float(v) for v in cv2_module().invertAffineTransform(matrix) @ [1, 1, 1])
        return x, y
    box = face.box if isinstance(face, Face) else face
    return mouth_box(box).center


def _mean_face_matrix(face: Face, size: int) -> np.ndarray:
    if face.landmarks is not None:
        return mean_face_transform(face.landmarks, size)
    return mean_face_fallback(face.box, size)


def _warp(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample `frame` by a frame -> crop affine; shrinking crops are pre-smoothed by area
    resizing so that a 96 px crop of a large face does not alias."""
    cv2 = cv2_module()
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:  # downscale by an integer factor first (area), then warp
        factor = int(1 / scale)
        height, width = frame.shape
        frame = cv2.resize(frame, (max(1, width // factor), max(1, height // factor)),
                           interpolation=cv2.INTER_AREA)
        matrix = matrix @ np.array([[width / frame.shape[1], 0, 0],
                                    [0, height / frame.shape[0], 0], [0, 0, 1]])
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def crop_face(frame: np.ndarray, face: Face | Box, size: int, convention: str) -> np.ndarray:
    """The mouth ROI of one face on one (H, W) uint8 gray frame by `convention`:
    (size, size) uint8. The one crop function of training and serving."""
    if frame.ndim != 2 or frame.dtype != np.uint8:
        raise MediaError(f"crop_face needs an (H, W) uint8 gray frame, got "
                         f"{frame.shape} {frame.dtype}")
    _check_size(size)
    face = face if isinstance(face, Face) else Face(face)
    if check_convention(convention) == FACE_BOX:
        return crop_mouth(frame, face.box, size)
    return _warp(frame, _mean_face_matrix(face, size), size)


def crop_faces(frames: np.ndarray, faces: Face | Box | Sequence[Face | Box], size: int,
               convention: str) -> np.ndarray:
    """Mouth ROIs of a clip by `convention`: frames (T, H, W) uint8 gray, one face for all
    frames or one per frame -> (T, size, size) uint8."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise MediaError(f"crop_faces needs (T, H, W) uint8 gray frames, got "
                         f"{frames.shape} {frames.dtype}")
    if check_convention(convention) == FACE_BOX:
        if isinstance(faces, Face):
            faces = faces.box
        boxes: Box | list[Box] = (faces if isinstance(faces, Box) else
                                  [f.box if isinstance(f, Face) else f for f in faces])
        return crop_mouths(frames, boxes, size)
    _check_size(size)
    if isinstance(faces, Face | Box):
        faces = [faces] * len(frames)
    if len(faces) != len(frames):
        raise MediaError(f"crop_faces got {len(faces)} faces for {len(frames)} frames; "
                         "pass one face per frame or a single one for all")
    out = np.empty((len(frames), size, size), np.uint8)
    for i, (frame, face) in enumerate(zip(frames, faces, strict=True)):
        out[i] = crop_face(frame, face, size, convention)
    return out
