"""A mean-face model's input from a file: `transcribe`'s MediaStream cuts the crops the
model was trained on (landmarks tracked, mean-face crop) in both face modes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from avsync.data.synth.detection import turning_faces
from avsync.media.encode import write_mp4
from avsync.media.face_tracking import FaceCentredCropper
from avsync.media.mouths import working_format
from avsync.media.roi import MEAN_FACE, crop_faces
from avsync.runtime import Model
from avsync.runtime.media_input import MediaStream, MostSeenFace, mouth_rois


def _card(model: Model):
    return model.card.replace(roi=dataclasses.replace(model.card.roi, convention=MEAN_FACE))


def _frames(path: Path, size: int) -> np.ndarray:
    from avsync.media.decode import MediaReader

    with MediaReader(path, audio=False, frames=working_format(size)) as reader:
        return np.concatenate([p.frames for p in reader.pieces() if len(p.frames)])


@pytest.mark.parametrize("faces", ["whole", "detect"])
def test_a_mean_face_model_gets_mean_face_crops(model, tmp_path, faces) -> None:
    frames = turning_faces([10], 20, seed=0).frames
    path = tmp_path / "face.mp4"
    write_mp4(path, frames, (0.1 * np.sin(np.arange(20 * 640) / 7)).astype(np.float32))
    card = _card(model)
    size = card.roi.stored
    stream = MediaStream(path, card, faces=faces)
    rois = np.concatenate([p.rois for p in stream.pieces()])
    decoded = _frames(path, size)
    if faces == "whole":
        expected = FaceCentredCropper(size, MEAN_FACE).crop(decoded)
    else:
        speaker = MostSeenFace(MEAN_FACE)
        for frame in decoded:
            speaker.add(frame)
        kept = speaker.boxes()
        assert kept is not None and all(f.landmarks.shape == (6, 2) for f in kept)
        expected = crop_faces(decoded, kept, size, MEAN_FACE)
    assert rois.shape == (20, size, size)
    assert np.array_equal(rois, expected)
    assert np.array_equal(mouth_rois(decoded, size, faces, MEAN_FACE), expected)
