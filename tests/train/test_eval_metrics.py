"""The metric code of `avsync eval` on hand-made cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from avsync.train.eval_data import EvalClip, sync_windows
from avsync.train.eval_metrics import average_precision, error_rates, sync_accuracy

from avsync.timebase import SAMPLES_PER_STEP


def test_average_precision_of_a_known_ranking() -> None:
    # ranked: P N P N N P -> precision at the positives 1, 2/3, 1/2; recall steps of 1/3
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    positive = np.array([1, 0, 1, 0, 0, 1], bool)
    assert average_precision(scores, positive) == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # shuffling the rows changes nothing; a perfect ranking is 1
    order = np.random.default_rng(0).permutation(6)
    assert average_precision(scores[order], positive[order]) == pytest.approx(
        (1 + 2 / 3 + 1 / 2) / 3)
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([1, 1, 0], bool)) == 1.0
    # N N P P: precision 1/3 then 2/4; interpolated to 1/2 at both recall steps
    worst = average_precision(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0, 0, 1, 1], bool))
    assert worst == pytest.approx(0.5)


def test_average_precision_interpolates_precision_like_voc() -> None:
    # N P P: raw precision at the positives 1/2, 2/3; VOC takes the max to the right -> 2/3
    scores, positive = np.array([3.0, 2.0, 1.0]), np.array([0, 1, 1], bool)
    assert average_precision(scores, positive) == pytest.approx(2 / 3)
    assert math.isnan(average_precision(scores, np.zeros(3, bool)))


def _planted(offset: int, steps: int = 50, dim: int = 16, seed: int = 0):
    """Unit embeddings where audio step t + offset carries what visual step t shows."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(steps + 40, dim))
    signal /= np.linalg.norm(signal, axis=1, keepdims=True)
    visual = signal[20:20 + steps]
    audio = signal[20 - offset:20 - offset + steps]
    return audio.astype(np.float32), visual.astype(np.float32)


@pytest.mark.parametrize("offset", [-10, -3, 0, 2, 7])
def test_sync_accuracy_finds_planted_offsets(offset: int) -> None:
    result = sync_accuracy([_planted(offset, seed=offset + 20)], [offset])
    assert result["accuracy"] == 1.0 and result["exact"] == 1.0
    wrong_sign = sync_accuracy([_planted(offset, seed=offset + 20)], [-offset])
    assert wrong_sign["accuracy"] == (1.0 if abs(offset) == 0 else 0.0)


def test_sync_accuracy_tolerates_one_frame_and_counts_short_windows() -> None:
    audio, visual = _planted(4)
    result = sync_accuracy([(audio, visual), (audio, visual), (audio[:10], visual[:10])],
                           [5, 6, 4])
    assert result["windows"] == 2 and result["too_short"] == 1
    assert result["accuracy"] == 0.5 and result["exact"] == 0.0
    assert result["mean_abs_error_steps"] == 1.5


def test_sync_windows_shift_audio_so_positive_means_audio_lags() -> None:
    """Frame k shows k; audio step k carries k. In a window with offset d, the sound of the
    window's frame t must be at audio step t + d."""
    steps, window = 80, 50
    rois = np.repeat(np.arange(steps, dtype=np.uint8)[:, None, None], 2, 1).repeat(2, 2)
    audio = np.repeat(np.arange(steps, dtype=np.float32), SAMPLES_PER_STEP)
    windows, skipped = sync_windows([EvalClip("c", "", audio, rois)], [-12, 0, 7, 40], window)
    assert skipped == 1 and [w.offset for w in windows] == [-12, 0, 7]
    for w in windows:
        heard = w.audio[::SAMPLES_PER_STEP]
        shown = w.rois[:, 0, 0].astype(np.float32)
        assert len(heard) == len(shown) == window
        t = np.arange(max(0, -w.offset), min(window, window - w.offset))
        assert np.array_equal(heard[t + w.offset], shown[t])


def test_error_rates_are_corpus_level() -> None:
    rates = error_rates(["BIN BLUE AT F TWO NOW", "SET RED"], ["BIN BLUE AT F TWO NOW", "SET"])
    assert rates["wer"] == pytest.approx(1 / 8) and rates["clips"] == 2 and rates["words"] == 8
    assert rates["cer"] == pytest.approx(4 / (21 + 7))


def test_vocabulary_error_rates_split_the_reference_words() -> None:
    from avsync.train.eval_metrics import vocabulary_error_rates

    vocabulary = frozenset({"THE", "CAT", "SAT"})
    rates = vocabulary_error_rates(["THE CAT SAT ON ZEBRAS", "THE QUOKKA"],
                                   ["THE BAT SAT ON ZEBRAS TOO", "THE"], vocabulary)
    assert rates["in_vocabulary"] == {"wer": 1 / 4, "words": 4}  # CAT -> BAT
    assert rates["oov"] == {"wer": 1 / 3, "words": 3}  # QUOKKA deleted; ON, ZEBRAS right
    assert rates["insertions"] == 1
    assert math.isnan(vocabulary_error_rates(["THE"], ["THE"], vocabulary)["oov"]["wer"])


def test_attribution_maps_tracks_to_faces_one_to_one() -> None:
    from avsync.train.eval_metrics import attribution_accuracy

    turns = [(0.0, 2.0, 0), (2.5, 4.0, 1)]
    # track 7 is face 0, track 3 face 1; one word of turn 2 went to track 7, one to nobody,
    # one lies in the silence between the turns (not scored)
    words = [(0.5, 7), (1.5, 7), (2.2, 3), (2.8, 3), (3.2, 7), (3.6, None)]
    result = attribution_accuracy(words, turns)
    assert result["words"] == 5 and result["right"] == 3 and result["unattributed"] == 1
    assert result["tracks"] == {"3": 1, "7": 0} and result["accuracy"] == 3 / 5
    # an id switch mid-turn: the second track cannot also be face 0
    switched = attribution_accuracy([(0.5, 1), (1.5, 2), (3.0, 4)], turns)
    assert switched["right"] == 2 and switched["accuracy"] == 2 / 3
