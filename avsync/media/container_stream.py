"""Decode a webm/mkv or fragmented-mp4 byte stream that arrives in pieces (a browser's
MediaRecorder over a websocket) into timestamped gray frames and 16 kHz mono audio.

PyAV demuxes from a file-like object; ours blocks in `read()` until more bytes are pushed or
the stream is closed, and the demux/decode loop runs on a worker thread, so a caller (a
server's thread pool, never its event loop) only ever does cheap, non-blocking `push()` and
`poll()` calls. Undecodable bytes become a MediaError on the next call, never a hang: the
first bytes are checked against the container signatures before anything waits for more.

Times are the container's presentation times in seconds (MediaRecorder streams start near 0).
Audio comes out contiguous: each AudioChunk starts where the previous one ended; timestamp
gaps are filled with silence (see AudioPlacer), and resampling is bit-identical to
`resample_audio` over the whole stream (StreamingResampler).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import av
import numpy as np

from avsync.errors import MediaError
from avsync.media.audio import AudioPlacer
from avsync.media.frames import frame_to_image
from avsync.media.resample import StreamingResampler
from avsync.timebase import SAMPLE_RATE

MATROSKA_MAGIC: bytes = b"\x1a\x45\xdf\xa3"  # EBML header: webm and mkv
MP4_BOXES: tuple[bytes, ...] = (b"ftyp", b"styp", b"moov", b"moof")
MAX_BACKLOG: int = 32 * 1024 * 1024  # bytes pushed but not yet read by the demuxer
SEEK_BACK: int = 16 * 1024 * 1024  # bytes kept behind the read position for mp4 (a fragment)
# Small probe: codec parameters of webm/fmp4 are in the header, and waiting for more bytes
# before the first frame only adds latency. `ignidx`: on seekable input the mp4 demuxer would
# otherwise read every fragment up to the end of the stream before returning one packet.
_OPEN_OPTIONS: dict[str, str] = {"probesize": "32", "analyzeduration": "0",
                                 "fflags": "+ignidx"}


@dataclass(frozen=True)
class TimedFrame:
    """One decoded video frame: time in seconds, image (H, W) uint8 gray or (H, W, 3) RGB."""

    time: float
    image: np.ndarray


@dataclass(frozen=True)
class AudioChunk:
    """Contiguous audio: samples (N,) float32 mono @ 16 kHz, the first at `start` seconds."""

    start: float
    samples: np.ndarray


@dataclass(frozen=True)
class StreamOutput:
    """What was decoded since the previous poll; `finished` once the stream is fully done."""

    frames: tuple[TimedFrame, ...]
    audio: AudioChunk | None
    finished: bool


def sniff_container(head: bytes) -> str | None:
    """The FFmpeg demuxer for a stream's first bytes ("matroska" or "mp4"), None if unknown.

    head: at least the first 8 bytes.
    """
    if head.startswith(MATROSKA_MAGIC):
        return "matroska"
    if head[4:8] in MP4_BOXES:
        return "mp4"
    return None


class _BlockingSource:
    """A read-only file-like whose read() waits for pushed bytes (EOF once closed).

    seekable: mp4 needs it. Its demuxer reads samples in time order, while a fragment's
    mdat holds all video then all audio, so it seeks back within the current fragment; the
    last `retain` bytes before the read position are kept for that. Matroska reads in order
    and would, if seekable, jump to the Cues at the end of a finished file, so it is not.
    """

    def __init__(self, seekable: bool, retain: int) -> None:
        self._seekable, self._retain = seekable, retain
        self._data = bytearray()  # the stream's bytes from offset _base on
        self._base = 0
        self._pos = 0
        self._closed = self._aborted = False
        self._ready = threading.Condition()

    def push(self, data: bytes) -> int:
        """Append bytes; returns how many wait unread (the backlog)."""
        with self._ready:
            self._data += data
            self._ready.notify_all()
            return self._base + len(self._data) - self._pos

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def abort(self) -> None:
        with self._ready:
            self._aborted = self._closed = True
            self._data.clear()
            self._ready.notify_all()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        with self._ready:
            if whence not in (0, 1):
                return -1  # from the end: a live stream has no known end (FFmpeg copes)
            target = offset if whence == 0 else self._pos + offset
            if target < self._base:
                raise OSError(f"cannot seek back to byte {target}: only bytes from "
                              f"{self._base} on are kept")
            self._pos = target
            return target

    def read(self, size: int = -1) -> bytes:
        with self._ready:
            while self._base + len(self._data) <= self._pos and not self._closed:
                self._ready.wait()
            if self._aborted:
                return b""
            start = self._pos - self._base
            end = len(self._data) if size < 0 else start + size
            data = bytes(self._data[start:end])
            self._pos += len(data)
            self._forget()
            return data

    def _forget(self) -> None:
        """Drop bytes that can no longer be read (all read ones, unless seekable)."""
        drop = self._pos - (self._retain if self._seekable else 0) - self._base
        if drop > (self._retain // 4 if self._seekable else 0):
            del self._data[:drop]
            self._base += drop


class ContainerStreamDecoder:
    """Decode a container byte stream as it arrives.

    Usage (from worker threads, not an event loop):
        decoder = ContainerStreamDecoder()
        decoder.push(chunk)            # any split of the bytes; MediaError if undecodable
        out = decoder.poll()           # frames/audio decoded so far, never blocks
        out = decoder.close()          # end of stream: flushes, waits, returns the rest

    format: "matroska" (webm/mkv) or "mp4" (fragmented); None sniffs the first bytes.
    gray: frames as (H, W) uint8 gray, else (H, W, 3) RGB. video/audio: streams to decode.
    """

    def __init__(self, *, format: str | None = None, gray: bool = True, video: bool = True,
                 audio: bool = True, max_backlog: int = MAX_BACKLOG) -> None:
        self._format = format
        self._gray, self._want_video, self._want_audio = gray, video, audio
        self._max_backlog = max_backlog
        self._source: _BlockingSource | None = None
        self._head = b""
        self._lock = threading.Condition()
        self._frames: list[TimedFrame] = []
        self._audio: list[np.ndarray] = []
        self._audio_handed = 0  # 16 kHz samples handed out so far
        self._placer = AudioPlacer()
        self._resampler: StreamingResampler | None = None
        self._error: MediaError | None = None
        self._finished = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.bytes_pushed = 0
        self.truncated = False  # the stream ended inside a packet; what decoded was kept
        self._decoded_any = False

    # -- caller side -----------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        """Append the next bytes of the stream. Raises MediaError if the stream is undecodable
        (bad signature, decoder failure so far) or the decoder is too far behind."""
        self._raise_if_failed()
        if self._closed:
            raise MediaError("bytes pushed after close() of the container stream")
        self.bytes_pushed += len(data)
        if self._thread is None:
            self._head += bytes(data)
            if len(self._head) < 8:
                return
            self._start(self._head)
            return
        assert self._source is not None
        backlog = self._source.push(bytes(data))
        if backlog > self._max_backlog:
            self._fail(MediaError(f"container stream backlog of {backlog} bytes exceeds "
                                  f"{self._max_backlog}: the decoder cannot keep up"))
            self._raise_if_failed()

    def poll(self) -> StreamOutput:
        """Everything decoded since the last poll (non-blocking). Raises MediaError once the
        decoder has failed and everything decoded before the failure was handed out."""
        with self._lock:
            output = self._take()
        if not output.frames and output.audio is None:
            self._raise_if_failed()
        return output

    def wait(self, timeout: float) -> StreamOutput:
        """Like poll(), but waits up to `timeout` seconds for something new."""
        with self._lock:
            self._lock.wait_for(lambda: self._frames or self._audio or self._finished
                                or self._error is not None, timeout=timeout)
        return self.poll()

    def close(self, timeout: float = 30.0) -> StreamOutput:
        """End of stream: decode what is left (flushing decoders and resampler) and return it.
        Raises MediaError if the stream was undecodable or decoding did not finish in time."""
        self._closed = True
        if self._thread is None:
            if self._head:
                raise MediaError(f"container stream ended after {len(self._head)} bytes, "
                                 "too few to be a webm/mkv or mp4")
            return StreamOutput((), None, True)
        assert self._source is not None
        self._source.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.abort()
            raise MediaError(f"container stream did not finish decoding within {timeout} s")
        self._raise_if_failed()
        with self._lock:
            return self._take()

    def abort(self) -> None:
        """Stop decoding now (client gone); pending bytes and output are dropped."""
        self._closed = True
        if self._source is not None:
            self._source.abort()

    @property
    def running(self) -> bool:
        """Whether the worker thread is still alive (False before the first bytes)."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ContainerStreamDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    # -- worker side -----------------------------------------------------------------------
    def _start(self, head: bytes) -> None:
        self._format = self._format or sniff_container(head)
        if self._format is None:
            self._fail(MediaError(f"unrecognised container stream (first bytes "
                                  f"{head[:8].hex(' ')}): send webm/mkv or fragmented mp4"))
            self._raise_if_failed()
        self._source = _BlockingSource(seekable=self._format != "matroska", retain=SEEK_BACK)
        self._source.push(head)
        self._head = b""
        self._thread = threading.Thread(target=self._run, name="container-stream-decoder",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with av.open(self._source, mode="r", format=self._format,
                         options=_OPEN_OPTIONS) as container:
                self._decode(container)
            self._flush_audio()
        except (av.error.FFmpegError, MediaError, ValueError, OSError) as error:
            if self._closed and self._decoded_any and not self._source_aborted():
                # The stream ended inside a packet (a client that stopped mid-fragment):
                # keep what decoded, as a file decoder would at a truncated end.
                self.truncated = True
                self._flush_audio()
            else:
                self._fail(error if isinstance(error, MediaError) else MediaError(
                    f"undecodable {self._format} container stream after "
                    f"{self.bytes_pushed} bytes: {error}"))
        finally:
            with self._lock:
                self._finished = True
                self._lock.notify_all()

    def _decode(self, container: av.container.InputContainer) -> None:
        streams: list[av.stream.Stream] = []
        if self._want_video and container.streams.video:
            streams.append(container.streams.video[0])
        if self._want_audio and container.streams.audio:
            streams.append(container.streams.audio[0])
        if not streams:
            raise MediaError(f"the {self._format} stream has no audio or video track")
        for packet in container.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    self._add_frame(frame)
                elif isinstance(frame, av.AudioFrame):
                    self._add_audio(frame)

    def _add_frame(self, frame: av.VideoFrame) -> None:
        image = frame_to_image(frame, self._gray)
        self._decoded_any = True
        with self._lock:
            self._frames.append(TimedFrame(float(frame.time or 0.0), image))
            self._lock.notify_all()

    def _add_audio(self, frame: av.AudioFrame) -> None:
        native = self._placer.place(frame)
        self._decoded_any = True
        if self._resampler is None:
            assert self._placer.rate is not None
            self._resampler = StreamingResampler(self._placer.rate, SAMPLE_RATE)
        self._put_audio(self._resampler.push(native))

    def _flush_audio(self) -> None:
        if self._resampler is not None:
            self._put_audio(self._resampler.flush())

    def _put_audio(self, samples: np.ndarray) -> None:
        with self._lock:
            if len(samples):
                self._audio.append(samples)
                self._lock.notify_all()

    def _take(self) -> StreamOutput:
        """Hand out pending output (call with the lock held)."""
        frames, self._frames = tuple(self._frames), []
        chunk = None
        if self._audio and self._placer.start is not None:
            samples = np.concatenate(self._audio)
            chunk = AudioChunk(self._placer.start + self._audio_handed / SAMPLE_RATE, samples)
            self._audio_handed += len(samples)
            self._audio = []
        finished = self._finished and self._error is None
        return StreamOutput(frames, chunk, finished)

    def _fail(self, error: MediaError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
            self._lock.notify_all()
        if self._source is not None:
            self._source.abort()

    def _source_aborted(self) -> bool:
        return self._source is not None and self._source.aborted

    def _raise_if_failed(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise MediaError(str(error))
