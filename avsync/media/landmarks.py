"""Face detection and 468 facial landmarks on onnxruntime: MediaPipe's BlazeFace (short range)
and face mesh, converted to ONNX once (tools/faces/convert_mediapipe.py; Apache-2.0, the
licence beside the files in avsync/media/models/). No torch, no network, no mediapipe package.

Two calls, both on (H, W) uint8 gray frames (the models were trained on RGB; a gray frame is
fed as three equal channels):

- `FaceModels.detect(gray)`: faces anywhere in the frame (the frame is letterboxed to 128x128,
  so faces under about a fifth of the frame's longer side are missed: the short-range model's
  design, for faces within about 2 m of a camera). Each `Detection` has a square box and six
  keypoints (the subject's right eye, left eye, nose tip, mouth centre, right and left ear).
- `FaceModels.landmarks(gray, region)`: 468 points (x, y pixels) of the face inside a rotated
  square `FaceRegion`, plus the model's face presence probability. A region comes from a
  detection (`region_from_detection`) or from the previous frame's landmarks
  (`region_from_landmarks`): the face mesh follows a face by itself, which is what makes
  tracking cheap (detection only now and then; `avsync.media.face_tracking`).

Point indices used by the project are named below (`LANDMARK`); the full topology is
MediaPipe's canonical face mesh. "Right" is the subject's right (the image's left for a
frontal face).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from avsync.errors import DependencyError, MediaError, ModelLoadError
from avsync.media.opencv import cv2_module
from avsync.media.roi import Box

MODELS_DIR = Path(__file__).resolve().parent / "models"
DETECTOR_FILE = "face_detection_short_range.onnx"
MESH_FILE = "face_landmark.onnx"
DETECTOR_SIZE, MESH_SIZE = 128, 192
POINTS = 468

# Named face-mesh points (subject's right/left).
LANDMARK = {
    "right_eye_outer": 33, "right_eye_inner": 133, "left_eye_inner": 362,
    "left_eye_outer": 263, "nose_tip": 1, "mouth_right": 61, "mouth_left": 291,
    "upper_lip": 13, "lower_lip": 14, "chin": 152,
}
# The lips' outer and inner contours (40 points): their mean is the mouth centre.
LIPS = np.array((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270,
        409, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311,
        310, 415))

SCORE_THRESHOLD: float = 0.5  # MediaPipe's default for the short-range detector
NMS_IOU: float = 0.3
REGION_SCALE: float = 1.5  # a face mesh region is this much larger than the face (MediaPipe)
TILE_MIN: int = 160  # smallest tile side searched (faces of 15 % of it: 24 px)


@dataclass(frozen=True)
class Detection:
    """A detected face: square box (pixels), six keypoints (6, 2) pixels, score in [0, 1]."""

    box: Box
    keypoints: np.ndarray
    score: float


@dataclass(frozen=True)
class FaceRegion:
    """A rotated square in a frame: centre (cx, cy) and side in pixels, rotation in radians
    (positive: the face's eye line turns clockwise on screen, image y pointing down)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop_to_frame(self, size: int) -> np.ndarray:
        """(2, 3) affine map from the region's (size x size) crop pixels to frame pixels."""
        k = self.side / size
        c, s = np.cos(self.angle) * k, np.sin(self.angle) * k
        half = size / 2
        return np.array([[c, -s, self.cx - c * half + s * half],
                         [s, c, self.cy - s * half - c * half]])

    def box(self) -> Box:
        """The axis-aligned square of the same centre and side."""
        return Box(self.cx - self.side / 2, self.cy - self.side / 2, self.side, self.side)


@lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """(896, 2) anchor centres of the short-range detector, in [0, 1] input coordinates:
    a 16x16 grid with 2 anchors a cell (stride 8), then an 8x8 grid with 6 (stride 16)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        grid = DETECTOR_SIZE // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise DependencyError("face landmarks need onnxruntime; install it with: "
                              "pip install 'avsync[runtime]'") from error
    if not path.is_file():
        raise ModelLoadError(f"face model {path} is missing; reinstall avsync or rebuild it "
                             "with tools/faces/convert_mediapipe.py")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_gray(gray: np.ndarray) -> None:
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise MediaError(f"face landmarks need an (H, W) uint8 gray frame, got "
                         f"{gray.shape} {gray.dtype}")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) against boxes b (n, 4), boxes as (x1, y1, x2, y2)."""
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: overlapping candidates are averaged,
    weighted by score. boxes (n, 4) x1y1x2y2, keypoints (n, 6, 2) -> [(box, keypoints, score)]."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out, alive = [], np.ones(len(scores), bool)
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        weights = scores[group] / scores[group].sum()
        out.append((weights @ boxes[group], np.tensordot(weights, keypoints[group], axes=1),
                    float(scores[i])))
        alive &= ~group
    return out


class FaceModels:
    """The detector and the face mesh, loaded once (onnxruntime, one thread each).

    Thread-safety: `detect` and `landmarks` may be called from several threads (onnxruntime
    sessions are); `shared()` gives one process-wide instance.
    """

    _shared: FaceModels | None = None
    _lock = threading.Lock()

    def __init__(self, models_dir: Path = MODELS_DIR) -> None:
        self._detector = _session(Path(models_dir) / DETECTOR_FILE)
        self._mesh = _session(Path(models_dir) / MESH_FILE)
        self._cv2 = cv2_module()

    @classmethod
    def shared(cls) -> FaceModels:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def detect(self, gray: np.ndarray, threshold: float = SCORE_THRESHOLD,
               tiles: Sequence[int] | None = None) -> list[Detection]:
        """Faces in an (H, W) uint8 gray frame, best first.

        The whole frame finds faces of at least about 15 % of its longer side. tiles: which
        of `tile_grid(gray.shape)` (overlapping squares half the longer side) to search as
        well, for faces down to about 7 % (None: none; `range(len(tile_grid(...)))`: all).
        """
        _check_gray(gray)
        height, width = gray.shape
        found = [self._search(gray, 0, 0, max(height, width), threshold)]
        grid = tile_grid(gray.shape)
        for index in tiles or ():
            x, y, side = grid[index % len(grid)] if grid else (0, 0, 0)
            if side:
                found.append(self._search(gray[y:y + side, x:x + side], x, y, side, threshold))
        boxes = np.concatenate([f[0] for f in found])
        if len(boxes) == 0:
            return []
        merged = weighted_nms(boxes, np.concatenate([f[1] for f in found]),
                              np.concatenate([f[2] for f in found]))
        out = []
        for box, keypoints, score in merged:
            width = float(max(box[2] - box[0], box[3] - box[1]))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            out.append(Detection(Box(float(cx - width / 2), float(cy - width / 2), width, width),
                                 keypoints.astype(np.float64), score))
        return out

    def _search(self, image: np.ndarray, x0: int, y0: int, side: int, threshold: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw candidates in `image` (a frame or a tile at (x0, y0), letterboxed into a
        square of `side`): boxes (n, 4) x1y1x2y2, keypoints (n, 6, 2), scores (n,), all in
        frame pixels."""
        cv2 = self._cv2
        height, width = image.shape
        scale = DETECTOR_SIZE / side
        shift = np.array([(DETECTOR_SIZE - scale * width) / 2,
                          (DETECTOR_SIZE - scale * height) / 2])
        warp = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
        small = cv2.warpAffine(image, warp, (DETECTOR_SIZE, DETECTOR_SIZE),
                               flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = np.repeat((small.astype(np.float32) * np.float32(1 / 127.5) - 1)[None, ..., None],
                      3, axis=3)
        regressors, logits = self._detector.run(None, {"input": x})
        logit = np.clip(logits[0, :, 0], -80, 80)
        keep = np.flatnonzero(logit > np.log(threshold / (1 - threshold)))
        raw = regressors[0, keep] / DETECTOR_SIZE
        anchors = _anchors()[keep]
        origin = np.array([x0, y0]) - shift / scale
        centre = (raw[:, :2] + anchors) * (DETECTOR_SIZE / scale) + origin
        half = raw[:, 2:4] * (DETECTOR_SIZE / scale) / 2
        points = (raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]) * (DETECTOR_SIZE / scale)
        return (np.concatenate([centre - half, centre + half], axis=1).astype(np.float64),
                (points + origin).astype(np.float64),
                (1 / (1 + np.exp(-logit[keep]))).astype(np.float64))

    def landmarks(self, gray: np.ndarray, region: FaceRegion) -> tuple[np.ndarray, float]:
        """The face mesh in `region`: ((468, 2) float64 frame pixels, presence in [0, 1])."""
        _check_gray(gray)
        cv2 = self._cv2
        to_frame = region.crop_to_frame(MESH_SIZE)
        crop = cv2.warpAffine(gray, cv2.invertAffineTransform(to_frame), (MESH_SIZE, MESH_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x = np.repeat((crop.astype(np.float32) * np.float32(1 / 255))[None, ..., None], 3,
                      axis=3)
        points, presence = self._mesh.run(None, {"input_1": x})
        xy = points.reshape(POINTS, 3)[:, :2].astype(np.float64)
        score = float(1 / (1 + np.exp(-np.clip(presence.ravel()[0], -80, 80))))
        return xy @ to_frame[:, :2].T + to_frame[:, 2], score


def tile_grid(shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Overlapping square tiles (x, y, side) of a frame (H, W): side half the longer side (at
    most the shorter side), placed every half side (3 x 2 tiles for 4:3 video, 3 x 3 for a
    square); none when the tiles would be under TILE_MIN pixels (faces in them would be too
    small to read lips)."""
    height, width = shape[:2]
    side = min(max(height, width) // 2, min(height, width))
    if side < TILE_MIN:
        return []
    xs = sorted({min(x, width - side) for x in range(0, width - side + side // 2, side // 2)})
    ys = sorted({min(y, height - side) for y in range(0, height - side + side // 2, side // 2)})
    return [(x, y, side) for y in ys for x in xs]


def _eye_angle(right: np.ndarray, left: np.ndarray) -> float:
    """Rotation of the line from the subject's right eye to the left eye (radians)."""
    return float(np.arctan2(left[1] - right[1], left[0] - right[0]))


def region_from_detection(detection: Detection) -> FaceRegion:
    """The face mesh's input region for a detection (MediaPipe's: box x1.5, eye-line roll)."""
    cx, cy = detection.box.center
    angle = _eye_angle(detection.keypoints[0], detection.keypoints[1])
    return FaceRegion(cx, cy, REGION_SCALE * detection.box.w, angle)


def region_from_landmarks(points: np.ndarray) -> FaceRegion:
    """The next frame's region from this frame's landmarks (468, 2): the points' extent in the
    eye-line frame, x1.5 (MediaPipe's tracking)."""
    angle = _eye_angle(points[LANDMARK["right_eye_outer"]], points[LANDMARK["left_eye_outer"]])
    c, s = np.cos(angle), np.sin(angle)
    rotated = points @ np.array([[c, -s], [s, c]])  # into the face's upright frame
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    centre = (lo + hi) / 2 @ np.array([[c, s], [-s, c]])
    side = float(max(hi - lo)) * REGION_SCALE
    return FaceRegion(float(centre[0]), float(centre[1]), side, angle)


def face_box_of(points: np.ndarray) -> Box:
    """A square box around the landmarks (468, 2), pixels (the extent's longer side)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = float(max(hi - lo))
    cx, cy = (lo + hi) / 2
    return Box(float(cx - side / 2), float(cy - side / 2), side, side)
