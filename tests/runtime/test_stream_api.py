"""`avsync.runtime.streams`: the batched calls give each stream what it gets alone, and the
work of many streams goes to the model together."""

from __future__ import annotations

import numpy as np
from runtime_helpers import random_chunk

from avsync.runtime import Model, Recognizer, RecognizerConfig, StreamChunk, StreamConfig
from avsync.runtime.chunking import ChunkCutter
from avsync.runtime.endpoint import EndpointConfig

# the untrained model hardly ever endpoints on blanks: 400 ms segments give many finals
SHORT = StreamConfig(recognizer=RecognizerConfig(endpoint=EndpointConfig(max_segment_ms=400)))


def test_score_many_equals_score_of_each_segment(model: Model) -> None:
    """Rescoring many segments of different lengths in one decoder run (memories padded and
    masked) gives exactly each segment's own scores."""
    rng = np.random.default_rng(3)
    dim, vocab = model.card.fusion_dim, len(model.card.vocab)
    segments = [(rng.standard_normal((t, dim)).astype(np.float32),
                 [list(rng.integers(4, vocab, k)) for k in ks])
                for t, ks in ((7, (3, 1)), (19, (5,)), (2, ()), (12, (2, 2, 6)))]
    together = model.score_many(segments)
    for (memory, hypotheses), scores in zip(segments, together, strict=True):
        np.testing.assert_array_equal(scores, model.score(memory, hypotheses))


def test_second_passes_and_rescoring_of_many_streams_run_together(model: Model,
                                                                  monkeypatch) -> None:
    """Three streams endpointing at the same steps: each chunk is one step-graph call for the
    first passes, one for all second passes, one decoder run for all n-best lists."""
    recognizer = Recognizer(model, SHORT)
    streams = [recognizer.open() for _ in range(3)]
    data = [random_chunk(model, 40, seed) for seed in (1, 2, 3)]
    advance_calls: list[int] = []
    score_calls: list[int] = []
    advance, score_many = model.advance, model.score_many

    def counting_advance(requests):
        advance_calls.append(len(requests))
        return advance(requests)

    def counting_score_many(segments):
        score_calls.append(len(segments))
        return score_many(segments)

    monkeypatch.setattr(model, "advance", counting_advance)
    monkeypatch.setattr(model, "score_many", counting_score_many)
    c, n = model.card.chunk_steps, model.card.samples_per_step
    finals = 0
    for s in range(0, 40, c):
        updates = recognizer.advance([(stream, StreamChunk(a[s * n:(s + c) * n],
                                                           {0: r[s:s + c]}))
                                      for stream, (a, r) in zip(streams, data, strict=True)])
        finals += sum(len(u.finals) for u in updates)  # type: ignore[union-attr]
    assert finals >= 6 and max(advance_calls) == 3
    assert len(advance_calls) < 40 // c + finals  # second passes shared calls
    assert max(score_calls) > 1 and len(score_calls) < finals


def test_a_file_cut_by_the_chunk_cutter_reads_like_the_servers_chunks() -> None:
    """Faces of a chunk are those of its last frame, held from their first frame; the face
    read first is the largest, kept while it lasts."""
    roi = {k: np.full((2, 2), k, np.uint8) for k in range(4)}
    small, large = (0.0, 0.0, 10.0, 10.0), (20.0, 0.0, 30.0, 30.0)
    frames = [{1: (roi[1], small)}, {1: (roi[1], small), 2: (roi[2], large)},
              {1: (roi[3], small), 2: (roi[2], large)}, {2: (roi[0], large)}]
    cutter = ChunkCutter(2, 640, audio=True, video=True)
    first, second = cutter.push(np.zeros(4 * 640, np.float32), frames)
    assert first.faces.keys() == {1, 2} and first.preferred_face == 2
    assert first.faces[2][:, 0, 0].tolist() == [2, 2]  # held back from its first frame
    assert second.faces.keys() == {2} and second.faces[2][:, 0, 0].tolist() == [2, 0]
    assert cutter.flush() == [] and first.boxes == {1: small, 2: large}
