"""Whole sessions through a port-0 server with the real websockets client (tone TEST engine)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import numpy as np
from serve_harness import final_texts, run, running_server, stream_url
from tone_engine import ToneEngine, tone_clip

from avsync.media.resample import resample_audio
from serve.client import StreamOptions, stream_media
from serve.engine import ChunkInput
from serve.protocol import (
    AudioEncoding,
    Done,
    Final,
    Partial,
    Ready,
    Speakers,
    Sync,
    Task,
    encode,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "protocol"
CLIP = tone_clip(["hello world", "good bye"])


def offline_finals(clip, video: bool = False) -> list[str]:
    """The same engine over the whole clip in one go: what streaming must reproduce."""
    engine = ToneEngine(chunk_steps=clip.steps)
    stream = engine.open_stream(frozenset(Task), True, video)
    faces = {0: np.broadcast_to(clip.levels[:, None, None], (clip.steps, 24, 24))} if video \
        else {}
    out = engine.advance([(stream, ChunkInput(0, clip.steps, clip.audio, faces,
                                              0 if video else None))])[0]
    return [s.text for s in (*out.finals, *engine.finish(stream).finals)]


def check_invariants(messages: list) -> None:
    """Schema-valid; one final per segment id in order; no partial after its final; every
    word once; done last and counting the finals."""
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
            assert message.segment not in closed
    starts = [(w.start_ms, w.word) for f in finals for w in f.words]
    assert len(starts) == len(set(starts)) and starts == sorted(starts)
    assert isinstance(messages[-1], Done) and messages[-1].segments == len(finals)
    assert sum(isinstance(m, Done) for m in messages) == 1


def test_a_clip_streamed_in_real_time_gives_the_offline_transcript() -> None:
    async def main():
        async with running_server() as server:
            return await stream_media(stream_url(server), CLIP.audio, CLIP.frames(),
                                      StreamOptions(tasks=tuple(Task)))

    messages = run(main())
    check_invariants(messages)
    assert isinstance(messages[0], Ready)
    assert final_texts(messages) == list(CLIP.texts) == offline_finals(CLIP)
    words = [w.word for m in messages if isinstance(m, Final) for w in m.words]
    assert words == ["hello", "world", "good", "bye"]
    assert messages[-1].audio_ms == len(CLIP.audio) * 1000 // 16000
    assert messages[-1].video_frames == CLIP.steps
    assert any(isinstance(m, Speakers) for m in messages)


def test_eight_sessions_at_once_each_get_their_own_transcript_in_shared_batches() -> None:
    clips = [tone_clip([f"session {name}", "over"]) for name in
             ["one", "two", "three", "four", "five", "six", "seven", "eight"]]
    engine = ToneEngine()

    async def main():
        async with running_server(engine, batch_wait_ms=20.0) as server:
            return await asyncio.gather(*[
                stream_media(stream_url(server), c.audio, c.frames(), StreamOptions())
                for c in clips])

    results = run(main())
    for clip, messages in zip(clips, results, strict=True):
        check_invariants(messages)
        assert final_texts(messages) == list(clip.texts)
    assert max(engine.calls) > 1, engine.calls  # chunks of several sessions ran together


def test_audio_only_video_only_and_resampled_float_audio() -> None:
    clip = tone_clip(["quick brown fox"])
    audio_44k = resample_audio(clip.audio, 16000, 44100)

    async def main():
        async with running_server() as server:
            url = stream_url(server)
            audio_only = await stream_media(url, clip.audio, None, StreamOptions(fast=True))
            video_only = await stream_media(url, None, clip.frames(), StreamOptions(fast=True))
            resampled = await stream_float_audio(url, audio_44k, 44100)
            return audio_only, video_only, resampled

    audio_only, video_only, resampled = run(main())
    for messages in (audio_only, video_only, resampled):
        check_invariants(messages)
    assert final_texts(audio_only) == ["quick brown fox"]
    assert final_texts(video_only) == ["quick brown fox"] == offline_finals(clip, video=True)[:1]
    assert final_texts(resampled) == ["quick brown fox"]


async def stream_float_audio(url: str, audio: np.ndarray, rate: int) -> list:
    """A browser-like client: float32 PCM at the AudioContext's own rate, 2048-sample blocks."""
    from serve_harness import open_session, receive_rest

    from serve.protocol import AudioSpec, BinaryKind, End, Start, pack_media

    ws, ready = await open_session(url, encode(Start(audio=AudioSpec(
        AudioEncoding.PCM_F32LE, rate, 1))))
    assert isinstance(ready, Ready)
    for seq, begin in enumerate(range(0, len(audio), 2048)):
        block = audio[begin:begin + 2048].astype("<f4").tobytes()
        await ws.send(pack_media(BinaryKind.AUDIO, seq, begin * 1_000_000 // rate, block))
    await ws.send(encode(End()))
    return [ready, *await receive_rest(ws)]


def test_a_planted_av_offset_is_reported_with_its_sign() -> None:
    clip = tone_clip(["sync me please", "and again"], audio_delay_steps=3)

    async def main():
        async with running_server() as server:
            return await stream_media(stream_url(server), clip.audio, clip.frames(),
                                      StreamOptions(fast=True, tasks=(Task.SYNC,)))

    messages = run(main())
    syncs = [m for m in messages if isinstance(m, Sync)]
    assert syncs and syncs[-1].offset_ms == 120  # audio lags the lips by 3 steps
    assert not any(isinstance(m, Final | Partial | Speakers) for m in messages)  # not asked
