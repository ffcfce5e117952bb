"""ASD evaluation scenes cut by the model's convention: a mean-face model's face crops come
from each labelled face's own landmarks, inside its box."""

from __future__ import annotations

import numpy as np
from avsync.train.eval_data import load_scenes

from avsync.data.synth.detection import turning_faces
from avsync.media.decode import MediaReader
from avsync.media.encode import write_mp4
from avsync.media.face_tracking import FaceCentredCropper
from avsync.media.mouths import working_format
from avsync.media.roi import MEAN_FACE


def test_scene_faces_are_cut_by_the_convention(tmp_path) -> None:
    clip = turning_faces([10, 11], 10, seed=0)  # two faces, each in a 200 x 240 cell
    frames, steps = clip.frames, len(clip.frames)
    write_mp4(tmp_path / "s0.mp4", frames, np.zeros(steps * 640, np.float32))
    rows = [f"s0,{k / 25:.2f},{0.5 * f:.4f},0.0,{0.5 * f + 0.5:.4f},1.0,"
            f"{'SPEAKING_AUDIBLE' if f == 0 else 'NOT_SPEAKING'},s0:{f}"
            for k in range(steps) for f in range(2)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    (old,) = load_scenes(tmp_path, 32)
    (new,) = load_scenes(tmp_path, 32, convention=MEAN_FACE)
    with MediaReader(tmp_path / "s0.mp4", audio=False, frames=working_format(32)) as reader:
        decoded = np.concatenate([p.frames for p in reader.pieces() if len(p.frames)])
    for f, (face_old, face_new) in enumerate(zip(old.faces, new.faces, strict=True)):
        cell = decoded[:, :, 200 * f:200 * (f + 1)]
        cropper = FaceCentredCropper(32, MEAN_FACE)
        assert np.array_equal(face_new.rois, cropper.crop(cell))
        assert cropper.found == steps
        assert not np.array_equal(face_old.rois, face_new.rois)
