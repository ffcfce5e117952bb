"""Strict JPEG decoding for frames a client sends one by one.

cv2.imdecode returns an image for a JPEG whose entropy-coded data is damaged (it only prints
"Corrupt JPEG data" on stderr), so a server would feed garbage to the model. FFmpeg's mjpeg
decoder with `err_detect=explode` (PyAV, already a core dependency) refuses such data, and
the SOI/EOI markers are checked first for a clear message about truncation.
"""

from __future__ import annotations

import av
import numpy as np

from avsync.errors import MediaError

SOI: bytes = b"\xff\xd8"
EOI: bytes = b"\xff\xd9"


def _check_markers(data: bytes) -> None:
    if len(data) < 4 or not data.startswith(SOI):
        raise MediaError(f"not a JPEG: {len(data)} bytes that do not start with the SOI "
                         "marker FF D8; send one complete JPEG image per frame")
    if not data.rstrip(b"\x00").endswith(EOI):
        raise MediaError(f"truncated JPEG: {len(data)} bytes without the EOI marker FF D9 at "
                         "the end; send each frame's complete JPEG")


def decode_jpeg(data: bytes, gray: bool = True) -> np.ndarray:
    """Decode one complete JPEG image.

    data: the JPEG file's bytes. Returns (H, W) uint8 gray (full-range luma) if `gray`, else
    (H, W, 3) uint8 RGB. Raises MediaError for a truncated, corrupt or non-JPEG input.
    Thread-safe (a fresh decoder per call costs ~30 us).
    """
    data = bytes(data)
    _check_markers(data)
    codec = av.CodecContext.create("mjpeg", "r")
    codec.options = {"err_detect": "explode"}
    try:
        frames = codec.decode(av.Packet(data)) + codec.decode(None)
    except av.error.FFmpegError as error:
        raise MediaError(f"corrupt JPEG ({len(data)} bytes): {error}") from error
    if len(frames) != 1 or not frames[0].width or not frames[0].height:
        raise MediaError(f"corrupt JPEG ({len(data)} bytes): it decodes to {len(frames)} "
                         "images instead of one")
    return frames[0].to_ndarray(format="gray" if gray else "rgb24")
