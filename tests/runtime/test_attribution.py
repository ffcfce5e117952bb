"""Who said what: each word names the face whose ASD says it was speaking then, or none."""

from __future__ import annotations

import numpy as np

from avsync.runtime.segment_media import SegmentMedia


def _media(scores: dict[int, np.ndarray] | None, steps: int = 30) -> SegmentMedia:
    media = SegmentMedia(640)
    faces = {1: np.zeros((steps, 8, 8), np.uint8), 2: np.zeros((steps, 8, 8), np.uint8)}
    media.add(0, steps, np.zeros(steps * 640, np.float32), faces, primary=2)
    if scores is not None:
        media.score(0, scores)
    return media


def test_the_face_speaking_then_said_the_word() -> None:
    turn = np.r_[np.full(15, 4.0), np.full(15, -4.0)]  # face 1 speaks first, then face 2
    media = _media({1: turn, 2: -turn})
    assert media.speaker_of(0, 8) == 1
    assert media.speaker_of(20, 28) == 2
    # a voice while both faces keep their mouths shut (P ~ 0.05-0.12): nobody on screen said it
    assert _media({1: np.full(30, -3.0), 2: np.full(30, -2.0)}).speaker_of(5, 10) \
        is None


def test_without_asd_the_lips_read_name_the_face() -> None:
    assert _media(None).speaker_of(5, 10) == 2  # the face the stream read
    assert SegmentMedia(640).speaker_of(0, 5) is None
