"""Decoded video frames -> numpy gray or RGB images, fast.

`VideoFrame.to_ndarray(format="gray")` builds a new swscale context for every frame, about
0.5 ms for a 160x160 frame: more than decoding it. For 8-bit YUV frames gray is just the luma
plane (expanded from the limited 16-235 range unless the frame is full range), which is what
swscale computes; tests/media/test_frames.py checks the two agree exactly.
"""

from __future__ import annotations

import av
import numpy as np

# 8-bit planar/semi-planar YUV whose first plane is the luma, one byte a pixel.
_LIMITED_RANGE_YUV = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv410p", "yuv411p",
                                "yuv440p", "nv12", "nv21"})
_FULL_RANGE_YUV = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p",
                             "gray"})
_JPEG_RANGE = 2  # AVCOL_RANGE_JPEG: full-range luma
# limited-range luma (16-235) -> full-range gray (0-255), rounded as swscale does
_EXPAND = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, :frame.width]


def frame_to_gray(frame: av.VideoFrame) -> np.ndarray:
    """(H, W) uint8 gray of a decoded frame (full-range luma), equal to swscale's result."""
    name = frame.format.name
    if name in _FULL_RANGE_YUV or (name in _LIMITED_RANGE_YUV and
                                   frame.color_range == _JPEG_RANGE):
        return _luma(frame).copy()
    if name in _LIMITED_RANGE_YUV:
        return _EXPAND[_luma(frame)]
    return frame.to_ndarray(format="gray")


def frame_to_image(frame: av.VideoFrame, gray: bool) -> np.ndarray:
    """(H, W) uint8 gray if `gray`, else (H, W, 3) uint8 RGB."""
    return frame_to_gray(frame) if gray else frame.to_ndarray(format="rgb24")
