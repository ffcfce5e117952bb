"""Decode any media PyAV reads into the project's time base: 25 fps frames, 16 kHz mono audio.

Timing is the point of this module. Every decoded frame and audio sample is placed by its
presentation timestamp, relative to one origin for the whole file (the earliest start of its
audio/video streams), so:
- AAC priming and container edit lists (honoured by FFmpeg's demuxers/decoders) and streams
  that start late all end up at the right time: a sample written at t decodes at t;
- variable frame rate video is resampled onto the 25 fps grid by timestamps (nearest frame);
- audio of any rate and channel layout is downmixed (channel mean) and resampled to 16 kHz
  with a zero-phase filter, so resampling shifts nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np

from avsync.errors import MediaError
from avsync.media.audio import AudioPlacer
from avsync.media.frames import frame_to_image
from avsync.media.resample import resample_audio
from avsync.timebase import FPS, SAMPLE_RATE, samples_to_steps

MediaSource = str | Path | bytes

# An mp4's last AAC frame decodes padded to 1024 samples; trim to the header's duration when
# the excess is at most this much (a larger excess means the header, not the padding, is off).
_MAX_END_PADDING_S: float = 0.2


@dataclass(frozen=True)
class MediaClip:
    """A decoded clip on the project time base.

    frames: (T, H, W) uint8 gray or (T, H, W, 3) uint8 RGB, frame i at i / fps seconds;
        (0, 0, 0) when the clip has no (requested) video.
    audio: (S,) float32 in [-1, 1], mono @ 16 kHz, sample n at n / 16000 seconds; (0,) when
        the clip has no (requested) audio.
    fps: always 25 (timebase.FPS); frames were resampled onto that grid.
    source_fps: the video stream's declared average rate, None without a video stream; callers
        that must reject wrong-fps data check this.
    duration: seconds covered, max(T / fps, S / 16000).
    """

    frames: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    fps: int
    source_fps: float | None
    duration: float
    has_video: bool
    has_audio: bool


@dataclass(frozen=True)
class MediaInfo:
    """What a container's header says, without decoding (`probe_media`).

    duration: seconds (0.0 when the header does not say); frames: header frame count (0 when
    unknown, e.g. webm); sample_rate/channels: the audio stream's native values.
    """

    path: str
    format: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    source_fps: float | None = None
    frames: int = 0
    video_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    audio_codec: str | None = None


def _name(source: MediaSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes | bytearray) else str(source)


def open_container(source: MediaSource) -> av.container.InputContainer:
    """Open a path or in-memory bytes for reading; MediaError naming the source on failure."""
    name = _name(source)
    if isinstance(source, bytes | bytearray):
        if not source:
            raise MediaError(f"{name}: empty media (no bytes)")
        target: str | io.BytesIO = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise MediaError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise MediaError(f"{name}: empty file (0 bytes)")
        target = str(path)
    try:
        return av.open(target, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise MediaError(f"{name}: cannot open media: {error}") from error


def _seconds(value: int | None, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def probe_media(source: MediaSource) -> MediaInfo:
    """Read only the container header of a file (or bytes): fast, no decoding."""
    with open_container(source) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = container.duration / av.time_base if container.duration else 0.0
        info = MediaInfo(path=_name(source), format=container.format.name, duration=duration,
                         has_video=video is not None, has_audio=audio is not None)
        if video is not None:
            rate = video.average_rate or video.guessed_rate
            info = replace(info, width=video.codec_context.width,
                            height=video.codec_context.height,
                            source_fps=float(rate) if rate else None, frames=video.frames or 0,
                            video_codec=video.codec_context.name)
        if audio is not None:
            info = replace(info, sample_rate=audio.codec_context.sample_rate,
                            channels=audio.codec_context.channels,
                            audio_codec=audio.codec_context.name)
        return info


def _origin(container: av.container.InputContainer) -> float:
    """Time 0 of the decoded clip: the earliest declared start of any audio/video stream."""
    starts = [_seconds(s.start_time, s.time_base)
              for s in (*container.streams.video, *container.streams.audio)]
    known = [s for s in starts if s is not None]
    return min(known) if known else 0.0


def _packets(container: av.container.InputContainer, streams: list, name: str) -> Iterator:
    """Demux the chosen streams, turning FFmpeg failures into MediaError."""
    try:
        yield from container.demux(streams)
    except av.error.FFmpegError as error:
        raise MediaError(f"{name}: corrupt or truncated media while demuxing: {error}") \
            from error


def _decode(packet, name: str) -> list:
    try:
        return list(packet.decode())
    except av.error.FFmpegError as error:
        raise MediaError(f"{name}: corrupt or truncated media while decoding: {error}") \
            from error


class _AudioTrack:
    """Collects a file's decoded audio (native rate, mono) to resample it in one go."""

    def __init__(self, origin: float) -> None:
        self.placer = AudioPlacer(origin)
        self.pieces: list[np.ndarray] = []

    def add(self, frame: av.AudioFrame) -> None:
        self.pieces.append(self.placer.place(frame))

    def samples(self, end: float | None) -> np.ndarray:
        """(S,) float32 at 16 kHz, starting at the origin; trimmed to `end` s if close."""
        rate, start = self.placer.rate, self.placer.start
        if rate is None or start is None:
            return np.zeros(0, np.float32)
        native = np.concatenate(self.pieces)
        if end is not None:
            keep = max(0, round((end - start) * rate))
            if 0 <= len(native) - keep <= _MAX_END_PADDING_S * rate:
                native = native[:keep]
        audio = resample_audio(native, rate, SAMPLE_RATE)
        offset = round(start * SAMPLE_RATE)
        if offset >= 0:
            return np.concatenate([np.zeros(offset, np.float32), audio])
        return audio[-offset:]


