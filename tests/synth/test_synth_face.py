"""Visemes, co-articulation and the rendered face: ambiguity, timing, geometry, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.data.synth.espeak import PhonemeSegment
from avsync.data.synth.face import (
    MOUTH_X,
    MOUTH_Y,
    FrameState,
    apply_lighting,
    downsample,
    frame_states,
    head_pose,
    random_identity,
    random_lighting,
    render_background,
    render_clip,
    render_face,
)
from avsync.data.synth.mouth import mouth_shape
from avsync.data.synth.visemes import (
    CLOSURE,
    JAW,
    PARAMETERS,
    REST,
    VISEMES,
    articulation_track,
    idle_track,
    visemes_of,
)
from avsync.media.roi import mouth_box, whole_frame_face
from avsync.timebase import FPS

MOUTH = mouth_box(whole_frame_face(160, 160))


def segments(*items: tuple[str, float]) -> list[PhonemeSegment]:
    """Back-to-back phonemes from (mnemonic, duration s) pairs, starting at 0."""
    out, t = [], 0.0
    for name, duration in items:
        out.append(PhonemeSegment(name, t, t + duration, None if name.startswith("_") else 0))
        t += duration
    return out


def test_visemes_are_as_ambiguous_as_lip_reading() -> None:
    same = [("p", "b", "m"), ("f", "v"), ("T", "D"), ("t", "d", "n", "l", "s", "z"),
            ("k", "g", "N"), ("S", "Z", "tS", "dZ")]
    for group in same:
        assert len({visemes_of(p) for p in group}) == 1, group
    assert len({visemes_of(g[0]) for g in same}) == len(same)
    assert 12 <= len(VISEMES) <= 15
    assert visemes_of("aI") == ("AA", "IY") and visemes_of("_:") == ("sil",)


def test_track_rests_in_silence_and_closes_for_bilabials() -> None:
    phonemes = segments(("m", 0.12), ("A:", 0.3), ("p", 0.12), ("A:", 0.2))
    track = articulation_track(phonemes, n_frames=55, offset=0.6)
    assert track.shape == (55, len(PARAMETERS)) and track.dtype == np.float32
    assert np.allclose(track[:5], REST, atol=0.02) and np.allclose(track[-5:], REST, atol=0.02)
    m_frame, a_frame = int((0.6 + 0.06) * FPS), int((0.6 + 0.27) * FPS)
    assert track[m_frame, CLOSURE] > 0.75
    assert track[a_frame, JAW] > 0.6 and track[a_frame, CLOSURE] < 0.2


def test_track_moves_exactly_with_the_audio() -> None:
    """Delaying the speech by k frames delays the mouth by exactly k frames."""
    phonemes = segments(("b", 0.08), ("aI", 0.25), ("t", 0.07), ("_", 0.2), ("w", 0.1),
                        ("u:", 0.2))
    base = articulation_track(phonemes, 80, offset=0.3)
    for k in (1, 5, 13):
        moved = articulation_track(phonemes, 80, offset=0.3 + k / FPS)
        assert np.allclose(moved[k:], base[:-k], atol=1e-5)


def test_each_frame_averages_its_40_ms() -> None:
    """A vowel covering half of a frame leaves the frame half way, not snapped (no aliasing)."""
    phonemes = segments(("A:", 0.5))
    early = articulation_track(phonemes, 40, offset=0.400)[:, JAW]
    half = articulation_track(phonemes, 40, offset=0.420)[:, JAW]
    assert early[10] > half[10] > articulation_track(phonemes, 40, offset=0.440)[10, JAW]


def test_idle_motion_is_small_and_smooth() -> None:
    idle = idle_track(np.random.default_rng(0), 250)
    assert np.abs(idle).max() < 0.4 and np.abs(idle[:, JAW]).max() < 0.11
    assert np.abs(np.diff(idle, axis=0)).max() < 0.08
    assert idle[:, JAW].std() > 0.005


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32).mean(axis=2)


def test_the_mouth_sits_in_the_fixed_crop() -> None:
    identity = random_identity(np.random.default_rng(3), feminine=False)
    background = render_background(identity)
    still = FrameState(0, 0, 0, 1, 0, 0, 0, 0)
    lighting = random_lighting(np.random.default_rng(0), 1)
    open_mouth = np.array(VISEMES["AA"].target)
    frames = [apply_lighting(downsample(render_face(background, identity, still, m))[None],
                             lighting, np.random.default_rng(0))[0] for m in (REST, open_mouth)]
    threshold = 0.5 * np.median(_gray(frames[0]))
    opened = (_gray(frames[1]) < threshold) & (_gray(frames[0]) >= threshold)
    ys, xs = np.nonzero(opened)
    assert opened.sum() > 150
    assert abs(xs.mean() - MOUTH_X) < 2 and abs(ys.mean() - MOUTH_Y) < 8
    inside = (MOUTH.x <= xs) & (xs < MOUTH.x + MOUTH.w) & (MOUTH.y <= ys) & (ys < MOUTH.y + MOUTH.h)
    # the dropped jaw also moves the shaded rim of the face a pixel or two (dark skin tones
    # cross the threshold there): the mouth is the opening, so nearly all of it is in the crop
    assert inside.mean() > 0.99, (xs[~inside], ys[~inside])


def test_mouth_width_and_head_motion_respect_the_crop() -> None:
    widest = np.array(VISEMES["IY"].target)  # spread lips are the widest
    for seed in range(20):
        rng = np.random.default_rng(seed)
        identity = random_identity(rng, feminine=seed % 2 == 0)
        assert 0.6 <= identity.mouth_width / MOUTH.w <= 0.75
        shape = mouth_shape((MOUTH_X, MOUTH_Y), identity.mouth_width, identity.upper_lip,
                            identity.lower_lip, widest)
        lips = np.concatenate([shape.upper_outer, shape.lower_outer])
        for state in frame_states(rng, identity, 300):
            pose = head_pose(identity, state)
            moved = lips @ pose[:, :2].T + pose[:, 2]
            assert MOUTH.x + 1 < moved[:, 0].min() and moved[:, 0].max() < MOUTH.x + MOUTH.w - 1
            assert MOUTH.y + 1 < moved[:, 1].min() and moved[:, 1].max() < MOUTH.y + MOUTH.h - 1


def test_rendering_is_deterministic_and_alive() -> None:
    identity = random_identity(np.random.default_rng(9), feminine=True)
    mouth = np.tile(REST, (60, 1)).astype(np.float32)
    first = render_clip(identity, mouth, np.random.default_rng(1))
    assert first.shape == (60, 160, 160, 3) and first.dtype == np.uint8
    assert np.array_equal(first, render_clip(identity, mouth, np.random.default_rng(1)))
    motion = np.abs(np.diff(first.astype(np.int16), axis=0)).mean()
    assert motion > 0.5  # head motion, blinks, lighting and noise: never a still image


@pytest.mark.parametrize("feminine", [False, True])
def test_identities_differ(feminine: bool) -> None:
    faces = [random_identity(np.random.default_rng(s), feminine) for s in range(10)]
    assert len({f.skin for f in faces}) >= 8 and len({f.background for f in faces}) == 10


def test_varied_appearance_keeps_the_standard_face_and_changes_lips_pose_and_light() -> None:
    """`--appearance varied` draws after the standard face, so a corpus's standard speakers
    are unchanged, while the varied ones spread lips, pose, place and light (issue 10)."""
    from avsync.data.synth.speakers import make_speaker

    standard = [make_speaker(0, i) for i in range(24)]
    varied = [make_speaker(0, i, appearance="varied") for i in range(24)]
    assert [make_speaker(0, i, appearance="standard") for i in range(24)] == standard
    assert all(v.voice == s.voice and v.face.skin == s.face.skin
               for v, s in zip(varied, standard, strict=True))
    faces = [v.face for v in varied]
    assert max(abs(f.base_yaw) for f in faces) > 15 and max(abs(f.base_roll) for f in faces) > 6
    assert min(f.style.jaw for f in faces) < 0.7 < 1.1 < max(f.style.jaw for f in faces)
    assert any(f.harsh_light for f in faces) and not all(f.harsh_light for f in faces)
    assert len({f.lip for f in faces}) == 24
    rng = np.random.default_rng(1)
    states = frame_states(rng, faces[0], 10)
    assert abs(np.mean([s.yaw for s in states]) - faces[0].base_yaw) < 5
    harsh = random_lighting(np.random.default_rng(2), 4, harsh=True)
    assert harsh.cast != (1.0, 1.0, 1.0) and harsh.strength.min() > 0.2


def test_varied_faces_are_found_and_their_lips_placed() -> None:
    """The landmark tracker that cuts training and serving crops finds every varied face
    (turned, off-centre, harshly lit) and puts the lips within 5 % of the face width."""
    import cv2

    from avsync.data.synth.face import render_states, true_face_width, true_lips_centre
    from avsync.data.synth.speakers import make_speaker
    from avsync.media.face_tracking import track_clip

    errors = []
    for index in range(6):
        face = make_speaker(0, index, appearance="varied").face
        rng = np.random.default_rng(index)
        mouth = rng.uniform(0, 0.5, (4, 6))
        states = frame_states(rng, face, 4)
        frames = render_states(face, mouth, states, rng)
        tracked = track_clip([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
        for k, faces in enumerate(tracked):
            assert len(faces) == 1, f"speaker {index} frame {k}: {len(faces)} faces"
            true = true_lips_centre(face, states[k], mouth[k])
            errors.append(np.hypot(*np.subtract(faces[0].lips, true))
                          / true_face_width(face, states[k]))
    assert max(errors) < 0.06 and float(np.median(errors)) < 0.03
