"""`AVSyncModel.forward`: the one forward pass, with either modality absent, and the encoding
validation reuses across its three modality mixes."""

from __future__ import annotations

import pytest
import torch

from avsync.models.config import ModelConfig
from avsync.models.decoder import teacher_forcing
from avsync.models.model import MODALITIES, AVSyncModel, presence
from avsync.models.toybatch import toy_batch


def _batch(config: ModelConfig) -> dict[str, torch.Tensor]:
    return toy_batch(3, 13, config.visual_frontend.roi_size, config.vocab_size, seed=4,
                     min_steps=6)


@torch.no_grad()
def test_an_absent_modality_reads_as_zeros_flagged_absent(debug_model: AVSyncModel,
                                                           debug_config: ModelConfig) -> None:
    b = _batch(debug_config)
    both = debug_model(b["audio"], b["audio_lengths"], b["video"], b["video_lengths"],
                       chunk_size=2)
    assert both.audio is not None and both.visual is not None
    assert both.asd_logits is not None and both.asd_logits.shape == (3, 13)
    assert torch.equal(both.asd_logits, debug_model.asd_head(both.visual.embeddings,
                                                             both.audio.embeddings))
    for modality in ("audio", "video"):
        a, v = presence(modality, 3)
        flagged = debug_model(b["audio"], b["audio_lengths"], b["video"], b["video_lengths"],
                              chunk_size=2, audio_present=a, video_present=v)
        alone = debug_model(b["audio"] if modality == "audio" else None,
                            b["audio_lengths"] if modality == "audio" else None,
                            b["video"] if modality == "video" else None,
                            b["video_lengths"] if modality == "video" else None, chunk_size=2)
        assert torch.equal(alone.fusion.log_probs, flagged.fusion.log_probs), modality
        assert torch.equal(alone.fusion.lengths, b["video_lengths"])
        assert alone.asd_logits is None
        assert (alone.audio is None) == (modality == "video")
        assert (alone.visual is None) == (modality == "audio")
    with pytest.raises(ValueError, match="audio, video or both"):
        debug_model(chunk_size=2)
    with pytest.raises(ValueError, match="absent"):
        debug_model(video=b["video"], video_lengths=b["video_lengths"], chunk_size=2,
                    audio_present=torch.ones(3))


@torch.no_grad()
def test_one_encoding_fused_three_ways_equals_three_forward_passes(
        debug_model: AVSyncModel, debug_config: ModelConfig) -> None:
    """What validation does: each modality encoder once, the fusion once per mix."""
    b = _batch(debug_config)
    inputs, _, input_lengths = teacher_forcing(b["tokens"], b["token_lengths"])
    encoded = debug_model.encode(b["audio"], b["audio_lengths"], b["video"], b["video_lengths"],
                                 chunk_size=None)
    for modality in MODALITIES:
        a, v = presence(modality, 3)
        reused = debug_model.forward_encoded(encoded, chunk_size=None, audio_present=a,
                                             video_present=v, decoder_tokens=inputs,
                                             decoder_lengths=input_lengths)
        fresh = debug_model(b["audio"], b["audio_lengths"], b["video"], b["video_lengths"],
                            chunk_size=None, audio_present=a, video_present=v,
                            decoder_tokens=inputs, decoder_lengths=input_lengths)
        for name in ("log_probs", "memory", "lengths"):
            assert torch.equal(getattr(reused.fusion, name), getattr(fresh.fusion, name))
        assert reused.decoder_logits is not None and fresh.decoder_logits is not None
        assert reused.decoder_logits.shape == (3, inputs.shape[1], debug_config.vocab_size)
        assert torch.equal(reused.decoder_logits, fresh.decoder_logits)


@torch.no_grad()
def test_a_stream_that_starts_late_is_put_back_on_the_clips_time_axis(
        debug_model: AVSyncModel, debug_config: ModelConfig) -> None:
    b = _batch(debug_config)
    start = torch.tensor([0, 3, 0])
    late = debug_model(b["audio"], b["audio_lengths"], b["video"], b["video_lengths"],
                       chunk_size=2, video_start=start)
    alone = debug_model(video=b["video"][1:2, 3:], video_lengths=b["video_lengths"][1:2] - 3,
                        chunk_size=2)
    assert late.visual is not None and alone.visual is not None
    n = int(b["video_lengths"][1]) - 3
    assert torch.all(late.visual.features[1, :3] == 0)
    assert torch.allclose(late.visual.features[1, 3:3 + n], alone.visual.features[0, :n],
                          atol=1e-5)
    assert torch.equal(late.visual.lengths, b["video_lengths"])
