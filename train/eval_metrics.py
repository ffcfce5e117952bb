"""The metric code of `avsync eval`, kept apart from models and data so it is tested on
hand-made cases: AVA-ActiveSpeaker average precision, sync offset accuracy, WER/CER rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avsync.runtime.sync import estimate_offset
from avsync.text.metrics import corpus_errors


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
