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
# Word times (see timed_words). A step is speech when its level stands SPEECH_ABOVE_FLOOR_DB
# over the segment's noise floor (digital silence, below DIGITAL_SILENCE_DB, left out); a
# word's speech may pause MAX_CLOSURE_STEPS (a stop consonant's closure); its tokens are
# emitted up to EMISSION_DELAY_STEPS after it (the alignment-restricted CTC delay the models
# are trained with), and at the earliest on the step after its last sound (EMITTED_AFTER_STEPS).
SPEECH_ABOVE_FLOOR_DB: float = 4.0
DIGITAL_SILENCE_DB: float = -100.0
MAX_CLOSURE_STEPS: int = 2
EMISSION_DELAY_STEPS: int = 6
EMITTED_AFTER_STEPS: int = 1
# Without audio, how far before its spike a word may start: a typical word's length (320 ms;
# chosen on the synthetic corpus by bench/word_times.py: 6 steps left starts 48 ms late).
VIDEO_WORD_STEPS: int = 8


@dataclass(frozen=True)
class Word:
    """One recognised word. Times in ms of stream time; confidence in [0, 1]; face: the face
    track that said it (`SegmentMedia.speaker_of`), None for a voice with no visible
    speaking face (or no video)."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float
    face: int | None = None


def _piece_text(pieces: Sequence[str], token: int, special: set[int]) -> str:
    return "" if token in special else pieces[token]


def tokens_to_text(tokens: Sequence[int], pieces: Sequence[str], special: set[int]) -> str:
    """Ids -> text; `special` ids (blank, bos, eos) are dropped, unk shows as its piece."""
    text = "".join(_piece_text(pieces, t, special) for t in tokens)
    return " ".join(text.replace(WORD_START, " ").split())


def speech_steps(levels: np.ndarray) -> np.ndarray:
    """(T,) bool: the steps whose audio level (dB) stands SPEECH_ABOVE_FLOOR_DB over the
    segment's noise floor: its 10th-percentile level, digital silence (the tail padding
    after a stream's end, a muted input) left out."""
    heard = levels[levels > DIGITAL_SILENCE_DB]
    if not len(heard):
        return np.zeros(len(levels), bool)
    return levels >= np.percentile(heard, 10) + SPEECH_ABOVE_FLOOR_DB


def speech_onset(spike: int, floor: int, speech: np.ndarray) -> int:
    """Where the speech a token emitted at step `spike` belongs to began: from the last speech
    step at most EMISSION_DELAY_STEPS before the spike, back over speech and pauses of at
    most MAX_CLOSURE_STEPS (a stop consonant's closure), no earlier than `floor` (the previous
    word's end). The spike itself when no speech comes before it."""
    k = spike
    while k > max(floor, spike - EMISSION_DELAY_STEPS) and not speech[k - 1]:
        k -= 1
    if k == floor or not speech[k - 1]:
        return spike
    start = k
    while k > floor:
        gap = 0
        while k > floor and not speech[k - 1] and gap <= MAX_CLOSURE_STEPS:
            k, gap = k - 1, gap + 1
        if gap > MAX_CLOSURE_STEPS or k == floor:
            break
        while k > floor and speech[k - 1]:
            k -= 1
        start = k
    return start


def timed_words(tokens: Sequence[int], spans: Sequence[tuple[int, int]],
                log_probs: np.ndarray, pieces: Sequence[str], special: set[int], *,
                offset_step: int, step_ms: int, levels: np.ndarray | None = None
                ) -> list[Word]:
    """Group aligned tokens into words.

    tokens: ids; spans: [start, end) steps of each token within `log_probs` (from
    `ctc.align`); log_probs: (T, V) of the same segment; offset_step: the segment's first
    step in the stream; levels: (T,) audio level per step in dB, or None without audio.
    Its confidence is the geometric mean of its tokens' aligned posteriors.

    Times: a CTC model emits a word's tokens in a spike at the word's END (ours are trained
    to emit between its middle and a few steps after it: alignment-restricted CTC, and they
    emit as late as the evidence needs), so the first token's span marks where the word
    ends, not where it starts; taken as the start it stamped words a word-length late (250 ms
    on the synthetic corpus). A word ends where the last step of its last token's span
    begins (the spike comes on the step after the word's last sound). With audio, it starts
    where the speech before its first token's spike began (`speech_onset`), but not before
    the previous word's end; without audio (lip reading alone) at the previous word's end,
    but at most a word-length (`VIDEO_WORD_STEPS`) before its spike. bench/word_times.py
    measures the result against the synthetic corpus's word timings.
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
    speech = None if levels is None else speech_steps(levels)
    out = []
    floor = 0
    for text, spike, end, scores in words:
        if not text:
            continue
        if speech is not None:
            start = speech_onset(spike, floor, speech)
        else:
            start = max(floor, spike - VIDEO_WORD_STEPS)
        end = max(start + 1, end - EMITTED_AFTER_STEPS)
        floor = end
        confidence = float(np.exp(np.mean(scores))) if scores else 0.0
        out.append(Word(text, (offset_step + start) * step_ms, (offset_step + end) * step_ms,
                        round(min(max(confidence, 0.0), 1.0), 4)))
    return out
