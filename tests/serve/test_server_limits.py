"""Limits and HTTP answers: 503, 401, 403, /healthz, /metrics, /, timeouts and overload."""

from __future__ import annotations

import asyncio
import json

import pytest
from serve_harness import (
    final_texts,
    http_get,
    open_session,
    receive_rest,
    run,
    running_server,
    stream_url,
)
from tone_engine import ToneEngine, tone_clip
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from serve.client import StreamOptions, media_messages, stream_media
from serve.protocol import (
    AudioSpec,
    CloseCode,
    Done,
    Error,
    ErrorCode,
    Final,
    Ready,
    Start,
    encode,
)

CLIP = tone_clip(["limits hold"])
START = encode(Start(audio=AudioSpec()))


async def refused_status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, **kwargs):
            pass
    return refused.value.response.status_code


def test_sessions_beyond_the_limit_get_http_503_and_a_freed_slot_is_reused() -> None:
    async def main():
        async with running_server(max_sessions=1) as server:
            ws, ready = await open_session(stream_url(server), START)
            status = await refused_status(stream_url(server))
            await ws.close()
            for _ in range(100):
                if not server.runners:
                    break
                await asyncio.sleep(0.02)
            again = await stream_media(stream_url(server), CLIP.audio, None,
                                       StreamOptions(fast=True))
            return status, again, server.metrics.http_requests.value(status="503")

    status, again, counted = run(main())
    assert status == 503 and counted == 1
    assert final_texts(again) == ["limits hold"]


def test_token_auth_answers_401_without_the_right_token() -> None:
    async def main():
        async with running_server(token="s3cret") as server:
            missing = await refused_status(stream_url(server))
            wrong = await refused_status(stream_url(server),
                                         additional_headers={"Authorization": "Bearer nope"})
            header = await stream_media(stream_url(server), CLIP.audio, None,
                                        StreamOptions(fast=True, token="s3cret"))
            async with connect(stream_url(server, "?token=s3cret")) as ws:
                await ws.send(START)
                query_ready = await ws.recv()
            return missing, wrong, header, query_ready

    missing, wrong, header, query_ready = run(main())
    assert missing == wrong == 401
    assert final_texts(header) == ["limits hold"]
    assert json.loads(query_ready)["type"] == "ready"


def test_origins_outside_the_allowed_list_get_403() -> None:
    async def main():
        async with running_server(allowed_origins=("https://good.example",)) as server:
            bad = await refused_status(stream_url(server), origin="https://evil.example")
            none = await refused_status(stream_url(server))
            async with connect(stream_url(server), origin="https://good.example") as ws:
                await ws.send(START)
                ok = json.loads(await ws.recv())["type"]
            return bad, none, ok

    assert run(main()) == (403, 403, "ready")


def test_healthz_metrics_page_and_404() -> None:
    async def main():
        async with running_server() as server:
            await stream_media(stream_url(server), CLIP.audio, None, StreamOptions(fast=True))
            return (await http_get(server, "/healthz"), await http_get(server, "/metrics"),
                    await http_get(server, "/"), await http_get(server, "/nope"))

    health, metrics, page, missing = run(main())
    assert health[0] == 200 and health[1] == "application/json"
    body = json.loads(health[2])
    assert body["status"] == "ok" and body["model"] == "tone-test-engine"
    assert body["sessions"] == 0 and body["partial_latency_p95_ms"] > 0
    assert metrics[0] == 200 and metrics[1].startswith("text/plain; version=0.0.4")
    for name in ("avsync_sessions_active", "avsync_messages_total", "avsync_bytes_total",
                 "avsync_batch_size_bucket", "avsync_inference_seconds_count",
                 "avsync_partial_latency_seconds_bucket", "avsync_errors_total"):
        assert name in metrics[2]
    assert 'avsync_messages_total{direction="in",kind="binary"}' in metrics[2]
    assert page[0] == 200 and page[1].startswith("text/html") and "<html" in page[2].lower()
    assert missing[0] == 404 and "/v1/stream" in missing[2]


def test_an_idle_session_is_flushed_and_ended() -> None:
    async def main():
        async with running_server(idle_timeout_s=0.5) as server:
            ws, _ = await open_session(stream_url(server), START)
            for _, message in media_messages(CLIP.audio, None, StreamOptions()):
                await ws.send(message)  # then the client goes quiet without `end`
            return await receive_rest(ws), ws.close_code

    messages, close_code = run(main())
    errors = [m for m in messages if isinstance(m, Error)]
    assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.IDLE_TIMEOUT, True)]
    assert final_texts(messages) == ["limits hold"]  # what was received is not lost
    assert isinstance(messages[-1], Done) and messages[-1].reason == "idle_timeout"
    assert close_code == CloseCode.NORMAL


def test_a_session_past_its_length_limit_is_flushed_and_ended() -> None:
    async def main():
        async with running_server(max_session_s=0.6) as server:
            return await stream_media(stream_url(server), CLIP.audio, None, StreamOptions())

    messages = run(main())
    assert any(isinstance(m, Error) and m.code == ErrorCode.SESSION_TOO_LONG for m in messages)
    assert isinstance(messages[-1], Done) and messages[-1].reason == "session_too_long"
    assert messages[-1].audio_ms > 0


def test_a_server_slower_than_real_time_says_overloaded_and_closes_1013() -> None:
    slow = ToneEngine(chunk_steps=1, delay_s=0.08)  # 80 ms of compute per 40 ms of media
    long_clip = tone_clip(["slow " * 12])

    async def main():
        async with running_server(slow, max_lag_s=0.4) as server:
            ws, ready = await open_session(stream_url(server), START)
            assert isinstance(ready, Ready)
            sender = asyncio.create_task(send_real_time(ws, long_clip))
            messages = await receive_rest(ws)
            sender.cancel()
            healthy = await stream_media(stream_url(server), CLIP.audio[:1920], None,
                                         StreamOptions(fast=True))
            return messages, ws.close_code, healthy

    messages, close_code, healthy = run(main())
    errors = [m for m in messages if isinstance(m, Error)]
    assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.OVERLOADED, True)]
    assert close_code == CloseCode.TRY_AGAIN_LATER
    assert not any(isinstance(m, Done) for m in messages)
    assert isinstance(healthy[-1], Done)


async def send_real_time(ws, clip) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    for t_us, message in media_messages(clip.audio, None, StreamOptions(), base_us=0):
        await asyncio.sleep(max(0.0, began + t_us / 1e6 - loop.time()))
        await ws.send(message)


def test_fast_clients_are_throttled_not_refused() -> None:
    """A client sending 10x faster than real time fills the inbox: the reader waits for
    space (TCP pushes back), nothing is dropped, and the transcript is complete."""
    clip = tone_clip(["fast " * 20, "and furious"])

    async def main():
        async with running_server(ToneEngine(chunk_steps=1, delay_s=0.004),
                                  inbox_messages=8) as server:
            return await stream_media(stream_url(server), clip.audio, clip.frames(),
                                      StreamOptions(fast=True))

    messages = run(main())
    assert not any(isinstance(m, Error) for m in messages)
    assert [m.text for m in messages if isinstance(m, Final)] == \
        [" ".join(t.split()) for t in clip.texts]
