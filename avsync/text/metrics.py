"""Word and character error rates from one Levenshtein alignment.

Corpus-level rates are total errors over total reference units (as sclite and every AVSR paper
report them), not a mean of per-utterance rates, so long utterances weigh more. Text is compared
as given: normalise both sides with `avsync.text.normalize_transcript` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from avsync.errors import ConfigError


class Op(StrEnum):
    """One step of an alignment, named as sclite names them."""

    CORRECT = "C"
    SUBSTITUTION = "S"
    DELETION = "D"  # a reference unit the hypothesis lacks
    INSERTION = "I"  # a hypothesis unit the reference lacks


@dataclass(frozen=True)
class AlignedPair:
    op: Op
    ref: str | None  # None for an insertion
    hyp: str | None  # None for a deletion


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference units; with an empty reference, 0.0 if no errors else errors."""
        return self.errors / max(self.ref_length, 1)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(self.substitutions + other.substitutions,
                           self.deletions + other.deletions,
                           self.insertions + other.insertions,
                           self.ref_length + other.ref_length)


@dataclass(frozen=True)
class UtteranceErrors:
    ref: str
    hyp: str
    counts: ErrorCounts
    alignment: tuple[AlignedPair, ...]


@dataclass(frozen=True)
class CorpusErrors:
    counts: ErrorCounts
    utterances: tuple[UtteranceErrors, ...]

    @property
    def rate(self) -> float:
        return self.counts.rate


def align(ref: Sequence[str], hyp: Sequence[str]) -> tuple[AlignedPair, ...]:
    """Minimum-edit alignment of two unit sequences (words or characters).

    Ties prefer, in order, a match/substitution, then a deletion, then an insertion, so the
    alignment is deterministic. O(len(ref) * len(hyp)) time and memory.
    """
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev, r = cost[i], cost[i - 1], ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    return _backtrace(cost, ref, hyp)


def _backtrace(cost: list[list[int]], ref: Sequence[str],
               hyp: Sequence[str]) -> tuple[AlignedPair, ...]:
    pairs: list[AlignedPair] = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            op = Op.CORRECT if ref[i - 1] == hyp[j - 1] else Op.SUBSTITUTION
            pairs.append(AlignedPair(op, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append(AlignedPair(Op.DELETION, ref[i - 1], None))
            i -= 1
        else:
            pairs.append(AlignedPair(Op.INSERTION, None, hyp[j - 1]))
            j -= 1
    return tuple(reversed(pairs))


def count_errors(alignment: Sequence[AlignedPair]) -> ErrorCounts:
    ops = [p.op for p in alignment]
    return ErrorCounts(substitutions=ops.count(Op.SUBSTITUTION), deletions=ops.count(Op.DELETION),
                       insertions=ops.count(Op.INSERTION),
                       ref_length=sum(op is not Op.INSERTION for op in ops))


def _units(text: str, unit: str) -> list[str]:
    if unit == "word":
        return text.split()
    if unit == "char":
        return list(" ".join(text.split()))  # spaces count, runs of them count once
    raise ConfigError(f"unit must be 'word' or 'char', got {unit!r}")


def utterance_errors(ref: str, hyp: str, unit: str = "word") -> UtteranceErrors:
    """Align one reference with one hypothesis by words (`unit="word"`) or characters."""
    alignment = align(_units(ref, unit), _units(hyp, unit))
    return UtteranceErrors(ref, hyp, count_errors(alignment), alignment)


def corpus_errors(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> CorpusErrors:
    """Per-utterance alignments and their summed counts; refs and hyps pair up by position."""
    if len(refs) != len(hyps):
        raise ConfigError(f"got {len(refs)} references but {len(hyps)} hypotheses; "
                          "pass one hypothesis per reference (an empty string for none)")
    details = tuple(utterance_errors(r, h, unit) for r, h in zip(refs, hyps, strict=True))
    total = sum((d.counts for d in details), ErrorCounts())
    return CorpusErrors(total, details)


def wer(refs: Sequence[str] | str, hyps: Sequence[str] | str) -> float:
    """Corpus word error rate: (S + D + I) / reference words. A single string is one utterance."""
    return corpus_errors(*_as_lists(refs, hyps), unit="word").rate


def cer(refs: Sequence[str] | str, hyps: Sequence[str] | str) -> float:
    """Corpus character error rate over characters including single spaces between words."""
    return corpus_errors(*_as_lists(refs, hyps), unit="char").rate


def _as_lists(refs: Sequence[str] | str,
              hyps: Sequence[str] | str) -> tuple[Sequence[str], Sequence[str]]:
    return ([refs] if isinstance(refs, str) else refs), ([hyps] if isinstance(hyps, str) else hyps)