def _to_grid(times: np.ndarray, frame_duration: float) -> np.ndarray:
    """Indices of the source frames nearest to each 25 fps grid time (ties: the earlier)."""
    end = times[-1] + frame_duration
    count = max(1, round(end * FPS))
    grid = np.arange(count) / FPS
    after = np.clip(np.searchsorted(times, grid, side="left"), 0, len(times) - 1)
    before = np.clip(after - 1, 0, len(times) - 1)
    take_before = np.abs(grid - times[before]) <= np.abs(times[after] - grid)
    return np.where(take_before, before, after)


def _video_frames(images: list[np.ndarray], times: Sequence[float | None],
                  stream: av.video.stream.VideoStream) -> np.ndarray:
    rate = stream.average_rate or stream.guessed_rate or FPS
    if any(t is None for t in times):  # no timestamps (rare): assume the declared rate
        times = [i / float(rate) for i in range(len(times))]
    stamps = np.asarray(times, np.float64)
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    frame_duration = float(np.median(steps)) if len(steps) else 1.0 / float(rate)
    index = order[_to_grid(stamps, frame_duration)]
    return np.stack([images[i] for i in index])


def _check_complete(name: str, stream, decoded: int) -> None:
    declared = stream.frames or 0
    if declared and declared - decoded > max(1, declared // 100):
        raise MediaError(f"{name}: truncated video: the header lists {declared} frames but "
                         f"only {decoded} decode")


def _stream_end(stream) -> float | None:
    start, length = _seconds(stream.start_time, stream.time_base), stream.duration
    end = _seconds(length, stream.time_base)
    return None if end is None else (start or 0.0) + end


def decode_media(source: MediaSource, *, gray: bool = True, video: bool = True,
                 audio: bool = True) -> MediaClip:
    """Decode a file or in-memory bytes (mp4, webm, mkv, avi, wav, ...) onto the time base.

    source: a path or the file's bytes. gray: frames (T, H, W) if True, else (T, H, W, 3) RGB.
    video/audio: which streams to decode (the other comes back empty).
    Returns a MediaClip (frames uint8 at 25 fps, audio (S,) float32 mono @ 16 kHz).
    Raises MediaError naming the source for a missing/empty/corrupt/truncated file, a file
    with neither stream, or a requested stream that decodes to nothing.
    """
    name = _name(source)
    with open_container(source) as container:
        video_stream = container.streams.video[0] if video and container.streams.video else None
        audio_stream = container.streams.audio[0] if audio and container.streams.audio else None
        if not container.streams.video and not container.streams.audio:
            raise MediaError(f"{name}: no audio or video stream in the file")
        origin = _origin(container)
        images: list[np.ndarray] = []
        times: list[float | None] = []
        track = _AudioTrack(origin)
        streams = [s for s in (video_stream, audio_stream) if s is not None]
        for packet in _packets(container, streams, name):
            for frame in _decode(packet, name):
                if isinstance(frame, av.VideoFrame):
                    images.append(frame_to_image(frame, gray))
                    times.append(None if frame.time is None else frame.time - origin)
                else:
                    track.add(frame)
        frames, samples, source_fps = _empty_frames(gray), np.zeros(0, np.float32), None
        if video_stream is not None:
            rate = video_stream.average_rate or video_stream.guessed_rate
            source_fps = float(rate) if rate else None
            if not images:
                raise MediaError(f"{name}: the video stream decodes to no frames")
            _check_complete(name, video_stream, len(images))
            frames = _video_frames(images, times, video_stream)
        if audio_stream is not None:
            end = _stream_end(audio_stream)
            samples = track.samples(None if end is None else end - origin)
            if not len(samples):
                raise MediaError(f"{name}: the audio stream decodes to no samples")
    duration = max(len(frames) / FPS, len(samples) / SAMPLE_RATE)
    return MediaClip(frames=frames, audio=samples, fps=FPS, source_fps=source_fps,
                     duration=duration, has_video=len(frames) > 0, has_audio=len(samples) > 0)


def _empty_frames(gray: bool) -> np.ndarray:
    return np.zeros((0, 0, 0) if gray else (0, 0, 0, 3), np.uint8)


def clip_steps(clip: MediaClip) -> int:
    """Whole 40 ms steps covered by both streams of a clip (the usable length for training)."""
    lengths = []
    if clip.has_video:
        lengths.append(len(clip.frames))
    if clip.has_audio:
        lengths.append(samples_to_steps(len(clip.audio)))
    return min(lengths) if lengths else 0
