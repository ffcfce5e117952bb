"""`avsync transcribe`: formats, modalities, output folder, detected faces, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.errors import ConfigError, ModelLoadError
from avsync.media.encode import write_mp4
from avsync.runtime import Model
from avsync.runtime.media_input import mouth_rois
from avsync.runtime.transcribe import labelled, main, to_srt


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Path:
    audio, _ = random_chunk(model, 40, seed=4)
    frames = np.random.default_rng(4).integers(0, 256, (40, 80, 80)).astype(np.uint8)
    path = tmp_path_factory.mktemp("clips") / "talk.mp4"
    write_mp4(path, frames, audio)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_json_txt_and_srt_agree(capsys, clip: Path, model_dir: Path) -> None:
    result = json.loads(run(capsys, str(clip), "--model", str(model_dir)))
    assert result["modality"] == "av" and result["faces"] == "whole"
    assert result["sync"]["convention"] == "positive: audio lags video"
    assert run(capsys, str(clip), "--model", str(model_dir), "--format", "txt") == \
        "".join(labelled(s) + "\n" for s in result["segments"]) or "\n"
    assert run(capsys, str(clip), "--model", str(model_dir), "--format", "srt") == \
        to_srt(result)
    for segment in result["segments"]:
        assert 0 <= segment["start_ms"] <= segment["end_ms"] <= 1600
        assert segment["text"] == " ".join(w["text"] for w in segment["words"])
        assert segment["face"] in (None, 0) and all(w["face"] in (None, 0)
                                                    for w in segment["words"])
        # the speaking face's box, as the server's finals carry it (whole frame: 0, 0, w, h)
        assert (segment["box"] is None) == (segment["face"] is None)
        assert segment["box"] is None or len(segment["box"]) == 4


def test_srt_timestamps_and_who_said_it() -> None:
    srt = to_srt({"segments": [{"start_ms": 3_723_004, "end_ms": 3_725_000, "text": "hi"},
                               {"start_ms": 3_726_000, "end_ms": 3_727_000, "text": "yo",
                                "face": 1}]})
    assert srt == ("1\n01:02:03,004 --> 01:02:05,000\nhi\n\n"
                   "2\n01:02:06,000 --> 01:02:07,000\n[face 2] yo\n")


def test_modalities_and_out_dir(capsys, tmp_path: Path, clip: Path, model_dir: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    audio = json.loads(run(capsys, str(clip), "--model", str(model_dir), "--audio-only"))
    video = json.loads(run(capsys, str(clip), "--model", str(model_dir), "--video-only"))
    assert (audio["modality"], audio["sync"]) == ("audio", None)
    assert (video["modality"], video["sync"]) == ("video", None)
    monkeypatch.setenv("AVSYNC_MODEL", str(model_dir))  # the default model
    assert main([str(clip), str(clip), "--format", "srt", "--out-dir",
                 str(tmp_path / "subs")]) == 0
    assert (tmp_path / "subs" / "talk.srt").is_file()
    assert (tmp_path / "subs" / "talk-2.srt").is_file()  # the same name twice: no overwrite


def test_detected_face_gives_the_same_mouth_as_its_box(model: Model) -> None:
    import cv2
    import skimage.data

    from avsync.media.face_tracking import LandmarkTracker
    from avsync.media.roi import crop_mouths

    gray = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY), (256, 256),
                      interpolation=cv2.INTER_AREA)
    frames = np.repeat(gray[None], 12, axis=0)
    rois = mouth_rois(frames, model.card.roi.stored, "detect")
    assert rois is not None and rois.shape == (12, 20, 20)
    (face,) = LandmarkTracker().update(gray)  # detect follows faces by their landmarks
    box = face.box
    direct = crop_mouths(frames[:1], box, 20)[0]
    assert np.abs(rois[-1].astype(int) - direct.astype(int)).mean() < 12  # smoothed box
    assert mouth_rois(np.zeros((5, 64, 64), np.uint8), 20, "detect") is None  # no face


def test_errors_name_the_problem(capsys, tmp_path: Path, clip: Path, model_dir: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVSYNC_MODEL", raising=False)
    with pytest.raises(ConfigError, match="--model"):
        main([str(clip)])
    with pytest.raises(ModelLoadError, match="not a directory"):
        main([str(clip), "--model", str(tmp_path / "nope")])
    silent = tmp_path / "silent.mp4"
    write_mp4(silent, np.zeros((10, 32, 32), np.uint8), None)
    assert main([str(silent), "--model", str(model_dir), "--audio-only"]) == 1
    assert "no audio stream to transcribe; the file has only video" in capsys.readouterr().err
