"""The contrastive-generative objective (CoGenAV's idea, made streaming and multi-task).

One call encodes a batch (docs/architecture.md batch format) with a given chunk size and
returns the weighted total loss and named losses/metrics:
- contrastive sync: symmetric frame-level InfoNCE between the audio and visual embeddings;
- generative: CTC on the fused features + attention-decoder cross-entropy (label smoothing),
  and optionally CTC on each modality encoder alone (training-only heads);
- ASD: BCE on matched, mismatched and shifted audio/visual pairs;
- augmentation when the model is training: modality dropout per clip (what the fusion encoder
  sees: both / audio only / video only) and SpecAugment-style time masks on the fused inputs.
Noise mixing and ROI crop/flip happen in the data pipeline, before the batch gets here.
"""

from __future__ import annotations

from typing import Literal

import torch

from avsync.models.config import ObjectiveConfig
from avsync.models.decoder import teacher_forcing
from avsync.models.encoders import EncoderOutput, FusionOutput, step_mask
from avsync.models.losses import (
    Metrics,
    asd_loss,
    attention_loss,
    ctc_loss,
    emission_mask,
    info_nce,
    modality_gap,
    sync_accuracy,
)
from avsync.models.model import AVSyncModel
from avsync.timebase import SAMPLES_PER_STEP, SYNC_MAX_SHIFT

Modality = Literal["av", "audio", "video"]
MODALITIES: tuple[Modality, ...] = ("av", "audio", "video")
Batch = dict[str, torch.Tensor]


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """Random numbers drawn on the CPU (so one CPU generator serves any device), then moved."""
    return torch.rand(shape, generator=generator).to(device)


