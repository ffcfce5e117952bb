"""`serve.runtime_engine`: the one seam around avsync.runtime, driven directly (no sockets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from avsync.serve.engine import load_engine
from avsync.serve.protocol import Task
from avsync.serve.runtime_engine import RuntimeEngine
from serve_harness import TEST_ENGINE_CONFIG

from avsync.errors import ModelLoadError
from avsync.runtime import Model, StreamChunk, StreamUpdate

RNG_SEED = 11


def chunks(model: Model, streams: int, tracks: int, steps: int, seed: int
           ) -> list[list[StreamChunk]]:
    """Per stream, seeded noise chunks of the card's size with `tracks` faces each."""
    rng = np.random.default_rng(seed)
    c, r, n = model.card.chunk_steps, model.card.roi.stored, model.card.samples_per_step
    out = []
    for _ in range(streams):
        audio = (0.1 * rng.standard_normal(steps * n)).astype(np.float32)
        faces = rng.integers(0, 256, (tracks, steps, r, r), dtype=np.uint8)
        out.append([StreamChunk(audio[s * n:(s + c) * n],
                                {t: faces[t, s:s + c] for t in range(tracks)},
                                {t: (0.0, 0.0, 8.0, 8.0) for t in range(tracks)},
                                0 if tracks else None) for s in range(0, steps, c)])
    return out


def test_load_engine_describes_the_model_and_refuses_what_it_cannot_serve(
        model_dir: Path, model: Model, tmp_path: Path) -> None:
    engine = load_engine(model_dir)
    card = model.card
    assert (engine.info.name, engine.info.version) == (card.model_name, card.model_version)
    assert (engine.info.chunk_steps, engine.info.roi_stored) == (card.chunk_steps,
                                                                 card.roi.stored)
    assert set(engine.info.tasks) == set(Task)
    with pytest.raises(ModelLoadError, match="not a directory"):
        load_engine(tmp_path / "missing")
    other_mouth = card.replace(roi=dataclasses.replace(card.roi, mouth_center_y=0.6))
    with pytest.raises(ModelLoadError, match="mouth box"):
        RuntimeEngine(Model(other_mouth, model.graphs, model.model_dir))


def test_one_model_advance_per_batch_with_every_stream_and_face(model: Model, monkeypatch
                                                                ) -> None:
    """A batch of 3 sessions (2 faces each) is one `model.advance` of 3 requests (and the
    second passes their endpoints ask for, one more call for all of them), and each
    session's results are what it gets when run on its own."""
    engine = RuntimeEngine(model, TEST_ENGINE_CONFIG)
    inputs = chunks(model, streams=3, tracks=2, steps=40, seed=RNG_SEED)
    calls: list[list[int]] = []
    real_advance = model.advance

    def counting_advance(requests):
        calls.append([len(r.faces) for r in requests])
        return real_advance(requests)

    tasks = frozenset(Task)
    batched = [engine.open_stream(tasks, True, True) for _ in inputs]
    alone = [engine.open_stream(tasks, True, True) for _ in inputs]
    batched_out: list[list[StreamUpdate]] = [[] for _ in inputs]
    alone_out: list[list[StreamUpdate]] = [[] for _ in inputs]
    monkeypatch.setattr(model, "advance", counting_advance)
    for k in range(len(inputs[0])):
        outputs = engine.advance([(s, chunk[k]) for s, chunk in zip(batched, inputs,
                                                                   strict=True)])
        for i, output in enumerate(outputs):
            batched_out[i].append(output)
    # the streaming pass: one call per batch; besides it, the endpoints' second passes re-read
    # their segments (one request each, the primary face only), all in one more call
    streaming = [c for c in calls if set(c) == {2}]
    assert streaming == [[2, 2, 2]] * len(inputs[0])
    rereads = [c for c in calls if set(c) == {1}]
    assert len(calls) == len(streaming) + len(rereads)
    finals = sum(len(o.finals) for out in batched_out for o in out)
    assert sum(map(len, rereads)) >= finals > 0
    assert len(rereads) < finals  # endpoints of different sessions at one chunk: one call
    for i, stream in enumerate(alone):
        for chunk in inputs[i]:
            alone_out[i] += engine.advance([(stream, chunk)])
    for got, want in zip(batched_out, alone_out, strict=True):
        assert [(o.partial, o.finals) for o in got] == [(o.partial, o.finals) for o in want]
        for o, w in zip(got, want, strict=True):
            assert (o.speakers is None) == (w.speakers is None)
            if o.speakers is not None and w.speakers is not None:
                assert [t.id for t in o.speakers.tracks] == [0, 1]
                np.testing.assert_allclose([t.speaking for t in o.speakers.tracks],
                                           [t.speaking for t in w.speakers.tracks], atol=1e-4)
    assert [o.finals for o in batched_out[0]] != [o.finals for o in batched_out[1]]


