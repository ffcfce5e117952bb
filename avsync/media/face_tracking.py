"""Face tracks with stable ids and smoothed landmarks, the way MediaPipe's face mesh tracks:
the landmarks of one frame give the next frame's region, so the detector runs only now and
then (every `detect_every` frames, and while a face is lost), over the whole frame and one
of its tiles in turn (small faces).

Per frame, for each followed face: the face mesh in the region its last landmarks give
(`landmarks.region_from_landmarks`). A face whose presence drops (turned away, occluded,
gone) is *lost*: not reported, its id kept for `keep_lost` frames. A detection run then
(bounded: every `detect_every` frames, every `lost_detect_every` while a face is lost or
no face is known) either matches a followed face
(ignored: the mesh already has it), revives the lost face nearest its last place (same id:
an occlusion or a turn away and back keeps the id), or starts a new track (up to
`max_faces`). Two tracks that converge on one face are merged (the older id stays).

Landmarks are smoothed over time with a One Euro filter (Casiez et al. 2012, as MediaPipe's
face mesh smooths): a still face gets a still crop, a moving one little lag. The filter runs
the same per frame in a live stream and over a clip in data preparation (`track_clip`), so
training and serving crops match.

    tracker = LandmarkTracker(max_faces=2)
    for gray in frames: faces = tracker.update(gray)   # [TrackedFace], each .face -> roi.Face
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from avsync.errors import ConfigError
from avsync.media.faces import iou
from avsync.media.landmarks import (
    LANDMARK,
    LIPS,
    FaceModels,
    FaceRegion,
    region_from_detection,
    region_from_landmarks,
    tile_grid,
)
from avsync.media.roi import MOUTH_CENTER_X, MOUTH_CENTER_Y, Box, Face
from avsync.timebase import FPS

# The FACE_BOX convention's box from landmarks: the outer eye corners span EYE_SPAN of its
# side and the eye line lies EYE_TO_MOUTH of its side above the lips' centre (the larger of
# the two sizes wins, so a turned or nodding head keeps its size); the lips' centre sits at
# the convention's mouth point. Calibrated on the synthetic faces (`bench/media.py`).
EYE_SPAN: float = 0.37
EYE_TO_MOUTH: float = 0.28


@dataclass(frozen=True)
class LandmarkTrackerConfig:
    """How LandmarkTracker trades CPU for responsiveness.

    max_faces: most faces followed at once (the surest detections first).
    detect_every: frames between detector runs while every face is followed.
    lost_detect_every: frames between detector runs while a face is lost or none is known.
    min_presence: face-mesh presence below which a face is lost on that frame.
    keep_lost: frames a lost face keeps its id, waiting to be found again (2 s).
    revive_distance: a detection revives a lost face when its centre lies within this many
        face sides of the face's last centre.
    min_cutoff, beta: One Euro filter: cutoff (Hz) of a still face, and how fast the cutoff
        rises with speed (per face width per second). Chosen on synthetic clips: a still
        face's lips jitter 0.07 px (0.19 unsmoothed); a face turning +-40 degrees every
        2.4 s keeps its lips' error at 2.4 % of the face width (median; 6.6 % at beta 0.5).
    """

    max_faces: int = 4
    detect_every: int = 10
    lost_detect_every: int = 2
    min_presence: float = 0.5
    keep_lost: int = 2 * FPS
    revive_distance: float = 0.75
    min_cutoff: float = 0.5
    beta: float = 20.0

    def __post_init__(self) -> None:
        if min(self.max_faces, self.detect_every, self.lost_detect_every, self.keep_lost) < 1:
            raise ConfigError(f"max_faces, detect_every, lost_detect_every and keep_lost must "
                              f"be >= 1: {self}")
        if not 0.0 < self.min_presence < 1.0 or self.min_cutoff <= 0 or self.beta < 0:
            raise ConfigError(f"min_presence must be in (0, 1), min_cutoff > 0, beta >= 0: "
                              f"{self}")


@dataclass(frozen=True)
class TrackedFace:
    """One face on one frame: a stable id, smoothed landmarks (468, 2) pixels, the FACE_BOX
    convention's box from them, and the face mesh's presence probability.

    detected: a detection started or revived the track on this frame."""

    track_id: int
    landmarks: np.ndarray
    box: Box
    presence: float
    detected: bool

    @property
    def face(self) -> Face:
        """What `roi.crop_face` takes."""
        return Face(self.box, self.landmarks)

    @property
    def lips(self) -> tuple[float, float]:
        """The lips' centre (mean of the 40 lip points), pixels."""
        x, y = self.landmarks[LIPS].mean(axis=0)
        return float(x), float(y)


