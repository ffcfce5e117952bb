"""Compressed and container media through the server on the real runtime: JPEG frames, webm
streams in pieces, server-side face detection and client boxes with several faces; and the
y4m/wav files the browser test feeds Chromium."""

from __future__ import annotations

import random
from dataclasses import replace

import av
import numpy as np
from avsync.serve.browser_media import write_wav, write_y4m
from avsync.serve.client import StreamOptions, media_messages, stream_media
from avsync.serve.protocol import (
    BinaryKind,
    CloseCode,
    Done,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Final,
    Speakers,
    Start,
    Sync,
    Task,
    VideoEncoding,
    VideoSpec,
    encode,
    pack_media,
)
from avsync.serve.runtime_engine import RuntimeEngine
from clip_files import write_webm
from serve_harness import (
    TEST_ENGINE_CONFIG,
    TEST_RECOGNIZER,
    as_s16,
    check_same_results,
    offline,
    open_session,
    receive_rest,
    run,
    running_server,
    stream_url,
    stream_with_boxes,
)

from avsync.media.decode import decode_media
from avsync.media.jpeg import decode_jpeg


def test_jpeg_frames_and_a_truncated_one(model, engine, clip) -> None:
    options = StreamOptions(video_encoding=VideoEncoding.JPEG, fast=True)
    jpegs = [m[16:] for _, m in media_messages(None, clip.frames, options)]
    frames = [pack_media(BinaryKind.VIDEO, 2 * i, i * 40_000, j) for i, j in enumerate(jpegs)]
    bad = pack_media(BinaryKind.VIDEO, 15, 7 * 40_000, jpegs[7][:len(jpegs[7]) // 2])

    async def main():
        async with running_server(engine) as server:
            height, width = clip.frames.shape[1:]
            start = encode(Start(video=VideoSpec(VideoEncoding.JPEG, width, height)))
            ws, _ = await open_session(stream_url(server), start)
            for message in frames[:8] + [bad] + frames[8:]:
                await ws.send(message)
            await ws.send(encode(End()))
            return await receive_rest(ws)

    messages = run(main())
    errors = [m for m in messages if isinstance(m, Error)]
    assert [(e.code, e.fatal, e.seq) for e in errors] == \
        [(ErrorCode.UNDECODABLE_FRAME, False, 15)]
    decoded = np.stack([decode_jpeg(bytes(j)) for j in jpegs])  # the truncated one skipped
    check_same_results(messages, offline(model, None, decoded))
    assert messages[-1].video_frames == clip.steps


def test_a_webm_stream_in_random_pieces_is_transcribed(tmp_path, model, engine, clip) -> None:
    path = write_webm(tmp_path / "clip.webm", clip.audio, clip.frames)
    data = path.read_bytes()
    rng = random.Random(3)
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.randrange(200, 3000)
        pieces.append(data[pos:pos + size])
        pos += size

    async def main():
        async with running_server(engine) as server:
            ws, _ = await open_session(stream_url(server), encode(Start(
                video=VideoSpec(VideoEncoding.WEBM), tasks=(Task.TRANSCRIPT, Task.SPEAKERS))))
            for seq, piece in enumerate(pieces):
                await ws.send(pack_media(BinaryKind.CONTAINER, seq, seq * 1000, piece))
            await ws.send(encode(End()))
            return await receive_rest(ws)

    messages = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    assert isinstance(messages[-1], Done) and messages[-1].video_frames == clip.steps
    decoded = decode_media(path)  # the whole file at once: VP8 and Opus decoded as streamed
    check_same_results(messages, offline(model, decoded.audio, decoded.frames))


def test_undecodable_container_bytes_end_the_session_cleanly(engine) -> None:
    async def main():
        async with running_server(engine) as server:
            ws, _ = await open_session(stream_url(server),
                                       encode(Start(video=VideoSpec(VideoEncoding.MP4))))
            await ws.send(pack_media(BinaryKind.CONTAINER, 0, 0, b"this is no mp4 at all"))
            return await receive_rest(ws), ws.close_code

    messages, close_code = run(main())
    errors = [m for m in messages if isinstance(m, Error)]
    assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.UNDECODABLE_CONTAINER, True)]
    assert "mp4" in errors[0].message
    assert isinstance(messages[-1], Done) and messages[-1].reason == "error"
    assert close_code == CloseCode.POLICY


