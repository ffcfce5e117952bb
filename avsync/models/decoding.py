"""Greedy CTC decoding for validation (ids -> text is the tokenizer's job).

The runtime has its own numpy prefix beam search; this is the cheap torch-side view of what
the CTC head says, used for WER during training.
"""

from __future__ import annotations

import torch

from avsync.models.config import BLANK_ID


def greedy_ctc_steps(log_probs: torch.Tensor, lengths: torch.Tensor
                     ) -> list[list[tuple[int, int]]]:
    """log_probs: (B, T, V); lengths: (B,) valid steps -> per clip [(token id, step), ...]:
    the best path with repeats merged and blanks (id 0) removed, and where each token starts."""
    best = log_probs.argmax(-1)
    previous = torch.nn.functional.pad(best[:, :-1], (1, 0), value=BLANK_ID)
    keep = (best != BLANK_ID) & (best != previous)
    keep &= torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None]
    out = []
    for row, mask in zip(best.cpu(), keep.cpu(), strict=True):
        steps = mask.nonzero().squeeze(1)
        out.append(list(zip(row[steps].tolist(), steps.tolist(), strict=True)))
    return out


def greedy_ctc(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """log_probs: (B, T, V); lengths: (B,) valid steps -> token ids per clip, repeats merged
    and blanks (id 0) removed."""
    return [[token for token, _ in clip] for clip in greedy_ctc_steps(log_probs, lengths)]
