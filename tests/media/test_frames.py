"""The fast luma path of frame_to_gray equals swscale's gray conversion exactly."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from avsync.media.frames import frame_to_gray, frame_to_image


def _encode_decode(tmp_path, codec: str, pix_fmt: str, width: int, height: int,
                   container: str = "mkv") -> list[av.VideoFrame]:
    rng = np.random.default_rng(0)
    path = tmp_path / f"clip.{container}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index in range(3):
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as source:
        return list(source.decode(video=0))


@pytest.mark.parametrize("codec, pix_fmt, width, height", [
    ("libx264", "yuv420p", 64, 48),
    ("libx264", "yuv420p", 50, 34),  # rows padded beyond the width
    ("libx264", "yuv444p", 64, 48),
    ("libvpx", "yuv420p", 64, 48),
    ("mjpeg", "yuvj420p", 64, 48),  # full range
    ("libx264", "yuv420p10le", 64, 48),  # not 8-bit: the swscale fallback
])
def test_fast_gray_equals_swscale(tmp_path, codec, pix_fmt, width, height) -> None:
    frames = _encode_decode(tmp_path, codec, pix_fmt, width, height)
    assert frames and frames[0].format.name == pix_fmt
    for frame in frames:
        fast = frame_to_gray(frame)
        assert fast.shape == (height, width) and fast.dtype == np.uint8
        assert np.array_equal(fast, frame.to_ndarray(format="gray"))


def test_rgb_on_request(tmp_path) -> None:
    frame = _encode_decode(tmp_path, "libx264", "yuv420p", 64, 48)[0]
    assert frame_to_image(frame, gray=False).shape == (48, 64, 3)


@pytest.mark.parametrize("color_range", [0, 1, 2])  # unspecified, limited (MPEG), full (JPEG)
def test_declared_colour_range_is_honoured(color_range) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.color_range = color_range
    assert np.array_equal(frame_to_gray(frame), frame.to_ndarray(format="gray"))
