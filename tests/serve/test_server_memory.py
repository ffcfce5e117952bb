"""Memory held for clients, on the real server: bounded in bytes whatever they send or fail to
read, and freed when their session closes.

Figures: bytes the server holds for a client (its outbox plus the socket's send buffer) per
byte the client sent; objects of a closed session alive without a garbage collection; RSS
before and after hundreds of churned sessions.
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from contextlib import suppress

import avsync.serve.server
import pytest
from avsync.serve.client import StreamOptions, media_messages, stream_media
from avsync.serve.protocol import (
    MAX_ERROR_CHARS,
    AudioSpec,
    BinaryKind,
    End,
    ErrorCode,
    Start,
    encode,
    pack_media,
)
from serve_harness import open_session, receive_rest, run, running_server, stream_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

START = encode(Start(audio=AudioSpec()))


def held_bytes(server) -> int:
    """What the server holds in memory to send: outboxes plus the sockets' send buffers."""
    return sum(r._outbox_bytes + r.ws.transport.get_write_buffer_size() for r in server.runners)


async def peak_while(server, work) -> int:
    """The largest held_bytes(server) seen (every 5 ms) while `work` runs."""
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, held_bytes(server))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        await work
    finally:
        watcher.cancel()
    return max(peak, held_bytes(server))


@pytest.mark.parametrize("bad", [
    '{"type": "start", "version": 1, "audio": {"encoding": "' + "x" * 15_000 + '"}}',
    '{"type": "start", "version": 1, "audio": {"encoding": "pcm_s16le", "sample_rate": '
    '16000}, "' + "y" * 15_000 + '": 1}',
    "z" * 500_000,
])
def test_errors_echo_an_excerpt_not_the_input(engine, bad) -> None:
    async def main():
        async with running_server(engine) as server, connect(stream_url(server)) as ws:
            await ws.send(bad)
            return await ws.recv()

    reply = run(main())
    print(f"figure: a {len(reply)}-byte error for {len(bad)} bytes of input")
    assert '"type":"error"' in reply and len(reply) <= MAX_ERROR_CHARS + 200  # was 3x the input
    assert len(reply) / len(bad) < 0.05


def test_a_client_that_never_reads_its_errors_costs_at_most_the_outbox(engine) -> None:
    """Bad messages, each answered by an error, from a client that reads nothing: what the
    server holds stays under outbox_bytes + the send buffer (was: 512 errors of any size)."""
    junk = "{" + "x" * 8000  # malformed JSON; its error is ~200 bytes

    async def main():
        async with running_server(engine, outbox_bytes=64 * 1024, idle_timeout_s=1.0,
                                  close_timeout_s=0.5) as server:
            ws = await connect(stream_url(server), max_queue=1, compression=None)
            ws.transport.pause_reading()  # never reads again

            async def flood() -> int:
                sent = 0
                with suppress(ConnectionClosed):
                    await ws.send(START)
                    for _ in range(3000):
                        await asyncio.wait_for(ws.send(junk), 5)
                        sent += len(junk)
                return sent

            task = asyncio.create_task(flood())
            peak = await peak_while(server, asyncio.wait_for(asyncio.shield(task), 20))
            ws.transport.abort()
            return peak, await task, server.config

    peak, sent, config = run(main(), timeout=60)
    print(f"figure: {peak} bytes held at most for a non-reading client that sent {sent}")
    # ~300 KB: what one read of the socket can bring back before reading pauses
    assert peak <= config.outbox_bytes + config.write_limit_bytes + 300_000, (peak, sent)


def test_pings_whose_pongs_are_never_read_stop_the_reading(engine) -> None:
    """A client floods pings and reads nothing: the pongs back up in the server's send buffer
    only until reading pauses (was: +181 MB in 6 s)."""
    async def main():
        async with running_server(engine) as server:
            ws, _ = await open_session(stream_url(server), START)
            ws.transport.pause_reading()

            async def flood() -> int:
                sent = 0
                for i in range(40_000):  # 5 MB of pings
                    ws.protocol.send_ping(b"p" * 120)
                    ws.send_data()
                    sent += 126
                    if i % 200 == 0:
                        await asyncio.sleep(0)
                await asyncio.sleep(0.5)  # let the server read what it will
                return sent

            task = asyncio.create_task(flood())
            peak = await peak_while(server, task)
            ws.transport.abort()
            return peak, task.result(), server.config

    peak, sent, config = run(main())
    print(f"figure: {peak} bytes of pongs held at most for {sent} bytes of pings")
    assert peak <= config.write_limit_bytes + 300_000, (peak, sent)
    assert peak / sent < 0.1


