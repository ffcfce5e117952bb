"""Every kind of bad input over a real connection to the real runtime: a clear error or a clean
close, the other sessions unharmed, and nothing already received lost (the finals are the
offline runtime's over the good input)."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from avsync.serve.client import StreamOptions, media_messages, stream_media
from avsync.serve.protocol import (
    MAX_ERROR_CHARS,
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    CloseCode,
    Done,
    End,
    Error,
    ErrorCode,
    Ready,
    Start,
    VideoEncoding,
    VideoSpec,
    encode,
    pack_media,
)
from serve_harness import (
    Offline,
    SlowEngine,
    SynthClip,
    as_s16,
    check_same_results,
    offline,
    open_session,
    receive_rest,
    run,
    running_server,
    sessions_after_closing,
    stream_url,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def start_av(clip: SynthClip) -> str:
    height, width = clip.frames.shape[1:]
    return encode(Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, width, height)))


@pytest.fixture(scope="module")
def reference(model, clip) -> Offline:
    return offline(model, as_s16(clip.audio), clip.frames)


@pytest.fixture(scope="module")
def audio_reference(model, clip) -> Offline:
    return offline(model, as_s16(clip.audio), None)


async def session_with(engine, clip: SynthClip, bad: list[str | bytes]):
    """Start, send the bad messages after the first half of the clip's media, finish the clip,
    end; returns every server message, the close code, and an audio-only session after it."""
    async with running_server(engine) as server:
        ws, ready = await open_session(stream_url(server), start_av(clip))
        assert isinstance(ready, Ready), ready
        media = [m for _, m in media_messages(clip.audio, clip.frames, StreamOptions())]
        half = len(media) // 2
        for message in media[:half] + bad + media[half:]:
            await ws.send(message)
        await ws.send(encode(End()))
        messages = await receive_rest(ws)
        healthy = await stream_media(stream_url(server), clip.audio, None,
                                     StreamOptions(fast=True))
        return messages, ws.close_code, healthy


def errors_of(messages) -> list[Error]:
    return [m for m in messages if isinstance(m, Error)]


@pytest.mark.parametrize("bad,code", [
    ("{this is not json", ErrorCode.MALFORMED_JSON),
    ('{"type": "rewind"}', ErrorCode.UNKNOWN_TYPE),
    (b"\x00\x01 not a header", ErrorCode.BAD_HEADER),
    (pack_media(BinaryKind.AUDIO, 10**6, 10**9, b"\x01\x02\x03"), ErrorCode.BAD_PAYLOAD_SIZE),
    (pack_media(BinaryKind.VIDEO, 10**6, 10**9, b"\x00" * 100), ErrorCode.BAD_PAYLOAD_SIZE),
    (pack_media(BinaryKind.AUDIO, 0, 0, b"\x00\x00"), ErrorCode.BAD_SEQUENCE),
    (pack_media(BinaryKind.CONTAINER, 0, 0, b"\x1a\x45\xdf\xa3"), ErrorCode.UNEXPECTED_KIND),
    # inputs that used to end in `internal` (1011 and a traceback)
    ("[" * 8000 + "]" * 8000, ErrorCode.MALFORMED_JSON),  # deeper than json.loads recurses
    ("[" * 100_000, ErrorCode.TEXT_TOO_LARGE),
    ('{"type": "' + "x" * 10_000 + '"}', ErrorCode.UNKNOWN_TYPE),  # echoed as an excerpt
    (pack_media(BinaryKind.VIDEO, 10**6, 365 * 86400 * 10**6, b"\0" * 160 * 160),
     ErrorCode.BAD_TIMESTAMP),  # a year ahead: no chunk for every 40 ms up to it
    (pack_media(BinaryKind.AUDIO, 10**6, 600 * 10**6, b"\0" * 2560),
     ErrorCode.BAD_TIMESTAMP),  # 10 minutes ahead: no silence to recognise
    (pack_media(BinaryKind.AUDIO, 10**6, -(2**62), b"\0" * 2560), ErrorCode.BAD_TIMESTAMP),
])
def test_non_fatal_bad_input_gets_an_error_and_loses_nothing(engine, clip, reference,
                                                            audio_reference, bad, code) -> None:
    messages, close_code, healthy = run(session_with(engine, clip, [bad]))
    errors = errors_of(messages)
    assert [(e.code, e.fatal) for e in errors] == [(code, False)]
    assert 20 < len(errors[0].message) <= MAX_ERROR_CHARS  # never an echo of the input
    check_same_results(messages, reference)
    assert isinstance(messages[-1], Done) and messages[-1].video_frames == clip.steps
    assert close_code == CloseCode.NORMAL
    check_same_results(healthy, audio_reference)


def test_nan_and_inf_samples_are_repaired_and_the_transcript_survives(model, engine,
                                                                      clip) -> None:
    audio = clip.audio.copy()
    audio[:100] = np.nan  # in the leading silence
    audio[200] = np.inf

    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), audio, None, StreamOptions(
                fast=True, audio_encoding=AudioEncoding.PCM_F32LE))

    messages = run(main())
    errors = errors_of(messages)
    assert [e.code for e in errors] == [ErrorCode.INVALID_SAMPLES] and not errors[0].fatal
    assert errors[0].kind == "audio" and errors[0].seq == 0 and "101 NaN/inf" in errors[0].message
    check_same_results(messages, offline(model, np.nan_to_num(audio, posinf=0.0), None))
    assert messages[-1].audio_ms == len(audio) * 1000 // 16000


@pytest.mark.parametrize("first,code", [
    (pack_media(BinaryKind.AUDIO, 0, 0, b"\x00\x00"), ErrorCode.NOT_STARTED),
    (encode(Start(audio=AudioSpec(sample_rate=12345))), ErrorCode.UNSUPPORTED_AUDIO),
    (encode(Start(audio=AudioSpec(sample_rate=16000), tasks=())).replace("[]", '["x"]'),
     ErrorCode.BAD_START),
    ('{"type": "start", "version": 7, "audio": null}', ErrorCode.UNSUPPORTED_VERSION),
    ('{"type": "start", "version": 1, "audio": {"encoding": "pcm_s16le", "sample_rate": '
     + "9" * 5000 + "}}", ErrorCode.BAD_START),  # int() of it would raise ValueError
    ('{"type": "start", "version": 1, "audio": {"encoding": "pcm_s16le", "sample_rate": 1e999, '
     '"channels": NaN}}', ErrorCode.BAD_START),
    (encode(End()), ErrorCode.NOT_STARTED),
])
def test_fatal_problems_before_streaming_get_an_error_then_close_1008(engine, first,
                                                                       code) -> None:
    async def main():
        async with running_server(engine) as server:
            async with connect(stream_url(server)) as ws:
                await ws.send(first)
                messages = await receive_rest(ws)
            return messages, ws.close_code

    messages, close_code = run(main())
    assert [(e.code, e.fatal) for e in errors_of(messages)] == [(code, True)]
    assert len(messages) == 1 and close_code == CloseCode.POLICY


def test_an_oversize_message_closes_with_1009_and_the_server_goes_on(engine, clip,
                                                                       audio_reference) -> None:
    async def main():
        async with running_server(engine, max_message_bytes=64 * 1024) as server:
            ws, ready = await open_session(stream_url(server), encode(Start(audio=AudioSpec())))
            await ws.send(pack_media(BinaryKind.AUDIO, 0, 0, b"\x00" * (64 * 1024)))
            await receive_rest(ws)
            after = await stream_media(stream_url(server), clip.audio, None,
                                       StreamOptions(fast=True))
            return ws.close_code, after, await sessions_after_closing(server)

    close_code, after, active = run(main())
    assert close_code == CloseCode.TOO_BIG and active == 0
    check_same_results(after, audio_reference)


def test_a_client_that_vanishes_mid_stream_frees_its_session(engine, clip,
                                                             reference) -> None:
    async def main():
        async with running_server(engine) as server:
            ws, _ = await open_session(stream_url(server), start_av(clip))
            media = [m for _, m in media_messages(clip.audio, clip.frames, StreamOptions())]
            for message in media[:20]:
                await ws.send(message)
            ws.transport.abort()  # no close frame: the TCP connection just dies
            others = await stream_media(stream_url(server), clip.audio, clip.frames,
                                        StreamOptions(fast=True))
            open_runners = await sessions_after_closing(server)
            return others, open_runners, server.metrics.errors.value(code="internal")

    others, open_runners, internal = run(main())
    check_same_results(others, reference)
    assert open_runners == 0 and internal == 0


def test_a_client_that_stops_reading_is_closed_and_others_are_served(engine, clip,
                                                                     audio_reference) -> None:
    """A client that stops reading soon stalls its own uploads too (its TCP receive buffer
    fills and the kernel stops taking the ACK-carrying segments), so the server sees either a
    full outbox (1013) or silence (idle timeout): either way a clean, bounded close."""
    audio, frames = np.tile(clip.audio, 4), np.tile(clip.frames, (4, 1, 1))

    async def main():
        async with running_server(engine, outbox_bytes=4096, write_limit_bytes=1024,
                                  idle_timeout_s=1.0, close_timeout_s=0.5) as server:
            ws = await connect(stream_url(server), max_queue=1, compression=None)
            ws.transport.pause_reading()  # this client never reads again
            await ws.send(start_av(clip))
            for _, message in media_messages(audio, frames, StreamOptions()):
                await ws.send(message)
            others = await stream_media(stream_url(server), clip.audio, None,
                                        StreamOptions(fast=True))
            left = await sessions_after_closing(server, wait_s=15.0)
            ended = {code: server.metrics.errors.value(code=code)
                     for code in ("client_not_reading", "idle_timeout")}
            ws.transport.abort()
            return left, ended, others

    left, ended, others = run(main(), timeout=90)
    assert left == 0 and sum(ended.values()) == 1, ended
    check_same_results(others, audio_reference)


class FailingEngine(SlowEngine):
    """The real engine; the first stream opened fails to decode its 10th chunk."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.opened = 0

    def open_stream(self, tasks, audio: bool, video: bool):
        stream = super().open_stream(tasks, audio, video)
        self.opened += 1
        if self.opened == 1:
            decode, calls = stream.recognizer.decode, []

            def failing(result, *args, **kwargs):
                calls.append(result)
                if len(calls) == 10:
                    raise RuntimeError("decoding failed")
                return decode(result, *args, **kwargs)

            stream.recognizer.decode = failing
        return stream


def test_a_session_whose_decoding_fails_ends_alone(engine, clips, reference) -> None:
    """Its error is `internal` (close 1011); the session sharing its batches goes on."""
    failing = FailingEngine(engine)

    async def main():
        async with running_server(failing, batch_wait_ms=30.0) as server:
            first = await open_session(stream_url(server), start_av(clips[0]))
            healthy = asyncio.create_task(stream_media(stream_url(server), clips[0].audio,
                                                       clips[0].frames, StreamOptions()))
            ws, _ = first
            with contextlib.suppress(ConnectionClosed):  # closed by the server mid-way
                for _, message in media_messages(clips[1].audio, clips[1].frames,
                                                 StreamOptions()):
                    await ws.send(message)
                    await asyncio.sleep(0.02)
            return await receive_rest(ws), ws.close_code, await healthy

    broken, close_code, healthy = run(main())
    assert [(e.code, e.fatal) for e in errors_of(broken)] == [(ErrorCode.INTERNAL, True)]
    assert close_code == CloseCode.INTERNAL
    check_same_results(healthy, reference)
    assert max(failing.calls) > 1  # the two sessions shared batches