def _shift_left(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """x: (B, N, ...) with row i moved `skip[i]` places towards the start, zeros after."""
    n = x.shape[1]
    index = torch.arange(n, device=x.device)[None, :] + skip[:, None]  # (B, N)
    inside = index < n
    index = index.clamp(max=max(n - 1, 0))
    shape = index.shape + (1,) * (x.dim() - 2)
    moved = torch.gather(x, 1, index.view(shape).expand_as(x))
    return moved * inside.view(shape).to(x.dtype)


def _delay(output: EncoderOutput, skip: torch.Tensor) -> EncoderOutput:
    """An encoder's output over a stream that began `skip` steps into the clip, put back on
    the clip's time axis: (B, T, .) with zeros (features and embeddings) before the start."""
    steps = output.features.shape[1]
    t = torch.arange(steps, device=skip.device)[None, :]
    index = (t - skip[:, None]).clamp(min=0)[..., None]
    before = (t < skip[:, None])[..., None]

    def move(x: torch.Tensor) -> torch.Tensor:
        return torch.gather(x, 1, index.expand(-1, -1, x.shape[-1])).masked_fill(before, 0.0)

    return EncoderOutput(move(output.features), move(output.embeddings),
                         (output.lengths + skip).clamp(max=steps))


WRONG_SHIFT = SYNC_MAX_SHIFT + 1  # steps: wrong lips shifted at least past the sync search


class ContrastiveGenerativeObjective:
    """Stateless: the learnable temperature lives in the model (`AVSyncModel.sync_log_scale`).

    Usage (training step): chunk = objective.sample_chunk_size(generator);
    total, metrics = objective(model, batch, chunk_size=chunk, generator=generator).
    """

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config

    def sample_chunk_size(self, generator: torch.Generator | None = None) -> int | None:
        """One of `config.chunk_sizes`, uniformly; None means the whole utterance."""
        sizes = self.config.chunk_sizes
        return sizes[int(torch.randint(len(sizes), (1,), generator=generator))]

    def presence(self, batch_size: int, modality: Modality | None,
                 generator: torch.Generator | None, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio_present, video_present): (B,) float {0, 1}; random per clip if modality is
        None (modality dropout), else fixed for the whole batch."""
        if modality is not None:
            if modality not in MODALITIES:
                raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
            ones = torch.ones(batch_size, device=device)
            return ones * (modality != "video"), ones * (modality != "audio")
        u = _uniform((batch_size,), generator, device)
        c = self.config
        audio_only = (u >= c.p_av) & (u < c.p_av + c.p_audio_only)
        video_only = u >= c.p_av + c.p_audio_only
        return (~video_only).float(), (~audio_only).float()

    def time_mask(self, lengths: torch.Tensor, steps: int, generator: torch.Generator | None
                  ) -> torch.Tensor:
        """(B, steps) float: 0 inside `time_mask_count` random spans of up to
        `time_mask_max_steps` steps within each clip, 1 elsewhere."""
        c, b = self.config, lengths.shape[0]
        keep = torch.ones(b, steps, device=lengths.device)
        if c.time_mask_count == 0 or c.time_mask_max_steps == 0 or steps == 0:
            return keep
        shape = (b, c.time_mask_count)
        widths = (_uniform(shape, generator, lengths.device) * (c.time_mask_max_steps + 1)).floor()
        starts = (_uniform(shape, generator, lengths.device) * lengths[:, None]).floor()
        t = torch.arange(steps, device=lengths.device)[None, None, :]
        masked = ((t >= starts[..., None]) & (t < (starts + widths)[..., None])).any(1)
        return keep.masked_fill(masked, 0.0)

    def asd_shifts(self, batch_size: int, generator: torch.Generator | None,
                   device: torch.device) -> torch.Tensor:
        """(B,) int64 shifts of +-[asd_shift_min, asd_shift_max] steps for the shifted pairs."""
        c = self.config
        size = torch.randint(c.asd_shift_min, c.asd_shift_max + 1, (batch_size,),
                             generator=generator)
        sign = torch.randint(0, 2, (batch_size,), generator=generator) * 2 - 1
        return (size * sign).to(device)

    def stagger(self, batch: Batch, generator: torch.Generator | None) -> tuple[Batch, torch.Tensor,
                                                                                torch.Tensor]:
        """Start one modality's stream later than the other's, per clip.

        -> (batch with the first `audio_skip` steps of audio and `video_skip` steps of video
        cut off, audio_skip (B,), video_skip (B,) int64); at most one of the two is non-zero.
        """
        video, audio = batch["video"], batch["audio"]
        b, device = video.shape[0], video.device
        k = self.config.start_stagger_max
        offsets = torch.randint(-k, k + 1, (b,), generator=generator).to(device)
        audio_skip, video_skip = offsets.clamp(min=0), (-offsets).clamp(min=0)
        staggered = dict(batch)
        staggered["video"] = _shift_left(video, video_skip)
        staggered["video_lengths"] = (batch["video_lengths"] - video_skip).clamp(min=0)
        samples = audio_skip * SAMPLES_PER_STEP
        staggered["audio"] = _shift_left(audio, samples)
        staggered["audio_lengths"] = (batch["audio_lengths"] - samples).clamp(min=0)
        return staggered, audio_skip, video_skip

    def encode(self, model: AVSyncModel, batch: Batch, chunk_size: int | None,
               generator: torch.Generator | None, modality: Modality | None
               ) -> tuple[EncoderOutput, EncoderOutput, FusionOutput, torch.Tensor]:
        """Both modality encoders on the whole batch (in training with staggered starts,
        realigned to the clip's time afterwards), then fusion of what modality dropout and
        (in training) time masking leave of their features. The last value, `started`:
        (B,) int64, is the first step at which both streams have begun."""
        started = torch.zeros_like(batch["video_lengths"])
        if model.training and self.config.start_stagger_max > 0:
            staggered, audio_skip, video_skip = self.stagger(batch, generator)
            audio = _delay(model.audio_encoder(staggered["audio"], staggered["audio_lengths"],
                                               chunk_size), audio_skip)
            visual = _delay(model.visual_encoder(staggered["video"], staggered["video_lengths"],
                                                 chunk_size), video_skip)
            started = torch.maximum(audio_skip, video_skip)
        else:
            audio = model.audio_encoder(batch["audio"], batch["audio_lengths"], chunk_size)
            visual = model.visual_encoder(batch["video"], batch["video_lengths"], chunk_size)
        steps = min(audio.features.shape[1], visual.features.shape[1])
        lengths = torch.minimum(audio.lengths, visual.lengths).clamp(max=steps)
        audio_present, video_present = self.presence(lengths.shape[0], modality, generator,
                                                     lengths.device)
        audio_features, visual_features = audio.features[:, :steps], visual.features[:, :steps]
        if model.training:
            audio_features = audio_features * self.time_mask(lengths, steps, generator)[..., None]
            visual_features = visual_features * self.time_mask(lengths, steps, generator)[..., None]
            both = (audio_present * video_present).bool()
            visual_features = self.wrong_lips(visual_features, both, generator)
        fusion = model.fuse(audio_features, visual_features, lengths, chunk_size=chunk_size,
                            audio_present=audio_present, video_present=video_present)
        return audio, visual, fusion, started

    def wrong_lips(self, visual: torch.Tensor, eligible: torch.Tensor,
                   generator: torch.Generator | None) -> torch.Tensor:
        """visual: (B, T, d) features the fusion will see; for `p_wrong_lips` of the
        `eligible` (B,) clips, lips that are not the voice's: the next clip's (a batch of one
        has none: frozen instead), the clip's first step held still, or the clip shifted later
        by `WRONG_SHIFT` steps or more (beyond the sync window), zeros before."""
        p = self.config.p_wrong_lips
        b, t = visual.shape[:2]
        if p <= 0 or b == 0 or t == 0:
            return visual
        chosen = (_uniform((b,), generator, visual.device) < p) & eligible
        if not bool(chosen.any()):
            return visual
        kind = (_uniform((b,), generator, visual.device) * 3).floor().long()
        if b == 1:
            kind.fill_(1)
        other = visual.roll(1, dims=0)
        frozen = visual[:, :1].expand(-1, t, -1)
        shift = int(torch.randint(WRONG_SHIFT, 2 * WRONG_SHIFT + 1, (1,), generator=generator))
        shifted = torch.cat([torch.zeros_like(visual[:, :min(shift, t)]), visual], 1)[:, :t]
        wrong = torch.where((kind == 0)[:, None, None], other,
                            torch.where((kind == 1)[:, None, None], frozen, shifted))
        return torch.where(chosen[:, None, None], wrong, visual)

    def emission_allowed(self, batch: Batch, vocab: int) -> torch.Tensor | None:
        """Where alignment-restricted CTC lets each label be emitted, (B, T, V), shared by
        every CTC loss of the batch; None when off or the batch has no spans."""
        delay, spans = self.config.ctc_align_delay, batch.get("token_spans")
        if delay is None or spans is None:
            return None
        return emission_mask(batch["tokens"], batch["token_lengths"], spans,
                             batch["video"].shape[1], vocab, delay)

    def text_losses(self, model: AVSyncModel, batch: Batch, fusion: FusionOutput,
                    allowed: torch.Tensor | None = None) -> tuple[Metrics, Metrics]:
        """CTC on the fused features (restricted to `allowed`, if given) and the decoder's
        label-smoothed cross-entropy -> ({loss_ctc, loss_attention}, {attention_acc})."""
        tokens, token_lengths = batch["tokens"], batch["token_lengths"]
        ctc = ctc_loss(fusion.log_probs, fusion.lengths, tokens, token_lengths, allowed)
        inputs, targets, input_lengths = teacher_forcing(tokens, token_lengths)
        logits = model.decoder(inputs, input_lengths, fusion.memory, fusion.lengths)
        attention, accuracy = attention_loss(logits, targets, self.config.label_smoothing)
        return {"loss_ctc": ctc, "loss_attention": attention}, {"attention_acc": accuracy}

    def __call__(self, model: AVSyncModel, batch: Batch, *, chunk_size: int | None,
                 generator: torch.Generator | None = None, modality: Modality | None = None
                 ) -> tuple[torch.Tensor, Metrics]:
        """-> (total loss (), {name: () detached tensor}) for one batch.

        chunk_size: steps per attention chunk, None = whole utterance. modality: force what
        the fusion encoder sees; None = modality dropout while training, "av" in eval mode.
        Random choices use `generator` (CPU) so runs are reproducible.
        """
        if modality is None and not model.training:
            modality = "av"
        audio, visual, fusion, started = self.encode(model, batch, chunk_size, generator, modality)
        steps = fusion.memory.shape[1]
        valid = step_mask(fusion.lengths, steps)
        valid &= torch.arange(steps, device=valid.device)[None, :] >= started[:, None]
        a_embed, v_embed = audio.embeddings[:, :steps], visual.embeddings[:, :steps]
        speaking = batch["speech_mask"][:, :steps].bool() & valid
        c, scale = self.config, model.sync_scale()
        allowed = self.emission_allowed(batch, fusion.log_probs.shape[2])
        losses, metrics = self.text_losses(model, batch, fusion, allowed)
        anchors = speaking if c.sync_speech_only else valid
        losses["loss_sync"] = info_nce(a_embed, v_embed, anchors, scale,
                                       max_steps=c.sync_max_steps, generator=generator)
        losses["loss_asd"], asd_metrics = asd_loss(
            model.asd_head, v_embed, a_embed, speaking, valid,
            self.asd_shifts(valid.shape[0], generator, valid.device),
            mismatch_weight=c.asd_mismatch_weight, shift_weight=c.asd_shift_weight)
        total = (c.ctc_weight * losses["loss_ctc"] + c.attention_weight * losses["loss_attention"]
                 + c.sync_weight * losses["loss_sync"] + c.asd_weight * losses["loss_asd"])
        for name, head, output, weight in (
                ("loss_audio_ctc", model.audio_ctc, audio, c.audio_ctc_weight),
                ("loss_visual_ctc", model.visual_ctc, visual, c.visual_ctc_weight)):
            if head is not None:
                losses[name] = ctc_loss(head(output.features), output.lengths, batch["tokens"],
                                        batch["token_lengths"], allowed)
                total = total + weight * losses[name]
        metrics.update({"loss": total, **losses, **asd_metrics,
                        **sync_accuracy(a_embed, v_embed, valid, SYNC_MAX_SHIFT),
                        "modality_gap": modality_gap(a_embed, v_embed, valid),
                        "temperature": 1.0 / scale})
        return total, {name: value.detach() for name, value in metrics.items()}
