"""Face detection on a real photograph and tracking over synthetic clips made from it.

skimage.data.astronaut() is NASA's public-domain portrait of Eileen Collins (512x512 RGB).
Her mouth, read off the image by eye: corners at (203, 146) and (245, 146), upper lip top at
(224, 139), lower lip bottom at (224, 154).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from avsync.errors import ConfigError, MediaError
from avsync.media.faces import (
    DetectorConfig,
    FaceDetector,
    FaceTracker,
    TrackerConfig,
    face_box_from_haar,
    iou,
    track_faces,
)
from avsync.media.roi import Box, mouth_box

MOUTH_POINTS = [(203, 146), (245, 146), (224, 139), (224, 154)]
MOUTH_CENTRE = (224, 146)


@pytest.fixture(scope="module")
def astronaut_gray() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _contains(box: Box, x: float, y: float) -> bool:
    return box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h


def test_astronaut_has_one_face_and_its_mouth_box_holds_her_mouth(astronaut_gray,
                                                                  detector) -> None:
    faces = detector.detect(astronaut_gray)
    assert len(faces) == 1
    face = faces[0]
    assert face.w == face.h  # the convention's boxes are square
    mouth = mouth_box(face)
    assert all(_contains(mouth, x, y) for x, y in MOUTH_POINTS)
    assert np.hypot(mouth.center[0] - MOUTH_CENTRE[0], mouth.center[1] - MOUTH_CENTRE[1]) < 6
    assert 50 < mouth.w < 80  # about 1.5x her mouth's 42 px width, as in LRS crops


def test_detection_scales_with_the_image(astronaut_gray, detector) -> None:
    """Downscaled 2x and upscaled 2x, the same face is found in the same place."""
    full = detector.detect(astronaut_gray)[0]
    half = detector.detect(cv2.resize(astronaut_gray, (256, 256), interpolation=cv2.INTER_AREA))
    assert len(half) == 1 and iou(half[0].scaled(2.0), full) > 0.8
    big = cv2.resize(astronaut_gray, (1024, 1024))
    double = detector.detect(big)
    assert len(double) == 1 and iou(double[0].scaled(0.5), full) > 0.8


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "coins", "moon", "brick"])
def test_face_free_photographs_have_no_faces(detector, name) -> None:
    image = getattr(skimage.data, name)()
    gray = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    assert detector.detect(gray.astype(np.uint8)) == []


def test_haar_box_conversion_puts_the_mouth_at_the_convention_point() -> None:
    face = face_box_from_haar(100, 50, 80, 80)
    assert face.w == face.h == pytest.approx(128)
    mouth_x, mouth_y = mouth_box(face).center
    assert (mouth_x, mouth_y) == pytest.approx((140, 50 + 0.83 * 80))


def test_bad_frames_and_configs_are_refused(detector) -> None:
    with pytest.raises(MediaError, match="uint8 gray"):
        detector.detect(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ConfigError, match="cascade"):
        FaceDetector(DetectorConfig(cascade="no_such_cascade.xml"))
    with pytest.raises(ConfigError):
        DetectorConfig(scale_factor=1.0)
    with pytest.raises(ConfigError):
        TrackerConfig(detect_every=0)


def _two_face_clip(gray: np.ndarray, frames: int, seed: int = 0):
    """Two copies of the astronaut's face moving across a 400x240 canvas, plus the true
    mouth centre of each per frame (left face first)."""
    patch = cv2.resize(gray[20:230, 120:330], (120, 120), interpolation=cv2.INTER_AREA)
    mouth_in_patch = ((MOUTH_CENTRE[0] - 120) * 120 / 210, (MOUTH_CENTRE[1] - 20) * 120 / 210)
    rng = np.random.default_rng(seed)
    clip, truth = [], []
    for t in range(frames):
        canvas = np.full((240, 400), 110.0)
        left = (20 + 3 * t, 60)  # drifts right
        right = (260, 60 + round(45 * np.sin(t / 6)))  # bobs fast: up to 7 px a frame
        for x, y in (left, right):
            canvas[y:y + 120, x:x + 120] = patch
        clip.append(np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8))
        truth.append([(x + mouth_in_patch[0], y + mouth_in_patch[1]) for x, y in (left, right)])
    return np.stack(clip), truth


def test_two_moving_faces_keep_two_stable_track_ids(astronaut_gray, detector) -> None:
    clip, truth = _two_face_clip(astronaut_gray, 40)
    tracker = FaceTracker(detector, TrackerConfig(detect_every=5))
    per_frame = track_faces(clip, tracker)

    assert tracker.detections_run <= len(clip) / 5 + 1  # boxes were carried in between
    born = next(t for t, faces in enumerate(per_frame) if faces)
    assert born <= 2
    ids_by_side: dict[str, set[int]] = {"left": set(), "right": set()}
    for faces, mouths in zip(per_frame[born:], truth[born:], strict=True):
        assert len(faces) == 2
        for face in faces:
            side = "left" if face.box.center[0] < 200 else "right"
            ids_by_side[side].add(face.track_id)
            true_x, true_y = mouths[0 if side == "left" else 1]
            centre = mouth_box(face.box).center
            assert np.hypot(centre[0] - true_x, centre[1] - true_y) < 5
    assert len(ids_by_side["left"]) == len(ids_by_side["right"]) == 1
    assert ids_by_side["left"] != ids_by_side["right"]


def test_a_still_face_gives_a_still_box(astronaut_gray, detector) -> None:
    """Sensor noise changes each frame; the tracked box must not jitter with it."""
    rng = np.random.default_rng(1)
    still = cv2.resize(astronaut_gray, (320, 320), interpolation=cv2.INTER_AREA)
    tracker = FaceTracker(detector, TrackerConfig(detect_every=5))
    tracked, raw = [], []
    for _ in range(25):
        noisy = np.clip(still + rng.normal(0, 4, still.shape), 0, 255).astype(np.uint8)
        faces = tracker.update(noisy)
        assert len(faces) <= 1  # a one-frame false detection never becomes a track
        tracked += [(f.box.x, f.box.y, f.box.w) for f in faces]
        raw += [(b.x, b.y, b.w) for b in detector.detect(noisy)[:1]]  # the largest
    assert len(tracked) >= 23 and len(raw) == 25
    # the tracker at least halves the detector's own jitter
    assert np.all(np.std(tracked[5:], axis=0) < 0.5 * np.std(raw, axis=0))


def test_tracks_are_born_after_hits_and_die_after_misses() -> None:
    tracker = FaceTracker(config=TrackerConfig(detect_every=2, birth_hits=2, max_misses=2))
    face = Box(100, 100, 80, 80)
    assert tracker.step([face]) == []  # one hit: tentative
    assert tracker.wants_detection()  # tentative tracks want a detection every frame
    (first,) = tracker.step([face])
    assert first.hits == 2 and first.detected
    assert tracker.step(None)[0].detected is False  # carried
    assert tracker.step([]) != []  # one missed detection run: still alive
    tracker.step(None)
    assert tracker.step([]) == []  # second miss: dead
    tracker.step(None)
    tracker.step([face])
    (reborn,) = tracker.step([face])
    assert reborn.track_id != first.track_id  # a new face gets a new id


def test_smoothing_removes_most_detector_jitter() -> None:
    rng = np.random.default_rng(7)
    tracker = FaceTracker(config=TrackerConfig(detect_every=1))
    raw, smoothed = [], []
    for _ in range(300):
        box = Box(100 + rng.normal(0, 2), 100 + rng.normal(0, 2), 80, 80)
        faces = tracker.step([box])
        raw.append(box.x)
        smoothed.extend(f.box.x for f in faces)
    assert np.std(smoothed[20:]) < 0.7 * np.std(raw[20:])
    assert abs(np.mean(smoothed[20:]) - 100) < 0.5
