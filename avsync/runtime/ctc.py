"""CTC decoding in numpy: greedy, prefix beam search (incremental), and forced alignment.

Log-probabilities are (T, V) float arrays over the vocabulary with the blank at `blank`
(id 0 in avsync). The prefix beam search keeps, for each distinct label prefix, the
probability of all paths that collapse to it ending in a blank and ending in a non-blank
(Graves 2012; Hannun et al. 2014), so repeated labels separated by a blank are counted right.
It runs step by step (`PrefixBeamSearch.advance`), which is what a streaming recogniser needs;
`prefix_beam_search` is the one-shot form. Word timings come from `align`: the Viterbi path
of the chosen labels through the same log-probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

NEG_INF: float = -math.inf
Prefix = tuple[int, ...]
# LM states a search keeps before it drops those of prefixes that are neither beams nor their
# one-label extensions (which the next steps propose again and again: keeping them is the saving)
LM_STATES_KEPT: int = 2048


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def greedy(log_probs: np.ndarray, blank: int = 0) -> list[tuple[int, int]]:
    """Best path, repeats merged and blanks removed: [(token id, step where it starts), ...].

    log_probs: (T, V) -> tokens in order; an empty list for T = 0.
    """
    if len(log_probs) == 0:
        return []
    best = np.asarray(log_probs).argmax(axis=-1)
    previous = np.concatenate([[blank], best[:-1]])
    keep = (best != blank) & (best != previous)
    return [(int(best[t]), int(t)) for t in np.flatnonzero(keep)]


@dataclass(frozen=True)
class Hypothesis:
    tokens: Prefix
    log_prob: float  # log P(labels | input) over every path that collapses to them (+ the LM's)


class Fusion(Protocol):
    """A language model's contribution to a hypothesis's score (`avsync.runtime.lm`), kept as
    a state per prefix and extended one label at a time."""

    def start(self) -> Any: ...

    def extend(self, state: Any, token: int) -> Any: ...

    def prefix_score(self, state: Any) -> float: ...

    def final_score(self, state: Any) -> float: ...


class PrefixBeamSearch:
    """Incremental CTC prefix beam search.

    beam: prefixes kept after each step; token_beam: the most likely labels of a step that
    may extend a prefix (the prefix's own last label is always tried too, so a repeat is never
    pruned away); prune: labels more than `prune` nats below the step's best are skipped.
    With beam and token_beam at least the number of label sequences and V, and prune = inf,
    the search is exact (a test checks it against brute force). fusion: a language model whose
    score of each prefix's completed words ranks the beams (shallow fusion); the beams' own
    probabilities stay CTC's.
    """

    def __init__(self, beam: int = 8, token_beam: int = 8, prune: float = 10.0,
                 blank: int = 0, fusion: Fusion | None = None) -> None:
        self.beam, self.token_beam, self.prune, self.blank = beam, token_beam, prune, blank
        self.fusion = fusion
        # the LM's state and prefix score of each beam (and of each candidate while a step runs)
        self._lm_states: dict[Prefix, tuple[Any, float]] = {}
        if fusion is not None:
            self._lm_states[()] = (fusion.start(), 0.0)
        self.steps = 0
        # prefix -> (log P(ending in blank), log P(ending in non-blank))
        self._beams: dict[Prefix, tuple[float, float]] = {(): (0.0, NEG_INF)}

    def advance(self, log_probs: np.ndarray) -> None:
        """Consume (C, V) log-probabilities of the next C steps."""
        for row in np.asarray(log_probs, dtype=np.float64):
            self._step(row)
            self.steps += 1

    def _candidates(self, row: np.ndarray) -> list[int]:
        k = min(self.token_beam, row.shape[0])
        top = np.argpartition(-row, k - 1)[:k] if k < row.shape[0] else np.arange(row.shape[0])
        floor = row.max() - self.prune
        return [int(c) for c in top if c != self.blank and row[c] >= floor]

    def _step(self, row: np.ndarray) -> None:
        # Python floats (the same numbers, faster to index); an entry's other half is left as
        # it is where the sum would add a log-probability of zero (-inf)
        values = row.tolist()
        blank_lp = values[self.blank]
        candidates = self._candidates(row)
        nxt: dict[Prefix, list[float]] = {}
        for prefix, (p_blank, p_label) in self._beams.items():
            total = _logaddexp(p_blank, p_label)
            entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            entry[0] = _logaddexp(entry[0], total + blank_lp)
            last = prefix[-1] if prefix else None
            tried = candidates if last is None or last in candidates else [*candidates, last]
            for c in tried:
                lp = values[c]
                if c == last:  # the label continues (no new token)
                    entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
                    entry[1] = _logaddexp(entry[1], p_label + lp)
                    longer, label_part = prefix + (c,), p_blank + lp  # a new token after a blank
                else:
                    longer, label_part = prefix + (c,), total + lp
                entry = nxt.setdefault(longer, [NEG_INF, NEG_INF])
                entry[1] = _logaddexp(entry[1], label_part)
        lm = self._lm if self.fusion is not None else None
        scored = [(prefix, p, _logaddexp(*p) + lm(prefix) if lm else _logaddexp(*p))
                  for prefix, p in nxt.items()]
        ranked = sorted((x for x in scored if x[2] > NEG_INF), key=lambda x: (-x[2], x[0]))
        self._beams = {prefix: (p[0], p[1]) for prefix, p, _ in ranked[:self.beam]}
        if lm and len(self._lm_states) > LM_STATES_KEPT:  # a bound for long segments
            beams = self._beams
            self._lm_states = {prefix: entry for prefix, entry in self._lm_states.items()
                               if prefix in beams or prefix[:-1] in beams}

    def _lm(self, prefix: Prefix) -> float:
        entry = self._lm_states.get(prefix)
        if entry is None:
            assert self.fusion is not None
            state = self.fusion.extend(self._lm_states[prefix[:-1]][0], prefix[-1])
            entry = self._lm_states[prefix] = (state, self.fusion.prefix_score(state))
        return entry[1]

    def nbest(self, n: int | None = None) -> list[Hypothesis]:
        """Hypotheses by decreasing log-probability (with the LM's score of all their words
        and the sentence end, when fused; deterministic order on ties)."""
        fusion, states = self.fusion, self._lm_states
        final = ((lambda prefix: fusion.final_score(states[prefix][0])) if fusion is not None
                 else (lambda _: 0.0))
        ranked = sorted(((prefix, _logaddexp(*p) + final(prefix))
                         for prefix, p in self._beams.items()), key=lambda kv: (-kv[1], kv[0]))
        return [Hypothesis(prefix, lp) for prefix, lp in ranked[:n]]

    @property
    def best(self) -> Hypothesis:
        if self.fusion is None:  # `_step` keeps the beams ranked as `nbest` ranks them
            prefix, p = next(iter(self._beams.items()))
            return Hypothesis(prefix, _logaddexp(*p))
        return self.nbest(1)[0]


def prefix_beam_search(log_probs: np.ndarray, beam: int = 8, token_beam: int = 8,
                       prune: float = 10.0, blank: int = 0, fusion: Fusion | None = None
                       ) -> list[Hypothesis]:
    """One-shot search over (T, V) log-probabilities -> n-best (up to `beam`) hypotheses."""
    search = PrefixBeamSearch(beam, token_beam, prune, blank, fusion)
    search.advance(log_probs)
    return search.nbest()


def align(log_probs: np.ndarray, tokens: Sequence[int], blank: int = 0
          ) -> list[tuple[int, int]]:
    """Viterbi forced alignment: for each token, the steps [start, end) its label occupies on
    the most likely path that collapses to `tokens`.

    log_probs: (T, V); tokens: ids without blanks. Needs T >= len(tokens) + repeats; when the
    labels cannot fit (a degenerate case), tokens are spread evenly instead.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    t_len, n = lp.shape[0], len(tokens)
    if n == 0:
        return []
    repeats = sum(1 for a, b in zip(tokens, tokens[1:], strict=False) if a == b)
    if t_len < n + repeats:
        edges = np.linspace(0, t_len, n + 1).round().astype(int)
        return [(int(edges[i]), int(max(edges[i + 1], edges[i] + 1))) for i in range(n)]
    labels = np.full(2 * n + 1, blank)
    labels[1::2] = tokens
    s_len = labels.shape[0]
    emit = lp[:, labels]  # (T, S)
    # a state may skip the blank before it when its label differs from the one two back
    skip = np.zeros(s_len, bool)
    skip[3::2] = labels[3::2] != labels[1:-2:2]
    score = np.full(s_len, NEG_INF)
    score[:2] = emit[0, :2]
    back = np.zeros((t_len, s_len), np.int8)
    for t in range(1, t_len):
        stay = score
        step = np.concatenate([[NEG_INF], score[:-1]])
        jump = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]), NEG_INF)
        stacked = np.stack([stay, step, jump])
        choice = stacked.argmax(axis=0)
        score = stacked[choice, np.arange(s_len)] + emit[t]
        back[t] = choice
    state = s_len - 1 if score[-1] >= score[-2] else s_len - 2
    path = np.empty(t_len, int)
    for t in range(t_len - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    spans = []
    for k in range(n):
        steps = np.flatnonzero(path == 2 * k + 1)
        spans.append((int(steps[0]), int(steps[-1]) + 1))
    return spans


def rescore(nbest: Sequence[Hypothesis], decoder_scores: Sequence[float] | np.ndarray,
            ctc_weight: float) -> Hypothesis:
    """The n-best winner under ctc_weight * CTC + (1 - ctc_weight) * decoder log-probability
    (WeNet's attention rescoring); the first of equals wins."""
    scores = [ctc_weight * h.log_prob + (1.0 - ctc_weight) * float(d)
              for h, d in zip(nbest, decoder_scores, strict=True)]
    return nbest[int(np.argmax(scores))]


def decode_rescored(log_probs: np.ndarray,
                    scorer: Callable[[list[Prefix]], Sequence[float] | np.ndarray],
                    beam: int = 8, ctc_weight: float = 0.5, fusion: Fusion | None = None
                    ) -> Hypothesis:
    """Whole-utterance decoding: prefix beam search over (T, V) log-probs (fused with a
    language model when given), then `rescore` of the n-best with `scorer(token lists) ->
    decoder log-probabilities` (skipped when ctc_weight is 1 or there is one hypothesis)."""
    nbest = prefix_beam_search(log_probs, beam=beam, fusion=fusion)
    if ctc_weight >= 1.0 or len(nbest) == 1:
        return nbest[0]
    return rescore(nbest, scorer([h.tokens for h in nbest]), ctc_weight)
