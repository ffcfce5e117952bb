"""Shared builders for media tests: write real files with PyAV at chosen timestamps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


def write_media(path: Path, *, frames: np.ndarray | None = None,
                times_ms: Sequence[int] | None = None, video_codec: str = "libx264",
                rate: int = 25, audio: np.ndarray | None = None, sample_rate: int = 16000,
                audio_codec: str = "aac", audio_start: int = 0,
                options: dict[str, str] | None = None) -> Path:
    """Write a file with PyAV: frames (T, H, W) gray at `times_ms` (default i * 1000 / rate),
    audio (C, S) float32 at `sample_rate` starting at sample `audio_start`."""
    with av.open(str(path), "w", options=options or {}) as out:
        video = audio_stream = None
        if frames is not None:
            video = out.add_stream(video_codec, rate=rate)
            video.width, video.height = frames.shape[2], frames.shape[1]
            video.pix_fmt = "yuv420p"
            video.time_base = Fraction(1, 1000)
        if audio is not None:
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            audio_stream = out.add_stream(audio_codec, rate=sample_rate, layout=layout)
        if video is not None:
            assert frames is not None
            stamps = times_ms if times_ms is not None else [i * 1000 // rate
                                                            for i in range(len(frames))]
            for image, stamp in zip(frames, stamps, strict=True):
                frame = av.VideoFrame.from_ndarray(image, format="gray")
                frame.pts, frame.time_base = int(stamp), Fraction(1, 1000)
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
        if audio_stream is not None:
            assert audio is not None
            size = audio_stream.codec_context.frame_size or 1024
            for start in range(0, audio.shape[1], size):
                piece = np.ascontiguousarray(audio[:, start:start + size], np.float32)
                frame = av.AudioFrame.from_ndarray(piece, format="fltp",
                                                   layout=audio_stream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts, frame.time_base = audio_start + start, Fraction(1, sample_rate)
                out.mux(audio_stream.encode(frame))
            out.mux(audio_stream.encode(None))
    return path


@pytest.fixture
def media_writer() -> Callable[..., Path]:
    return write_media


def flash_frames(count: int, flashes: Sequence[int], size: int = 64) -> np.ndarray:
    """(count, size, size) uint8: black frames, white at the indices in `flashes`."""
    frames = np.zeros((count, size, size), np.uint8)
    frames[list(flashes)] = 255
    return frames


def click_train(length: int, clicks: Sequence[int]) -> np.ndarray:
    """(length,) float32 silence with a 0.9 impulse at each sample index in `clicks`."""
    audio = np.zeros(length, np.float32)
    audio[list(clicks)] = 0.9
    return audio


def click_positions(audio: np.ndarray, expected: Sequence[int], search: int) -> list[int]:
    """Where the loudest sample lies within `search` samples of each expected click."""
    found = []
    for centre in expected:
        lo = max(0, centre - search)
        found.append(lo + int(np.argmax(np.abs(audio[lo:centre + search]))))
    return found


@pytest.fixture
def signals():
    """The click/flash helpers, as one namespace for tests."""

    class Signals:
        flash_frames = staticmethod(flash_frames)
        click_train = staticmethod(click_train)
        click_positions = staticmethod(click_positions)

    return Signals