def test_the_most_likely_speaker_is_the_face_recognition_reads(model: Model) -> None:
    engine = RuntimeEngine(model, dataclasses.replace(TEST_ENGINE_CONFIG, switch_margin=0.0))
    stream = engine.open_stream(frozenset(Task), True, True)
    (inputs,) = chunks(model, streams=1, tracks=3, steps=60, seed=RNG_SEED)
    chosen, expected = [], []
    for chunk in inputs:
        before = dict(stream.detector.probabilities)
        expected.append(max(before, key=before.__getitem__) if before else chunk.preferred_face)
        engine.advance([(stream, chunk)])
        chosen.append(stream.primary)
    assert chosen == expected
    assert len(set(chosen)) > 1  # ASD moved recognition between the faces


def test_a_face_that_leaves_is_forgotten_and_finish_flushes_the_last_words(model: Model
                                                                           ) -> None:
    engine = RuntimeEngine(model, TEST_ENGINE_CONFIG)
    stream = engine.open_stream(frozenset(Task), True, True)
    (inputs,) = chunks(model, streams=1, tracks=2, steps=12, seed=RNG_SEED)
    for chunk in inputs[:3]:
        engine.advance([(stream, chunk)])
    assert set(stream.recognizer.state.visual) == {0, 1}
    one_face = dataclasses.replace(inputs[3], faces={0: inputs[3].faces[0]})
    engine.advance([(stream, one_face)])
    assert set(stream.recognizer.state.visual) == {0}
    open_text = stream.recognizer.partial
    (last,) = engine.finish([stream])
    assert isinstance(last, StreamUpdate)
    assert open_text and last.finals and last.finals[-1].words
    assert all(w.end_ms <= 4 * model.card.chunk_steps * 40 for w in last.finals[-1].words)


def test_a_stream_whose_decoding_fails_fails_alone(model: Model) -> None:
    engine = RuntimeEngine(model, TEST_ENGINE_CONFIG)
    inputs = chunks(model, streams=3, tracks=1, steps=8, seed=RNG_SEED)
    streams = [engine.open_stream(frozenset(Task), True, True) for _ in inputs]
    reference = [engine.open_stream(frozenset(Task), True, True) for _ in inputs]

    def broken(*_, **__):
        raise RuntimeError("decoding failed")

    streams[1].recognizer.decode = broken  # type: ignore[method-assign]
    for k in range(len(inputs[0])):
        got = engine.advance([(s, c[k]) for s, c in zip(streams, inputs, strict=True)])
        want = engine.advance([(s, c[k]) for s, c in zip(reference, inputs, strict=True)])
        assert isinstance(got[1], RuntimeError)
        assert [got[0], got[2]] == [want[0], want[2]]


def test_sync_is_estimated_only_when_asked_and_at_most_once_per_interval(model: Model) -> None:
    engine = RuntimeEngine(model, TEST_ENGINE_CONFIG)
    (inputs,) = chunks(model, streams=1, tracks=1, steps=120, seed=RNG_SEED)
    asked = engine.open_stream(frozenset(Task), True, True)
    not_asked = engine.open_stream(frozenset({Task.TRANSCRIPT}), True, True)
    at = []
    for chunk in inputs:
        (out,) = engine.advance([(asked, chunk)])
        (quiet,) = engine.advance([(not_asked, chunk)])
        assert isinstance(out, StreamUpdate) and isinstance(quiet, StreamUpdate)
        assert quiet.sync is None and quiet.partial == out.partial
        if out.sync is not None:
            at.append(asked.steps)
            assert out.sync.time_ms == (asked.steps - 1) * 40
    every = TEST_ENGINE_CONFIG.sync_every_steps
    assert len(at) >= 3 and all(b - a >= every for a, b in zip(at, at[1:], strict=False))
    assert at[0] >= TEST_ENGINE_CONFIG.sync.max_shift + TEST_ENGINE_CONFIG.sync.min_overlap


def test_a_segment_of_64_tokens_or_more_becomes_a_final(model: Model) -> None:
    engine = RuntimeEngine(model)  # the runtime's own endpointing: one long segment
    stream = engine.open_stream(frozenset(Task), True, True)
    (inputs,) = chunks(model, streams=1, tracks=1, steps=200, seed=RNG_SEED)
    for chunk in inputs:
        engine.advance([(stream, chunk)])
    assert len(stream.recognizer.partial.replace(" ", "")) >= 64
    (last,) = engine.finish([stream])
    assert isinstance(last, StreamUpdate) and last.finals
