"""Decode any media PyAV reads into the project's time base: 25 fps frames, 16 kHz mono audio.

Two ways: `MediaReader` hands a file out piece by piece (a demuxed packet's frames and audio at
a time, frames scaled as soon as they are decoded), so memory stays constant for any duration
and resolution; `decode_media` collects a whole (short) clip into arrays through it.

Timing is the point of this module. Every decoded frame and audio sample is placed by its
presentation timestamp, relative to one origin for the whole file (the earliest start of its
audio/video streams), so:
- AAC priming and container edit lists (honoured by FFmpeg's demuxers/decoders) and streams
  that start late all end up at the right time: a sample written at t decodes at t;
- variable frame rate video is resampled onto the 25 fps grid by timestamps (nearest frame);
- audio of any rate is resampled to 16 kHz with a zero-phase filter, so resampling shifts
  nothing; any channel layout is brought to mono by `avsync.media.audio.downmix`.

What the container says is honoured: the display matrix (phone videos are stored sideways and
come out upright), attached pictures and still images (cover art) are not video, and of
several audio streams the default one that is not commentary or audio description is read.
Damage is kept and reported, never silently dropped: a packet that fails to decode is skipped
(its time becomes silence, or the previous frame held) and listed in `damage`; a file that ends
early gives what decodes and a `Damage` for the missing end.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np

from avsync.errors import MediaError
from avsync.media.placement import AudioLine, FrameFormat, VideoGrid, rotation_of, shape_frame
from avsync.timebase import FPS, SAMPLE_RATE, samples_to_steps

MediaSource = str | Path | bytes

_D = av.stream.Disposition
# Video streams that are pictures, not moving lips: cover art, stills, thumbnails.
_NOT_VIDEO = _D.attached_pic | _D.still_image | _D.timed_thumbnails
# Audio streams that are not the programme's speech: commentary, audio description.
_NOT_PROGRAMME = _D.comment | _D.visual_impaired | _D.descriptions | _D.dependent
_IMAGE_CODECS = frozenset({"png", "bmp", "tiff", "webp", "jpeg2000", "pam", "pgm", "ppm"})
# A stream that ends this much (or two frames) before the header's end was cut short.
_TRUNCATION_TOLERANCE_S: float = 0.1


@dataclass(frozen=True)
class Damage:
    """Media lost in decoding: `stream` ("audio"/"video") from `start` to `end` seconds of
    clip time (silence or the previous frame stands in), and why."""

    stream: str
    start: float
    end: float
    reason: str

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    def describe(self) -> str:
        return (f"{self.stream} {self.start:.2f}-{self.end:.2f} s lost "
                f"({self.seconds:.2f} s): {self.reason}")


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
    damage: what could not be decoded (empty for an intact file); `complete` says so.
    """

    frames: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    fps: int
    source_fps: float | None
    duration: float
    has_video: bool
    has_audio: bool
    damage: tuple[Damage, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.damage


@dataclass(frozen=True)
class MediaInfo:
    """What a container's header says (`probe_media`), and its first frame's orientation.

    duration: seconds (0.0 when the header does not say); frames: header frame count (0 when
    unknown, e.g. webm); width/height: of the upright picture (after `rotation`, degrees
    counter-clockwise from the display matrix); sample_rate/channels: the audio stream's
    native values. has_video is False for cover art and still images (`still_image`).
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
    rotation: int = 0
    still_image: bool = False


@dataclass(frozen=True)
class MediaPiece:
    """The next stretch of a clip: frames (k, H, W[, 3]) uint8 on the 25 fps grid and audio
    (n,) float32 mono @ 16 kHz, each continuing where the previous piece's stopped."""

    frames: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)


def _name(source: MediaSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes | bytearray) else str(source)


