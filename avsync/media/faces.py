"""Face detection (OpenCV's shipped Haar cascade) in the project's face-box convention.

A Haar cascade returns a tight box from the eyebrows to just below the mouth. The convention
(docs/architecture.md) is the square, face-centred crop an LRS video is, with the mouth at
(0.50, 0.70) of it. `face_box_from_haar` converts one into the other with a fixed scale and
offset, calibrated on a real photograph (skimage's public-domain `astronaut`, mouth measured
by eye at (224, 146) inside the Haar box (177, 66, 95, 95); tests/media/test_faces.py checks
it), so that `roi.mouth_box(detected_face)` lands on the mouth just as it does for a
fixed-crop LRS frame.

`FaceTracker` keeps face identities across frames and runs the detector only every k-th frame
(face detection dominates the cost of published active-speaker demos); in between it carries
each box with an alpha-beta filter, which also smooths the detector's jitter out of the crops.

Cascade choice: `frontalface_alt2` found the astronaut and no face in 19 face-free skimage
images; `frontalface_default` found the same face plus 8 false faces (coins, retina, moon).

The server's and `avsync transcribe`'s `detect` mode no longer use this module: they follow
faces by their landmarks (`avsync.media.face_tracking`: turned faces, stable ids, cheaper).
It stays as an API and as the baseline `bench/media.py` measures the landmark path against.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.errors import ConfigError, MediaError
from avsync.media.follow import TemplateFollower
from avsync.media.opencv import cv2_module
from avsync.media.roi import MOUTH_CENTER_X, MOUTH_CENTER_Y, Box

# Where the mouth centre sits inside a tight Haar box (fractions of its side), and how much
# larger the convention's face box is than the Haar box (calibrated: see module doc).
HAAR_MOUTH_X: float = 0.50
HAAR_MOUTH_Y: float = 0.83
HAAR_TO_FACE_SCALE: float = 1.6


@dataclass(frozen=True)
class DetectorConfig:
    """Haar detection settings.

    cascade: file name inside `cv2.data.haarcascades` (or a path to a cascade XML).
    scale_factor/min_neighbors: OpenCV's detectMultiScale settings (higher = fewer, surer).
    min_face: smallest (tight) face side searched, as a fraction of the frame's shorter
        side. This sets the cost: a cascade scans the same number of windows at any image
        resolution for a given fraction (0.15: about 30-70 ms for 640x480 on one core, 0.2
        about half that). Faces much smaller make poor lip-reading crops anyway.
    """

    cascade: str = "haarcascade_frontalface_alt2.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 4
    min_face: float = 0.15

    def __post_init__(self) -> None:
        if self.scale_factor <= 1.0:
            raise ConfigError(f"scale_factor must be > 1, got {self.scale_factor}")
        if not 0.0 < self.min_face <= 1.0:
            raise ConfigError(f"min_face is a fraction of the frame side, got {self.min_face}")


def face_box_from_haar(x: float, y: float, w: float, h: float) -> Box:
    """The convention's face box (square, mouth at (0.5, 0.7)) for a tight Haar box, pixels."""
    side = HAAR_TO_FACE_SCALE * float(max(w, h))
    mouth_x = float(x) + HAAR_MOUTH_X * float(w)
    mouth_y = float(y) + HAAR_MOUTH_Y * float(h)
    return Box(mouth_x - MOUTH_CENTER_X * side, mouth_y - MOUTH_CENTER_Y * side, side, side)


