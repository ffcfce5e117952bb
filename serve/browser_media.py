"""Files Chromium's fake camera and microphone play: a clip as y4m video and wav audio.

`chromium --use-fake-device-for-media-stream --use-file-for-fake-video-capture=CLIP.y4m
--use-file-for-fake-audio-capture=CLIP.wav` makes the page's getUserMedia() deliver these,
so a browser test (and the demo) can stream a known clip through the real page.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from avsync.errors import MediaError
from avsync.timebase import FPS, SAMPLE_RATE


def write_y4m(path: str | Path, frames: np.ndarray, fps: int = FPS) -> Path:
    """frames: (T, H, W) uint8 gray → 4:2:0 y4m (neutral chroma); H and W must be even.

    Players read y4m as limited-range video (Y 16..235), so gray is written as
    Y = 16 + gray * 219 / 255: a browser's (or FFmpeg's) YUV → RGB then gives the gray back.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8 or not len(frames):
        raise MediaError(f"write_y4m needs (T, H, W) uint8 frames, got {frames.shape} "
                         f"{frames.dtype}")
    count, height, width = frames.shape
    if height % 2 or width % 2:
        raise MediaError(f"y4m 4:2:0 needs even sizes, got {width}x{height}; pad the frames")
    chroma = np.full((height // 2) * (width // 2) * 2, 128, np.uint8).tobytes()
    path = Path(path)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            luma = (16 + frame.astype(np.float32) * (219 / 255)).round().astype(np.uint8)
            out.write(b"FRAME\n" + luma.tobytes() + chroma)
    return path


def camera_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Face-centred (T, S, S) uint8 gray frames (LRS style) → (T, height, width) camera frames
    whose central height x height square is the face frame, scaled (the border repeats the
    face frame's edge pixels), so the page's whole-frame face is the clip's face."""
    from avsync.media.opencv import cv2_module

    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[1] != frames.shape[2] or width < height:
        raise MediaError(f"camera_frames needs square (T, S, S) frames and width >= height, "
                         f"got {frames.shape} into {width}x{height}")
    cv2 = cv2_module()
    left = (width - height) // 2
    out = []
    for frame in frames:
        face = cv2.resize(frame, (height, height), interpolation=cv2.INTER_AREA)
        out.append(np.pad(face, ((0, 0), (left, width - height - left)), mode="edge"))
    return np.stack(out)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """audio: (S,) float32 in [-1, 1] → 16-bit mono PCM wav."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or not np.all(np.isfinite(audio)):
        raise MediaError(f"write_wav needs finite mono (S,) audio, got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    path = Path(path)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return path
