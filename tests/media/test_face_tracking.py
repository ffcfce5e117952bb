"""Face tracks over rendered clips: stable ids through head turns, blinks and occlusion,
smoothed landmarks, bounded detection, at most max_faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avsync.data.synth.face import (
    FrameState,
    render_states,
    true_face_width,
    true_lips_centre,
    true_mouth_box,
)
from avsync.data.synth.speakers import make_speaker
from avsync.errors import ConfigError
from avsync.media.face_tracking import (
    LandmarkTracker,
    LandmarkTrackerConfig,
    face_box_from_landmarks,
    track_clip,
)
from avsync.media.roi import mouth_box

PAD_X, PAD_Y = 20, 40  # each 160 px face tile sits in a 200 x 240 cell


def _face_clip(speaker: int, frames: int, seed: int, turning: bool = True):
    """One face's gray frames (T, 160, 160) with turns (yaw +-40, pitch +-15, roll +-12
    degrees), two blinks and speech-like mouth motion, plus per-frame truth (lips, width).
    turning=False: a still head and mouth (only blinks and sensor noise change)."""
    identity = make_speaker(0, speaker).face
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    amount = 1.0 if turning else 0.0
    yaw = amount * 40 * np.sin(2 * np.pi * t / 60 + speaker)
    pitch = amount * 15 * np.sin(2 * np.pi * t / 45 + 2 * speaker)
    roll = amount * 12 * np.sin(2 * np.pi * t / 70)
    blink = np.zeros(max(frames, 80))
    blink[20:25], blink[70:74] = [0.5, 1, 1, 1, 0.5], [0.6, 1, 1, 0.6]
    states = [FrameState(amount * 3 * np.sin(k / 9), amount * 2 * np.cos(k / 7), roll[k], 1.0,
                         blink[k], 0, 0, 0, yaw[k], pitch[k]) for k in range(frames)]
    mouth = rng.uniform(0, 0.7, (frames, 6)) if turning else np.full((frames, 6), 0.2)
    rgb = render_states(identity, mouth, states, rng)
    gray = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in rgb])
    truth = [(true_lips_centre(identity, s, m), true_face_width(identity, s))
             for s, m in zip(states, mouth, strict=True)]
    return gray, truth, (identity, states)


def _side_by_side(tiles: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.pad(tile, ((0, 0), (PAD_Y, PAD_Y), (PAD_X, PAD_X)), mode="edge")
                           for tile in tiles], axis=2)


@pytest.fixture(scope="module")
def two_faces():
    clips = [_face_clip(10 + f, 100, seed=f) for f in range(2)]
    frames = _side_by_side([gray for gray, _, _ in clips])
    frames[40:48, PAD_Y:PAD_Y + 160, PAD_X:PAD_X + 160] = 128  # face 0 hidden for 0.32 s
    return frames, [truth for _, truth, _ in clips]


def test_two_faces_keep_their_ids_through_turns_blinks_and_an_occlusion(two_faces) -> None:
    frames, truth = two_faces
    tracker = LandmarkTracker(max_faces=2)
    ids: dict[int, list[int]] = {0: [], 1: []}
    missing: dict[int, list[int]] = {0: [], 1: []}
    errors = []
    for k, faces in enumerate(track_clip(frames, tracker)):
        seen = set()
        for face in faces:
            cell = int(face.lips[0] // (160 + 2 * PAD_X))
            seen.add(cell)
            ids[cell].append(face.track_id)
            (x, y), width = truth[cell][k]
            x, y = x + PAD_X + cell * (160 + 2 * PAD_X), y + PAD_Y
            errors.append(np.hypot(face.lips[0] - x, face.lips[1] - y) / width)
        for cell in (0, 1):
            if cell not in seen:
                missing[cell].append(k)
    switches = sum(len(set(v)) - 1 for v in ids.values())
    assert switches == 0 and set(ids[0]) != set(ids[1])
    assert missing[1] == [] and set(missing[0]) <= set(range(40, 50))  # found again at once
    assert len(missing[0]) >= 7  # a hidden face is not reported
    assert np.median(errors) < 0.035 and np.percentile(errors, 95) < 0.07
    # detection is bounded: every 10th frame while both are followed, every 2nd while lost
    assert tracker.detections_run <= len(frames) // 10 + len(missing[0]) // 2 + 3


def test_a_still_face_gives_still_landmarks() -> None:
    gray, _, _ = _face_clip(12, 60, seed=3, turning=False)
    smoothed = LandmarkTracker()
    raw = LandmarkTracker(min_cutoff=1e4, beta=0.0)  # a filter that passes everything
    kept = np.array([smoothed.update(frame)[0].lips for frame in gray])
    unsmoothed = np.array([raw.update(frame)[0].lips for frame in gray])
    jitter, raw_jitter = kept[10:].std(axis=0).mean(), unsmoothed[10:].std(axis=0).mean()
    assert jitter < 0.6 * raw_jitter and jitter < 0.2


def test_at_most_max_faces_are_followed() -> None:
    tiles = [_face_clip(20 + f, 12, seed=f, turning=False)[0] for f in range(3)]
    frames = _side_by_side(tiles)
    for faces in track_clip(frames, LandmarkTracker(max_faces=2)):
        assert len(faces) <= 2
    assert len(track_clip(frames, LandmarkTracker(max_faces=3))[-1]) == 3


def test_a_face_gone_longer_than_keep_lost_comes_back_with_a_new_id() -> None:
    gray, _, _ = _face_clip(12, 30, seed=4, turning=False)
    gray = gray.copy()
    gray[8:20] = 120  # gone for 12 frames
    tracker = LandmarkTracker(keep_lost=5)
    per_frame = track_clip(gray, tracker)
    assert {f.track_id for f in per_frame[5]} == {0}
    assert per_frame[10] == [] and {f.track_id for f in per_frame[-1]} == {1}


def test_face_box_from_landmarks_puts_the_mouth_box_on_the_mouth() -> None:
    """The FACE_BOX convention's box derived from landmarks lands where the renderer's
    convention puts the mouth box (centre within 3 px, side within 15 %)."""
    gray, _, (identity, states) = _face_clip(14, 12, seed=5, turning=False)
    for state, (face,) in zip(states, track_clip(gray), strict=True):
        true = true_mouth_box(identity, state)
        derived = mouth_box(face_box_from_landmarks(face.landmarks))
        assert np.hypot(derived.center[0] - true.center[0],
                        derived.center[1] - true.center[1]) < 3
        assert derived.w == pytest.approx(true.w, rel=0.15)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        LandmarkTrackerConfig(max_faces=0)
    with pytest.raises(ConfigError):
        LandmarkTrackerConfig(min_presence=1.5)
    with pytest.raises(ConfigError, match="not both"):
        LandmarkTracker(LandmarkTrackerConfig(), max_faces=2)