def _cascade_path(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    cv2 = cv2_module()
    shipped = Path(cv2.data.haarcascades) / name
    if not shipped.is_file():
        raise ConfigError(f"no Haar cascade {name!r}; use a file name from "
                          f"{cv2.data.haarcascades} or a path to a cascade XML")
    return shipped


class FaceDetector:
    """Finds frontal faces in gray frames; boxes come back in the face-box convention.

    Thread-safety: one detector per thread (OpenCV cascades keep per-call scratch state).
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        cv2 = cv2_module()
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(_cascade_path(self.config.cascade)))
        if self._cascade.empty():
            raise ConfigError(f"cannot load Haar cascade {self.config.cascade!r}")

    def detect_tight(self, gray: np.ndarray) -> list[Box]:
        """Raw Haar boxes (tight, eyebrows to below the mouth) in `gray`'s pixels.

        gray: (H, W) uint8. Sorted by size, largest first.
        """
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise MediaError(f"face detection needs an (H, W) uint8 gray frame, got "
                             f"{gray.shape} {gray.dtype}")
        cv2, config = self._cv2, self.config
        side = max(20, int(config.min_face * min(gray.shape)))
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=config.scale_factor,
            minNeighbors=config.min_neighbors, minSize=(side, side))
        boxes = [Box(float(x), float(y), float(w), float(h)) for x, y, w, h in found]
        return sorted(boxes, key=lambda b: -b.w)

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Face boxes of the convention (see module doc) for an (H, W) uint8 gray frame."""
        return [face_box_from_haar(b.x, b.y, b.w, b.h) for b in self.detect_tight(gray)]


@dataclass(frozen=True)
class TrackerConfig:
    """How FaceTracker trades CPU for responsiveness.

    detect_every: run the detector on every k-th frame (and on every frame while a new face
        waits to be confirmed); boxes are carried in between.
    birth_hits: detections a new track needs before it is reported.
    max_misses: detector runs in a row without a match after which a track dies.
    min_iou: least overlap of a detection with a track's predicted box to be that face (a
        detection whose centre lies within half a side of the track's also qualifies).
    smoothing: alpha of the filter, the weight of a new detection (1.0 = no smoothing).
    velocity_gain: beta of the filter, how fast the per-frame velocity follows detections.
    """

    detect_every: int = 5
    birth_hits: int = 2
    max_misses: int = 2
    min_iou: float = 0.3
    smoothing: float = 0.4
    velocity_gain: float = 0.05

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.birth_hits < 1 or self.max_misses < 1:
            raise ConfigError(f"detect_every, birth_hits and max_misses must be >= 1: {self}")
        if not (0.0 < self.smoothing <= 1.0 and 0.0 <= self.velocity_gain <= 1.0):
            raise ConfigError(f"smoothing must be in (0, 1] and velocity_gain in [0, 1]: {self}")


@dataclass(frozen=True)
class TrackedFace:
    """One face on one frame: a stable id and its smoothed face box (convention, pixels).

    detected: a detection matched this track on this frame (False: the box was carried).
    """

    track_id: int
    box: Box
    hits: int
    detected: bool


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0.0 when disjoint)."""
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.w * a.h + b.w * b.h - inter)


class _Track:
    """Alpha-beta filter over (centre x, centre y, side) of a square face box, whose centre
    follows the face's pixels between detections when frames are available."""

    def __init__(self, track_id: int, box: Box, frame: int) -> None:
        self.track_id = track_id
        self.follower = TemplateFollower()
        self.state = np.array([*box.center, box.w], np.float64)
        self.velocity = np.zeros(3, np.float64)  # per frame
        self.hits, self.misses, self.last_update = 1, 0, frame
        self.detected = True

    @property
    def box(self) -> Box:
        cx, cy, side = self.state
        return Box(float(cx - side / 2), float(cy - side / 2), float(side), float(side))

    def predict(self, gray: np.ndarray | None) -> None:
        """Move to this frame: follow the face's pixels, else extrapolate the velocity."""
        centre = None if gray is None else self.follower.follow(gray)
        if centre is None:
            self.state = self.state + self.velocity
        else:
            self.state[:2] = centre
        self.detected = False

    def capture(self, gray: np.ndarray | None) -> None:
        if gray is not None:
            self.follower.capture(gray, *self.state)

    def correct(self, box: Box, frame: int, config: TrackerConfig) -> None:
        residual = np.array([*box.center, box.w]) - self.state
        frames = max(1, frame - self.last_update)
        self.state = self.state + config.smoothing * residual
        self.velocity = self.velocity + config.velocity_gain * residual / frames
        self.hits, self.misses, self.last_update = self.hits + 1, 0, frame
        self.detected = True


