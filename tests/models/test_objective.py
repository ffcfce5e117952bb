"""The contrastive-generative objective: every loss learns, and the parts do what they say."""

from __future__ import annotations

import math

import pytest
import torch

from avsync.models.config import BOS_ID, EOS_ID, ModelConfig
from avsync.models.decoder import IGNORE_INDEX, teacher_forcing
from avsync.models.decoding import greedy_ctc, greedy_ctc_steps
from avsync.models.losses import info_nce, modality_gap, shifted, sync_accuracy
from avsync.models.model import AVSyncModel
from avsync.models.objective import ContrastiveGenerativeObjective, ObjectiveConfig
from avsync.models.toybatch import toy_batch

LOSSES = ("loss_ctc", "loss_attention", "loss_sync", "loss_asd")


def _evaluate(model: AVSyncModel, objective: ContrastiveGenerativeObjective,
              batch: dict[str, torch.Tensor]) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        _, metrics = objective(model, batch, chunk_size=2,
                               generator=torch.Generator().manual_seed(7))
    model.train()
    return {k: float(v) for k, v in metrics.items()}


def test_each_loss_decreases_on_a_tiny_overfit_batch(debug_config: ModelConfig,
                                                     debug_objective: ObjectiveConfig) -> None:
    torch.manual_seed(0)
    model = AVSyncModel(debug_config)
    objective = ContrastiveGenerativeObjective(debug_objective)
    objective.init_model(model)
    batch = toy_batch(4, 24, debug_config.visual_frontend.roi_stored, debug_config.vocab_size,
                      seed=1, min_steps=16)
    before = _evaluate(model, objective, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        loss, metrics = objective(model, batch, chunk_size=objective.sample_chunk_size(generator),
                                  generator=generator)
        assert all(math.isfinite(float(v)) for v in metrics.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = _evaluate(model, objective, batch)
    for name in LOSSES:
        assert after[name] < 0.85 * before[name], (name, before[name], after[name])
    assert after["sync_top1"] > before["sync_top1"] + 0.3
    assert after["attention_acc"] > 0.5
    # the decoder now prefers the true transcript of a clip to a scrambled one
    model.eval()
    with torch.no_grad():
        out = model(batch["audio"][:1], batch["audio_lengths"][:1], batch["video"][:1],
                    batch["video_lengths"][:1], chunk_size=None)
    truth = batch["tokens"][0, :int(batch["token_lengths"][0])].tolist()
    scores = model.decoder.score([truth, truth[::-1], truth[1:]], out.fusion.memory)
    assert scores.shape == (3,) and scores[0] > scores[1] and scores[0] > scores[2]


def test_metrics_are_named_finite_and_reproducible(debug_model: AVSyncModel,
                                                    debug_config: ModelConfig,
                                                    debug_objective: ObjectiveConfig) -> None:
    objective = ContrastiveGenerativeObjective(debug_objective)
    objective.init_model(debug_model)
    batch = toy_batch(3, 12, debug_config.visual_frontend.roi_size, debug_config.vocab_size,
                      seed=2, min_steps=5)
    debug_model.train()
    runs = [objective(debug_model, batch, chunk_size=None, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    (total, metrics), (total_again, _) = runs
    expected = {"loss", *LOSSES, "attention_acc", "asd_acc", "sync_top1", "sync_clip_acc",
                "modality_gap", "temperature"}
    assert expected <= set(metrics)
    assert all(v.ndim == 0 and torch.isfinite(v) for v in metrics.values())
    assert torch.equal(total, total_again)
    c = debug_objective
    weighted = sum(w * metrics[n] for w, n in zip(
        (c.ctc_weight, c.attention_weight, c.sync_weight, c.asd_weight), LOSSES, strict=True))
    assert torch.allclose(total, weighted)
    assert metrics["temperature"] == pytest.approx(c.temperature_init, rel=1e-5)


def test_modality_dropout_time_masks_and_chunk_sampling(debug_objective: ObjectiveConfig
                                                        ) -> None:
    objective = ContrastiveGenerativeObjective(debug_objective)
    g = torch.Generator().manual_seed(0)
    audio, video = objective.presence(4000, None, g, torch.device("cpu"))
    both = float(((audio == 1) & (video == 1)).float().mean())
    c = debug_objective
    assert both == pytest.approx(c.p_av, abs=0.03)
    assert float(((audio == 1) & (video == 0)).float().mean()) == pytest.approx(c.p_audio_only,
                                                                             abs=0.03)
    assert not bool(((audio == 0) & (video == 0)).any())
    audio, video = objective.presence(3, "video", g, torch.device("cpu"))
    assert audio.tolist() == [0, 0, 0] and video.tolist() == [1, 1, 1]
    lengths = torch.tensor([10, 4, 0])
    keep = objective.time_mask(lengths, 12, g)
    assert keep.shape == (3, 12) and torch.equal(keep[:, 10:], torch.ones(3, 2))
    assert int((keep == 0).sum(1).max()) <= c.time_mask_count * c.time_mask_max_steps
    seen = {objective.sample_chunk_size(g) for _ in range(200)}
    assert seen == set(c.chunk_sizes)


def test_info_nce_and_sync_metrics_on_known_embeddings() -> None:
    g = torch.Generator().manual_seed(0)
    visual = torch.nn.functional.normalize(torch.randn(2, 40, 16, generator=g), dim=-1)
    valid = torch.ones(2, 40, dtype=torch.bool)
    scale = torch.tensor(20.0)
    aligned = info_nce(visual, visual, valid, scale, max_steps=4096, generator=g)
    scrambled = info_nce(visual.flip(1), visual, valid, scale, max_steps=4096, generator=g)
    assert aligned < 0.5 < scrambled
    assert sync_accuracy(visual, visual, valid, 15)["sync_top1"] == 1.0
    # audio lagging video by 3 steps: audio[t + 3] = visual[t]; the true step (0) now loses
    lagging, _ = shifted(visual, valid, torch.tensor([3, 3]))
    assert sync_accuracy(lagging, visual, valid, 15)["sync_clip_acc"] == 0.0
    assert float(modality_gap(visual, visual, valid)) == 0.0
    assert float(modality_gap(visual, -visual, valid)) > 0.0
    few = info_nce(visual, visual, valid, scale, max_steps=10, generator=g)
    assert torch.isfinite(few)


def test_teacher_forcing_and_greedy_ctc() -> None:
    tokens = torch.tensor([[5, 6, 7], [8, 0, 0]])
    inputs, targets, lengths = teacher_forcing(tokens, torch.tensor([3, 1]))
    assert inputs.tolist() == [[BOS_ID, 5, 6, 7], [BOS_ID, 8, 0, 0]]
    assert targets.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, IGNORE_INDEX, IGNORE_INDEX]]
    assert lengths.tolist() == [4, 2]
    best = torch.tensor([[0, 5, 5, 0, 5, 6, 6, 0], [7, 7, 0, 0, 9, 9, 9, 9]])
    log_probs = torch.log_softmax(torch.nn.functional.one_hot(best, 10).float() * 5, dim=-1)
    assert greedy_ctc(log_probs, torch.tensor([8, 5])) == [[5, 5, 6], [7, 9]]
    assert greedy_ctc_steps(log_probs, torch.tensor([8, 5]))[0] == [(5, 1), (5, 4), (6, 5)]


def test_modality_ctc_heads_exist_only_when_configured_and_learn(
        debug_config: ModelConfig, debug_objective: ObjectiveConfig) -> None:
    """The training-only CTC heads on each modality encoder: built only when the model config
    asks for them (heads.audio_ctc, heads.visual_ctc), trained by their objective weights, and
    a weight without its head is a config error that says what to set."""
    import dataclasses

    from avsync.errors import ConfigError

    batch = toy_batch(4, 24, debug_config.visual_frontend.roi_stored, debug_config.vocab_size,
                      seed=1, min_steps=16)
    plain = AVSyncModel(debug_config)
    assert plain.audio_ctc is None and plain.visual_ctc is None
    assert "loss_audio_ctc" not in _evaluate(plain, ContrastiveGenerativeObjective(
        debug_objective), batch)
    weights = dataclasses.replace(debug_objective, audio_ctc_weight=0.5, visual_ctc_weight=0.5)
    with pytest.raises(ConfigError, match="heads.audio_ctc: true"):
        weights.check_model(debug_config)

    torch.manual_seed(0)
    config = dataclasses.replace(debug_config, heads=dataclasses.replace(
        debug_config.heads, audio_ctc=True, visual_ctc=True))
    weights.check_model(config)
    model = AVSyncModel(config)
    objective = ContrastiveGenerativeObjective(weights)
    before = _evaluate(model, objective, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        loss, _ = objective(model, batch, chunk_size=None, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = _evaluate(model, objective, batch)
    for name in ("loss_audio_ctc", "loss_visual_ctc"):
        assert after[name] < 0.85 * before[name], (name, before[name], after[name])
