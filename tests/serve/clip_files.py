"""Encode test clips the way browsers send them (webm: VP8 + Opus), with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.timebase import FPS, SAMPLE_RATE


def write_webm(path: Path, audio: np.ndarray, frames: np.ndarray) -> Path:
    """audio: (S,) float32 @ 16 kHz, frames: (T, H, W) uint8 gray → VP8 + Opus (48 kHz) webm."""
    with av.open(str(path), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.bit_rate = 1_000_000
        sound = container.add_stream("libopus", rate=48000)
        sound.bit_rate = 96_000
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="gray").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        samples = audio.astype(np.float32)[None, :]
        pcm = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        pcm.sample_rate, pcm.pts, pcm.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        for piece in [*resampler.resample(pcm), *resampler.resample(None)]:
            container.mux(sound.encode(piece))
        container.mux(sound.encode())
    return path
