"""The losses and metrics of the contrastive-generative objective, as plain functions.

Conventions: embeddings are (B, T, E) unit-norm float32; `valid` is (B, T) bool (step inside
the clip); every loss returns a scalar that is differentiable even when nothing is selected
(then it is 0, so a batch of silent or one-step clips never breaks training).
"""

from __future__ import annotations

import torch
from torch import nn

from avsync.models.config import BLANK_ID
from avsync.models.decoder import IGNORE_INDEX

Metrics = dict[str, torch.Tensor]


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0


def ctc_loss(log_probs: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor,
             token_lengths: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """log_probs: (B, T, V) float32; lengths: (B,) steps; tokens: (B, U) padded with 0;
    token_lengths: (B,) -> mean over clips of CTC loss per target token (blank 0).
    allowed: (B, >= T, V) bool from `emission_mask` (alignment-restricted CTC); None: plain."""
    log_probs = log_probs.float()
    if allowed is not None:
        log_probs = log_probs.masked_fill(~allowed[:, :log_probs.shape[1]], DISALLOWED)
    return nn.functional.ctc_loss(
        log_probs.transpose(0, 1), tokens, lengths, token_lengths, blank=BLANK_ID,
        reduction="mean", zero_infinity=True)


DISALLOWED: float = -1e4  # log-probability of a label CTC may not emit at a step (not -inf: no NaN)


def emission_mask(tokens: torch.Tensor, token_lengths: torch.Tensor, spans: torch.Tensor,
                  steps: int, vocab: int, delay: int) -> torch.Tensor:
    """Where each token may be emitted -> (B, T, V) bool (blank always).

    A word's tokens may be emitted from the middle of the word until `delay` steps after its
    end, nowhere else. Plain CTC is free to put a label anywhere, and with whole-utterance
    attention in the mix the tiny models learnt to emit a whole GRID sentence in the first
    steps, before any word was spoken: fine with the whole clip in view, a blind guess in
    160 ms chunks (docs/training.md, "The streaming gap"). Restricted to where the word is (as
    Ar-CTC/Ar-RNN-T restrict alignments), a step's label has to come from what it has heard
    and seen. Clips with any token of unknown span (-1) are not restricted.
    """
    b, u = tokens.shape
    valid = torch.arange(u, device=tokens.device)[None, :] < token_lengths[:, None]  # (B, U)
    start, end = spans[..., 0], spans[..., 1]
    unknown = ((start < 0) & valid).any(dim=1)  # (B,)
    first = start + (end - start) // 2
    t = torch.arange(steps, device=tokens.device)[None, None, :]
    inside = (t >= first[..., None]) & (t < (end + delay)[..., None]) & valid[..., None]
    one_hot = nn.functional.one_hot(tokens.clamp(min=0), vocab).float()  # (B, U, V)
    allowed = torch.einsum("but,buv->btv", inside.float(), one_hot) > 0
    allowed[..., BLANK_ID] = True
    allowed[unknown] = True
    return allowed


def attention_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """logits: (B, U, V); targets: (B, U) with IGNORE_INDEX padding ->
    (label-smoothed cross-entropy per token, token accuracy)."""
    flat_logits, flat_targets = logits.float().flatten(0, 1), targets.flatten()
    kept = flat_targets != IGNORE_INDEX
    if not bool(kept.any()):
        return _zero(logits), torch.zeros((), device=logits.device)
    loss = nn.functional.cross_entropy(flat_logits[kept], flat_targets[kept],
                                       label_smoothing=label_smoothing)
    accuracy = (flat_logits[kept].argmax(-1) == flat_targets[kept]).float().mean()
    return loss, accuracy.detach()


def select_steps(mask: torch.Tensor, max_steps: int, generator: torch.Generator | None
                 ) -> torch.Tensor:
    """Flat indices of the True entries of mask: (B, T), at most max_steps of them (random)."""
    index = mask.flatten().nonzero().squeeze(1)
    if index.numel() > max_steps:
        keep = torch.randperm(index.numel(), generator=generator)[:max_steps]
        index = index[keep.to(index.device)].sort().values
    return index


def info_nce(audio: torch.Tensor, visual: torch.Tensor, anchors: torch.Tensor,
             scale: torch.Tensor, *, max_steps: int, generator: torch.Generator | None
             ) -> torch.Tensor:
    """Symmetric frame-level InfoNCE between audio and visual sync embeddings.

    audio, visual: (B, T, E) unit-norm; anchors: (B, T) bool steps that take part; scale: ()
    1/temperature. The positive of a visual step is the audio of the same step of the same
    clip; its negatives are every other selected step: other steps of the same clip (temporal
    hard negatives) and steps of the other clips. Averaged over both directions.
    """
    index = select_steps(anchors, max_steps, generator)
    if index.numel() < 2:
        return _zero(audio) + _zero(visual)
    a = audio.flatten(0, 1)[index].float()
    v = visual.flatten(0, 1)[index].float()
    logits = scale * (v @ a.T)  # (N, N): visual rows, audio columns
    target = torch.arange(index.numel(), device=logits.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target)
                  + nn.functional.cross_entropy(logits.T, target))


