"""Mouth-ROI cropping: both conventions' geometry, area resizing, border replication."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avsync.errors import ConfigError, MediaError
from avsync.media.roi import (
    FACE_BOX,
    FALLBACK_EYE_SPAN,
    MEAN_FACE,
    MEAN_FACE_CROP,
    MEAN_FACE_POINTS,
    Box,
    Face,
    check_convention,
    crop_face,
    crop_faces,
    crop_mouth,
    crop_mouths,
    mean_face_fallback,
    mean_face_transform,
    mouth_box,
    mouth_centre,
    similarity,
    whole_frame_face,
)


def _frames(count: int = 6, height: int = 160, width: int = 160) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (count, height, width), dtype=np.uint8)


def test_lrs_frame_mouth_box_is_64_px_centred_low() -> None:
    mouth = mouth_box(whole_frame_face(160, 160))
    assert (mouth.w, mouth.h, *mouth.center) == (64, 64, 80, 112)
    assert whole_frame_face(224, 160) == Box(32, 0, 160, 160)


def test_fixed_crop_is_the_mouth_region_resized_with_area_interpolation() -> None:
    frames = _frames()
    rois = crop_mouths(frames, whole_frame_face(160, 160), 32)
    assert rois.shape == (6, 32, 32) and rois.dtype == np.uint8
    expected = cv2.resize(frames[2, 80:144, 48:112], (32, 32), interpolation=cv2.INTER_AREA)
    assert np.array_equal(rois[2], expected)
    # 2x2 block means, as area interpolation promises for an exact halving
    block = frames[2, 80:82, 48:50].astype(float).mean()
    assert abs(int(rois[2, 0, 0]) - block) <= 0.5


def test_per_frame_boxes_match_single_frame_crops() -> None:
    frames = _frames()
    faces = [Box(10 + 5 * i, 20, 100, 100) for i in range(len(frames))]
    rois = crop_mouths(frames, faces, 24)
    for frame, face, roi in zip(frames, faces, rois, strict=True):
        assert np.array_equal(roi, crop_mouth(frame, face, 24))
    assert not np.array_equal(rois[0], rois[-1])


def test_boxes_partly_outside_the_frame_replicate_the_border() -> None:
    x = np.arange(100, dtype=np.uint8)
    frame = np.tile(x, (100, 1))  # pixel value = its column
    face = Box(-70, 10, 100, 100)  # mouth box x from -40 to 0: entirely left of the frame
    assert np.all(crop_mouth(frame, face, 40) == 0)
    face = Box(-50, 10, 100, 100)  # mouth box x from -20 to 20: half outside
    roi = crop_mouth(frame, face, 40)
    assert np.all(roi[:, :20] == 0)  # replicated column 0
    assert np.array_equal(roi[0, 20:], np.arange(20))


def test_empty_clip_and_bad_input() -> None:
    assert crop_mouths(np.zeros((0, 50, 50), np.uint8), [], 16).shape == (0, 16, 16)
    frames = _frames(2)
    with pytest.raises(MediaError, match="3 face boxes for 2 frames"):
        crop_mouths(frames, [Box(0, 0, 10, 10)] * 3, 16)
    with pytest.raises(MediaError, match="positive width"):
        crop_mouths(frames, Box(0, 0, 0, 10), 16)
    with pytest.raises(MediaError, match="uint8"):
        crop_mouths(frames.astype(np.float32), Box(0, 0, 10, 10), 16)
    with pytest.raises(MediaError, match="finite"):
        crop_mouth(frames[0], Box(float("nan"), 0, 10, 10), 16)


# --- crop conventions -------------------------------------------------------------------------

def _face_like(size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and made-up face-mesh landmarks on it (only the mean-face points and
    the lips matter to a crop): eyes at y=80, nose tip at y=115, lips around (100, 140)."""
    rng = np.random.default_rng(5)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (size, size), dtype=np.uint8), (0, 0), 2)
    points = np.tile([100.0, 140.0], (468, 1))
    for index, (x, y) in MEAN_FACE_POINTS.items():
        points[index] = (100 + 0.6 * x, 80 + 0.6 * y)
    return frame, points


def test_unknown_conventions_are_named_in_the_error() -> None:
    assert check_convention(MEAN_FACE) == MEAN_FACE and check_convention(FACE_BOX) == FACE_BOX
    with pytest.raises(ConfigError, match="'face-box'.*'mean-face'"):
        check_convention("dlib-68")
    with pytest.raises(ConfigError, match="unknown mouth-crop convention 'x'"):
        crop_face(np.zeros((50, 50), np.uint8), Box(0, 0, 50, 50), 16, "x")


def test_face_box_convention_is_todays_crop() -> None:
    frames = _frames()
    face = Box(10, 20, 100, 100)
    assert np.array_equal(crop_face(frames[0], face, 24, FACE_BOX), crop_mouth(frames[0], face, 24))
    faces = [Face(Box(10 + i, 20, 100, 100)) for i in range(len(frames))]
    assert np.array_equal(crop_faces(frames, faces, 24, FACE_BOX),
                          crop_mouths(frames, [f.box for f in faces], 24))


def test_mean_face_crop_follows_the_face_through_a_similarity() -> None:
    """Rotate, scale and move the frame and its landmarks together: the crop stays the same."""
    frame, points = _face_like()
    crop = crop_face(frame, Face(Box(40, 40, 120, 120), points), 48, MEAN_FACE)
    matrix = cv2.getRotationMatrix2D((100, 110), 17, 1.4)
    matrix[:, 2] += (30, -12)
    moved = cv2.warpAffine(frame, matrix, (320, 320), flags=cv2.INTER_LINEAR)
    moved_points = points @ matrix[:, :2].T + matrix[:, 2]
    moved_crop = crop_face(moved, Face(Box(0, 0, 1, 1), moved_points), 48, MEAN_FACE)
    assert np.abs(crop.astype(int) - moved_crop.astype(int)).mean() < 4
    centre = mouth_centre(Face(Box(0, 0, 1, 1), moved_points), MEAN_FACE)
    assert centre == pytest.approx(tuple(matrix @ [100, 140, 1]), abs=1e-6)


def test_mean_face_scale_and_centre() -> None:
    """The stable points land on the mean face: the 96 px crop spans 96 mean-face pixels,
    and it is centred on the lips."""
    frame, points = _face_like()
    to_crop = mean_face_transform(points, MEAN_FACE_CROP)
    assert to_crop @ [100, 140, 1] == pytest.approx([48, 48])
    eye_span = np.hypot(*(to_crop[:, :2] @ (points[263] - points[33])))
    assert eye_span == pytest.approx(94, rel=1e-6)
    assert similarity(points[[33, 263, 1]], points[[33, 263, 1]]) == pytest.approx(
        np.array([[1, 0, 0], [0, 1, 0]]), abs=1e-9)


def test_mean_face_fallback_without_landmarks_centres_the_face_box_mouth_point() -> None:
    face = Box(30, 10, 160, 160)
    assert mouth_centre(face, MEAN_FACE) == pytest.approx(mouth_box(face).center)
    frames = _frames(3, 200, 200)
    rois = crop_faces(frames, face, 40, MEAN_FACE)
    assert rois.shape == (3, 40, 40)
    assert np.array_equal(rois[1], crop_face(frames[1], Face(face), 40, MEAN_FACE))
    # the crop spans 96 mean-face pixels = 96 / 94 of the eye span (0.37 of the box side)
    span = 96 / 94 * FALLBACK_EYE_SPAN * 160
    step = np.linalg.inv(mean_face_fallback(face, 40)[:, :2])[0, 0]
    assert step * 40 == pytest.approx(span)
