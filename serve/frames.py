"""Video frame payloads → gray frames, and where the faces are in them.

Decoding uses `avsync.media` so the server sees frames exactly as training did: raw RGB goes
through PyAV's (swscale's) RGB→gray like `decode_media`, JPEG through `decode_jpeg`, which
refuses truncated files instead of returning half an image.
"""

from __future__ import annotations

import importlib.util

import av
import numpy as np
from avsync.serve.protocol import FaceMode, VideoEncoding, VideoSpec

from avsync.errors import MediaError
from avsync.media.roi import FACE_BOX, Box, Face, check_convention, whole_frame_face

WHOLE_FRAME_TRACK: int = 0


def decode_frame(payload: bytes | memoryview, spec: VideoSpec | None,
                 max_pixels: int) -> np.ndarray:
    """One VIDEO payload → (H, W) uint8 gray. Raw sizes were checked by the session; a JPEG's
    size is read from its header and checked (declared size, `max_pixels`) before decoding."""
    assert spec is not None
    if spec.encoding.pixel_bytes is not None:
        assert spec.width is not None and spec.height is not None  # checked by the parser
    if spec.encoding is VideoEncoding.GRAY8:
        return np.frombuffer(payload, np.uint8).reshape(spec.height, spec.width)  # type: ignore[arg-type]
    if spec.encoding is VideoEncoding.RGB24:
        rgb = np.frombuffer(payload, np.uint8).reshape(spec.height, spec.width, 3)  # type: ignore[arg-type]
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").to_ndarray(format="gray")
    from avsync.media.jpeg import decode_jpeg, jpeg_size

    data = bytes(payload)
    width, height = jpeg_size(data)
    if spec.width is not None and spec.height is not None \
            and (width, height) != (spec.width, spec.height):
        raise MediaError(f"JPEG is {width}x{height} but start declared "
                         f"{spec.width}x{spec.height}")
    return decode_jpeg(data, gray=True, max_pixels=max_pixels)


def warm_up() -> None:
    """Import OpenCV on this thread before media threads need it: two threads importing cv2
    lazily at once can see a half-initialised module (find_spec raises ValueError)."""
    from avsync.media.opencv import cv2_module

    cv2_module()


def detection_available() -> bool:
    """True when `avsync.media.face_tracking` (detector + landmarks) is installed."""
    return importlib.util.find_spec("avsync.media.face_tracking") is not None


class FaceFinder:
    """Face boxes per frame, by the session's face mode; picks the primary (recognised) face."""

    def __init__(self, spec: VideoSpec, roi_size: int, max_faces: int,
                 roi_convention: str = FACE_BOX) -> None:
        """roi_convention: the model's crop convention (`avsync.media.roi`). `detect` follows
        faces by their landmarks (`avsync.media.face_tracking`, up to max_faces) whatever the
        convention: a mean-face model's crops are cut from the landmarks, a face-box model's
        from the face box they give (calibrated to that convention)."""
        self.mode, self.max_faces = spec.faces, max_faces
        self.roi_convention = check_convention(roi_convention)
        self._client: dict[int, Box] = {}
        self._primary: int | None = None
        self._landmarks = None
        if self.mode is FaceMode.DETECT:
            from avsync.media.face_tracking import LandmarkTracker

            self._landmarks = LandmarkTracker(max_faces=max_faces)

    def set_client_boxes(self, boxes: dict[int, tuple[float, float, float, float]]) -> None:
        if len(boxes) > self.max_faces:
            raise MediaError(f"{len(boxes)} face boxes sent, this server tracks at most "
                             f"{self.max_faces} faces per session")
        self._client = {track: Box(*box) for track, box in boxes.items()}

    def find(self, gray: np.ndarray) -> dict[int, Box]:
        """gray: (H, W) uint8 → {track id: face box in frame pixels}."""
        return {track: face.box for track, face in self.find_faces(gray).items()}

    def find_faces(self, gray: np.ndarray) -> dict[int, Face]:
        """gray: (H, W) uint8 → {track id: Face (box, and landmarks where detected)}."""
        if self._landmarks is not None:
            tracked = sorted(self._landmarks.update(gray), key=lambda f: -f.box.w * f.box.h)
            return {face.track_id: face.face for face in tracked[:self.max_faces]}
        return {track: Face(box) for track, box in self._boxes(gray).items()}

    def _boxes(self, gray: np.ndarray) -> dict[int, Box]:
        """Whole-frame and client-box modes: the boxes of this frame."""
        if self.mode is FaceMode.WHOLE_FRAME:
            return {WHOLE_FRAME_TRACK: whole_frame_face(gray.shape[1], gray.shape[0])}
        height, width = gray.shape
        clipped = {t: clip_box(box, width, height) for t, box in self._client.items()}
        return {t: box for t, box in clipped.items() if box is not None}

    def primary(self, boxes: dict[int, Box]) -> int | None:
        """The face recognition follows: the current one while it lasts, else the largest."""
        if self._primary not in boxes:
            self._primary = max(boxes, key=lambda t: boxes[t].w * boxes[t].h, default=None)
        return self._primary


def clip_box(box: Box, width: int, height: int) -> Box | None:
    """A client's face box for a width x height frame: None if it misses the frame; else no
    larger than the frame's longer side (about its centre), so a mouth crop never gathers
    more than a frame's worth of pixels however big the box claims to be. A box that fits
    (a face partly outside the picture included) is unchanged."""
    if box.x >= width or box.y >= height or box.x + box.w <= 0 or box.y + box.h <= 0:
        return None
    side = float(max(width, height))
    if box.w <= side and box.h <= side:
        return box
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    w, h = min(box.w, side), min(box.h, side)
    return Box(min(max(cx, 0.0), width) - w / 2, min(max(cy, 0.0), height) - h / 2, w, h)
