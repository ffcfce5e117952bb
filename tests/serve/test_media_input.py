"""Media input: PCM and frames → aligned engine chunks; nothing lost, nothing shifted."""

from __future__ import annotations

import numpy as np
import pytest
from avsync.serve.media_input import MediaInput
from avsync.serve.protocol import (
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    ErrorCode,
    FaceMode,
    MediaHeader,
    Start,
    VideoEncoding,
    VideoSpec,
    pack_face_boxes,
)

from avsync.media.resample import resample_audio
from avsync.timebase import SAMPLES_PER_STEP

RNG = np.random.default_rng(7)


def media(start: Start, chunk_steps: int = 4) -> MediaInput:
    return MediaInput(start, chunk_steps, roi_size=8)


def audio_header(seq: int, t_us: int) -> MediaHeader:
    return MediaHeader(BinaryKind.AUDIO, seq, t_us)


def feed_pcm(m: MediaInput, audio: np.ndarray, rate: int, pieces: list[int],
             t0_us: int = 1_000_000, f32: bool = False):
    chunks, errors, pos = [], [], 0
    for seq, n in enumerate(pieces):
        piece = audio[pos:pos + n]
        payload = piece.astype("<f4").tobytes() if f32 else \
            (piece * 32768).round().clip(-32768, 32767).astype("<i2").tobytes()
        fed = m.feed(audio_header(seq, t0_us + pos * 1_000_000 // rate), payload)
        chunks += fed.chunks
        errors += fed.errors
        pos += n
    return chunks, errors


def joined(chunks) -> np.ndarray:
    return np.concatenate([c.input.audio for c in chunks])


def test_audio_in_odd_pieces_comes_back_whole_in_order_and_padded_at_the_end() -> None:
    audio = (RNG.standard_normal(10 * SAMPLES_PER_STEP + 123) * 0.1).astype(np.float32)
    m = media(Start(audio=AudioSpec()))
    chunks, errors = feed_pcm(m, audio, 16000, [1000, 7, 2500, 313, len(audio)])
    chunks += m.flush()
    out = joined(chunks)
    assert not errors and len(out) == 11 * SAMPLES_PER_STEP
    np.testing.assert_allclose(out[:len(audio)], audio, atol=1 / 32768)
    assert not out[len(audio):].any()
    assert [c.start_step for c in chunks] == [0, 4, 8]
    assert [c.input.steps for c in chunks] == [4, 4, 3]
    assert m.audio_ms == len(audio) * 1000 // 16000


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_resampled_stream_equals_resampling_the_whole_clip(rate: int) -> None:
    audio = (RNG.standard_normal(rate) * 0.1).astype(np.float32)
    m = media(Start(audio=AudioSpec(AudioEncoding.PCM_F32LE, rate, 1)))
    chunks, _ = feed_pcm(m, audio, rate, list(RNG.integers(100, 3000, 40)), f32=True)
    out = joined(chunks + m.flush())
    expected = resample_audio(audio, rate, 16000)
    np.testing.assert_allclose(out[:len(expected)], expected, atol=1e-6)


def test_nan_and_inf_samples_are_repaired_in_place_and_reported() -> None:
    audio = np.full(SAMPLES_PER_STEP * 4, 0.25, np.float32)
    audio[[3, 100, 2000]] = [np.nan, np.inf, -np.inf]
    m = media(Start(audio=AudioSpec(AudioEncoding.PCM_F32LE, 16000, 1)))
    chunks, errors = feed_pcm(m, audio, 16000, [len(audio)], f32=True)
    assert [e.code for e in errors] == [ErrorCode.INVALID_SAMPLES] and "3 NaN/inf" in str(errors[0])
    out = joined(chunks)
    assert len(out) == len(audio) and out[3] == 0 and out[4] == 0.25


def test_stereo_is_mixed_down() -> None:
    m = media(Start(audio=AudioSpec(AudioEncoding.PCM_F32LE, 16000, 2)))
    stereo = np.stack([np.full(2560, 0.5), np.full(2560, -0.1)], axis=1).astype("<f4")
    chunks = m.feed(audio_header(0, 0), stereo.tobytes()).chunks
    np.testing.assert_allclose(joined(chunks), 0.2, atol=1e-6)


def test_audio_gaps_in_timestamps_become_silence_so_time_is_kept() -> None:
    m = media(Start(audio=AudioSpec()))
    one_step = np.full(SAMPLES_PER_STEP, 0.5)
    pcm = (one_step * 32767).astype("<i2").tobytes()
    chunks = m.feed(audio_header(0, 0), pcm).chunks
    chunks += m.feed(audio_header(1, 200_000), pcm).chunks  # 160 ms of audio never arrived
    out = joined(chunks + m.flush())
    assert len(out) == 6 * SAMPLES_PER_STEP
    assert out[:SAMPLES_PER_STEP].min() > 0.4 and not out[SAMPLES_PER_STEP:5 * 640].any()
    assert out[5 * SAMPLES_PER_STEP:].min() > 0.4


def frame_header(seq: int, t_us: int) -> MediaHeader:
    return MediaHeader(BinaryKind.VIDEO, seq, t_us)


def test_frames_go_to_their_steps_and_missing_steps_hold_the_previous_frame() -> None:
    m = media(Start(video=VideoSpec(VideoEncoding.GRAY8, 16, 16)), chunk_steps=4)
    chunks = []
    for seq, (step, level) in enumerate([(0, 10), (1, 20), (3, 40), (4, 50), (7, 80)]):
        fed = m.feed(frame_header(seq, 5_000_000 + step * 40_000 + 3_000),
                     np.full((16, 16), level, np.uint8).tobytes())
        assert not fed.errors
        chunks += fed.chunks
    assert len(chunks) == 2  # the frame of step 7 completes the second chunk
    chunks += m.flush()
    rois = np.concatenate([c.input.faces[0] for c in chunks])
    assert [int(r.mean()) for r in rois] == [10, 20, 20, 40, 50, 50, 50, 80]
    assert all(c.input.audio is None and c.input.preferred_face == 0 for c in chunks)


def test_a_chunk_waits_for_its_video_unless_the_audio_runs_too_far_ahead() -> None:
    m = media(Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, 8, 8)))
    frame = np.full((8, 8), 30, np.uint8).tobytes()
    assert m.feed(frame_header(0, 0), frame).chunks == []
    pcm = np.zeros(SAMPLES_PER_STEP * 8, "<i2").tobytes()
    assert m.feed(audio_header(0, 0), pcm).chunks == []  # audio for 2 chunks, video for 1 step
    assert len(m.feed(frame_header(1, 120_000), frame).chunks) == 1  # step 3 closes chunk 0
    more = np.zeros(SAMPLES_PER_STEP * 30, "<i2").tobytes()  # 1.2 s ahead of the camera
    chunks = m.feed(audio_header(1, 320_000), more).chunks
    assert chunks and all(int(c.input.faces[0].mean()) == 30 for c in chunks)


