"""Bounded work per byte, on the real server and runtime: inputs that once made the server
recognise minutes of silence, build a chunk for every 40 ms up to a year ahead, decode a
16000x16000 JPEG or crop gigantic face boxes, for a few bytes each.

The figure each test bounds is CPU seconds (this whole process: server, runtime and client
threads) per byte the server received, with the same figure for an honest session beside it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from avsync.serve.client import StreamOptions, media_messages
from avsync.serve.protocol import (
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    encode,
    pack_face_boxes,
    pack_media,
)
from serve_harness import open_session, receive_rest, run, running_server, stream_url

SILENCE_STEP = b"\0" * 1280  # 40 ms of pcm_s16le at 16 kHz


async def measured(server, start: Start, messages: list[bytes], end: bool = True):
    """Send `messages` after `start` as fast as taken, then `end`; every reply, the CPU
    seconds the process spent, and the bytes the server received."""
    began_cpu, began_in = time.process_time(), server.metrics.bytes.value(direction="in")
    ws, ready = await open_session(stream_url(server), encode(start))
    for message in messages:
        await ws.send(message)
    if end:
        await ws.send(encode(End()))
    replies = [ready, *await receive_rest(ws)]
    received = server.metrics.bytes.value(direction="in") - began_in
    return replies, time.process_time() - began_cpu, received


def codes(replies) -> list[ErrorCode]:
    return [m.code for m in replies if isinstance(m, Error)]


@pytest.mark.parametrize("name,late", [
    ("audio 10 minutes ahead", pack_media(BinaryKind.AUDIO, 1, 600 * 10**6, b"\0" * 2560)),
    ("frame a year ahead", pack_media(BinaryKind.VIDEO, 1, 365 * 86400 * 10**6, b"\0" * 64)),
    ("audio years before the start", pack_media(BinaryKind.AUDIO, 1, -(10**15), b"\0" * 2560)),
])
def test_timestamps_far_from_the_stream_are_refused_not_filled(engine, name, late) -> None:
    start = Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, 8, 8))
    first = [pack_media(BinaryKind.AUDIO, 0, 0, SILENCE_STEP),
             pack_media(BinaryKind.VIDEO, 0, 0, b"\0" * 64)]

    async def main():
        async with running_server(engine) as server:
            return await measured(server, start, [*first, late])

    replies, cpu_s, received = run(main())
    print(f"figure: {name}: {cpu_s:.3f} CPU s for {received} bytes "
          f"({cpu_s / received * 1e6:.1f} µs per byte)")
    assert codes(replies) == [ErrorCode.BAD_TIMESTAMP]
    done = replies[-1]
    assert isinstance(done, Done) and done.audio_ms <= 80 and done.video_frames == 1
    # was: 12 s of CPU for the 10-minute jump, 4.5 GB and counting for the year
    assert cpu_s < 1.0 and cpu_s / received < 200e-6, (cpu_s, received)


def test_timestamp_gaps_may_not_outrun_real_time(engine) -> None:
    """One sample per message, each stamped 1.9 s after the last (under max_gap_s = 2 s),
    sent as fast as taken: filled, each would be 1.9 s of silence to recognise. The gaps
    accepted add up to at most max_gap_s plus the session's wall-clock time."""
    jumps = [pack_media(BinaryKind.AUDIO, i, i * 1_900_000, b"\0\0") for i in range(300)]

    async def main():
        async with running_server(engine) as server:
            began = time.monotonic()
            out = await measured(server, Start(audio=AudioSpec()), jumps)
            return (*out, time.monotonic() - began, server.config.max_gap_s)

    replies, cpu_s, received, wall_s, max_gap_s = run(main())
    done = replies[-1]
    print(f"figure: gap spam: {done.audio_ms} ms of audio accepted in {wall_s:.2f} s, "
          f"{cpu_s:.3f} CPU s for {received} bytes ({cpu_s / received * 1e6:.1f} µs per byte)")
    assert isinstance(done, Done)
    assert set(codes(replies)) == {ErrorCode.BAD_TIMESTAMP}
    assert done.audio_ms <= (wall_s + max_gap_s) * 1000 + 40, (done.audio_ms, wall_s)
    assert cpu_s < 2.0 and cpu_s / received < 500e-6, (cpu_s, received)  # was ~9 min of audio


def jpeg_declaring(width: int, height: int, like: np.ndarray) -> bytes:
    """A real JPEG of `like` whose frame header (SOF0) claims width x height."""
    from avsync.media.opencv import cv2_module

    ok, data = cv2_module().imencode(".jpg", like)
    assert ok
    data = bytearray(data.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("declared", [(160, 160), None])
def test_a_jpeg_declaring_16000x16000_is_refused_from_its_header(engine, clip,
                                                                  declared) -> None:
    bomb = jpeg_declaring(16000, 16000, clip.frames[0])
    spec = VideoSpec(VideoEncoding.JPEG, *(declared or (None, None)))
    frames = [pack_media(BinaryKind.VIDEO, i, i * 40_000, bomb) for i in range(25)]

    async def main():
        async with running_server(engine) as server:
            return await measured(server, Start(video=spec), frames)

    replies, cpu_s, received = run(main())
    print(f"figure: 25 JPEG bombs ({declared=}): {cpu_s:.3f} CPU s for {received} bytes "
          f"({cpu_s / received * 1e6:.1f} µs per byte)")
    assert codes(replies) == [ErrorCode.UNDECODABLE_FRAME] * 25
    assert "16000x16000" in [m for m in replies if isinstance(m, Error)][0].message
    # was: ~1 s of one shared media thread per frame (a neighbour's p95 went to 3 s)
    assert cpu_s < 1.0 and cpu_s / received < 100e-6, (cpu_s, received)


def test_huge_client_face_boxes_cost_no_more_than_sane_ones(engine, clip) -> None:
    height, width = clip.frames.shape[1:]
    start = Start(audio=AudioSpec(), tasks=tuple(Task), video=VideoSpec(
        VideoEncoding.GRAY8, width, height, faces=FaceMode.CLIENT_BOXES))
    media = [m for _, m in media_messages(clip.audio, clip.frames, StreamOptions())]
    sane = {0: (0.0, 0.0, float(width), float(height))}
    huge = {0: (-5e37, -5e37, 1e38, 1e38), 1: (0.0, 0.0, 1e6, 1e6),
            2: (-1e6, 10.0, 2e6, 50.0), 3: (1e9, 1e9, 10.0, 10.0)}  # the last misses the frame

    async def main():
        async with running_server(engine) as server:
            out = {}
            for name, boxes in (("sane", sane), ("huge", huge)):
                boxes_message = pack_media(BinaryKind.FACE_BOXES, 0, 0, pack_face_boxes(boxes))
                out[name] = await measured(server, start, [boxes_message, *media])
            return out

    out = run(main())
    for name in ("sane", "huge"):
        replies = out[name][0]
        assert not codes(replies) and isinstance(replies[-1], Done), (name, codes(replies))
    speakers = [m for m in out["huge"][0] if type(m).__name__ == "Speakers"]
    assert speakers and all(t.id != 3 and max(t.box[2:]) <= width for s in speakers
                            for t in s.tracks)  # clipped to the frame; the miss is absent
    sane_cpu, huge_cpu = out["sane"][1], out["huge"][1]
    print(f"figure: clip with 1 sane box {sane_cpu:.3f} CPU s, with 4 huge boxes "
          f"{huge_cpu:.3f} CPU s ({out['huge'][2]} bytes)")
    assert huge_cpu < 3 * sane_cpu + 0.5, (sane_cpu, huge_cpu)  # 3 faces more, each bounded
