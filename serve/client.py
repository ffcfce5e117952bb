"""`avsync stream FILE --url ws://…`: stream a media file to a server like a live client.

Also the library the tests and the demo use: `stream_media(url, audio, frames, options)` sends
16 kHz audio in 40 ms messages and one frame per 40 ms step, interleaved by capture time, in
real time (or as fast as the server takes them), and returns every message it received.
`stream_file` reads a file piece by piece (`avsync.media.decode.MediaReader`: upright, frames
scaled as they are decoded to at most `StreamOptions.max_short_side` lines), so memory stays
flat for any duration and resolution.

Limits: a frame is sent at a size the server's `ready` limits allow. A gray8 frame bigger than
`max_message_bytes` is scaled down (the session is opened again with the smaller size, as
`start` declares it); a JPEG frame over the limit is re-encoded at a lower quality. When the
server closes the connection before `done`, its close code and reason are reported (a
`Closed` at the end of the messages, printed by `avsync stream`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from avsync.serve.protocol import (
    HEADER_BYTES,
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Error,
    FaceMode,
    Final,
    Limits,
    Partial,
    Ready,
    ServerMessage,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    decode_server_message,
    encode,
    pack_media,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from avsync.errors import AvsyncError, MediaError
from avsync.timebase import SAMPLES_PER_STEP, STEP_MS

SEND_SHORT_SIDE: int = 480  # lines: what the server's face detection and mouth crops need
JPEG_QUALITIES: tuple[int, ...] = (90, 70, 50, 30)  # tried in turn until a frame fits
_LEAD_S: float = 2.0  # a stream this far ahead of the other is sent anyway (the other ended)


@dataclass(frozen=True)
class StreamOptions:
    fast: bool = False  # send as fast as the server takes media, not in real time
    tasks: tuple[Task, ...] = (Task.TRANSCRIPT,)
    faces: FaceMode = FaceMode.WHOLE_FRAME
    video_encoding: VideoEncoding = VideoEncoding.GRAY8  # gray8 or jpeg
    audio_encoding: AudioEncoding = AudioEncoding.PCM_S16LE
    steps_per_message: int = 1  # audio steps (40 ms each) per AUDIO message
    token: str | None = None
    timeout_s: float = 60.0  # for the whole exchange after the last media message
    extra_headers: dict[str, str] = field(default_factory=dict)
    max_short_side: int = SEND_SHORT_SIDE  # stream_file scales frames down to this


@dataclass(frozen=True)
class Closed:
    """The server closed the connection before `done`: its close code and reason (1006 and
    "" when the connection dropped without a close frame). Not a protocol message."""

    code: int
    reason: str

    def describe(self) -> str:
        from websockets.frames import CloseCode

        try:
            name = CloseCode(self.code).name.lower().replace("_", " ")
        except ValueError:
            name = "unknown"
        return f"{self.code} ({name})" + (f": {self.reason}" if self.reason else "")


Received = ServerMessage | Closed
OnMessage = Callable[[Received], None]
Messages = Callable[[tuple[int, int] | None, int], Iterator[tuple[int, bytes]]]


async def stream_media(url: str, audio: np.ndarray | None, frames: np.ndarray | None,
                       options: StreamOptions = StreamOptions(),
                       on_message: OnMessage | None = None) -> list[Received]:
    """Stream one clip and return every server message, in order (ending with done or error,
    or a `Closed` when the server closed the connection first).

    audio: (S,) float32 in [-1, 1] @ 16 kHz or None; frames: (T, H, W) uint8 gray @ 25 fps
    or None (scaled down when the server's limits call for it).
    """
    size = None if frames is None else (int(frames.shape[2]), int(frames.shape[1]))
    return await _stream(url, audio is not None, size,
                         lambda send, base_us: iter(media_messages(audio, frames, options,
                                                                   base_us, send)),
                         options, on_message)


async def _stream(url: str, has_audio: bool, size: tuple[int, int] | None,
                  messages: Messages, options: StreamOptions,
                  on_message: OnMessage | None) -> list[Received]:
    """Open a session for frames of `size` (opened again once, smaller, when `ready`'s
    limits do not allow that size), send `messages(size, base_us)`, collect the replies."""
    headers = dict(options.extra_headers)
    if options.token:
        headers["Authorization"] = f"Bearer {options.token}"
    received: list[Received] = []
    for attempt in range(2):
        async with connect(url, additional_headers=headers, compression=None,
                           max_size=None) as ws:
            await ws.send(encode(_start_message(has_audio, size, options)))
            try:
                first = decode_server_message(await ws.recv())
            except ConnectionClosed as closed:
                _note(_closed(closed), received, on_message)
                return received
            if isinstance(first, Ready) and attempt == 0:
                fitted = fitting_size(size, first.limits, options.video_encoding)
                if fitted != size:
                    await ws.close(1000, "reopening with frames the limits allow")
                    size = fitted
                    continue
            _note(first, received, on_message)
            if not isinstance(first, Ready):
                return received
            limit = first.limits.max_message_bytes
            receiver = asyncio.create_task(_receive(ws, received, on_message))
            await _send_media(ws, messages(size, int(time.time() * 1e6)), options, limit)
            with contextlib.suppress(ConnectionClosed):  # the server may have ended it (a limit)
                await ws.send(encode(End()))
            try:
                await asyncio.wait_for(receiver, options.timeout_s)
            except TimeoutError:
                receiver.cancel()
            return received
    return received


def fitting_size(size: tuple[int, int] | None, limits: Limits, encoding: VideoEncoding
                 ) -> tuple[int, int] | None:
    """The frame size (width, height) to declare: `size`, or for gray8 scaled down so one
    frame message fits `limits.max_message_bytes` (JPEG frames are fitted by quality)."""
    from avsync.media.placement import fit_size

    if size is None or encoding is not VideoEncoding.GRAY8:
        return size
    return fit_size(*size, pixels=limits.max_message_bytes - HEADER_BYTES)


def _start_message(has_audio: bool, size: tuple[int, int] | None,
                   options: StreamOptions) -> Start:
    audio_spec = AudioSpec(options.audio_encoding, 16_000, 1) if has_audio else None
    video_spec = None if size is None else VideoSpec(options.video_encoding, size[0], size[1],
                                                     25.0, options.faces)
    return Start(audio=audio_spec, video=video_spec, tasks=options.tasks)


def _closed(error: ConnectionClosed) -> Closed:
    close = error.rcvd
    return Closed(1006, "") if close is None else Closed(int(close.code), close.reason)


def _note(message: Received, received: list[Received], on_message: OnMessage | None) -> None:
    received.append(message)
    if on_message is not None:
        on_message(message)


async def _receive(ws, received: list[Received], on_message: OnMessage | None) -> None:
    try:
        async for text in ws:
            message = decode_server_message(text)
            _note(message, received, on_message)
            if isinstance(message, Done):
                return
    except ConnectionClosed as closed:  # after a fatal error, with or without done
        _note(_closed(closed), received, on_message)
        return
    if ws.close_code is not None:  # closed cleanly before done
        _note(Closed(int(ws.close_code), ws.close_reason or ""), received, on_message)


def media_messages(audio: np.ndarray | None, frames: np.ndarray | None,
                   options: StreamOptions, base_us: int = 0,
                   size: tuple[int, int] | None = None) -> list[tuple[int, bytes]]:
    """[(capture time µs, binary message)] for a clip, in capture-time order; frames scaled
    to `size` (width, height) when given."""
    out: list[tuple[int, bytes]] = []
    if audio is not None:
        block = SAMPLES_PER_STEP * options.steps_per_message
        for seq, start in enumerate(range(0, len(audio), block)):
            t_us = base_us + start * 1_000_000 // 16_000
            out.append((t_us, pack_media(BinaryKind.AUDIO, seq, t_us,
                                         pcm_payload(audio[start:start + block], options))))
    if frames is not None:
        for seq, frame in enumerate(frames):
            t_us = base_us + seq * STEP_MS * 1000
            out.append((t_us, pack_media(BinaryKind.VIDEO, seq, t_us,
                                         _frame(_resized(frame, size), options))))
    out.sort(key=lambda item: item[0])
    return out


def pcm_payload(audio: np.ndarray, options: StreamOptions) -> bytes:
    """(S,) float32 in [-1, 1] -> an AUDIO payload in the options' encoding (s16le: x 32767)."""
    if options.audio_encoding is AudioEncoding.PCM_F32LE:
        return audio.astype("<f4").tobytes()
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _resized(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    from avsync.media.opencv import cv2_module

    cv2 = cv2_module()
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _frame(frame: np.ndarray, options: StreamOptions, quality: int = JPEG_QUALITIES[0]
           ) -> bytes:
    if options.video_encoding is VideoEncoding.JPEG:
        from avsync.media.opencv import cv2_module

        cv2 = cv2_module()
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "cv2.imencode failed on a uint8 frame"
        return data.tobytes()
    return np.ascontiguousarray(frame, np.uint8).tobytes()


async def _send_media(ws, messages: Iterator[tuple[int, bytes]], options: StreamOptions,
                      limit: int) -> None:
    """Send (capture time µs, message) pairs, paced by capture time unless `fast`."""
    began, base_us = time.monotonic(), None
    for t_us, message in messages:
        base_us = t_us if base_us is None else base_us
        if not options.fast:
            delay = began + (t_us - base_us) / 1e6 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        try:
            await ws.send(_within(message, limit, options))
        except ConnectionClosed:
            return


def _within(message: bytes, limit: int, options: StreamOptions) -> bytes:
    """A JPEG frame message over `limit` re-encoded at lower qualities until it fits."""
    if len(message) <= limit or options.video_encoding is not VideoEncoding.JPEG \
            or message[3] != BinaryKind.VIDEO:
        return message
    from avsync.media.jpeg import decode_jpeg

    image = decode_jpeg(message[HEADER_BYTES:])
    for quality in JPEG_QUALITIES[1:]:
        smaller = message[:HEADER_BYTES] + _frame(image, options, quality)
        if len(smaller) <= limit:
            return smaller
    return message  # the server refuses it and says so


def file_messages(path: str | Path, size: tuple[int, int] | None, audio: bool,
                  options: StreamOptions, base_us: int) -> Iterator[tuple[int, bytes]]:
    """A file's media messages in capture-time order, read piece by piece: frames decoded
    straight to `size` (None: no video), audio in blocks of options.steps_per_message."""
    from avsync.media.decode import MediaReader
    from avsync.media.placement import FrameFormat

    block = SAMPLES_PER_STEP * options.steps_per_message
    sound: deque[tuple[int, bytes]] = deque()
    video: deque[tuple[int, bytes]] = deque()
    pending, sent, seq = np.zeros(0, np.float32), 0, 0
    with MediaReader(path, video=size is not None, audio=audio,
                     frames=FrameFormat(size=size)) as reader:
        for piece in reader.pieces():
            for image in piece.frames:
                t_us = base_us + seq * STEP_MS * 1000
                video.append((t_us, pack_media(BinaryKind.VIDEO, seq, t_us,
                                               _frame(image, options))))
                seq += 1
            pending = np.concatenate([pending, piece.audio])
            while len(pending) >= block:
                sound.append(_audio_message(pending[:block], sent, block, options, base_us))
                pending, sent = pending[block:], sent + block
            yield from _interleaved(sound, video, reader.has_audio and reader.has_video)
    if len(pending):
        sound.append(_audio_message(pending, sent, block, options, base_us))
    yield from _interleaved(sound, video, False)


def _audio_message(samples: np.ndarray, sent: int, block: int, options: StreamOptions,
                   base_us: int) -> tuple[int, bytes]:
    t_us = base_us + sent * 1_000_000 // 16_000
    return t_us, pack_media(BinaryKind.AUDIO, sent // block, t_us, pcm_payload(samples, options))


def _interleaved(a: deque, b: deque, both: bool) -> Iterator[tuple[int, bytes]]:
    """Pop messages in capture-time order. While `both` streams are still coming, one stream's
    messages wait for the other's, unless they span more than _LEAD_S (the other ended)."""
    while a or b:
        if a and b:
            yield (a if a[0][0] <= b[0][0] else b).popleft()
            continue
        waiting = a or b
        if both and waiting[-1][0] - waiting[0][0] <= _LEAD_S * 1e6:
            return
        yield waiting.popleft()


async def stream_file(path: str | Path, url: str, options: StreamOptions = StreamOptions(),
                      on_message: OnMessage | None = None, video: bool = True,
                      audio: bool = True) -> list[Received]:
    """Read `path` piece by piece (frames upright, scaled to at most
    `options.max_short_side` lines) and stream it (see stream_media)."""
    from avsync.media.decode import probe_media
    from avsync.media.placement import fit_size

    info = probe_media(path)
    if not ((video and info.has_video) or (audio and info.has_audio)):
        raise MediaError(f"{path}: nothing to send: the file has "
                         f"{'audio' if info.has_audio else 'no audio'} and "
                         f"{'video' if info.has_video else 'no video'}")
    size = fit_size(info.width, info.height, short_side=options.max_short_side) \
        if video and info.has_video else None
    send_audio = audio and info.has_audio
    return await _stream(url, send_audio, size,
                         lambda send, base_us: file_messages(path, send, send_audio, options,
                                                             base_us),
                         options, on_message)


class LivePrinter:
    """Prints partials on one overwritten line and finals as they arrive (or JSON lines);
    errors and a close before `done` go to stderr."""

    def __init__(self, as_json: bool, out=None) -> None:
        self.as_json, self.out, self._width = as_json, out or sys.stdout, 0

    def __call__(self, message: Received) -> None:
        if isinstance(message, Closed):
            print(f"\nthe server closed the connection: {message.describe()}",
                  file=sys.stderr, flush=True)
        elif self.as_json:
            print(encode(message), file=self.out, flush=True)
        elif isinstance(message, Partial):
            line = f"… {message.text}"
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.out.flush()
        elif isinstance(message, Final):
            self.out.write("\r" + " " * self._width + "\r")
            who = "" if message.face is None else f" [face {message.face}]"
            print(f"[{message.start_ms / 1000:7.2f}s]{who} {message.text}", file=self.out,
                  flush=True)
            self._width = 0
        elif isinstance(message, Error):
            print(f"\nerror {message.code}: {message.message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avsync stream",
        description="Stream a media file to an avsync server as a live client would (audio in "
                    "40 ms messages, frames at 25 fps) and print partial and final transcripts.",
        epilog="examples:\n"
               "  avsync stream clip.mp4 --url ws://127.0.0.1:8765/v1/stream\n"
               "  avsync stream clip.mp4 --url ws://host:8765/v1/stream --fast --json\n"
               "  avsync stream talk.mp4 --url ws://host:8765/v1/stream --faces detect "
               "--tasks transcript speakers sync",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="audio or video file PyAV can read")
    parser.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream")
    parser.add_argument("--fast", action="store_true",
                        help="send as fast as the server takes media instead of in real time")
    parser.add_argument("--faces", choices=[m.value for m in FaceMode if
                                            m is not FaceMode.CLIENT_BOXES],
                        default=FaceMode.WHOLE_FRAME.value)
    parser.add_argument("--tasks", nargs="+", choices=[t.value for t in Task],
                        default=[Task.TRANSCRIPT.value])
    parser.add_argument("--video", choices=["gray8", "jpeg", "none"], default="gray8",
                        help="how frames travel; none sends audio only")
    parser.add_argument("--audio-only", action="store_true", help="same as --video none")
    parser.add_argument("--video-only", action="store_true", help="send no audio")
    parser.add_argument("--token", help="auth token if the server requires one")
    parser.add_argument("--json", action="store_true", help="print every message as JSON")
    args = parser.parse_args(argv)
    send_video = not args.audio_only and args.video != "none"
    options = StreamOptions(
        fast=args.fast, tasks=tuple(Task(t) for t in args.tasks), faces=FaceMode(args.faces),
        video_encoding=VideoEncoding(args.video if send_video else "gray8"), token=args.token)
    try:
        messages = asyncio.run(stream_file(args.file, args.url, options,
                                           LivePrinter(args.json), video=send_video,
                                           audio=not args.video_only))
    except (OSError, ConnectionClosed) as error:  # refused, or closed during the handshake
        raise AvsyncError(f"cannot stream to {args.url}: {error}") from error
    return 0 if messages and isinstance(messages[-1], Done) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
