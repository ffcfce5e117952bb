"""`avsync stream`'s client on real files against a real server on a loopback port: a 1080p
file fits the server's message limit, the limits in `ready` are honoured, close reasons are
reported; files made here with PyAV."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from avsync.serve.client import Closed, LivePrinter, StreamOptions, main, stream_file, stream_media
from avsync.serve.protocol import Done, Ready, Speakers, Task
from media_files import gradient_frames, write_av
from serve_harness import run, running_server, stream_url


@pytest.fixture(scope="module")
def full_hd(tmp_path_factory: pytest.TempPathFactory, clip) -> Path:
    """0.6 s of 1920x1080 video (the face scaled into the middle) with the clip's speech."""
    import cv2

    faces = [cv2.resize(f, (1080, 1080), interpolation=cv2.INTER_LINEAR) for f in clip.frames[:15]]
    frames = np.full((15, 1080, 1920), 90, np.uint8)
    frames[:, :, 420:1500] = np.stack(faces)
    return write_av(tmp_path_factory.mktemp("hd") / "full-hd.mp4", frames=frames,
                    audio=clip.audio[None, :15 * 640])


def test_a_1080p_file_streams_within_the_message_limit(engine, full_hd: Path) -> None:
    options = StreamOptions(fast=True, tasks=(Task.TRANSCRIPT, Task.SPEAKERS))

    async def both():
        async with running_server(engine) as server:  # max_message_bytes: 1 MiB
            scaled = await stream_file(full_hd, stream_url(server), options)
            whole = await stream_file(full_hd, stream_url(server),  # 2 MB frames asked for
                                      StreamOptions(fast=True, max_short_side=4000))
            return scaled, whole

    scaled, whole = run(both())
    assert isinstance(scaled[-1], Done) and isinstance(whole[-1], Done)
    assert any(isinstance(m, Speakers) for m in scaled)  # the frames reached the server
    assert not [m for m in scaled + whole if isinstance(m, Closed)]


def test_the_limits_in_ready_decide_the_frame_size(engine, clip) -> None:
    """A server whose message limit is below a 160x160 frame: the client opens the session
    again with frames that fit (start declares the size), and the stream finishes."""
    seen: list = []

    async def small():
        async with running_server(engine, max_message_bytes=12_000) as server:
            return await stream_media(stream_url(server), clip.audio[:20 * 640],
                                      clip.frames[:20], StreamOptions(fast=True), seen.append)

    messages = run(small())
    ready = next(m for m in messages if isinstance(m, Ready))
    assert ready.limits.max_message_bytes == 12_000 and isinstance(messages[-1], Done)
    assert sum(isinstance(m, Ready) for m in seen) == 1  # the first session is not reported


def test_jpeg_frames_over_the_limit_are_sent_at_a_lower_quality(engine, clip) -> None:
    import cv2
    from avsync.serve.protocol import HEADER_BYTES, Error, VideoEncoding

    sizes = [[len(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])[1]) for f in
              clip.frames[:10]] for q in (90, 50)]
    limit = HEADER_BYTES + (min(sizes[0]) + max(sizes[1])) // 2  # q90 too big, q50 fits
    assert max(sizes[1]) < min(sizes[0])
    options = StreamOptions(fast=True, video_encoding=VideoEncoding.JPEG, steps_per_message=1)

    async def small():
        async with running_server(engine, max_message_bytes=limit) as server:
            return await stream_media(stream_url(server), None, clip.frames[:10], options)

    messages = run(small())
    assert isinstance(messages[-1], Done) and messages[-1].video_frames == 10
    assert not [m for m in messages if isinstance(m, Error | Closed)]


def test_a_close_before_done_is_reported(engine, clip, capsys) -> None:
    big_audio = StreamOptions(fast=True, steps_per_message=25)  # 32 kB audio messages

    async def closed():
        async with running_server(engine, max_message_bytes=20_000) as server:
            printer = LivePrinter(as_json=False, out=io.StringIO())
            return await stream_media(stream_url(server), clip.audio, None, big_audio, printer)

    messages = run(closed())
    assert messages[-1] == Closed(1009, messages[-1].reason)
    assert "the server closed the connection: 1009 (message too big)" in capsys.readouterr().err


def test_avsync_stream_prints_what_the_server_says(engine, tmp_path: Path, capsys) -> None:
    path = write_av(tmp_path / "short.mp4", frames=gradient_frames(10, 48, 64),
                    audio=np.zeros((1, 6400), np.float32))

    async def cli():
        async with running_server(engine) as server:
            import asyncio

            return await asyncio.to_thread(main, [str(path), "--url", stream_url(server),
                                                  "--fast", "--json"])

    assert run(cli()) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["type"] == "ready" and lines[-1]["type"] == "done"
