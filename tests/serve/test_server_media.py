"""Compressed and container media through the server: JPEG frames, webm streams in pieces,
server-side face detection; and the y4m/wav files the browser test feeds Chromium."""

from __future__ import annotations

import random

import av
import numpy as np
from clip_files import write_webm
from serve_harness import final_texts, open_session, receive_rest, run, running_server, stream_url
from tone_engine import tone_clip

from serve.browser_media import write_wav, write_y4m
from serve.client import StreamOptions, media_messages, stream_media
from serve.protocol import (
    BinaryKind,
    CloseCode,
    Done,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Speakers,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    encode,
    pack_media,
)

CLIP = tone_clip(["jpeg frames"])


def test_jpeg_frames_and_a_truncated_one() -> None:
    options = StreamOptions(video_encoding=VideoEncoding.JPEG, fast=True)
    jpegs = [m[16:] for _, m in media_messages(None, CLIP.frames(), options)]
    frames = [pack_media(BinaryKind.VIDEO, 2 * i, i * 40_000, j) for i, j in enumerate(jpegs)]
    bad = pack_media(BinaryKind.VIDEO, 15, 7 * 40_000, jpegs[7][:len(jpegs[7]) // 2])

    async def main():
        async with running_server() as server:
            start = encode(Start(video=VideoSpec(VideoEncoding.JPEG, 64, 64)))
            ws, _ = await open_session(stream_url(server), start)
            for message in frames[:8] + [bad] + frames[8:]:
                await ws.send(message)
            await ws.send(encode(End()))
            return await receive_rest(ws)

    messages = run(main())
    errors = [m for m in messages if isinstance(m, Error)]
    assert [(e.code, e.fatal, e.seq) for e in errors] == \
        [(ErrorCode.UNDECODABLE_FRAME, False, 15)]
    assert final_texts(messages) == ["jpeg frames"]  # JPEG kept the lips' brightness code
    assert messages[-1].video_frames == CLIP.steps


def test_a_webm_stream_in_random_pieces_is_transcribed(tmp_path) -> None:
    clip = tone_clip(["from a browser"])
    data = write_webm(tmp_path / "clip.webm", clip.audio, clip.frames()).read_bytes()
    rng = random.Random(3)
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.randrange(200, 3000)
        pieces.append(data[pos:pos + size])
        pos += size

    async def main():
        async with running_server() as server:
            ws, _ = await open_session(stream_url(server), encode(Start(
                video=VideoSpec(VideoEncoding.WEBM), tasks=(Task.TRANSCRIPT, Task.SPEAKERS))))
            for seq, piece in enumerate(pieces):
                await ws.send(pack_media(BinaryKind.CONTAINER, seq, seq * 1000, piece))
            await ws.send(encode(End()))
            return await receive_rest(ws)

    messages = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    assert final_texts(messages) == ["from a browser"]  # through VP8 and Opus
    assert isinstance(messages[-1], Done) and messages[-1].video_frames == clip.steps


def test_undecodable_container_bytes_end_the_session_cleanly() -> None:
    async def main():
        async with running_server() as server:
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


def test_server_side_detection_finds_and_tracks_a_real_face() -> None:
    from skimage.data import astronaut

    gray = av.VideoFrame.from_ndarray(astronaut(), format="rgb24").to_ndarray(format="gray")
    frames = np.stack([gray[:256, 96:352]] * 12)  # 256x256 around her face, 12 steps

    async def main():
        async with running_server() as server:
            return await stream_media(stream_url(server), None, frames, StreamOptions(
                fast=True, faces=FaceMode.DETECT, tasks=(Task.SPEAKERS,),
                video_encoding=VideoEncoding.JPEG))

    messages = run(main())
    speakers = [m for m in messages if isinstance(m, Speakers) and m.tracks]
    assert speakers, messages
    x, y, w, h = speakers[-1].tracks[0].box
    assert 30 < x + w / 2 < 230 and 20 < y + h / 2 < 220 and 40 < w < 256  # a face-sized box
    assert len({t.id for m in speakers for t in m.tracks}) == 1  # one stable track


def test_y4m_and_wav_files_decode_to_the_clip(tmp_path) -> None:
    frames = CLIP.frames(32, 24)
    with av.open(str(write_y4m(tmp_path / "clip.y4m", frames))) as container:
        decoded = np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])
    assert np.abs(decoded.astype(int) - frames).max() <= 1  # limited range, and back
    with av.open(str(write_wav(tmp_path / "clip.wav", CLIP.audio))) as container:
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    np.testing.assert_allclose(audio / 32768.0, CLIP.audio, atol=1 / 16000)