def face_box_from_landmarks(points: np.ndarray) -> Box:
    """The FACE_BOX convention's square face box for face-mesh landmarks (468, 2)."""
    right, left = points[LANDMARK["right_eye_outer"]], points[LANDMARK["left_eye_outer"]]
    lips = points[LIPS].mean(axis=0)
    span = float(np.hypot(*(left - right)))
    drop = float(np.hypot(*(lips - (left + right) / 2)))
    side = max(span / EYE_SPAN, drop / EYE_TO_MOUTH)
    return Box(float(lips[0] - MOUTH_CENTER_X * side), float(lips[1] - MOUTH_CENTER_Y * side),
               side, side)


class OneEuro:
    """One Euro filter over a point set (n, 2), with one speed for the whole set measured in
    face widths per second (so the same settings serve any face size)."""

    def __init__(self, min_cutoff: float, beta: float, rate: float = FPS,
                 derivative_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.rate = min_cutoff, beta, rate
        self.derivative_cutoff = derivative_cutoff
        self.value: np.ndarray | None = None
        self.speed = 0.0

    def _alpha(self, cutoff: float) -> float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, points: np.ndarray, scale: float) -> np.ndarray:
        if self.value is None:
            self.value = points.copy()
            return self.value
        raw_speed = float(np.abs(points - self.value).mean()) * self.rate / max(scale, 1e-6)
        self.speed += self._alpha(self.derivative_cutoff) * (raw_speed - self.speed)
        alpha = self._alpha(self.min_cutoff + self.beta * self.speed)
        self.value = self.value + alpha * (points - self.value)
        return self.value

    def reset(self) -> None:
        self.value, self.speed = None, 0.0


class _Track:
    def __init__(self, track_id: int, config: LandmarkTrackerConfig) -> None:
        self.track_id = track_id
        self.filter = OneEuro(config.min_cutoff, config.beta)
        self.raw: np.ndarray | None = None  # last unsmoothed landmarks
        self.smooth: np.ndarray | None = None
        self.presence = 0.0
        self.lost_for = 0  # frames since last followed (0: followed on this frame)
        self.detected = False

    @property
    def box(self) -> Box:
        assert self.smooth is not None
        return face_box_from_landmarks(self.smooth)

    def accept(self, points: np.ndarray, presence: float, detected: bool) -> None:
        width = float(np.ptp(points[:, 0]))
        if self.lost_for > 1:
            self.filter.reset()  # a face found again starts where it is
        self.raw, self.smooth = points, self.filter(points, width)
        self.presence, self.lost_for, self.detected = presence, 0, detected

    def report(self) -> TrackedFace:
        assert self.smooth is not None
        return TrackedFace(self.track_id, self.smooth, self.box, self.presence, self.detected)


class LandmarkTracker:
    """Face tracks with stable ids over a stream of (H, W) uint8 gray frames (see module doc).
    Not thread-safe: one tracker per video stream (the models may be shared)."""

    def __init__(self, config: LandmarkTrackerConfig | None = None,
                 models: FaceModels | None = None, **overrides) -> None:
        if config is not None and overrides:
            raise ConfigError("give LandmarkTracker a config or keyword settings, not both")
        self.config = config or LandmarkTrackerConfig(**overrides)
        self.models = models or FaceModels.shared()
        self._tracks: list[_Track] = []
        self._ids = itertools.count()
        self.frame = -1
        self.detections_run = 0
        self.mesh_runs = 0

    def _due(self, frame: int) -> bool:
        searching = not self._tracks or any(t.lost_for > 0 for t in self._tracks)
        every = self.config.lost_detect_every if searching else self.config.detect_every
        return frame % every == 0

    def wants_detection(self) -> bool:
        """Whether the next frame runs the detector (unless a face is lost on it)."""
        return self._due(self.frame + 1)

    def update(self, gray: np.ndarray) -> list[TrackedFace]:
        """Advance one (H, W) uint8 gray frame; the faces followed on it, in id order."""
        self.frame += 1
        for track in self._tracks:
            self._follow(track, gray)
        if self._due(self.frame):
            self._detect(gray)
        self._merge()
        self._tracks = [t for t in self._tracks if t.lost_for <= self.config.keep_lost]
        return [t.report() for t in sorted(self._tracks, key=lambda t: t.track_id)
                if t.lost_for == 0]

    def _follow(self, track: _Track, gray: np.ndarray) -> None:
        track.detected = False
        if track.lost_for > 0 or track.raw is None:
            track.lost_for += 1
            return
        points, presence = self._mesh(gray, region_from_landmarks(track.raw))
        if presence >= self.config.min_presence:
            track.accept(points, presence, detected=False)
        else:
            track.lost_for = 1

    def _mesh(self, gray: np.ndarray, region: FaceRegion) -> tuple[np.ndarray, float]:
        self.mesh_runs += 1
        return self.models.landmarks(gray, region)

    def _detect(self, gray: np.ndarray) -> None:
        """Search the whole frame and the next tile in turn (`landmarks.tile_grid`), so that
        small faces are found within a few detection runs at the cost of one more."""
        self.detections_run += 1
        tile = self.detections_run % max(1, len(tile_grid(gray.shape)))
        for detection in self.models.detect(gray, tiles=[tile]):
            followed = [t for t in self._tracks if t.lost_for == 0]
            if any(iou(t.box, detection.box) > 0.2 or _inside(detection.box, t.box)
                   for t in followed):
                continue
            points, presence = self._mesh(gray, region_from_detection(detection))
            if presence < self.config.min_presence:
                continue
            track = self._nearest_lost(face_box_from_landmarks(points))
            if track is None:
                if len(followed) >= self.config.max_faces:
                    continue
                track = _Track(next(self._ids), self.config)
                self._tracks.append(track)
            track.accept(points, presence, detected=True)

    def _nearest_lost(self, box: Box) -> _Track | None:
        best, best_distance = None, np.inf
        for track in self._tracks:
            if track.lost_for == 0 or track.smooth is None:
                continue
            last = track.box
            distance = np.hypot(box.center[0] - last.center[0], box.center[1] - last.center[1])
            if distance < self.config.revive_distance * max(last.w, box.w) \
                    and distance < best_distance:
                best, best_distance = track, distance
        return best

    def _merge(self) -> None:
        """Drop the younger of two followed tracks on one face."""
        followed = sorted((t for t in self._tracks if t.lost_for == 0),
                          key=lambda t: t.track_id)
        gone: set[int] = set()
        for i, older in enumerate(followed):
            for younger in followed[i + 1:]:
                if younger.track_id not in gone and iou(older.box, younger.box) > 0.5:
                    gone.add(younger.track_id)
        self._tracks = [t for t in self._tracks if t.track_id not in gone]

    def reset(self) -> None:
        """Forget every face (e.g. at a scene cut); ids keep increasing."""
        self._tracks, self.frame = [], -1


