"""The server cuts mouths by its model's crop convention: `detect` follows faces by their
landmarks and cuts mean-face crops for a mean-face model, face-box crops of the landmarks'
face box for a face-box model; client boxes and whole frames use the documented fallback
without landmarks."""

from __future__ import annotations

import numpy as np
import pytest
from avsync.serve.frames import FaceFinder
from avsync.serve.media_input import MediaInput
from avsync.serve.protocol import BinaryKind, FaceMode, MediaHeader, Start, VideoSpec

from avsync.data.synth.detection import turning_faces
from avsync.media.face_tracking import LandmarkTracker
from avsync.media.roi import FACE_BOX, MEAN_FACE, Face, crop_face, crop_mouth, whole_frame_face


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return turning_faces([10], 12, seed=0).frames  # (12, 240, 200) one turning face


def _spec(frames: np.ndarray, faces: FaceMode) -> VideoSpec:
    return VideoSpec(width=frames.shape[2], height=frames.shape[1], faces=faces)


def _rois(frames: np.ndarray, faces: FaceMode, convention: str) -> np.ndarray:
    media = MediaInput(Start(video=_spec(frames, faces)), chunk_steps=4, roi_size=32,
                       roi_convention=convention)
    chunks = []
    for k, frame in enumerate(frames):
        fed = media.feed(MediaHeader(BinaryKind.VIDEO, k, k * 40_000), frame.tobytes())
        assert not fed.errors
        chunks += fed.chunks
    chunks += media.flush()
    (track,) = {t for c in chunks for t in c.input.faces}
    return np.concatenate([c.input.faces[track] for c in chunks])


def test_detect_for_a_mean_face_model_crops_from_landmarks(frames) -> None:
    finder = FaceFinder(_spec(frames, FaceMode.DETECT), 32, 2, MEAN_FACE)
    (face,) = finder.find_faces(frames[0]).values()
    assert face.landmarks is not None and face.landmarks.shape == (468, 2)
    rois = _rois(frames, FaceMode.DETECT, MEAN_FACE)
    tracker = LandmarkTracker(max_faces=2)
    expected = [crop_face(f, tracker.update(f)[0].face, 32, MEAN_FACE) for f in frames]
    assert np.array_equal(rois, np.stack(expected))


def test_detect_for_a_face_box_model_crops_the_face_box_of_the_landmarks(frames) -> None:
    rois = _rois(frames, FaceMode.DETECT, FACE_BOX)
    tracker = LandmarkTracker(max_faces=2)
    expected = [crop_mouth(f, tracker.update(f)[0].box, 32) for f in frames]
    assert np.array_equal(rois, np.stack(expected))


def test_whole_frame_crops_by_each_convention(frames) -> None:
    box = whole_frame_face(frames.shape[2], frames.shape[1])
    old = _rois(frames, FaceMode.WHOLE_FRAME, FACE_BOX)
    assert np.array_equal(old[3], crop_mouth(frames[3], box, 32))
    new = _rois(frames, FaceMode.WHOLE_FRAME, MEAN_FACE)
    assert np.array_equal(new[3], crop_face(frames[3], Face(box), 32, MEAN_FACE))
    assert not np.array_equal(old[3], new[3])


def test_the_engine_takes_the_convention_from_the_model_card(model) -> None:
    import dataclasses

    from avsync.serve.runtime_engine import RuntimeEngine

    from avsync.runtime import Model

    assert RuntimeEngine(model).info.roi_convention == FACE_BOX
    card = model.card.replace(roi=dataclasses.replace(model.card.roi, convention=MEAN_FACE))
    mean_face = RuntimeEngine(Model(card, model.graphs, model.model_dir))
    assert mean_face.info.roi_convention == MEAN_FACE
