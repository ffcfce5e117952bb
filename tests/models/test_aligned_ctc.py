"""Alignment-restricted CTC: a word's tokens may only be emitted where the word is."""

from __future__ import annotations

import torch

from avsync.models.losses import ctc_loss, emission_mask


def test_emission_mask_allows_each_token_from_its_words_middle_to_the_delay() -> None:
    tokens = torch.tensor([[5, 7, 5], [9, 0, 0]])
    lengths = torch.tensor([3, 1])
    spans = torch.tensor([[[2, 6], [6, 8], [10, 12]], [[-1, -1], [-1, -1], [-1, -1]]])
    allowed = emission_mask(tokens, lengths, spans, steps=16, vocab=12, delay=2)
    assert allowed.shape == (2, 16, 12) and allowed[..., 0].all()  # blank everywhere
    where = {v: [t for t in range(16) if allowed[0, t, v]] for v in (5, 7)}
    assert where[5] == [4, 5, 6, 7, 11, 12, 13]  # [2+2, 6+2) and [10+1, 12+2)
    assert where[7] == [7, 8, 9]
    assert not allowed[0, :, [1, 2, 3, 9]].any()  # labels of no word: never
    assert allowed[1].all()  # a clip whose spans are unknown is not restricted


def test_restricted_ctc_penalises_emitting_before_the_word() -> None:
    """Plain CTC scores an early emission as well as a timely one; the restricted loss only
    accepts the timely one."""
    steps, vocab = 12, 6
    tokens, lengths = torch.tensor([[3]]), torch.tensor([1])
    spans = torch.tensor([[[6, 9]]])

    def emitting_at(t: int) -> torch.Tensor:
        logits = torch.full((1, steps, vocab), -6.0)
        logits[0, :, 0] = 6.0
        logits[0, t, 0], logits[0, t, 3] = -6.0, 6.0
        return logits.log_softmax(-1)

    frames = torch.tensor([steps])
    early, timely = emitting_at(1), emitting_at(8)
    plain = [float(ctc_loss(x, frames, tokens, lengths)) for x in (early, timely)]
    assert abs(plain[0] - plain[1]) < 1e-4
    allowed = emission_mask(tokens, lengths, spans, steps, vocab, delay=2)
    restricted = [float(ctc_loss(x, frames, tokens, lengths, allowed)) for x in (early, timely)]
    assert restricted[1] < 0.01 < 5.0 < restricted[0]
    assert torch.isfinite(ctc_loss(early, frames, tokens, lengths, allowed))
