"""Mouth-ROI cropping: the convention's geometry, area resizing, border replication."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.roi import Box, crop_mouth, crop_mouths, mouth_box, whole_frame_face


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