def shift_similarities(audio: torch.Tensor, visual: torch.Tensor, valid: torch.Tensor,
                       max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step similarity of visual step t with audio step t + d, d in [-max_shift, max_shift].

    -> (sims (B, T, 2*max_shift+1) float32, ok (B, T, 2*max_shift+1) bool: both steps valid).
    Sign convention: shift d > 0 pairs a frame with *later* audio (audio lags video by d steps).
    """
    b, t, _ = audio.shape
    shifts = torch.arange(-max_shift, max_shift + 1, device=audio.device)
    source = torch.arange(t, device=audio.device)[:, None] + shifts[None, :]  # (T, S)
    inside = (source >= 0) & (source < t)
    source = source.clamp(0, max(t - 1, 0))
    full = visual.float() @ audio.float().transpose(1, 2)  # (B, T visual, T audio)
    sims = full.gather(2, source[None].expand(b, -1, -1))
    ok = valid[:, :, None] & inside[None] & valid[:, source]
    return sims, ok


@torch.no_grad()
def sync_accuracy(audio: torch.Tensor, visual: torch.Tensor, valid: torch.Tensor,
                  max_shift: int) -> Metrics:
    """Does the true alignment win among the +-max_shift shifts?

    sync_top1: per step (visual step t against audio t+d); sync_clip_acc: per clip, with the
    similarity of each shift averaged over the clip's steps (what an offset estimator does).
    """
    sims, ok = shift_similarities(audio, visual, valid, max_shift)
    floor = torch.finfo(sims.dtype).min
    step_best = sims.masked_fill(~ok, floor).argmax(-1)
    per_step = (step_best == max_shift)[valid].float()
    mean_by_shift = (sims * ok).sum(1) / ok.sum(1).clamp(min=1)
    mean_by_shift = mean_by_shift.masked_fill(ok.sum(1) == 0, floor)
    clips = valid.any(1)
    per_clip = (mean_by_shift.argmax(-1) == max_shift)[clips].float()
    nan = torch.tensor(float("nan"), device=audio.device)
    return {"sync_top1": per_step.mean() if per_step.numel() else nan,
            "sync_clip_acc": per_clip.mean() if per_clip.numel() else nan}


@torch.no_grad()
def modality_gap(audio: torch.Tensor, visual: torch.Tensor, valid: torch.Tensor
                 ) -> torch.Tensor:
    """Euclidean distance between the audio and visual embedding centroids over valid steps."""
    n = valid.sum().clamp(min=1)
    weights = valid[..., None].float()
    return ((audio.float() * weights).sum((0, 1)) / n
            - (visual.float() * weights).sum((0, 1)) / n).norm()


def _bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return _zero(logits)
    return nn.functional.binary_cross_entropy_with_logits(logits[mask], labels[mask].float())


def shifted(x: torch.Tensor, valid: torch.Tensor, shift: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, T, E) moved by shift: (B,) steps (y[t] = x[t - shift]) -> (y, still-valid mask)."""
    t = x.shape[1]
    source = torch.arange(t, device=x.device)[None, :] - shift[:, None]
    inside = (source >= 0) & (source < t)
    source = source.clamp(0, max(t - 1, 0))
    y = x.gather(1, source[..., None].expand(-1, -1, x.shape[-1]))
    return y, valid & inside & valid.gather(1, source)


def asd_loss(head: nn.Module, visual: torch.Tensor, audio: torch.Tensor,
             speaking: torch.Tensor, valid: torch.Tensor, shift: torch.Tensor,
             *, mismatch_weight: float, shift_weight: float,
             matched: torch.Tensor | None = None) -> tuple[torch.Tensor, Metrics]:
    """Active-speaker BCE on three kinds of pairs (B, T, E) each:

    matched (a face with its own audio; label = speaking (B, T) bool), mismatched (face of clip
    i with the audio of clip i+1; label 0) and shifted (face with its own audio moved by
    shift: (B,) steps, |shift| >= a few; label 0). Losses are weighted means per kind.
    matched: the (B, T) logits of the matched pairs when the forward pass made them already.
    """
    if matched is None:
        matched = head(visual, audio)
    loss = _bce(matched, speaking, valid)
    total_weight = 1.0
    if visual.shape[0] > 1 and mismatch_weight > 0:
        other = torch.roll(torch.arange(visual.shape[0], device=visual.device), 1)
        mask = valid & valid[other]
        logits = head(visual, audio[other])
        loss = loss + mismatch_weight * _bce(logits, torch.zeros_like(speaking), mask)
        total_weight += mismatch_weight
    if shift_weight > 0:
        moved, mask = shifted(audio, valid, shift)
        logits = head(visual, moved)
        loss = loss + shift_weight * _bce(logits, torch.zeros_like(speaking), mask)
        total_weight += shift_weight
    with torch.no_grad():
        correct = ((matched > 0) == speaking)[valid].float()
        accuracy = correct.mean() if correct.numel() else torch.zeros((), device=valid.device)
    return loss / total_weight, {"asd_acc": accuracy}
