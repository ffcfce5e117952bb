"""The contrastive-generative objective (CoGenAV's idea, made streaming and multi-task).

`ObjectiveConfig` holds its weights and augmentation: training's settings, not the model's (a
training YAML's top-level `objective:` section). One call runs the model's forward pass
(`AVSyncModel.forward`) on a batch (docs/architecture.md batch format) with a given chunk size
and returns the weighted total loss and named losses/metrics:
- contrastive sync: symmetric frame-level InfoNCE between the audio and visual embeddings;
- generative: CTC on the fused features + attention-decoder cross-entropy (label smoothing),
  and optionally CTC on each modality encoder alone (training-only heads);
- ASD: BCE on matched, mismatched and shifted audio/visual pairs;
- augmentation when the model is training: staggered stream starts, modality dropout per clip
  (what the fusion encoder sees: both / audio only / video only), SpecAugment-style time masks
  and lips that are not the voice's on the fused inputs.
Noise mixing and ROI crop/flip happen in the data pipeline, before the batch gets here.
`loss` scores a forward pass made elsewhere (validation fuses one encoding three ways).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avsync.errors import ConfigError
from avsync.models.config import (
    ModelConfig,
    check,
    from_mapping,
    read_config_file,
    split_legacy_objective,
    to_mapping,
)
from avsync.models.decoder import teacher_forcing
from avsync.models.encoders import step_mask
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
from avsync.models.model import (
    MODALITIES,
    AVSyncModel,
    ForwardOutput,
    FusionInput,
    FusionView,
    Modality,
    presence,
)
from avsync.timebase import SYNC_MAX_SHIFT

__all__ = ["MODALITIES", "WRONG_SHIFT", "Batch", "ContrastiveGenerativeObjective", "Modality",
           "ObjectiveConfig", "load_objective"]

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ObjectiveConfig:
    """Weights and augmentation of the contrastive-generative objective: training's, not the
    model's (a training YAML's top-level `objective:` section, stored in checkpoints beside
    the model config).

    total = ctc_weight * CTC + attention_weight * decoder CE + sync_weight * InfoNCE
            + asd_weight * ASD BCE
            + audio_ctc_weight * CTC(audio encoder) + visual_ctc_weight * CTC(visual encoder).
    The two modality CTC losses are training-only heads on each modality encoder: they give
    both encoders words to learn from the first step (through the fusion encoder alone, with
    modality dropout, noise and masks, the text gradient reaching them is weak and slow), and
    they are not exported. A weight above 0 needs the model's head (`heads.audio_ctc`,
    `heads.visual_ctc` in the model config); 0 (the default) trains none.
    `temperature_init`: the sync temperature a new model starts from; it is learnt within
    [temperature_min, temperature_max].
    `chunk_sizes` lists the chunk sizes a training batch samples from; None means "full"
    (whole utterance), written `null` (or `full`) in YAML. Modality dropout draws per clip from
    (p_av, p_audio_only, p_video_only); it only affects what the fusion encoder sees.
    `ctc_align_delay`: restrict every CTC loss's alignments to where each word is, from the
    word's middle to this many steps after its end (`avsync.models.losses.emission_mask`;
    needs word timings, clips without them are unrestricted); None: plain CTC.
    `start_stagger_max`: in training one modality's stream starts up to this many steps after
    the other's (content stays aligned). Streams that always start together let both encoders
    mark "steps since the start" (zero state, causal convolutions, the growing attention
    window), and InfoNCE then matches positions instead of lips and voice.
    `p_wrong_lips`: in training, the fraction of audio-visual clips whose fusion encoder sees
    lips that are not the voice's (another clip's, frozen on one frame, or shifted by more than
    the sync window), with the voice's transcript as target: the fusion learns to fall back to
    the audio when the lips disagree (an off-screen speaker, a listener, a dubbed video).
    Only what the fusion sees changes; the sync and ASD losses keep the true pairs.
    """

    ctc_weight: float = 0.3
    attention_weight: float = 0.7
    sync_weight: float = 1.0
    asd_weight: float = 0.5
    audio_ctc_weight: float = 0.0
    visual_ctc_weight: float = 0.0
    label_smoothing: float = 0.1
    temperature_init: float = 0.07
    temperature_min: float = 0.01
    temperature_max: float = 1.0
    sync_speech_only: bool = False
    sync_max_steps: int = 4096
    asd_shift_min: int = 5
    asd_shift_max: int = 15
    asd_mismatch_weight: float = 1.0
    asd_shift_weight: float = 1.0
    p_av: float = 0.5
    p_audio_only: float = 0.25
    p_video_only: float = 0.25
    time_mask_count: int = 2
    time_mask_max_steps: int = 5
    start_stagger_max: int = 8
    chunk_sizes: tuple[int | None, ...] = (4, 8, 16, None)
    ctc_align_delay: int | None = None
    p_wrong_lips: float = 0.0

    def __post_init__(self) -> None:
        weights = (self.ctc_weight, self.attention_weight, self.sync_weight, self.asd_weight,
                   self.asd_mismatch_weight, self.asd_shift_weight, self.audio_ctc_weight,
                   self.visual_ctc_weight)
        check(all(w >= 0 for w in weights), f"objective loss weights must be >= 0, got {weights}")
        probs = (self.p_av, self.p_audio_only, self.p_video_only)
        check(all(p >= 0 for p in probs) and abs(sum(probs) - 1.0) < 1e-6,
              f"objective p_av, p_audio_only, p_video_only must be >= 0 and sum to 1, got {probs}")
        check(0 < self.temperature_min <= self.temperature_init <= self.temperature_max,
              "objective temperatures must satisfy 0 < temperature_min <= temperature_init <= "
              f"temperature_max, got {self.temperature_min}, {self.temperature_init}, "
              f"{self.temperature_max}")
        check(1 <= self.asd_shift_min <= self.asd_shift_max,
              f"objective asd shifts need 1 <= asd_shift_min <= asd_shift_max, got "
              f"{self.asd_shift_min}, {self.asd_shift_max}")
        check(0.0 <= self.label_smoothing < 1.0,
              f"objective label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check(len(self.chunk_sizes) >= 1 and all(c is None or c >= 1 for c in self.chunk_sizes),
              f"objective chunk_sizes must list sizes >= 1 or 'full', got {self.chunk_sizes}")
        check(self.sync_max_steps >= 2,
              f"objective sync_max_steps must be >= 2, got {self.sync_max_steps}")
        check(self.time_mask_count >= 0 and self.time_mask_max_steps >= 0,
              "objective time_mask_count and time_mask_max_steps must be >= 0")
        check(self.ctc_align_delay is None or self.ctc_align_delay >= 1,
              f"objective ctc_align_delay must be >= 1 step or null, got {self.ctc_align_delay}")
        check(self.start_stagger_max >= 0,
              f"objective start_stagger_max must be >= 0, got {self.start_stagger_max}")
        check(0.0 <= self.p_wrong_lips <= 1.0,
              f"objective p_wrong_lips must be in [0, 1], got {self.p_wrong_lips}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectiveConfig:
        """Build from a YAML/JSON mapping; unknown keys raise `ConfigError` naming them."""
        return from_mapping(cls, data, "objective")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready mapping; `from_dict(to_dict())` gives back an equal config."""
        return to_mapping(self)

    def check_model(self, config: ModelConfig) -> None:
        """ConfigError unless the model has the heads this objective trains."""
        for name, weight in (("audio_ctc", self.audio_ctc_weight),
                             ("visual_ctc", self.visual_ctc_weight)):
            check(weight == 0 or getattr(config.heads, name),
                  f"objective.{name}_weight is {weight} but the model has no {name} head: set "
                  f"model.heads.{name}: true (a training-only CTC head on that encoder) or "
                  f"the weight to 0")


