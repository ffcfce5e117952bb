"""The renderer's pose range (yaw +-40, pitch +-20, roll +-20 degrees) and its truth."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.data.synth.face import FrameState, head_pose, render_states, true_lips_centre
from avsync.data.synth.pose import MOUTH_X, MOUTH_Y, project_head, unproject_head
from avsync.data.synth.speakers import make_speaker

STILL = FrameState(0, 0, 0, 1, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def identity():
    return make_speaker(0, 3).face


def _turned(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> FrameState:
    return FrameState(0, 0, roll, 1, 0, 0, 0, 0, yaw, pitch)


def test_a_frontal_pose_leaves_points_where_they_are(identity) -> None:
    points = np.random.default_rng(0).uniform(0, 160, (50, 2))
    assert np.array_equal(project_head(identity, STILL, points), points)


@pytest.mark.parametrize("yaw,pitch", [(40, 0), (-40, 0), (0, 20), (0, -20), (40, -20)])
def test_turned_points_stay_inside_the_head_and_move_the_right_way(identity, yaw,
                                                                   pitch) -> None:
    a, b, cy = identity.face_half_width, identity.face_half_height, identity.face_center_y
    theta = np.linspace(0, 2 * np.pi, 64)
    inner = np.stack([MOUTH_X + 0.9 * a * np.cos(theta), cy + 0.9 * b * np.sin(theta)], 1)
    moved = project_head(identity, _turned(yaw, pitch), inner)
    radius = np.hypot((moved[:, 0] - MOUTH_X) / a, (moved[:, 1] - cy) / b)
    assert radius.max() <= 1.03  # only the nose and lips may stand a little out of it
    nose = project_head(identity, _turned(yaw, pitch), np.array([[MOUTH_X, cy]]))[0]
    assert np.sign(nose[0] - MOUTH_X) == np.sign(yaw)  # the face's front turns with the yaw
    assert np.sign(cy - nose[1]) == np.sign(pitch)  # > 0 pitch lifts it


def test_unproject_inverts_project_on_the_face(identity) -> None:
    """On the forehead and the eyes' outer sides (away from the nose and the mouth region,
    whose extra depth the shading's inverse ignores) the inverse finds the canonical point."""
    state = _turned(30, -15)
    canonical = np.array([[MOUTH_X - 25, 70.0], [MOUTH_X + 22, 60.0], [MOUTH_X - 8, 45.0]])
    seen = project_head(identity, state, canonical)
    x, y, front = unproject_head(identity, state, seen[:, 0], seen[:, 1])
    assert front.all()
    assert np.allclose(np.stack([x, y], 1), canonical, atol=1.5)


def test_lips_truth_follows_the_pose(identity) -> None:
    mouth = np.full(6, 0.2)
    frontal = true_lips_centre(identity, STILL, mouth)
    assert frontal == pytest.approx((MOUTH_X, MOUTH_Y), abs=4)
    rolled = _turned(roll=20)
    expected = head_pose(identity, rolled) @ [*frontal, 1.0]
    assert true_lips_centre(identity, rolled, mouth) == pytest.approx(tuple(expected), abs=1e-6)
    assert true_lips_centre(identity, _turned(yaw=40), mouth)[0] > frontal[0] + 10


def test_the_whole_range_renders(identity) -> None:
    states = [_turned(y, p, r) for y in (-40, 40) for p in (-20, 20) for r in (-20, 20)]
    frames = render_states(identity, np.full((len(states), 6), 0.3), states,
                           np.random.default_rng(0))
    assert frames.shape == (8, 160, 160, 3)
    assert all(frame.std() > 20 for frame in frames)  # a face, not a blank
    assert len({frame.tobytes() for frame in frames}) == 8
