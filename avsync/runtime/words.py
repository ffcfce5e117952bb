"""Token ids -> text and timed words, from the card's sentencepiece pieces alone.

A piece starting with "▁" (U+2581) begins a word, as sentencepiece writes them; joining the
pieces and turning "▁" into spaces is what `SentencePieceProcessor.decode` does for avsync's
normalised transcripts (a test checks it), so the runtime needs no tokenizer library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WORD_START: str = "\u2581"


@dataclass(frozen=True)
class Word:
    """One recognised word. Times in ms of stream time; confidence in [0, 1]."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float


def _piece_text(pieces: Sequence[str], token: int, special: set[int]) -> str:
    return "" if token in special else pieces[token]


def tokens_to_text(tokens: Sequence[int], pieces: Sequence[str], special: set[int]) -> str:
    """Ids -> text; `special` ids (blank, bos, eos) are dropped, unk shows as its piece."""
    text = "".join(_piece_text(pieces, t, special) for t in tokens)
    return " ".join(text.replace(WORD_START, " ").split())


def timed_words(tokens: Sequence[int], spans: Sequence[tuple[int, int]],
                log_probs: np.ndarray, pieces: Sequence[str], special: set[int], *,
                offset_step: int, step_ms: int) -> list[Word]:
    """Group aligned tokens into words.

    tokens: ids; spans: [start, end) steps of each token within `log_probs` (from
    `ctc.align`); log_probs: (T, V) of the same segment; offset_step: the segment's first
    step in the stream. A word runs from its first token's start to its last token's end;
    its confidence is the geometric mean of its tokens' aligned posteriors.
    """
    words: list[tuple[str, int, int, list[float]]] = []
    for token, (start, end) in zip(tokens, spans, strict=True):
        piece = _piece_text(pieces, token, special)
        scores = [float(log_probs[t, token]) for t in range(start, end)]
        if piece.startswith(WORD_START) or not words:
            words.append((piece.lstrip(WORD_START), start, end, scores))
        else:
            text, first, _, previous = words[-1]
            words[-1] = (text + piece, first, end, previous + scores)
    out = []
    for text, start, end, scores in words:
        if not text:
            continue
        confidence = float(np.exp(np.mean(scores))) if scores else 0.0
        out.append(Word(text, (offset_step + start) * step_ms, (offset_step + end) * step_ms,
                        round(min(max(confidence, 0.0), 1.0), 4)))
    return out
