"""Platt scaling of the ASD logits, fitted at export on validation clips.

The pairs are the ones the ASD head was trained on (`avsync.models.losses.asd_loss`): a face
with its own audio (label: the step lies inside a spoken word), with another clip's audio
(label 0) and with its own audio shifted by several steps (label 0). The fit minimises the
log-loss of sigmoid(a * logit + b) with Platt's smoothed targets, by Newton's method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from avsync.export.clips import LabelledClip
from avsync.export.parity import torch_outputs

from avsync.models.model import AVSyncModel
from avsync.runtime.model_card import AsdCalibration


def fit_platt(logits: np.ndarray, labels: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """-> (a, b) minimising the log-loss of sigmoid(a * logit + b) against Platt's targets
    ((N+ + 1) / (N+ + 2) for positives, 1 / (N- + 2) for negatives)."""
    x = np.asarray(logits, np.float64)
    y = np.asarray(labels, bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    target = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        w = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([np.sum((p - target) * x), np.sum(p - target)])
        hessian = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        hessian += 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


@torch.no_grad()
def asd_pairs(model: AVSyncModel, clips: Sequence[LabelledClip], chunk_steps: int,
              shift: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """-> (logits (N,), labels (N,) bool) of matched, mismatched and shifted pairs."""
    outputs = torch_outputs(model, clips, chunk_steps, audio=True, video=True)
    logits, labels = [], []
    for i, (clip, out) in enumerate(zip(clips, outputs, strict=True)):
        assert out.visual_embed is not None and out.audio_embed is not None
        assert out.asd_logits is not None
        v, a = torch.from_numpy(out.visual_embed), torch.from_numpy(out.audio_embed)
        logits.append(out.asd_logits)
        labels.append(clip.speech[:len(out.asd_logits)])
        other_audio = outputs[(i + 1) % len(outputs)].audio_embed
        assert other_audio is not None
        t = min(len(v), len(other_audio))
        if len(outputs) > 1 and t:
            logits.append(model.asd_head(v[None, :t], torch.from_numpy(
                other_audio[:t])[None])[0].numpy())
            labels.append(np.zeros(t, bool))
        if len(v) > shift:
            logits.append(model.asd_head(v[None, shift:], a[None, :-shift])[0].numpy())
            labels.append(np.zeros(len(v) - shift, bool))
    return np.concatenate(logits), np.concatenate(labels)


def calibrate_asd(model: AVSyncModel, clips: Sequence[LabelledClip], chunk_steps: int,
                  source: str) -> AsdCalibration:
    """Fit on `clips` (validation data); identity when there is nothing to fit on."""
    logits, labels = asd_pairs(model, clips, chunk_steps)
    if labels.all() or not labels.any():
        return AsdCalibration(fitted_on=None, samples=int(len(labels)))
    a, b = fit_platt(logits, labels)
    return AsdCalibration(a=round(a, 6), b=round(b, 6), fitted_on=source,
                          samples=int(len(labels)))
