"""CTC decoding against brute force: every path of tiny cases enumerated."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from avsync.runtime.ctc import PrefixBeamSearch, align, greedy, prefix_beam_search


def log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def random_log_probs(t: int, v: int, seed: int, sharpness: float = 2.0) -> np.ndarray:
    return log_softmax(sharpness * np.random.default_rng(seed).standard_normal((t, v)))


def collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out = []
    for i, s in enumerate(path):
        if s != blank and (i == 0 or s != path[i - 1]):
            out.append(s)
    return tuple(out)


def brute_force(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """log P(labels) for every label sequence: sum over all V^T paths."""
    t, v = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(v), repeat=t):
        lp = sum(log_probs[i, s] for i, s in enumerate(path))
        labels = collapse(path)
        totals[labels] = float(np.logaddexp(totals.get(labels, -math.inf), lp))
    return totals


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("t", "v"), [(1, 3), (3, 3), (5, 3), (4, 4)])
def test_unpruned_beam_is_exact(seed: int, t: int, v: int) -> None:
    log_probs = random_log_probs(t, v, seed)
    truth = brute_force(log_probs)
    hyps = prefix_beam_search(log_probs, beam=10_000, token_beam=v, prune=math.inf)
    assert {h.tokens: h.log_prob for h in hyps}.keys() == truth.keys()
    for h in hyps:
        assert h.log_prob == pytest.approx(truth[h.tokens], abs=1e-9)
    assert hyps[0].tokens == max(truth, key=truth.get)


@pytest.mark.parametrize("seed", range(10))
def test_small_beam_finds_the_best_labels_of_peaky_posteriors(seed: int) -> None:
    log_probs = random_log_probs(6, 4, seed, sharpness=5.0)
    truth = brute_force(log_probs)
    assert prefix_beam_search(log_probs, beam=4, token_beam=3)[0].tokens == max(truth,
                                                                                key=truth.get)


def test_repeated_label_needs_a_blank_between() -> None:
    a, blank = 1, 0
    sure = np.full((3, 3), -30.0)
    sure[[0, 1, 2], [a, blank, a]] = 0.0  # a, blank, a -> "a a"
    assert prefix_beam_search(sure)[0].tokens == (a, a)
    sure = np.full((3, 3), -30.0)
    sure[[0, 1, 2], [a, a, a]] = 0.0  # a, a, a -> "a"
    assert prefix_beam_search(sure)[0].tokens == (a,)


def test_incremental_search_equals_one_shot() -> None:
    log_probs = random_log_probs(17, 5, 3)
    search = PrefixBeamSearch(beam=4, token_beam=3)
    for start in range(0, 17, 4):
        search.advance(log_probs[start:start + 4])
    assert search.nbest() == prefix_beam_search(log_probs, beam=4, token_beam=3)
    assert search.steps == 17


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    best = [0, 2, 2, 0, 2, 3, 3, 0]
    log_probs = np.full((len(best), 4), -5.0)
    log_probs[np.arange(len(best)), best] = 0.0
    assert greedy(log_probs) == [(2, 1), (2, 4), (3, 5)]
    assert greedy(np.zeros((0, 4))) == []


def best_aligned_path(log_probs: np.ndarray, tokens: tuple[int, ...]) -> tuple[int, ...]:
    t, v = log_probs.shape
    paths = [p for p in itertools.product(range(v), repeat=t) if collapse(p) == tokens]
    return max(paths, key=lambda p: sum(log_probs[i, s] for i, s in enumerate(p)))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tokens", [(1,), (1, 2), (2, 2), (1, 2, 1)])
def test_alignment_is_the_best_path_of_the_labels(seed: int, tokens: tuple[int, ...]) -> None:
    log_probs = random_log_probs(6, 3, seed)
    path = best_aligned_path(log_probs, tokens)
    spans = align(log_probs, tokens)
    # rebuild the path from the spans: each token's label inside its span, blank elsewhere
    rebuilt = [0] * 6
    for token, (start, end) in zip(tokens, spans, strict=True):
        assert 0 <= start < end <= 6
        rebuilt[start:end] = [token] * (end - start)
    score = sum(log_probs[i, s] for i, s in enumerate(rebuilt))
    assert score == pytest.approx(sum(log_probs[i, s] for i, s in enumerate(path)), abs=1e-9)


def test_alignment_of_labels_that_cannot_fit_is_spread_evenly() -> None:
    spans = align(np.zeros((3, 4)), (1, 1, 2))  # needs 4 steps (a blank between the 1s)
    assert spans == [(0, 1), (1, 2), (2, 3)]
    assert align(np.zeros((5, 4)), ()) == []


def test_rescoring_weighs_ctc_against_the_decoder() -> None:
    from avsync.runtime.ctc import decode_rescored

    log_probs = random_log_probs(5, 3, 1)
    nbest = prefix_beam_search(log_probs)
    favourite = nbest[-1].tokens  # the decoder's pick: the CTC's least likely hypothesis

    def scorer(hyps: list[tuple[int, ...]]) -> list[float]:
        return [0.0 if h == favourite else -100.0 for h in hyps]

    assert decode_rescored(log_probs, scorer, ctc_weight=1.0).tokens == nbest[0].tokens
    assert decode_rescored(log_probs, scorer, ctc_weight=0.0).tokens == favourite