def test_server_side_detection_finds_and_tracks_a_real_face(engine, clip) -> None:
    from skimage.data import astronaut

    gray = av.VideoFrame.from_ndarray(astronaut(), format="rgb24").to_ndarray(format="gray")
    frames = np.stack([gray[:256, 96:352]] * 12)  # 256x256 around her face, 12 steps
    audio = clip.audio[:12 * 640]  # ASD scores a face against the session's audio

    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), audio, frames, StreamOptions(
                fast=True, faces=FaceMode.DETECT, tasks=(Task.SPEAKERS,),
                video_encoding=VideoEncoding.JPEG))

    messages = run(main())
    speakers = [m for m in messages if isinstance(m, Speakers) and m.tracks]
    assert speakers, messages
    x, y, w, h = speakers[-1].tracks[0].box
    assert 30 < x + w / 2 < 230 and 20 < y + h / 2 < 220 and 40 < w < 256  # a face-sized box
    assert len({t.id for m in speakers for t in m.tracks}) == 1  # one stable track
    assert all(0.0 <= t.speaking <= 1.0 for m in speakers for t in m.tracks)


def test_client_boxes_two_faces_each_scored_the_read_face_alone_drives_recognition(
        model, clips) -> None:
    """Two speakers side by side; both tracks run in the visual batch and get ASD scores,
    and recognition reads one face's lips exactly as if it were alone in the frame (the
    streaming pass: the second pass picks its lips in hindsight from the ASD logits, see
    tests/runtime/test_second_pass.py, so it is off here)."""
    left, right = clips[0], clips[1]
    steps = min(left.steps, right.steps)
    frames = np.concatenate([left.frames[:steps], right.frames[:steps]], axis=2)
    audio = left.audio[:steps * 640]
    boxes = {1: (0.0, 0.0, 160.0, 160.0), 2: (160.0, 0.0, 160.0, 160.0)}
    # never switching faces keeps the server's choice (the first of two equal boxes)
    first_pass = replace(TEST_RECOGNIZER, second_pass=False)
    engine = RuntimeEngine(model, replace(TEST_ENGINE_CONFIG, switch_margin=1.0,
                                          recognizer=first_pass))

    async def main():
        async with running_server(engine) as server:
            return await stream_with_boxes(stream_url(server), audio, frames, boxes)

    messages = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    speakers = [m for m in messages if isinstance(m, Speakers)]
    assert speakers and all([t.id for t in m.tracks] == [1, 2] for m in speakers)
    assert speakers[-1].tracks[1].box == (160.0, 0.0, 160.0, 160.0)
    reference = offline(model, as_s16(audio), left.frames[:steps], first_pass)
    assert [f.text for f in messages if isinstance(f, Final)] == reference.texts
    for message in speakers:  # the left face's score is its score alone
        assert message.tracks[0].speaking == reference.speaking_at(message.time_ms)
    syncs = [m for m in messages if isinstance(m, Sync)]
    assert syncs and all(m.track == 1 for m in syncs)


def test_y4m_and_wav_files_decode_to_the_clip(tmp_path, clip) -> None:
    frames = clip.frames[:, :24, :32].copy()
    with av.open(str(write_y4m(tmp_path / "clip.y4m", frames))) as container:
        decoded = np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])
    assert np.abs(decoded.astype(int) - frames).max() <= 1  # limited range, and back
    with av.open(str(write_wav(tmp_path / "clip.wav", clip.audio))) as container:
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    np.testing.assert_allclose(audio / 32768.0, clip.audio, atol=1 / 16000)
