"""decode_media / probe_media / write_mp4 on real files: content, shapes, rates, failures."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.decode import decode_media, probe_media
from avsync.media.encode import write_mp4
from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP


def _gradient_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients (codec-friendly, so round-trip error stays small)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 2 * np.pi)
    clip = [127 + 100 * np.sin(x / 9.0 + y / 13.0 + phase + t / 5.0) for t in range(frames)]
    return np.clip(clip, 0, 255).astype(np.uint8)


def _tone(seconds: float, hz: float = 440.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    """audio: (C, S) float32 -> 16-bit PCM wav."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((audio.T * 32767).astype("<i2").tobytes())
    return path


def test_gray_round_trip(tmp_path) -> None:
    frames, audio = _gradient_clip(20, 96, 96), _tone(0.8)
    write_mp4(tmp_path / "a.mp4", frames, audio)
    clip = decode_media(tmp_path / "a.mp4")
    assert clip.frames.shape == (20, 96, 96) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (20 * SAMPLES_PER_STEP,) and clip.audio.dtype == np.float32
    assert (clip.fps, clip.source_fps, clip.duration) == (25, 25.0, 0.8)
    assert clip.has_video and clip.has_audio
    assert np.abs(clip.frames.astype(int) - frames).mean() < 2.0
    steady = slice(2000, -2000)  # AAC is lossy; compare away from the edges
    assert np.abs(clip.audio[steady] - audio[steady]).max() < 0.05


def test_rgb_round_trip_and_bytes_source(tmp_path) -> None:
    frames = np.zeros((10, 64, 80, 3), np.uint8)
    frames[:, :32] = (200, 50, 120)  # flat colours: chroma subsampling only blurs the edge
    frames[:, 32:] = (20, 180, 90)
    write_mp4(tmp_path / "rgb.mp4", frames, None)
    clip = decode_media((tmp_path / "rgb.mp4").read_bytes(), gray=False)
    assert clip.frames.shape == (10, 64, 80, 3)
    inside = np.r_[0:28, 36:64]
    assert np.abs(clip.frames[:, inside].astype(int) - frames[:, inside]).max() <= 4
    assert not clip.has_audio and clip.audio.shape == (0,)


def test_odd_frame_size_is_padded_to_even(tmp_path) -> None:
    frames = _gradient_clip(5, 33, 47)
    write_mp4(tmp_path / "odd.mp4", frames, None)
    clip = decode_media(tmp_path / "odd.mp4")
    assert clip.frames.shape == (5, 34, 48)
    assert np.abs(clip.frames[:, :33, :47].astype(int) - frames).mean() < 2.0


def test_variable_frame_rate_lands_on_the_25_fps_grid(tmp_path, media_writer, signals) -> None:
    """Frames 30 ms and 50 ms apart; a flash at 0.960 s must be grid frame 24 only."""
    times = np.cumsum([0] + [30, 50] * 25)[:50]  # 0, 30, 80, 110, ..., 960, 990, ..., 1950
    flash = int(np.flatnonzero(times == 960)[0])
    frames = signals.flash_frames(50, [flash])
    path = media_writer(tmp_path / "vfr.mp4", frames=frames, times_ms=times.tolist())
    clip = decode_media(path)
    bright = np.flatnonzero(clip.frames.reshape(len(clip.frames), -1).mean(axis=1) > 128)
    assert bright.tolist() == [24]
    assert len(clip.frames) == 50  # last frame at 1.95 s, shown for the median 30 ms


def test_30_fps_source_reports_its_rate_and_is_resampled(tmp_path, media_writer,
                                                         signals) -> None:
    path = media_writer(tmp_path / "30.mp4", frames=signals.flash_frames(60, [30]), rate=30,
                        times_ms=[round(i * 1000 / 30) for i in range(60)])
    clip = decode_media(path)
    assert clip.source_fps == pytest.approx(30.0, abs=0.1)
    assert clip.frames.shape[0] == 50  # 2 s at 25 fps
    assert probe_media(path).source_fps == pytest.approx(30.0, abs=0.1)


def test_stereo_44k_wav_is_downmixed_and_resampled(tmp_path) -> None:
    rate = 44_100
    left, right = _tone(1.0, 300, rate), _tone(1.0, 1000, rate)
    path = _write_wav(tmp_path / "s.wav", np.stack([left, right]), rate)
    clip = decode_media(path)
    assert not clip.has_video and clip.frames.shape == (0, 0, 0)
    assert clip.audio.shape == (SAMPLE_RATE,)
    expected = (_tone(1.0, 300) + _tone(1.0, 1000)) / 2
    assert np.abs(clip.audio[400:-400] - expected[400:-400]).max() < 2e-3
    info = probe_media(path)
    assert (info.has_video, info.sample_rate, info.channels) == (False, rate, 2)


def test_probe_reads_the_header(tmp_path) -> None:
    write_mp4(tmp_path / "p.mp4", _gradient_clip(25, 64, 96), _tone(1.0))
    info = probe_media(tmp_path / "p.mp4")
    assert (info.width, info.height, info.frames, info.source_fps) == (96, 64, 25, 25.0)
    assert (info.video_codec, info.audio_codec, info.sample_rate) == ("h264", "aac", 16000)
    assert info.duration == pytest.approx(1.0, abs=0.05)


def test_video_or_audio_only_on_request(tmp_path) -> None:
    write_mp4(tmp_path / "b.mp4", _gradient_clip(10, 64, 64), _tone(0.4))
    audio_only = decode_media(tmp_path / "b.mp4", video=False)
    video_only = decode_media(tmp_path / "b.mp4", audio=False)
    assert audio_only.frames.shape == (0, 0, 0) and len(audio_only.audio) == 6400
    assert video_only.frames.shape == (10, 64, 64) and video_only.audio.shape == (0,)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"this is not a video at all" * 50, "cannot open"),
])
def test_garbage_and_empty_files_raise_media_error(tmp_path, content, reason) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=reason) as caught:
        decode_media(path)
    assert str(path) in str(caught.value)
    with pytest.raises(MediaError):
        probe_media(path)


def test_missing_file_raises_media_error(tmp_path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        decode_media(tmp_path / "nope.mp4")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_mp4_raises_media_error(tmp_path, keep) -> None:
    write_mp4(tmp_path / "full.mp4", _gradient_clip(25, 64, 64, seed=1), _tone(1.0))
    data = (tmp_path / "full.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:int(len(data) * keep)])
    index_lost = r"cut.mp4: cannot open.*index \(moov\) was at its end"  # the cut says why
    with pytest.raises(MediaError, match=index_lost if keep < 0.9 else "cut.mp4"):
        decode_media(path)


def test_truncated_faststart_mp4_with_no_whole_frame_raises(tmp_path, media_writer) -> None:
    """With the index first (faststart), a cut file opens; when not even the first (noisy,
    large) keyframe survives there is nothing to keep, and the error says what was lost.
    (A cut that keeps frames decodes them: tests/media/test_real_files.py.)"""
    frames = _gradient_clip(25, 64, 64, seed=2)
    path = media_writer(tmp_path / "fs.mp4", frames=frames, options={"movflags": "faststart"})
    data = path.read_bytes()
    assert data[24:40].find(b"moov") >= 0 or b"moov" in data[:64]
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(MediaError, match="no frames .*truncated"):
        decode_media(path)


def test_zero_length_audio_raises_media_error(tmp_path) -> None:
    path = _write_wav(tmp_path / "empty.wav", np.zeros((1, 0), np.float32), SAMPLE_RATE)
    with pytest.raises(MediaError, match="no samples"):
        decode_media(path)
