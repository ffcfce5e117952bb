"""`avsync transcribe` on what users have: batches with bad files, colliding names, damaged
files, stdin, phone video, cover art; every file made here with PyAV."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media_files import gradient_frames, tone, write_av
from runtime_helpers import random_chunk

from avsync.media.mouths import working_format
from avsync.runtime import Model
from avsync.runtime.media_input import MediaStream
from avsync.runtime.transcribe import EXIT_DAMAGED, EXIT_FAILED, main, output_names


@pytest.fixture(scope="module")
def speech(model: Model) -> np.ndarray:
    return random_chunk(model, 30, seed=5)[0][None]  # (1, S): 1.2 s


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_batch_tries_every_file_and_lists_the_failures(capsys, tmp_path: Path,
                                                         model_dir: Path, speech) -> None:
    good = write_av(tmp_path / "good.mp4", frames=gradient_frames(30, 48, 48), audio=speech)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not media" * 100)
    status = main([str(bad), str(tmp_path), str(good), "--model", str(model_dir)])
    out, err = capsys.readouterr()
    assert status == EXIT_FAILED
    results = _json_lines(out)
    assert [r["file"] for r in results] == [str(bad), str(tmp_path), str(good)]
    assert "cannot open media" in results[0]["error"]
    assert "is a directory" in results[1]["error"]
    assert results[2]["complete"] and results[2]["modality"] == "av"
    assert "2 of 3 file(s) failed" in err and f"{bad}: " in err and f"{tmp_path}: " in err


def test_colliding_stems_get_their_own_outputs(tmp_path: Path, model_dir: Path,
                                               speech) -> None:
    ogg = write_av(tmp_path / "talk.ogg", audio=tone(1.0, rate=48_000)[None],
                   sample_rate=48_000, audio_codec="libopus")
    webm = write_av(tmp_path / "talk.webm", frames=gradient_frames(25, 48, 48),
                    audio=tone(1.0, rate=48_000)[None], sample_rate=48_000,
                    video_codec="libvpx", audio_codec="libopus")
    out = tmp_path / "out"
    assert main([str(ogg), str(webm), "--model", str(model_dir), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["talk.ogg.json", "talk.webm.json"]
    assert json.loads((out / "talk.ogg.json").read_text())["modality"] == "audio"
    assert json.loads((out / "talk.webm.json").read_text())["modality"] == "av"
    assert output_names(["a/x.mp4", "b/x.mp4", "x.wav", "-"], "srt") == \
        ["x.mp4.srt", "x.mp4-2.srt", "x.wav.srt", "stdin.srt"]


def test_a_damaged_file_is_transcribed_and_says_what_was_lost(capsys, tmp_path: Path,
                                                              model_dir: Path, speech) -> None:
    path = write_av(tmp_path / "hurt.mp4", frames=gradient_frames(30, 48, 48), audio=speech,
                    corrupt=("audio", 8))
    assert main([str(path), "--model", str(model_dir)]) == EXIT_DAMAGED
    out, err = capsys.readouterr()
    (result,) = _json_lines(out)
    assert result["complete"] is False and result["duration"] == 1.2
    (damage,) = result["damage"]
    assert damage["stream"] == "audio" and 0.3 < damage["start_s"] < 0.6
    assert damage["lost_s"] == pytest.approx(0.064, abs=0.01)
    assert "warning" in err and "audio 0." in err and "1 of 1 file(s) damaged" in err


def test_a_cut_file_keeps_its_first_part(capsys, tmp_path: Path, model_dir: Path,
                                         speech) -> None:
    whole = write_av(tmp_path / "whole.mp4", frames=gradient_frames(30, 48, 48), audio=speech,
                     options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 7 // 10])
    assert main([str(cut), "--model", str(model_dir), "--audio-only"]) == EXIT_DAMAGED
    (result,) = _json_lines(capsys.readouterr().out)
    assert not result["complete"] and 0.3 < result["duration"] < 1.15
    assert any(d["end_s"] >= 1.15 for d in result["damage"])


def test_stdin_is_read(tmp_path: Path, model_dir: Path, speech) -> None:
    path = write_av(tmp_path / "piped.mkv", frames=gradient_frames(30, 48, 48), audio=speech)
    done = subprocess.run([sys.executable, "-m", "avsync.cli", "transcribe", "-",
                           "--model", str(model_dir)],
                          input=path.read_bytes(), capture_output=True, timeout=300)  # a pipe
    assert done.returncode == 0, done.stderr.decode()
    (result,) = _json_lines(done.stdout.decode())
    assert result["file"] == "-" and result["modality"] == "av"
    assert result["duration"] == pytest.approx(1.2, abs=0.03)  # mkv: AAC padding kept


def _astronaut(size: int) -> np.ndarray:
    import cv2
    import skimage.data

    gray = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)


def test_a_phone_video_is_read_upright(capsys, tmp_path: Path, model_dir: Path,
                                       speech) -> None:
    stored = np.rot90(_astronaut(160), -1)  # sideways in the file, the matrix turns it back
    path = write_av(tmp_path / "phone.mp4", frames=np.repeat(stored[None], 30, axis=0),
                    audio=speech, rotation=90)
    assert main([str(path), "--model", str(model_dir), "--faces", "detect"]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert (result["faces"], result["modality"], result["warnings"]) == ("detect", "av", [])
    assert main([str(path), "--model", str(model_dir), "--faces", "detect",
                 "--video-only"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["modality"] == "video"


def test_no_face_and_cover_art_are_said(capsys, tmp_path: Path, model_dir: Path,
                                        speech) -> None:
    song = write_av(tmp_path / "song.mp3", audio=speech, audio_codec="libmp3lame",
                    cover=np.full((32, 32, 3), 90, np.uint8))
    blank = write_av(tmp_path / "blank.mp4", frames=gradient_frames(30, 48, 48), audio=speech)
    assert main([str(song), str(blank), "--model", str(model_dir), "--faces", "detect"]) == 0
    out, err = capsys.readouterr()
    cover, faceless = _json_lines(out)
    assert (cover["modality"], cover["faces"]) == ("audio", "none")
    assert "still image (cover art)" in cover["warnings"][0] and "cover art" in err
    assert (faceless["modality"], faceless["faces"]) == ("audio", "none")
    assert "no face found" in faceless["warnings"][0]
    assert main([str(blank), "--model", str(model_dir), "--faces", "detect",
                 "--video-only"]) == EXIT_FAILED  # found out once the one pass has read it
    assert "no face found in the video (--faces detect)" in capsys.readouterr().err
    assert main([str(song), "--model", str(model_dir), "--video-only"]) == EXIT_FAILED
    assert "only audio (its video stream is a still image" in capsys.readouterr().err


def test_big_frames_are_scaled_as_they_are_decoded(tmp_path: Path, model: Model,
                                                   speech) -> None:
    path = write_av(tmp_path / "hd.mp4", frames=gradient_frames(30, 720, 1280), audio=speech)
    stream = MediaStream(path, model.card)
    pieces = list(stream.pieces())
    rois = np.concatenate([p.rois for p in pieces])
    assert rois.shape == (30, model.card.roi.stored, model.card.roi.stored)
    assert working_format(model.card.roi.stored).target(1280, 720) == (853, 480)
    assert stream.duration == 1.2 and not stream.damage
