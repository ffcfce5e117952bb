"""The step graphs' one-stream sessions: used for one stream and one full chunk, never
otherwise, and numerically the general session's."""

from __future__ import annotations

import numpy as np
from runtime_helpers import random_chunk

from avsync.runtime import Model
from avsync.runtime.loader import STEP_GRAPHS, OneStreamGraph


class Recording:
    """Wraps a session and counts its runs."""

    def __init__(self, session) -> None:
        self.session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self.session.run(*args, **kwargs)


def test_one_stream_one_full_chunk_runs_the_specialised_session(model: Model) -> None:
    graph = model.graphs["audio_step"]
    assert isinstance(graph, OneStreamGraph)
    assert {spec.name for spec in STEP_GRAPHS} <= {n for n, g in model.graphs.items()
                                                  if isinstance(g, OneStreamGraph)}
    single, general = Recording(graph.single), Recording(graph.session)
    graph.single, graph.session = single, general  # type: ignore[assignment]
    try:
        c = model.card.chunk_steps
        state = np.zeros((1, model.card.states["audio"].size), np.float32)
        full = random_chunk(model, c, 0)[0][None]
        graph(audio=full, state=state)
        assert (single.runs, general.runs) == (1, 0)
        graph(audio=full[:, :model.card.samples_per_step * (c - 1)], state=state)  # short
        graph(audio=np.concatenate([full, full]), state=np.concatenate([state, state]))
        assert (single.runs, general.runs) == (1, 2)
    finally:
        graph.single, graph.session = single.session, general.session


def test_specialised_and_general_sessions_agree(model: Model) -> None:
    c, states = model.card.chunk_steps, model.card.states
    audio, rois = random_chunk(model, c, 1)
    rng = np.random.default_rng(2)
    feeds = {
        "audio_step": {"audio": audio[None],
                       "state": rng.standard_normal((1, states["audio"].size), np.float32)},
        "visual_step": {"video": rois[None], "state": np.zeros((1, states["visual"].size),
                                                               np.float32)},
        "fusion_step": {"audio_features": rng.standard_normal((1, c, model.card.audio_dim),
                                                              np.float32),
                        "visual_features": rng.standard_normal((1, c, model.card.visual_dim),
                                                               np.float32),
                        "audio_present": np.ones(1, np.float32),
                        "video_present": np.ones(1, np.float32),
                        "state": np.zeros((1, states["fusion"].size), np.float32)}}
    for name, feed in feeds.items():
        graph = model.graphs[name]
        assert isinstance(graph, OneStreamGraph)
        names = list(graph.output_names)
        for a, b in zip(graph.single.run(names, feed), graph.session.run(names, feed),
                        strict=True):
            np.testing.assert_allclose(a, b, atol=2e-5)