def _inside(box: Box, outer: Box) -> bool:
    cx, cy = box.center
    return outer.x <= cx <= outer.x + outer.w and outer.y <= cy <= outer.y + outer.h


def track_clip(frames: Iterable[np.ndarray], tracker: LandmarkTracker | None = None
               ) -> list[list[TrackedFace]]:
    """Run a tracker over a clip's (H, W) uint8 gray frames: the faces of every frame."""
    tracker = tracker or LandmarkTracker()
    return [tracker.update(frame) for frame in frames]


class FaceCentredCropper:
    """Mouth ROIs of a face-centred clip (LRS2/LRS3, the synthetic corpus), piece after piece,
    by a crop convention (`avsync.media.roi`): face-box: the fixed crop of the whole frame, as
    today; mean-face: the face's landmarks tracked over the clip (the largest face; the
    documented fallback from the whole-frame box on frames where none is found). Keeps its
    tracker between calls, so a clip read in pieces gets the crops it would get whole.

        cropper = FaceCentredCropper(96, MEAN_FACE)
        for piece in pieces: rois = cropper.crop(piece)   # (T, 96, 96) uint8
    """

    def __init__(self, size: int, convention: str,
                 tracker: LandmarkTracker | None = None) -> None:
        from avsync.media.roi import MEAN_FACE, check_convention

        self.size, self.convention = size, check_convention(convention)
        self.tracker = tracker
        if self.tracker is None and convention == MEAN_FACE:
            self.tracker = LandmarkTracker(max_faces=1)
        self.found = self.frames = 0  # frames with landmarks, frames seen

    def faces(self, frames: np.ndarray) -> list[Face]:
        """The face to crop on each (H, W) uint8 gray frame of `frames` (T, H, W)."""
        from avsync.media.roi import whole_frame_face

        out = []
        for frame in frames:
            whole = whole_frame_face(frame.shape[1], frame.shape[0])
            tracked = self.tracker.update(frame) if self.tracker is not None else []
            self.frames += 1
            if tracked:
                self.found += 1
                out.append(max(tracked, key=lambda f: f.box.w).face)
            else:
                out.append(Face(whole))
        return out

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """frames: (T, H, W) uint8 gray -> (T, size, size) uint8 mouth ROIs."""
        from avsync.media.roi import FACE_BOX, crop_faces, whole_frame_face

        frames = np.asarray(frames)
        if len(frames) == 0:
            return np.zeros((0, self.size, self.size), np.uint8)
        if self.convention == FACE_BOX:
            whole = whole_frame_face(frames.shape[2], frames.shape[1])
            return crop_faces(frames, whole, self.size, FACE_BOX)
        return crop_faces(frames, self.faces(frames), self.size, self.convention)
