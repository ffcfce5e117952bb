"""Sync offset from synthetic embeddings with a planted offset; ASD calibration and smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_helpers import random_chunk

from avsync.runtime import ActiveSpeakerDetector, AsdConfig, ChunkRequest, ChunkResult, Model
from avsync.runtime.asd import calibrate
from avsync.runtime.model_card import AsdCalibration
from avsync.runtime.sync import SyncConfig, SyncEstimator, estimate_offset


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(steps: int, lag: int, seed: int, noise: float = 0.3, dim: int = 16
            ) -> tuple[np.ndarray, np.ndarray]:
    """(audio, visual) unit embeddings where the audio of visual step t is at t + lag."""
    rng = np.random.default_rng(seed)
    content = rng.standard_normal((steps + 40, dim))
    visual = unit(content[20:20 + steps] + noise * rng.standard_normal((steps, dim)))
    audio = unit(content[20 - lag:20 - lag + steps] + noise * rng.standard_normal((steps, dim)))
    return audio, visual


@pytest.mark.parametrize("lag", [-15, -7, -1, 0, 3, 12, 15])
def test_planted_offset_is_recovered_with_its_sign(lag: int) -> None:
    audio, visual = planted(80, lag, seed=lag + 100)
    result = estimate_offset(audio, visual)
    assert result is not None
    assert result.offset_steps == lag  # positive: the audio lags the video
    assert result.offset_ms == 40 * lag
    assert result.confidence > 0.3
    assert len(result.distances) == 31


def test_unrelated_streams_have_low_confidence() -> None:
    rng = np.random.default_rng(0)
    audio, visual = unit(rng.standard_normal((80, 16))), unit(rng.standard_normal((80, 16)))
    result = estimate_offset(audio, visual)
    assert result is not None and result.confidence < 0.15


def test_too_short_a_window_gives_no_estimate() -> None:
    audio, visual = planted(20, 0, seed=1)
    assert estimate_offset(audio, visual) is None
    assert estimate_offset(audio, visual, max_shift=5, min_overlap=10) is not None


def fake_result(start: int, audio: np.ndarray | None, visual: dict[int, np.ndarray],
                logits: dict[int, np.ndarray] | None = None, primary: int | None = 0
                ) -> ChunkResult:
    steps = len(next(iter(visual.values()))) if visual else len(audio)  # type: ignore[arg-type]
    return ChunkResult(start, steps, np.zeros((steps, 5), np.float32),
                       np.zeros((steps, 4), np.float32), audio, visual, logits or {}, primary)


def test_estimator_follows_a_stream_and_restarts_after_a_gap() -> None:
    audio, visual = planted(140, 4, seed=5)
    sync = SyncEstimator(SyncConfig(window_steps=60))
    estimates = [sync.accept(fake_result(s, audio[s:s + 4], {0: visual[s:s + 4]}))
                 for s in range(0, 140, 4)]
    assert estimates[3] is None  # 16 steps: not enough yet
    assert estimates[-1] is not None and estimates[-1].offset_steps == 4
    assert estimates[-1].steps == 60  # the sliding window, not the whole stream
    sync.accept(fake_result(140, None, {0: visual[:4]}))  # no audio: the pairing breaks
    assert sync.estimate() is None and sync.latest is estimates[-1]


def test_calibration_is_a_monotone_probability() -> None:
    logits = np.array([-1e6, -30.0, -1.0, 0.0, 2.0, 1e6])
    p = calibrate(logits, AsdCalibration(a=2.0, b=-1.0))
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) >= 0)
    assert p[3] == pytest.approx(1 / (1 + np.exp(1.0)), rel=1e-6)


def test_detector_smooths_over_steps_and_forgets_lost_tracks() -> None:
    detector = ActiveSpeakerDetector(AsdCalibration(), AsdConfig(smooth_steps=4,
                                                                 forget_steps=8))
    e = np.zeros((4, 2), np.float32)
    big = np.full(4, 50.0, np.float32)
    out = detector.accept(fake_result(0, e, {1: e, 2: e}, {1: big, 2: -big}))
    assert out[1] == pytest.approx([1, 1, 1, 1]) and out[2] == pytest.approx([0, 0, 0, 0])
    out = detector.accept(fake_result(4, e, {1: e}, {1: -big}))
    assert out[1] == pytest.approx([0.75, 0.5, 0.25, 0.0])  # a 4-step moving average
    assert detector.speaking() == [] and set(detector.probabilities) == {1, 2}
    detector.accept(fake_result(8, e, {1: e}, {1: big}))
    assert set(detector.probabilities) == {1}  # track 2 unseen for 8 steps


def test_real_model_speaking_probabilities_for_three_faces(model: Model) -> None:
    detector = ActiveSpeakerDetector(model.card.asd_calibration)
    state = model.new_state()
    for k in range(3):
        audio, _ = random_chunk(model, 2, seed=k)
        faces = {t: random_chunk(model, 2, seed=10 * k + t)[1] for t in (3, 5, 8)}
        (result,) = model.advance([ChunkRequest(state, audio, faces, primary_face=5)])
        probs = detector.accept(result)
        assert set(probs) == {3, 5, 8}
        for p in probs.values():
            assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
