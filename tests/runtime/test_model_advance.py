"""`Model.advance`: batching never changes a stream's numbers; inputs are checked."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.errors import MediaError
from avsync.runtime import ChunkRequest, ChunkResult, Model


def stream(model: Model, chunks: list[dict], state=None) -> list[ChunkResult]:
    state = state or model.new_state()
    return [model.advance([ChunkRequest(state, **chunk)])[0] for chunk in chunks]


def chunks_of(model: Model, seed: int, sizes: list[int], audio: bool = True,
              faces: tuple[int, ...] = (0,), primary: int | None = 0) -> list[dict]:
    out = []
    for k, c in enumerate(sizes):
        pcm, _ = random_chunk(model, c, seed * 100 + k)
        rois = {t: random_chunk(model, c, seed * 100 + k + 50 * t)[1] for t in faces}
        out.append({"audio": pcm if audio else None, "faces": rois,
                    "primary_face": primary if faces else None, "steps": c})
    return out


def assert_same(a: ChunkResult, b: ChunkResult) -> None:
    np.testing.assert_allclose(a.ctc_logprobs, b.ctc_logprobs, atol=2e-5)
    np.testing.assert_allclose(a.memory, b.memory, atol=2e-5)
    assert (a.audio_embed is None) == (b.audio_embed is None)
    if a.audio_embed is not None:
        np.testing.assert_allclose(a.audio_embed, b.audio_embed, atol=2e-5)
    assert a.visual_embed.keys() == b.visual_embed.keys()
    assert a.asd_logits.keys() == b.asd_logits.keys()
    for t in a.visual_embed:
        np.testing.assert_allclose(a.visual_embed[t], b.visual_embed[t], atol=2e-5)
    for t in a.asd_logits:
        np.testing.assert_allclose(a.asd_logits[t], b.asd_logits[t], atol=2e-5)


def test_batched_streams_equal_streams_run_alone(model: Model) -> None:
    """Four streams (AV with two faces, audio only, video only, AV) of different chunk
    lengths in one advance call per round, against each run on its own."""
    plans = [chunks_of(model, 1, [2, 2, 1], faces=(0, 7), primary=7),
             chunks_of(model, 2, [2, 2, 2], faces=()),
             chunks_of(model, 3, [2, 1, 2], audio=False),
             chunks_of(model, 4, [1, 2, 2])]
    alone = [stream(model, plan) for plan in plans]
    states = [model.new_state() for _ in plans]
    for k in range(3):
        batched = model.advance([ChunkRequest(s, **plan[k])
                                 for s, plan in zip(states, plans, strict=True)])
        for i, result in enumerate(batched):
            assert result.start_step == alone[i][k].start_step
            assert_same(result, alone[i][k])
    assert [s.steps for s in states] == [5, 6, 5, 5]


def test_modalities_and_asd_pairs(model: Model) -> None:
    (av,) = stream(model, chunks_of(model, 5, [2], faces=(1, 2), primary=1))
    assert av.audio_embed is not None and set(av.asd_logits) == {1, 2}
    assert av.ctc_logprobs.shape == (2, model.card.vocab_size)
    assert av.memory.shape == (2, model.card.fusion_dim)
    np.testing.assert_allclose(np.exp(av.ctc_logprobs).sum(-1), 1.0, atol=1e-5)
    (video,) = stream(model, chunks_of(model, 5, [2], audio=False))
    assert video.audio_embed is None and video.asd_logits == {} and set(video.visual_embed) == {0}
    (audio,) = stream(model, chunks_of(model, 5, [2], faces=()))
    assert audio.visual_embed == {} and audio.audio_embed.shape == (2, model.card.embed_dim)
    (nothing,) = model.advance([ChunkRequest(model.new_state(), steps=3)])
    assert nothing.ctc_logprobs.shape == (3, model.card.vocab_size)


def test_a_track_that_appears_late_starts_from_a_fresh_state(model: Model) -> None:
    state = model.new_state()
    first = chunks_of(model, 6, [2], faces=(0,))
    model.advance([ChunkRequest(state, **first[0])])
    late = chunks_of(model, 7, [2], faces=(0, 9))[0]
    (result,) = model.advance([ChunkRequest(state, **late)])
    fresh = model.advance([ChunkRequest(model.new_state(), faces={9: late["faces"][9]})])[0]
    np.testing.assert_allclose(result.visual_embed[9], fresh.visual_embed[9], atol=2e-5)
    state.forget_track(9)
    assert set(state.visual) == {0}


def test_bad_chunks_are_refused_with_the_reason(model: Model) -> None:
    r = model.card.roi.stored
    state = model.new_state()
    cases = [
        ({"audio": np.zeros(1000, np.float32)}, "whole number of steps"),
        ({"faces": {0: np.zeros((2, r + 1, r + 1), np.uint8)}}, "roi.stored"),
        ({"faces": {0: np.zeros((2, r, r), np.float32)}}, "uint8"),
        ({"audio": np.zeros(1280, np.float32), "faces": {0: np.zeros((3, r, r), np.uint8)}},
         "one step count"),
        ({"faces": {0: np.zeros((2, r, r), np.uint8)}, "primary_face": 4}, "primary_face 4"),
        ({}, "one step count"),
    ]
    for kwargs, message in cases:
        with pytest.raises(MediaError, match=message):
            model.advance([ChunkRequest(state, **kwargs)])
    assert state.steps == 0


def test_decoder_scores_are_log_probabilities(model: Model) -> None:
    memory = np.random.default_rng(0).standard_normal((9, model.card.fusion_dim)).astype(
        np.float32)
    scores = model.score(memory, [[5, 6, 7], [5], []])
    assert scores.shape == (3,) and np.all(scores < 0) and np.all(np.isfinite(scores))
    assert model.score(memory, []).shape == (0,)
    # scoring one at a time gives the same numbers as the batch
    alone = [model.score(memory, [h])[0] for h in ([5, 6, 7], [5], [])]
    np.testing.assert_allclose(scores, alone, atol=1e-4)


def test_providers_and_threads(model_dir) -> None:
    from pathlib import Path

    import onnxruntime

    from avsync.errors import ConfigError
    from avsync.runtime import load_model
    from avsync.runtime.sessions import CPU, CUDA, default_providers

    chosen = default_providers()
    assert chosen[-1] == CPU
    assert (CUDA in chosen) == (CUDA in onnxruntime.get_available_providers()
                                and any(Path("/dev").glob("nvidia[0-9]*")))
    two = load_model(model_dir, threads=2, providers=[CPU])
    assert two.graphs["fusion_step"].session.get_providers() == [CPU]
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        load_model(model_dir, threads=0)
