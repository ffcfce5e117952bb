"""Video frame payloads → gray frames, and where the faces are in them.

Decoding uses `avsync.media` so the server sees frames exactly as training did: raw RGB goes
through PyAV's (swscale's) RGB→gray like `decode_media`, JPEG through `decode_jpeg`, which
refuses truncated files instead of returning half an image.
"""

from __future__ import annotations

import importlib.util

import av
import numpy as np

from avsync.errors import MediaError
from avsync.media.roi import Box, whole_frame_face
from serve.protocol import FaceMode, VideoEncoding, VideoSpec

WHOLE_FRAME_TRACK: int = 0


def decode_frame(payload: bytes | memoryview, spec: VideoSpec | None) -> np.ndarray:
    """One VIDEO payload → (H, W) uint8 gray. Raw sizes were checked by the session."""
    assert spec is not None
    if spec.encoding.pixel_bytes is not None:
        assert spec.width is not None and spec.height is not None  # checked by the parser
    if spec.encoding is VideoEncoding.GRAY8:
        return np.frombuffer(payload, np.uint8).reshape(spec.height, spec.width)  # type: ignore[arg-type]
    if spec.encoding is VideoEncoding.RGB24:
        rgb = np.frombuffer(payload, np.uint8).reshape(spec.height, spec.width, 3)  # type: ignore[arg-type]
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(format="gray")
    from avsync.media.jpeg import decode_jpeg

    gray = decode_jpeg(bytes(payload), gray=True)
    if spec.width is not None and spec.height is not None \
            and gray.shape != (spec.height, spec.width):
        raise MediaError(f"JPEG is {gray.shape[1]}x{gray.shape[0]} but start declared "
                         f"{spec.width}x{spec.height}")
    return gray


def warm_up() -> None:
    """Import OpenCV on this thread before media threads need it: two threads importing cv2
    lazily at once can see a half-initialised module (find_spec raises ValueError)."""
    from avsync.media.opencv import cv2_module

    cv2_module()


def detection_available() -> bool:
    """True when `avsync.media.faces` (detector + tracker) is installed in this build."""
    return importlib.util.find_spec("avsync.media.faces") is not None


class FaceFinder:
    """Face boxes per frame, by the session's face mode; picks the primary (recognised) face."""

    def __init__(self, spec: VideoSpec, roi_size: int, max_faces: int) -> None:
        self.mode, self.max_faces = spec.faces, max_faces
        self._client: dict[int, Box] = {}
        self._primary: int | None = None
        self._tracker = None
        if self.mode is FaceMode.DETECT:
            from avsync.media.faces import FaceDetector, FaceTracker

            self._tracker = FaceTracker(FaceDetector())

    def set_client_boxes(self, boxes: dict[int, tuple[float, float, float, float]]) -> None:
        if len(boxes) > self.max_faces:
            raise MediaError(f"{len(boxes)} face boxes sent, this server tracks at most "
                             f"{self.max_faces} faces per session")
        self._client = {track: Box(*box) for track, box in boxes.items()}

    def find(self, gray: np.ndarray) -> dict[int, Box]:
        """gray: (H, W) uint8 → {track id: face box in frame pixels}."""
        if self.mode is FaceMode.WHOLE_FRAME:
            return {WHOLE_FRAME_TRACK: whole_frame_face(gray.shape[1], gray.shape[0])}
        if self.mode is FaceMode.CLIENT_BOXES:
            return dict(self._client)
        assert self._tracker is not None
        faces = sorted(self._tracker.update(gray), key=lambda f: -f.box.w * f.box.h)
        return {face.track_id: face.box for face in faces[:self.max_faces]}

    def primary(self, boxes: dict[int, Box]) -> int | None:
        """The face recognition follows: the current one while it lasts, else the largest."""
        if self._primary not in boxes:
            self._primary = max(boxes, key=lambda t: boxes[t].w * boxes[t].h, default=None)
        return self._primary
