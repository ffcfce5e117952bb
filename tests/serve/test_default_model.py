"""The server on the trained default model (models/avsync-tiny-grid, issue 6): real words, the
sign of a planted AV offset, and the speaking face chosen among two. Skipped, with the reason,
until that model is committed; every other server test runs on the untrained debug model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avsync.serve.client import StreamOptions, stream_media
from avsync.serve.protocol import Speakers, Sync, Task
from avsync.serve.runtime_engine import RuntimeEngine
from serve_harness import (
    SynthClip,
    as_s16,
    check_same_results,
    default_model_dir,
    final_texts,
    needs_default_model,
    offline,
    run,
    running_server,
    stream_url,
    stream_with_boxes,
)

from avsync.runtime import Model, RecognizerConfig, load_model
from avsync.text.metrics import wer
from avsync.timebase import SAMPLES_PER_STEP, STEP_MS

pytestmark = needs_default_model


@pytest.fixture(scope="module")
def trained() -> Model:
    path = default_model_dir()
    assert path is not None
    return load_model(Path(path))


def stream(engine: RuntimeEngine, audio: np.ndarray | None, frames: np.ndarray | None,
           fast: bool = True, tasks: tuple[Task, ...] = tuple(Task)) -> list:
    async def main():
        async with running_server(engine) as server:
            return await stream_media(stream_url(server), audio, frames,
                                      StreamOptions(fast=fast, tasks=tasks))

    return run(main())


def test_a_clip_in_real_time_is_transcribed_as_the_offline_runtime_does(
        trained: Model, default_clips: list[SynthClip]) -> None:
    clip = default_clips[0]
    messages = stream(RuntimeEngine(trained), clip.audio, clip.frames, fast=False)
    check_same_results(messages, offline(trained, as_s16(clip.audio), clip.frames,
                                         RecognizerConfig()))


def test_the_words_of_a_clip_are_recognised(trained: Model,
                                           default_clips: list[SynthClip]) -> None:
    clip = default_clips[0]
    messages = stream(RuntimeEngine(trained), clip.audio, clip.frames)
    assert wer(clip.text.upper(), " ".join(final_texts(messages)).upper()) <= 0.2


def test_a_planted_av_offset_is_reported_with_its_sign(trained: Model,
                                                       default_clips: list[SynthClip]) -> None:
    """Audio delayed by 5 steps (200 ms) behind the lips: offset_ms > 0 (audio lags)."""
    clip = default_clips[1]
    lag = 5
    audio = np.concatenate([np.zeros(lag * SAMPLES_PER_STEP, np.float32),
                            clip.audio[:-lag * SAMPLES_PER_STEP]])
    long_audio, long_frames = np.tile(audio, 2), np.tile(clip.frames, (2, 1, 1))
    messages = stream(RuntimeEngine(trained), long_audio, long_frames, tasks=(Task.SYNC,))
    syncs = [m for m in messages if isinstance(m, Sync)]
    assert syncs and abs(syncs[-1].offset_ms - lag * STEP_MS) <= STEP_MS, syncs


@pytest.fixture(scope="module")
def two_faces(trained: Model, default_clips: list[SynthClip]) -> tuple[SynthClip, list]:
    """Two faces side by side, the right one speaking, the left one still, streamed once:
    (the speaker's clip, the server's messages)."""
    speaker, still = default_clips[2], default_clips[3]
    frames = np.concatenate([np.repeat(still.frames[:1], speaker.steps, axis=0),
                             speaker.frames], axis=2)
    boxes = {1: (0.0, 0.0, 160.0, 160.0), 2: (160.0, 0.0, 160.0, 160.0)}

    async def main():
        async with running_server(RuntimeEngine(trained)) as server:
            return await stream_with_boxes(stream_url(server), speaker.audio, frames, boxes)

    return speaker, run(main())


def test_the_speaking_face_is_found(two_faces: tuple[SynthClip, list]) -> None:
    """ASD ranks the speaking (right) face higher than the still one."""
    _, messages = two_faces
    speakers = [m for m in messages if isinstance(m, Speakers) and len(m.tracks) == 2]
    assert speakers, messages
    late = speakers[len(speakers) // 2:]
    still_p = np.mean([m.tracks[0].speaking for m in late])
    speaking_p = np.mean([m.tracks[1].speaking for m in late])
    assert speaking_p > still_p, (speaking_p, still_p)


def test_the_speaking_faces_words_are_read(two_faces: tuple[SynthClip, list]) -> None:
    speaker, messages = two_faces
    assert wer(speaker.text.upper(), " ".join(final_texts(messages)).upper()) <= 0.3


def test_lips_that_are_not_the_voices_cost_no_words(trained: Model,
                                                    default_clips: list[SynthClip]) -> None:
    """Clean voices shown with another speaker's lips (a dub, a listener): the finals are as
    good as the voice alone (without the second pass's lip gate, the bundled GRID model
    followed the wrong lips: 85 % WER on 60 test clips, audio alone 0.3 %)."""
    refs, heard, shown = [], [], []
    for i, clip in enumerate(default_clips[:4]):
        other = default_clips[(i + 1) % len(default_clips)].frames
        wrong = np.take(other, np.arange(clip.steps), axis=0, mode="wrap")
        refs.append(clip.text.upper())
        heard.append(" ".join(offline(trained, clip.audio, None, RecognizerConfig()).texts))
        shown.append(" ".join(offline(trained, clip.audio, wrong, RecognizerConfig()).texts))
    audio_only = np.mean([wer(r, h.upper()) for r, h in zip(refs, heard, strict=True)])
    wrong_lips = np.mean([wer(r, h.upper()) for r, h in zip(refs, shown, strict=True)])
    assert wrong_lips <= audio_only + 0.01, (refs, heard, shown)