def test_a_stalled_microphone_is_heard_as_silence_and_late_audio_is_dropped() -> None:
    """Frames run more than max_av_skew_s (1 s) ahead of the audio: chunks go on with silence
    (the frames waiting stay bounded); audio that comes later lands at its own time, and what
    of it belongs to steps already recognised is dropped."""
    m = media(Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, 8, 8)))
    frame = np.full((8, 8), 30, np.uint8).tobytes()
    chunks, pending = [], []
    for step in range(100):  # 4 s of video, the microphone silent
        chunks += m.feed(frame_header(step, step * 40_000), frame).chunks
        pending.append(len(m._steps))
    assert max(pending) <= 25 + 4 + 1 and len(chunks) >= (100 - 30) // 4
    done = chunks[-1].start_step + chunks[-1].input.steps
    tone = (np.sin(np.arange(SAMPLES_PER_STEP * 60) / 5.0) * 0.5).astype(np.float32)
    pcm = (tone * 32768).round().clip(-32768, 32767).astype("<i2").tobytes()
    chunks += m.feed(audio_header(0, 60 * 40_000), pcm).chunks  # starts at step 60
    chunks += m.flush()
    audio = np.concatenate([c.input.audio for c in chunks])
    assert len(audio) >= 120 * SAMPLES_PER_STEP
    assert not audio[:60 * SAMPLES_PER_STEP].any()  # silence up to the microphone's start
    late = max(0, done - 60) * SAMPLES_PER_STEP  # its first part came too late: dropped
    np.testing.assert_allclose(audio[max(done, 60) * SAMPLES_PER_STEP:120 * SAMPLES_PER_STEP],
                               tone[late:], atol=1 / 32768)


def test_client_boxes_give_one_roi_stack_per_face() -> None:
    m = media(Start(video=VideoSpec(VideoEncoding.GRAY8, 40, 20, faces=FaceMode.CLIENT_BOXES)),
              chunk_steps=1)
    m.feed(MediaHeader(BinaryKind.FACE_BOXES, 0, 0),
           pack_face_boxes({1: (0, 0, 20, 20), 2: (20, 0, 20, 20)}))
    frame = np.zeros((20, 40), np.uint8)
    frame[:, 20:] = 200
    chunk = m.feed(frame_header(0, 0), frame.tobytes()).chunks[0]
    assert {t: int(r.mean()) for t, r in chunk.input.faces.items()} == {1: 0, 2: 200}
    assert chunk.boxes[2].x == 20


def test_rgb_frames_become_gray_like_decode_media() -> None:
    m = media(Start(video=VideoSpec(VideoEncoding.RGB24, 8, 8)), chunk_steps=1)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 255  # pure green: BT.601 luma ≈ 0.587
    chunk = m.feed(frame_header(0, 0), rgb.tobytes()).chunks[0]
    assert 140 < chunk.input.faces[0].mean() < 160
