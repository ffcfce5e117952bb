"""The metric code of `avsync eval`, kept apart from models and data so it is tested on
hand-made cases: AVA-ActiveSpeaker average precision, sync offset accuracy, WER/CER rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avsync.runtime.sync import estimate_offset
from avsync.text.metrics import Op, align, corpus_errors


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP exactly as the official AVA-ActiveSpeaker script computes it.

    scores: (N,) one score per face-frame, all pooled; positive: (N,) bool (SPEAKING_AUDIBLE).
    Rows are ranked by score, highest first (ties keep input order); precision at rank k =
    true positives in the first k / k, recall = those / all positives; the VOC all-point AP:
    precision made non-increasing from the right, summed over the steps of recall.
    NaN when there is no positive (AP is undefined).
    """
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be (N,)")
    total = int(positive.sum())
    if total == 0:
        return float("nan")
    hits = np.cumsum(positive[np.argsort(-scores, kind="stable")])
    precision = np.concatenate([[0.0], hits / np.arange(1, len(hits) + 1), [0.0]])
    recall = np.concatenate([[0.0], hits / total, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def sync_accuracy(embeddings: Sequence[tuple[np.ndarray, np.ndarray]],
                  offsets: Sequence[int], tolerance: int = 1, max_shift: int = 15
                  ) -> dict[str, Any]:
    """Offset accuracy over windows with known offsets (positive = audio lags video).

    embeddings: per window (audio (T, E), visual (T, E)); offsets: the planted offset of each.
    The estimate is SyncNet's (`avsync.runtime.sync.estimate_offset`: best of +-max_shift
    steps by mean embedding distance). -> accuracy within +-tolerance steps, exact accuracy,
    mean |error| in steps, mean confidence, and the windows too short to estimate.
    """
    errors, confidences, too_short = [], [], 0
    for (audio, visual), offset in zip(embeddings, offsets, strict=True):
        result = estimate_offset(audio, visual, max_shift=max_shift)
        if result is None:
            too_short += 1
            continue
        errors.append(abs(result.offset_steps - offset))
        confidences.append(result.confidence)
    error = np.asarray(errors, float)
    n = len(errors)
    return {"windows": n, "too_short": too_short, "tolerance_steps": tolerance,
            "accuracy": float(np.mean(error <= tolerance)) if n else float("nan"),
            "exact": float(np.mean(error == 0)) if n else float("nan"),
            "mean_abs_error_steps": float(error.mean()) if n else float("nan"),
            "mean_confidence": float(np.mean(confidences)) if n else float("nan")}


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float | int]:
    """Corpus WER and CER (fractions) of one condition, and the clip and word counts."""
    words = corpus_errors(refs, hyps, "word").counts
    chars = corpus_errors(refs, hyps, "char").counts
    return {"wer": words.rate, "cer": chars.rate, "clips": len(refs), "words": words.ref_length}


def vocabulary_error_rates(refs: Sequence[str], hyps: Sequence[str],
                           vocabulary: frozenset[str]) -> dict[str, Any]:
    """Word error rates of the reference words inside and outside `vocabulary` (the training
    transcripts' words), from the one Levenshtein alignment of each clip.

    Why no insertions in either rate: an inserted word belongs to no reference word, so it
    cannot be called in- or out-of-vocabulary; they are counted apart. A rate is
    (substitutions + deletions of that kind of word) / (reference words of that kind); NaN
    when the test text has no word of that kind."""
    errors = {"in_vocabulary": 0, "oov": 0}
    words = {"in_vocabulary": 0, "oov": 0}
    insertions = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        for pair in align(ref.split(), hyp.split()):
            if pair.ref is None:
                insertions += 1
                continue
            kind = "in_vocabulary" if pair.ref in vocabulary else "oov"
            words[kind] += 1
            errors[kind] += pair.op != Op.CORRECT
    out: dict[str, Any] = {kind: {"wer": errors[kind] / words[kind] if words[kind]
                                  else float("nan"), "words": words[kind]} for kind in words}
    out["insertions"] = insertions
    return out


def attribution_accuracy(words: Sequence[tuple[float, int | None]],
                         turns: Sequence[tuple[float, float, int]]) -> dict[str, Any]:
    """Who said what: the share of recognised words inside a reference turn whose face is the
    turn's speaker.

    words: (the word's middle in seconds, the face track that said it or None); turns:
    (start s, end s, the speaking face's index). Track ids are the recogniser's own numbers,
    so they are matched to the scene's faces one to one by the assignment that agrees most
    (as diarization scoring maps speaker labels); a track id switch therefore costs the
    words after it. Words outside every turn (insertions in silence) are not scored; a word
    said by no face (None) inside a turn counts as wrong."""
    from itertools import permutations

    scored = []
    for middle, face in words:
        speaker = next((who for start, end, who in turns if start <= middle <= end), None)
        if speaker is not None:
            scored.append((face, speaker))
    tracks = sorted({face for face, _ in scored if face is not None})
    speakers = sorted({who for _, _, who in turns})
    best: dict[int, int] = {}
    best_right = -1
    slots = speakers + [-1] * max(0, len(tracks) - len(speakers))  # -1: matches nobody
    if len(tracks) <= 7:  # every one-to-one assignment (7! = 5040)
        candidates = [dict(zip(tracks, chosen, strict=True))
                      for chosen in permutations(slots, len(tracks))]
    else:  # many id switches: the largest agreements first, greedily
        pairs = sorted({(sum(f == t and w == s for f, w in scored), t, s)
                        for t in tracks for s in speakers}, reverse=True)
        greedy: dict[int, int] = {}
        for _, track, speaker in pairs:
            if track not in greedy and speaker not in greedy.values():
                greedy[track] = speaker
        candidates = [{t: greedy.get(t, -1) for t in tracks}]
    for mapping in candidates:
        right = sum(face is not None and mapping[face] == who for face, who in scored)
        if right > best_right:
            best, best_right = mapping, right
    right = max(best_right, 0)
    return {"accuracy": right / len(scored) if scored else float("nan"),
            "words": len(scored), "right": right, "unattributed": sum(f is None for f, _ in scored),
            "tracks": {str(k): v for k, v in best.items()}}