def test_a_fast_client_of_big_messages_waits_on_the_inbox_bytes(engine) -> None:
    """256 KiB audio messages as fast as the socket takes them, faster than the runtime
    recognises them: what waits in the session's inbox stays under inbox_bytes plus one
    message (was: bounded by count only, 256 messages of up to 1 MiB)."""
    payload = b"\0" * ((256 << 10) - 16)
    step_us = len(payload) // 2 * 1_000_000 // 16_000
    messages = [pack_media(BinaryKind.AUDIO, i, i * step_us, payload) for i in range(40)]

    async def main():
        async with running_server(engine, max_message_bytes=256 << 10,
                                  inbox_bytes=1 << 20) as server:
            ws, _ = await open_session(stream_url(server), START)
            peak = 0

            async def send() -> None:
                with suppress(ConnectionClosed):
                    for message in messages:
                        await ws.send(message)

            sender = asyncio.create_task(send())
            for _ in range(300):  # 3 s
                peak = max([peak, *(r.inbox.bytes for r in server.runners)])
                await asyncio.sleep(0.01)
            sender.cancel()
            ws.transport.abort()
            return peak, server.config

    peak, config = run(main())
    print(f"figure: at most {peak} bytes waited in the inbox while 10 MiB were sent")
    assert 0 < peak <= config.inbox_bytes + config.max_message_bytes


class Tracked:
    """Weak references to every session's runner, connection, media and engine stream."""

    def __init__(self, monkeypatch) -> None:
        self.refs: list[weakref.ref] = []
        init, open_ = avsync.serve.server.SessionRunner.__init__, avsync.serve.server.SessionRunner._open

        def tracked_init(runner, *args) -> None:
            init(runner, *args)
            self.refs += [weakref.ref(runner), weakref.ref(runner.ws)]

        def tracked_open(runner, action) -> None:
            open_(runner, action)
            self.refs += [weakref.ref(runner.media), weakref.ref(runner.stream)]

        monkeypatch.setattr(avsync.serve.server.SessionRunner, "__init__", tracked_init)
        monkeypatch.setattr(avsync.serve.server.SessionRunner, "_open", tracked_open)

    def alive(self) -> list[str]:
        return [type(obj).__name__ for ref in self.refs if (obj := ref()) is not None]


async def vanish(url: str, clip) -> None:
    ws, _ = await open_session(url, START)
    for _, message in media_messages(clip.audio, None, StreamOptions())[:20]:
        await ws.send(message)
    ws.transport.abort()


async def junk_then_end(url: str, clip) -> None:
    ws, _ = await open_session(url, START)
    for message in (b"junk", "{junk", pack_media(BinaryKind.AUDIO, 0, 0, b"\0\0"),
                    encode(End())):
        await ws.send(message)
    await receive_rest(ws)


async def never_starts(url: str, clip) -> None:
    async with connect(url) as ws:
        await ws.send(b"junk")
        await receive_rest(ws)


async def whole_clip(url: str, clip) -> None:
    await stream_media(url, clip.audio, clip.frames, StreamOptions(fast=True))


@pytest.mark.parametrize("client", [whole_clip, vanish, junk_then_end, never_starts])
def test_nothing_of_a_closed_session_outlives_it_without_a_gc(engine, clip, monkeypatch,
                                                               client) -> None:
    tracked = Tracked(monkeypatch)

    async def main():
        async with running_server(engine) as server:
            await whole_clip(stream_url(server), clip)  # warm up
            gc.collect()
            gc.disable()
            try:
                tracked.refs.clear()
                await client(stream_url(server), clip)
                for _ in range(100):
                    if not server.runners:
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.1)
                return tracked.alive(), len(tracked.refs)
            finally:
                gc.enable()

    alive, tracked_count = run(main())
    assert tracked_count >= 2 and alive == []  # was: kept until a GC (a reference cycle)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_rss_stays_flat_over_hundreds_of_churned_sessions(engine, clip) -> None:
    """Good, vanishing and junk sessions in turn; RSS after 100 (warm) and after 400 more."""
    kinds = [whole_clip, vanish, junk_then_end, never_starts]
    short = type(clip)(clip.audio[:8000], clip.frames[:12], clip.text)

    async def churn(url: str, count: int) -> None:
        for _ in range(count // len(kinds)):
            await asyncio.gather(*(kind(url, short) for kind in kinds))

    async def main():
        async with running_server(engine, start_timeout_s=0.2, max_sessions=8) as server:
            await churn(stream_url(server), 100)
            warm = rss_bytes()
            await churn(stream_url(server), 400)
            while server.runners:
                await asyncio.sleep(0.02)
            return warm, rss_bytes(), server.metrics.errors.value(code=ErrorCode.INTERNAL)

    warm, after, internal = run(main(), timeout=240)
    growth = after - warm
    print(f"figure: RSS {warm / 2**20:.1f} MiB after 100 sessions, {after / 2**20:.1f} MiB "
          f"after 400 more ({growth / 400 / 1024:.1f} KiB per session)")
    assert internal == 0
    assert growth < 8 * 2**20, growth  # was ~20 MB per 300 sessions