def _target(source: MediaSource) -> str | io.BytesIO:
    name = _name(source)
    if isinstance(source, bytes | bytearray):
        if not source:
            raise MediaError(f"{name}: empty media (no bytes)")
        return io.BytesIO(bytes(source))
    path = Path(source)
    if path.is_dir():
        raise MediaError(f"{name}: is a directory, not a media file; pass the files in it")
    if not path.exists():
        raise MediaError(f"{name}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise MediaError(f"{name}: empty file (0 bytes)")
    return str(path)  # a regular file, or a pipe/device PyAV reads as a stream


def open_container(source: MediaSource) -> av.container.InputContainer:
    """Open a path or in-memory bytes for reading; MediaError naming the source on failure."""
    target = _target(source)
    try:
        return av.open(target, mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as error:
        raise MediaError(f"{_name(source)}: cannot open media: {error}{_hint(target)}") \
            from error


def _hint(target: str | io.BytesIO) -> str:
    """Why an mp4 that starts well may still not open: it was cut before its index."""
    if isinstance(target, io.BytesIO):
        head = target.getvalue()[:12]
    elif Path(target).is_file():
        with open(target, "rb") as handle:
            head = handle.read(12)
    else:  # a pipe: its bytes are gone
        return ""
    if head[4:8] == b"ftyp":
        return ("; an mp4/mov whose index (moov) was at its end and was cut off: nothing "
                "decodes without it (a tool such as untrunc rebuilds it from an intact "
                "recording of the same camera)")
    return ""


def _seconds(value: int | None, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def is_still(stream) -> bool:
    """Cover art, a still image or a one-frame stream: pictures, not video of lips."""
    if stream.disposition & _NOT_VIDEO or stream.frames == 1:
        return True
    return stream.codec_context.name in _IMAGE_CODECS


def video_stream(container: av.container.InputContainer):
    """The first video stream that is moving pictures, or None."""
    return next((s for s in container.streams.video if not is_still(s)), None)


def audio_stream(container: av.container.InputContainer):
    """The programme's audio: the default stream among those that are not commentary or audio
    description (the first of them without a default), else the first audio stream."""
    streams = list(container.streams.audio)
    programme = [s for s in streams if not s.disposition & _NOT_PROGRAMME] or streams
    return next((s for s in programme if s.disposition & _D.default),
                programme[0] if programme else None)


def _first_rotation(container: av.container.InputContainer, stream) -> int:
    """Degrees counter-clockwise the first decoded frame's display matrix asks for."""
    try:
        for frame in container.decode(stream):
            return rotation_of(frame) * 90
    except av.error.FFmpegError:
        pass
    return 0


def probe_media(source: MediaSource) -> MediaInfo:
    """Read a file's (or bytes') container header, and its first video frame's orientation."""
    with open_container(source) as container:
        video, audio = video_stream(container), audio_stream(container)
        duration = container.duration / av.time_base if container.duration else 0.0
        info = MediaInfo(path=_name(source), format=container.format.name, duration=duration,
                         has_video=video is not None, has_audio=audio is not None,
                         still_image=video is None and bool(container.streams.video))
        if audio is not None:
            info = replace(info, sample_rate=audio.codec_context.sample_rate,
                           channels=audio.codec_context.channels,
                           audio_codec=audio.codec_context.name)
        if video is not None:
            rate = video.average_rate or video.guessed_rate
            width, height = video.codec_context.width, video.codec_context.height
            rotation = _first_rotation(container, video)
            if rotation % 180:
                width, height = height, width
            info = replace(info, width=width, height=height, rotation=rotation,
                           source_fps=float(rate) if rate else None, frames=video.frames or 0,
                           video_codec=video.codec_context.name)
        return info


def _stream_end(stream) -> float | None:
    start, length = _seconds(stream.start_time, stream.time_base), stream.duration
    end = _seconds(length, stream.time_base)
    return None if end is None else (start or 0.0) + end


class MediaReader:
    """A media file (or bytes) decoded piece by piece onto the time base (see the module doc).

        with MediaReader(path, frames=FrameFormat(size=(640, 360))) as reader:
            for piece in reader.pieces():   # MediaPiece: frames and audio since the last
                ...
            reader.damage                    # what was lost, once the pieces are read

    video/audio: the streams to decode; `has_video`/`has_audio` say which are (requested and
    present; cover art and still images are not video). frames: how frames come out.
    Raises MediaError naming the source when it cannot be opened or has neither stream;
    `pieces` raises MediaError at the end when a stream it decodes gave nothing at all.
    """

    def __init__(self, source: MediaSource, *, video: bool = True, audio: bool = True,
                 frames: FrameFormat | None = None) -> None:
        self.name = _name(source)
        self.frame_format = frames or FrameFormat()
        self._container = open_container(source)
        try:
            self._select(video, audio)
        except BaseException:
            self._container.close()
            raise
        self.damage: list[Damage] = []
        self._unreadable: str | None = None  # why demuxing stopped early, if it did

    def _select(self, video: bool, audio: bool) -> None:
        container = self._container
        found_video, found_audio = video_stream(container), audio_stream(container)
        if found_video is None and found_audio is None:
            what = ("only a still image (cover art), no video or audio"
                    if container.streams.video else "no audio or video stream")
            raise MediaError(f"{self.name}: {what} in the file")
        self.file_has_video = found_video is not None
        self.file_has_audio = found_audio is not None
        self.still_image = found_video is None and bool(container.streams.video)
        starts = [_seconds(s.start_time, s.time_base) for s in (found_video, found_audio)
                  if s is not None]
        known = [s for s in starts if s is not None]
        self.origin = min(known) if known else 0.0
        self._video = found_video if video else None
        self._audio = found_audio if audio else None
        rate = None if self._video is None else (self._video.average_rate
                                                 or self._video.guessed_rate)
        self.source_fps = float(rate) if rate else None
        self._grid = VideoGrid(self.source_fps)
        audio_end = None if self._audio is None else _stream_end(self._audio)
        self._line = AudioLine(self.origin, None if audio_end is None else audio_end - self.origin)

    def _end_of(self, stream) -> float | None:
        """Where the header says `stream` ends (else the whole file), in clip seconds; None
        if it says neither."""
        if stream is None:
            return None
        end = _stream_end(stream)
        container = self._container
        if end is None and container.duration:
            end = ((container.start_time or 0) + container.duration) / av.time_base
        return None if end is None else end - self.origin

    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def duration(self) -> float:
        """Seconds handed out so far (the clip's duration once every piece was read)."""
        return max(self._grid.emitted / FPS, self._line.produced / SAMPLE_RATE)

    @property
    def complete(self) -> bool:
        return not self.damage

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def pieces(self) -> Iterator[MediaPiece]:
        """The clip in order, one demuxed packet's worth at a time (empty pieces skipped)."""
        streams = [s for s in (self._video, self._audio) if s is not None]
        for decoded in self._decoded(streams):
            images: list[np.ndarray] = []
            audio: list[np.ndarray] = []
            for frame in decoded:
                if isinstance(frame, av.VideoFrame):
                    time = None if frame.time is None else frame.time - self.origin
                    images += self._grid.push(time, shape_frame(frame, self.frame_format))
                else:
                    audio.append(self._line.add(frame))
            if images or audio:
                yield self._piece(images, audio)
        yield self._piece(self._grid.finish() if self.has_video else [], [self._line.flush()])
        self._check_end()

    def _piece(self, images: list[np.ndarray], audio: list[np.ndarray]) -> MediaPiece:
        frames = self._no_frames() if not images else (
            images[0][None] if len(images) == 1 else np.stack(images))
        samples = audio[0] if len(audio) == 1 else (
            np.concatenate(audio) if audio else np.zeros(0, np.float32))
        return MediaPiece(frames, samples)

    def _no_frames(self) -> np.ndarray:
        return np.zeros((0, 0, 0) if self.frame_format.gray else (0, 0, 0, 3), np.uint8)

    def _decoded(self, streams: list) -> Iterator[list]:
        """Each packet's decoded frames; a packet that fails to decode is recorded and
        skipped, and a file that cannot be demuxed further ends there (decoders flushed)."""
        if not streams:
            return
        packets = self._container.demux(streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as error:
                self._unreadable = f"the file cannot be read past this point ({error})"
                for stream in streams:
                    yield self._flush(stream)
                return
            try:
                yield packet.decode()
            except av.error.FFmpegError as error:
                self._lost(packet, error)

    @staticmethod
    def _flush(stream) -> list:
        try:
            return list(stream.codec_context.decode(None))
        except av.error.FFmpegError:
            return []

    def _lost(self, packet: av.Packet, error: Exception) -> None:
        base = packet.time_base
        start = _seconds(packet.pts if packet.pts is not None else packet.dts, base)
        length = _seconds(packet.duration, base) or 0.0
        at = self.duration if start is None else start - self.origin
        self.damage.append(Damage(packet.stream.type, round(at, 3), round(at + length, 3),
                                  f"corrupt packet skipped ({error})"))

    def _check_end(self) -> None:
        """Record streams that end before the header says (or where demuxing failed), and
        refuse a requested stream that decoded to nothing."""
        decoded = []
        if self._video is not None:
            decoded.append(("video", self._video, self._grid.end, self._grid.pushed))
        if self._audio is not None:
            decoded.append(("audio", self._audio, self._line.seconds, self._line.produced))
        for kind, stream, end, count in decoded:
            expected = self._end_of(stream)
            reached = end or 0.0
            tolerance = max(_TRUNCATION_TOLERANCE_S, 2.0 / FPS)
            if expected is not None and expected - reached > tolerance:
                self.damage.append(Damage(kind, round(reached, 3), round(expected, 3),
                                          self._unreadable or "the file ends early "
                                          "(truncated)"))
            elif self._unreadable is not None:
                self.damage.append(Damage(kind, round(reached, 3), round(reached, 3),
                                          f"{self._unreadable}; how much is missing is "
                                          "unknown"))
            if not count:
                lost = "; ".join(d.describe() for d in self.damage)
                what = "no frames" if kind == "video" else "no samples"
                raise MediaError(f"{self.name}: the {kind} stream decodes to {what}"
                                 + (f" ({lost})" if lost else ""))


def decode_media(source: MediaSource, *, gray: bool = True, video: bool = True,
                 audio: bool = True) -> MediaClip:
    """Decode a whole file or in-memory bytes (mp4, webm, mkv, avi, wav, ...) onto the time
    base, as arrays: for short clips (long files: `MediaReader`, in constant memory).

    source: a path or the file's bytes. gray: frames (T, H, W) if True, else (T, H, W, 3) RGB.
    video/audio: which streams to decode (the other comes back empty).
    Returns a MediaClip (frames uint8 at 25 fps, audio (S,) float32 mono @ 16 kHz, upright),
    whose `damage` lists what a damaged file lost. Raises MediaError naming the source for a
    missing/empty/unreadable file, a file with neither stream, or a requested stream that
    decodes to nothing.
    """
    with MediaReader(source, video=video, audio=audio, frames=FrameFormat(gray=gray)) as reader:
        images: list[np.ndarray] = []
        pieces: list[np.ndarray] = []
        for piece in reader.pieces():
            images.extend(piece.frames)
            pieces.append(piece.audio)
        frames = np.stack(images) if images else reader._no_frames()
        samples = np.concatenate(pieces) if reader.has_audio else np.zeros(0, np.float32)
        return MediaClip(frames=frames, audio=samples, fps=FPS, source_fps=reader.source_fps,
                         duration=reader.duration, has_video=len(frames) > 0,
                         has_audio=len(samples) > 0, damage=tuple(reader.damage))


def clip_steps(clip: MediaClip) -> int:
    """Whole 40 ms steps covered by both streams of a clip (the usable length for training)."""
    lengths = []
    if clip.has_video:
        lengths.append(len(clip.frames))
    if clip.has_audio:
        lengths.append(samples_to_steps(len(clip.audio)))
    return min(lengths) if lengths else 0