def load_objective(name_or_path: str | Path) -> ObjectiveConfig:
    """A preset name or a training YAML path -> its top-level `objective:` section (older
    files: `model.objective`); the defaults when it has neither."""
    path, document = read_config_file(name_or_path)
    section = document.get("objective")
    if section is None:
        section = split_legacy_objective(document.get("model"))[1]
    try:
        return ObjectiveConfig.from_dict(section or {})
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """Random numbers drawn on the CPU (so one CPU generator serves any device), then moved."""
    return torch.rand(shape, generator=generator).to(device)


WRONG_SHIFT = SYNC_MAX_SHIFT + 1  # steps: wrong lips shifted at least past the sync search


class ContrastiveGenerativeObjective:
    """Stateless: the learnable temperature lives in the model (`AVSyncModel.sync_log_scale`).

    Usage (training step): objective.init_model(model) once on a new model; then per step
    chunk = objective.sample_chunk_size(generator);
    total, metrics = objective(model, batch, chunk_size=chunk, generator=generator).
    """

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config

    def init_model(self, model: AVSyncModel) -> None:
        """Start a new model's sync temperature at `temperature_init`."""
        with torch.no_grad():
            model.sync_log_scale.fill_(math.log(1.0 / self.config.temperature_init))

    def sync_scale(self, model: AVSyncModel) -> torch.Tensor:
        """1 / temperature, clamped to [temperature_min, temperature_max]."""
        c = self.config
        return model.sync_log_scale.clamp(math.log(1.0 / c.temperature_max),
                                          math.log(1.0 / c.temperature_min)).exp()

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
            return presence(modality, batch_size, device)
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

    def stream_starts(self, batch_size: int, generator: torch.Generator | None,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Start one modality's stream later than the other's, per clip: (audio_start,
        video_start) (B,) int64 steps, at most one of the two non-zero, up to
        `start_stagger_max` (the forward pass's `audio_start`, `video_start`)."""
        k = self.config.start_stagger_max
        offsets = torch.randint(-k, k + 1, (batch_size,), generator=generator).to(device)
        return offsets.clamp(min=0), (-offsets).clamp(min=0)

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

    def fusion_view(self, generator: torch.Generator | None) -> FusionView:
        """Training's change to what the fusion reads: a time mask on each modality's
        features, then wrong lips for some audio-visual clips."""
        def view(fused: FusionInput) -> FusionInput:
            steps = fused.audio_features.shape[1]
            audio = (fused.audio_features
                     * self.time_mask(fused.lengths, steps, generator)[..., None])
            visual = (fused.visual_features
                      * self.time_mask(fused.lengths, steps, generator)[..., None])
            both = (fused.audio_present * fused.video_present).bool()
            return dataclasses.replace(fused, audio_features=audio,
                                       visual_features=self.wrong_lips(visual, both, generator))

        return view

    def forward(self, model: AVSyncModel, batch: Batch, chunk_size: int | None,
                generator: torch.Generator | None, modality: Modality | None
                ) -> tuple[ForwardOutput, torch.Tensor]:
        """The model's forward pass over a batch, both modalities encoded for every clip,
        the decoder teacher-forced; in training with staggered starts, modality dropout,
        time masks and wrong lips. -> (output, started: (B,) int64, the first step at which
        both streams have begun)."""
        lengths = batch["video_lengths"]
        b, device = lengths.shape[0], lengths.device
        started = torch.zeros_like(lengths)
        audio_start = video_start = None
        if model.training and self.config.start_stagger_max > 0:
            audio_start, video_start = self.stream_starts(b, generator, device)
            started = torch.maximum(audio_start, video_start)
        audio_present, video_present = self.presence(b, modality, generator, device)
        inputs, _, input_lengths = teacher_forcing(batch["tokens"], batch["token_lengths"])
        output = model(batch["audio"], batch["audio_lengths"], batch["video"], lengths,
                       chunk_size=chunk_size, audio_present=audio_present,
                       video_present=video_present, audio_start=audio_start,
                       video_start=video_start,
                       fusion_view=self.fusion_view(generator) if model.training else None,
                       decoder_tokens=inputs, decoder_lengths=input_lengths)
        return output, started

    def emission_allowed(self, batch: Batch, vocab: int) -> torch.Tensor | None:
        """Where alignment-restricted CTC lets each label be emitted, (B, T, V), shared by
        every CTC loss of the batch; None when off or the batch has no spans."""
        delay, spans = self.config.ctc_align_delay, batch.get("token_spans")
        if delay is None or spans is None:
            return None
        return emission_mask(batch["tokens"], batch["token_lengths"], spans,
                             batch["video"].shape[1], vocab, delay)

    def text_losses(self, batch: Batch, output: ForwardOutput,
                    allowed: torch.Tensor | None = None) -> tuple[Metrics, Metrics]:
        """CTC on the fused features (restricted to `allowed`, if given) and the decoder's
        label-smoothed cross-entropy -> ({loss_ctc, loss_attention}, {attention_acc})."""
        if output.decoder_logits is None:
            raise ValueError("the forward pass ran without decoder tokens (teacher forcing)")
        tokens, token_lengths, fusion = batch["tokens"], batch["token_lengths"], output.fusion
        ctc = ctc_loss(fusion.log_probs, fusion.lengths, tokens, token_lengths, allowed)
        _, targets, _ = teacher_forcing(tokens, token_lengths)
        attention, accuracy = attention_loss(output.decoder_logits, targets,
                                             self.config.label_smoothing)
        return {"loss_ctc": ctc, "loss_attention": attention}, {"attention_acc": accuracy}

    def loss(self, model: AVSyncModel, batch: Batch, output: ForwardOutput, *,
             started: torch.Tensor | None = None, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, Metrics]:
        """-> (total loss (), {name: () detached tensor}) of a forward pass over `batch` with
        both modalities and decoder tokens (`forward`). started: (B,) steps before which a
        clip's steps are left out of the sync and ASD losses (staggered starts)."""
        if output.audio is None or output.visual is None or output.asd_logits is None:
            raise ValueError("the objective needs a forward pass over audio and video")
        fusion = output.fusion
        steps = fusion.memory.shape[1]
        valid = step_mask(fusion.lengths, steps)
        if started is not None:
            valid &= torch.arange(steps, device=valid.device)[None, :] >= started[:, None]
        a_embed = output.audio.embeddings[:, :steps]
        v_embed = output.visual.embeddings[:, :steps]
        speaking = batch["speech_mask"][:, :steps].bool() & valid
        c, scale = self.config, self.sync_scale(model)
        allowed = self.emission_allowed(batch, fusion.log_probs.shape[2])
        losses, metrics = self.text_losses(batch, output, allowed)
        anchors = speaking if c.sync_speech_only else valid
        losses["loss_sync"] = info_nce(a_embed, v_embed, anchors, scale,
                                       max_steps=c.sync_max_steps, generator=generator)
        losses["loss_asd"], asd_metrics = asd_loss(
            model.asd_head, v_embed, a_embed, speaking, valid,
            self.asd_shifts(valid.shape[0], generator, valid.device),
            mismatch_weight=c.asd_mismatch_weight, shift_weight=c.asd_shift_weight,
            matched=output.asd_logits)
        total = (c.ctc_weight * losses["loss_ctc"] + c.attention_weight * losses["loss_attention"]
                 + c.sync_weight * losses["loss_sync"] + c.asd_weight * losses["loss_asd"])
        for name, log_probs, encoded, weight in (
                ("loss_audio_ctc", output.audio_ctc, output.audio, c.audio_ctc_weight),
                ("loss_visual_ctc", output.visual_ctc, output.visual, c.visual_ctc_weight)):
            if log_probs is not None and weight > 0:
                losses[name] = ctc_loss(log_probs, encoded.lengths, batch["tokens"],
                                        batch["token_lengths"], allowed)
                total = total + weight * losses[name]
        metrics.update({"loss": total, **losses, **asd_metrics,
                        **sync_accuracy(a_embed, v_embed, valid, SYNC_MAX_SHIFT),
                        "modality_gap": modality_gap(a_embed, v_embed, valid),
                        "temperature": 1.0 / scale})
        return total, {name: value.detach() for name, value in metrics.items()}

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
        output, started = self.forward(model, batch, chunk_size, generator, modality)
        return self.loss(model, batch, output, started=started, generator=generator)