def _match_score(track: Box, box: Box, min_iou: float) -> float:
    """IoU, raised to min_iou for a near centre (fast motion can outrun a carried box)."""
    overlap = iou(track, box)
    (tx, ty), (bx, by) = track.center, box.center
    near = np.hypot(tx - bx, ty - by) < 0.5 * max(track.w, box.w)
    return max(overlap, min_iou) if near else overlap


def _associate(tracks: Sequence[_Track], boxes: Sequence[Box],
               min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one (track index, box index) pairs, best match first."""
    scored = sorted(((_match_score(t.box, b, min_iou), i, j) for i, t in enumerate(tracks)
                     for j, b in enumerate(boxes)), reverse=True)
    pairs, used_tracks, used_boxes = [], set(), set()
    for score, i, j in scored:
        if score < min_iou:
            break
        if i not in used_tracks and j not in used_boxes:
            pairs.append((i, j))
            used_tracks.add(i)
            used_boxes.add(j)
    return pairs


class FaceTracker:
    """Face tracks with stable ids over a stream of gray frames.

    Call `update(gray)` once per frame (or `step(boxes)` with detections from elsewhere, None
    on frames without detection); each returns the confirmed faces of that frame. Not
    thread-safe: one tracker per video stream.
    """

    def __init__(self, detector: FaceDetector | None = None,
                 config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._ids = itertools.count()
        self.frame = -1  # index of the last frame seen
        self.detections_run = 0

    def wants_detection(self) -> bool:
        """Whether the next frame should run the detector."""
        tentative = any(t.hits < self.config.birth_hits for t in self._tracks)
        return tentative or (self.frame + 1) % self.config.detect_every == 0

    def update(self, gray: np.ndarray) -> list[TrackedFace]:
        """Advance one (H, W) uint8 gray frame, detecting faces if it is due."""
        if self.detector is None:
            raise ConfigError("FaceTracker.update needs a FaceDetector; "
                              "use step(boxes) to feed detections from elsewhere")
        boxes = self.detector.detect(gray) if self.wants_detection() else None
        return self.step(boxes, gray)

    def step(self, boxes: Sequence[Box] | None,
             gray: np.ndarray | None = None) -> list[TrackedFace]:
        """Advance one frame with its face boxes (None: no detection ran on this frame).

        gray: the (H, W) uint8 frame, if available: boxes then follow the faces' pixels
        between detections instead of extrapolating their velocity.
        """
        self.frame += 1
        for track in self._tracks:
            track.predict(gray)
        if boxes is not None:
            self.detections_run += 1
            self._match(list(boxes))
            for track in self._tracks:
                if track.detected:
                    track.capture(gray)
        return [TrackedFace(t.track_id, t.box, t.hits, t.detected) for t in self._tracks
                if t.hits >= self.config.birth_hits]

    def _match(self, boxes: list[Box]) -> None:
        pairs = _associate(self._tracks, boxes, self.config.min_iou)
        for i, j in pairs:
            self._tracks[i].correct(boxes[j], self.frame, self.config)
        matched = {i for i, _ in pairs}
        for i, track in enumerate(self._tracks):
            if i not in matched:
                track.misses += 1
        self._tracks = [t for t in self._tracks if not self._dead(t)]
        taken = {j for _, j in pairs}
        for j, box in enumerate(boxes):  # a new face, unless it duplicates a known one
            if j not in taken and all(iou(t.box, box) < self.config.min_iou
                                      for t in self._tracks):
                self._tracks.append(_Track(next(self._ids), box, self.frame))

    def _dead(self, track: _Track) -> bool:
        if track.hits < self.config.birth_hits:
            return track.misses > 0
        return track.misses >= self.config.max_misses

    def reset(self) -> None:
        """Forget every track (e.g. at a scene cut); ids keep increasing."""
        self._tracks, self.frame = [], -1


def track_faces(frames: np.ndarray, tracker: FaceTracker) -> list[list[TrackedFace]]:
    """Run a tracker over a clip: frames (T, H, W) uint8 -> the confirmed faces per frame."""
    return [tracker.update(frame) for frame in frames]
