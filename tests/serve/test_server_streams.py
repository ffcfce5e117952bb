"""Whole sessions through a port-0 server with the real websockets client and the real runtime
(debug model): the server's results are the offline runtime's over the same input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import numpy as np
from avsync.serve.client import StreamOptions, stream_media
from avsync.serve.protocol import (
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Final,
    Partial,
    Ready,
    Speakers,
    Start,
    Sync,
    Task,
    encode,
    pack_media,
)
from serve_harness import (
    SlowEngine,
    as_s16,
    check_same_results,
    final_texts,
    offline,
    open_session,
    receive_rest,
    run,
    running_server,
    stream_url,
)

from avsync.media.resample import resample_audio

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "protocol"


def check_invariants(messages: list) -> None:
    """Schema-valid; one final per segment id in order; no partial after its final; every
    word once and in order; done last, once, counting the finals."""
    validators = {}
    for message in messages:
        obj = json.loads(encode(message))
        name = obj["type"]
        if name not in validators:
            validators[name] = jsonschema.Draft202012Validator(
                json.loads((SCHEMAS / f"{name}.schema.json").read_text()))
        validators[name].validate(obj)
    finals = [m for m in messages if isinstance(m, Final)]
    assert [f.segment for f in finals] == list(range(len(finals)))
    closed = set()
    for message in messages:
        if isinstance(message, Final):
            closed.add(message.segment)
        if isinstance(message, Partial):
            assert message.segment not in closed and message.segment == len(closed)
    starts = [(w.start_ms, w.end_ms, w.text) for f in finals for w in f.words]
    assert len(starts) == len(set(starts)) and starts == sorted(starts)
    assert all(a[1] <= b[0] for a, b in zip(starts, starts[1:], strict=False))
    assert isinstance(messages[-1], Done) and messages[-1].segments == len(finals)
    assert sum(isinstance(m, Done) for m in messages) == 1


def test_a_clip_streamed_in_real_time_gives_the_offline_runtimes_results(model, engine,
                                                                         clip) -> None:
    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), clip.audio, clip.frames,
                                      StreamOptions(tasks=tuple(Task)))

    messages = run(main())
    check_invariants(messages)
    assert isinstance(messages[0], Ready) and messages[0].model.name == model.card.model_name
    reference = offline(model, as_s16(clip.audio), clip.frames)
    assert len(reference.finals) >= 2  # several segments, so the invariants mean something
    check_same_results(messages, reference)
    assert messages[-1].audio_ms == len(clip.audio) * 1000 // 16000
    assert messages[-1].video_frames == clip.steps
    assert any(isinstance(m, Speakers) for m in messages)
    assert any(isinstance(m, Sync) for m in messages)


def test_partials_are_the_open_segments_hypothesis_and_grow_into_its_final(engine,
                                                                           clip) -> None:
    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), clip.audio, clip.frames,
                                      StreamOptions(fast=True))

    messages = run(main())
    check_invariants(messages)
    partials = [m for m in messages if isinstance(m, Partial)]
    assert partials and all(m.text for m in partials)
    assert all(a.text != b.text for a, b in zip(partials, partials[1:], strict=False)
               if a.segment == b.segment)  # a partial is sent only when it changes


def test_eight_sessions_at_once_each_get_their_own_transcript_in_shared_batches(
        model, engine, clips) -> None:
    counting = SlowEngine(engine)

    async def main():
        async with running_server(counting, batch_wait_ms=20.0) as server:
            return await asyncio.gather(*[
                stream_media(stream_url(server), c.audio, c.frames, StreamOptions())
                for c in clips])

    results = run(main())
    transcripts = []
    for c, messages in zip(clips, results, strict=True):
        check_invariants(messages)
        check_same_results(messages, offline(model, as_s16(c.audio), c.frames))
        transcripts.append(" ".join(final_texts(messages)))
    assert len(set(transcripts)) == len(clips)  # different clips, different results
    assert max(counting.calls) > 1, counting.calls  # chunks of several sessions ran together


def test_audio_only_video_only_and_resampled_float_audio(model, engine, clip) -> None:
    audio_44k = resample_audio(clip.audio, 16000, 44100)

    async def main():
        async with running_server(engine) as server:
            url = stream_url(server)
            audio_only = await stream_media(url, clip.audio, None, StreamOptions(fast=True))
            video_only = await stream_media(url, None, clip.frames, StreamOptions(fast=True))
            resampled = await stream_float_audio(url, audio_44k, 44100)
            return audio_only, video_only, resampled

    audio_only, video_only, resampled = run(main())
    for messages in (audio_only, video_only, resampled):
        check_invariants(messages)
    check_same_results(audio_only, offline(model, as_s16(clip.audio), None))
    check_same_results(video_only, offline(model, None, clip.frames))
    received = resample_audio(audio_44k, 44100, 16000)  # what the streaming resampler gives
    check_same_results(resampled, offline(model, received, None))
    assert final_texts(audio_only) != final_texts(video_only)  # each modality is really used


async def stream_float_audio(url: str, audio: np.ndarray, rate: int) -> list:
    """A browser-like client: float32 PCM at the AudioContext's own rate, 2048-sample blocks."""
    ws, ready = await open_session(url, encode(Start(audio=AudioSpec(
        AudioEncoding.PCM_F32LE, rate, 1))))
    assert isinstance(ready, Ready)
    for seq, begin in enumerate(range(0, len(audio), 2048)):
        block = audio[begin:begin + 2048].astype("<f4").tobytes()
        await ws.send(pack_media(BinaryKind.AUDIO, seq, begin * 1_000_000 // rate, block))
    await ws.send(encode(End()))
    return [ready, *await receive_rest(ws)]


def test_only_the_tasks_asked_for_are_reported(engine, clip) -> None:
    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), clip.audio, clip.frames,
                                      StreamOptions(fast=True, tasks=(Task.SYNC,)))

    messages = run(main())
    assert any(isinstance(m, Sync) for m in messages)
    assert not any(isinstance(m, Final | Partial | Speakers) for m in messages)
    assert isinstance(messages[-1], Done) and messages[-1].segments == 0
