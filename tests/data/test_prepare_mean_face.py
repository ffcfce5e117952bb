"""`avsync data prepare --roi-convention mean-face`: mouths cut from landmarks tracked over each
face-centred clip, the same crops `read_mouths` and the runtime cut, recorded in the cache."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avsync.data.cache import PreparedCache
from avsync.data.index import index_dataset
from avsync.data.prepare import PrepareConfig, prepare_cache
from avsync.data.synth.face import CANVAS, FrameState, render_states
from avsync.data.synth.speakers import make_speaker
from avsync.errors import ConfigError
from avsync.media.decode import MediaReader
from avsync.media.encode import write_mp4
from avsync.media.face_tracking import FaceCentredCropper
from avsync.media.mouths import read_mouths, working_format
from avsync.media.roi import FACE_BOX, MEAN_FACE
from avsync.timebase import SAMPLES_PER_STEP

ROI, STEPS = 24, 16
LRS2_TXT = "Text:  {text}\nConf:  3\n"  # an LRS2 main-split transcript


def put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _face_video(speaker: int) -> np.ndarray:
    """(STEPS, 160, 160, 3) a face-centred clip whose head turns a little."""
    states = [FrameState(0, 0, 4 * np.sin(k / 3), 1, 0, 0, 0, 0, 15 * np.sin(k / 5), 0)
              for k in range(STEPS)]
    mouth = np.clip(np.sin(np.arange(STEPS)[:, None] / 2 + np.arange(6)), 0, 1)
    return render_states(make_speaker(0, speaker).face, mouth, states,
                         np.random.default_rng(speaker))


@pytest.fixture(scope="module")
def face_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    tone = (0.2 * np.sin(np.arange(STEPS * SAMPLES_PER_STEP) / 9)).astype(np.float32)
    for k, clip in enumerate(("spk1/00001", "spk2/00001")):
        media = root / "main" / f"{clip}.mp4"
        media.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(media, _face_video(k), tone)
        put(media.with_suffix(".txt"), LRS2_TXT.format(text="HELLO THERE"))
    put(root / "train.txt", "spk1/00001\n")
    put(root / "test.txt", "spk2/00001\n")
    return root


def _decoded_gray(path: Path) -> np.ndarray:
    with MediaReader(path, frames=working_format(ROI)) as reader:
        return np.concatenate([p.frames for p in reader.pieces() if len(p.frames)])


def test_prepare_cuts_mean_face_crops_and_records_the_convention(face_corpus, tmp_path) -> None:
    out = tmp_path / "cache"
    result = prepare_cache(index_dataset(face_corpus), out,
                           PrepareConfig(roi_size=ROI, roi_convention=MEAN_FACE), progress=False)
    assert result.kept == {"train": 1, "test": 1}
    cache = PreparedCache(out)
    assert cache.roi_convention == MEAN_FACE
    media = face_corpus / "main" / "spk1/00001.mp4"
    frames = _decoded_gray(media)
    cropper = FaceCentredCropper(ROI, MEAN_FACE)
    expected = cropper.crop(frames)
    assert cropper.found == STEPS  # the face's landmarks on every frame, no fallback
    clip = cache[cache.ids.index("spk1/00001")]
    assert np.array_equal(clip.roi, expected)
    assert np.array_equal(read_mouths(media, ROI, MEAN_FACE).rois, expected)
    old = FaceCentredCropper(ROI, FACE_BOX).crop(frames)
    assert np.array_equal(read_mouths(media, ROI).rois, old)  # the default is today's crop
    assert not np.array_equal(old, expected)


def test_the_mean_face_crop_holds_the_mouth(face_corpus) -> None:
    """The crop's centre rows are the lips: darker (lips and mouth) than its top rows (the
    skin under the nose) on average over the clip."""
    rois = read_mouths(face_corpus / "main" / "spk2/00001.mp4", 48, MEAN_FACE).rois
    middle = rois[:, 20:28, 12:36].astype(float).mean()
    top = rois[:, 2:8, 12:36].astype(float).mean()
    assert middle < top - 10
    assert cv2.Laplacian(rois[0], cv2.CV_64F).var() > 5  # a picture, not a flat border


def test_an_unknown_convention_is_refused() -> None:
    with pytest.raises(ConfigError, match="'dlib-68'"):
        PrepareConfig(roi_convention="dlib-68")
    assert CANVAS == 160
