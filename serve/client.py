"""`avsync stream FILE --url ws://…`: stream a media file to a server like a live client.

Also the library the tests and the demo use: `stream_media(url, audio, frames, options)` sends
16 kHz audio in 40 ms messages and one frame per 40 ms step, interleaved by capture time, in
real time (or as fast as the server takes them), and returns every message it received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from avsync.timebase import SAMPLES_PER_STEP, STEP_MS
from serve.protocol import (
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Error,
    FaceMode,
    Final,
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


OnMessage = Callable[[ServerMessage], None]


async def stream_media(url: str, audio: np.ndarray | None, frames: np.ndarray | None,
                       options: StreamOptions = StreamOptions(),
                       on_message: OnMessage | None = None) -> list[ServerMessage]:
    """Stream one clip and return every server message, in order (ending with done or error).

    audio: (S,) float32 in [-1, 1] @ 16 kHz or None; frames: (T, H, W) uint8 gray @ 25 fps
    or None. Raises websockets' ConnectionClosed only if the server closes before `ready`.
    """
    headers = dict(options.extra_headers)
    if options.token:
        headers["Authorization"] = f"Bearer {options.token}"
    async with connect(url, additional_headers=headers, compression=None,
                       max_size=None) as ws:
        await ws.send(encode(_start_message(audio, frames, options)))
        received: list[ServerMessage] = []
        first = decode_server_message(await ws.recv())
        _note(first, received, on_message)
        if not isinstance(first, Ready):
            return received
        receiver = asyncio.create_task(_receive(ws, received, on_message))
        await _send_media(ws, audio, frames, options)
        with contextlib.suppress(ConnectionClosed):  # the server may have ended it (a limit)
            await ws.send(encode(End()))
        try:
            await asyncio.wait_for(receiver, options.timeout_s)
        except TimeoutError:
            receiver.cancel()
        return received


def _start_message(audio: np.ndarray | None, frames: np.ndarray | None,
                   options: StreamOptions) -> Start:
    audio_spec = None if audio is None else AudioSpec(options.audio_encoding, 16_000, 1)
    video_spec = None if frames is None else VideoSpec(
        options.video_encoding, int(frames.shape[2]), int(frames.shape[1]), 25.0, options.faces)
    return Start(audio=audio_spec, video=video_spec, tasks=options.tasks)


def _note(message: ServerMessage, received: list[ServerMessage],
          on_message: OnMessage | None) -> None:
    received.append(message)
    if on_message is not None:
        on_message(message)


async def _receive(ws, received: list[ServerMessage], on_message: OnMessage | None) -> None:
    try:
        async for text in ws:
            message = decode_server_message(text)
            _note(message, received, on_message)
            if isinstance(message, Done):
                return
    except ConnectionClosed:  # after a fatal error the server closes, with or without done
        return


def media_messages(audio: np.ndarray | None, frames: np.ndarray | None,
                   options: StreamOptions, base_us: int = 0) -> list[tuple[int, bytes]]:
    """[(capture time µs, binary message)] for a clip, in capture-time order."""
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
            out.append((t_us, pack_media(BinaryKind.VIDEO, seq, t_us, _frame(frame, options))))
    out.sort(key=lambda item: item[0])
    return out


def pcm_payload(audio: np.ndarray, options: StreamOptions) -> bytes:
    """(S,) float32 in [-1, 1] -> an AUDIO payload in the options' encoding (s16le: x 32767)."""
    if options.audio_encoding is AudioEncoding.PCM_F32LE:
        return audio.astype("<f4").tobytes()
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _frame(frame: np.ndarray, options: StreamOptions) -> bytes:
    if options.video_encoding is VideoEncoding.JPEG:
        from avsync.media.opencv import cv2_module

        cv2 = cv2_module()
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok, "cv2.imencode failed on a uint8 frame"
        return data.tobytes()
    return np.ascontiguousarray(frame, np.uint8).tobytes()


async def _send_media(ws, audio: np.ndarray | None, frames: np.ndarray | None,
                      options: StreamOptions) -> None:
    base_us = int(time.time() * 1e6)
    began = time.monotonic()
    for t_us, message in media_messages(audio, frames, options, base_us):
        if not options.fast:
            delay = began + (t_us - base_us) / 1e6 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        try:
            await ws.send(message)
        except ConnectionClosed:
            return


async def stream_file(path: str | Path, url: str, options: StreamOptions = StreamOptions(),
                      on_message: OnMessage | None = None, video: bool = True,
                      audio: bool = True) -> list[ServerMessage]:
    """Decode `path` with avsync.media and stream it (see stream_media)."""
    from avsync.media.decode import decode_media

    clip = decode_media(path, gray=True, video=video, audio=audio)
    return await stream_media(url, clip.audio if clip.has_audio and audio else None,
                              clip.frames if clip.has_video and video else None, options,
                              on_message)


class LivePrinter:
    """Prints partials on one overwritten line and finals as they arrive (or JSON lines)."""

    def __init__(self, as_json: bool, out=sys.stdout) -> None:
        self.as_json, self.out, self._width = as_json, out, 0

    def __call__(self, message: ServerMessage) -> None:
        if self.as_json:
            print(encode(message), file=self.out, flush=True)
        elif isinstance(message, Partial):
            line = f"… {message.text}"
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.out.flush()
        elif isinstance(message, Final):
            self.out.write("\r" + " " * self._width + "\r")
            print(f"[{message.start_ms / 1000:7.2f}s] {message.text}", file=self.out, flush=True)
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
    messages = asyncio.run(stream_file(args.file, args.url, options,
                                       LivePrinter(args.json), video=send_video,
                                       audio=not args.video_only))
    return 0 if messages and isinstance(messages[-1], Done) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
