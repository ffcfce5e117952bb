"""Strict JPEG decoding for frames a client sends one by one.

cv2.imdecode returns an image for a JPEG whose entropy-coded data is damaged (it only prints
"Corrupt JPEG data" on stderr), so a server would feed garbage to the model. FFmpeg's mjpeg
decoder with `err_detect=explode` (PyAV, already a core dependency) refuses such data, and
the SOI/EOI markers are checked first for a clear message about truncation.

Cost is bounded before decoding: `jpeg_size` reads the frame size from the SOF header (a few
bytes), so a 30 KB file that declares 16000x16000 is refused without allocating 256 MB.
"""

from __future__ import annotations

import av
import numpy as np

from avsync.errors import MediaError

SOI: bytes = b"\xff\xd8"
EOI: bytes = b"\xff\xd9"
# Start-of-frame markers (baseline, extended, progressive, lossless, ...); C4, C8 and CC are
# other segments in the same range.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
_SOS = 0xDA


def _check_markers(data: bytes) -> None:
    if len(data) < 4 or not data.startswith(SOI):
        raise MediaError(f"not a JPEG: {len(data)} bytes that do not start with the SOI "
                         "marker FF D8; send one complete JPEG image per frame")
    if not data.rstrip(b"\x00").endswith(EOI):
        raise MediaError(f"truncated JPEG: {len(data)} bytes without the EOI marker FF D9 at "
                         "the end; send each frame's complete JPEG")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) declared by a JPEG's start-of-frame header, read without decoding.

    Walks the marker segments from SOI to the first SOF; MediaError if there is none before
    the scan data, a segment runs past the end, or a side is 0.
    """
    _check_markers(data)
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise MediaError(f"corrupt JPEG: expected a marker at byte {at}, found "
                             f"{data[at]:#04x}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if marker in _SOF and length >= 7 and at + 9 <= len(data):
            height = int.from_bytes(data[at + 5:at + 7], "big")
            width = int.from_bytes(data[at + 7:at + 9], "big")
            if not width or not height:
                raise MediaError(f"JPEG declares a {width}x{height} frame")
            return width, height
        if marker == _SOS or length < 2:
            break
        at += 2 + length
    raise MediaError(f"corrupt JPEG ({len(data)} bytes): no frame header (SOF) before the image "
                     "data")


def decode_jpeg(data: bytes, gray: bool = True, max_pixels: int | None = None) -> np.ndarray:
    """Decode one complete JPEG image.

    data: the JPEG file's bytes. Returns (H, W) uint8 gray (full-range luma) if `gray`, else
    (H, W, 3) uint8 RGB. Raises MediaError for a truncated, corrupt or non-JPEG input, and,
    before any decoding, for one whose header declares more than `max_pixels` pixels.
    Thread-safe (a fresh decoder per call costs ~30 us).
    """
    data = bytes(data)
    width, height = jpeg_size(data)
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError(f"JPEG declares {width}x{height} pixels, more than the {max_pixels} "
                         "allowed; scale frames down before sending")
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
