"""Real media files made with PyAV for the tests of what real files are like: rotated phone
video (display matrix), cover art, several audio streams, 5.1 audio, a corrupt packet, a cut."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 16_000


def write_av(path: Path, *, frames: np.ndarray | None = None, audio: np.ndarray | None = None,
             layout: str = "mono", sample_rate: int = RATE, rotation: int = 0,
             cover: np.ndarray | None = None, commentary: np.ndarray | None = None,
             corrupt: tuple[str, int] | None = None, video_codec: str = "libx264",
             audio_codec: str = "aac", options: dict[str, str] | None = None) -> Path:
    """frames: (T, H, W) gray at 25 fps, stored as given, with a display matrix asking for
    `rotation` degrees counter-clockwise; audio: (C, S) float32 in `layout`; cover: (h, w, 3)
    uint8 attached as a PNG picture; commentary: (1, S) mono, written as a first audio stream
    marked as commentary; corrupt: ("audio" | "video", n): the n-th packet of that stream is
    replaced by random bytes of the same size (timestamps kept)."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", options=options or {}) as out:
        streams: list[tuple[av.stream.Stream, list[av.Frame]]] = []
        if commentary is not None:
            extra = out.add_stream(audio_codec, rate=sample_rate, layout="mono")
            extra.disposition = av.stream.Disposition.comment
            streams.append((extra, _audio_frames(commentary, "mono", sample_rate, extra)))
        if audio is not None:
            sound = out.add_stream(audio_codec, rate=sample_rate, layout=layout)
            if commentary is not None:
                sound.disposition = av.stream.Disposition.default
            streams.append((sound, _audio_frames(audio, layout, sample_rate, sound)))
        if frames is not None:
            video = out.add_stream(video_codec, rate=25)
            video.width, video.height = frames.shape[2], frames.shape[1]
            video.pix_fmt = "yuv420p"
            if rotation:
                video.set_display_rotation(rotation)
            streams.append((video, [_video_frame(image, i) for i, image in enumerate(frames)]))
        if cover is not None:
            picture = out.add_stream("png")
            picture.width, picture.height = cover.shape[1], cover.shape[0]
            picture.pix_fmt = "rgb24"
            picture.disposition = av.stream.Disposition.attached_pic
            streams.append((picture, [av.VideoFrame.from_ndarray(cover, format="rgb24")]))
        targets = {"audio": sound if audio is not None else None,
                   "video": video if frames is not None else None}
        damaged = None if corrupt is None else (targets[corrupt[0]], corrupt[1])
        for stream, items in streams:
            for index, packet in enumerate(p for item in [*items, None]
                                           for p in stream.encode(item)):
                out.mux(_garbage(packet, rng) if damaged == (stream, index) else packet)
    return path


def _garbage(packet: av.Packet, rng: np.random.Generator) -> av.Packet:
    bad = av.Packet(rng.integers(0, 256, packet.size, np.uint8).tobytes())
    bad.pts, bad.dts, bad.duration = packet.pts, packet.dts, packet.duration
    bad.time_base, bad.stream = packet.time_base, packet.stream
    return bad


def _audio_frames(audio: np.ndarray, layout: str, rate: int, stream) -> list[av.AudioFrame]:
    size = stream.codec_context.frame_size or 1024
    frames = []
    for start in range(0, audio.shape[1], size):
        piece = np.ascontiguousarray(audio[:, start:start + size], np.float32)
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts, frame.time_base = start, Fraction(1, rate)
        frames.append(frame)
    return frames


def _video_frame(image: np.ndarray, index: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(image, format="gray").reformat(format="yuv420p")
    frame.pts, frame.time_base = index, Fraction(1, 25)
    return frame


def tone(seconds: float, hz: float = 440.0, rate: int = RATE, level: float = 0.5
         ) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def gradient_frames(count: int, height: int, width: int) -> np.ndarray:
    """Smooth moving gradients (codec-friendly)."""
    y, x = np.mgrid[0:height, 0:width]
    clip = [127 + 100 * np.sin(x / 9.0 + y / 13.0 + t / 5.0) for t in range(count)]
    return np.clip(clip, 0, 255).astype(np.uint8)
