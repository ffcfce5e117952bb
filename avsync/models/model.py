"""`AVSyncModel`: the three streaming encoders plus the ASD head, the attention decoder and the
learnable sync temperature, built from one `ModelConfig`, and its one forward pass.

`model(audio, audio_lengths, video, video_lengths, chunk_size=...)` is the forward pass that
training, validation, export's parity check and evaluation all run: either modality may be
absent (None), and the output (`ForwardOutput`) holds what each of them reads. Lightning wraps
the model (train/), export takes its parts (export/), and a checkpoint stores
`config.to_dict()` beside the weights so it can be rebuilt with `AVSyncModel.from_dict`.

Validation reads three modality mixes of one batch: `encode` runs each modality encoder once
and `forward_encoded` fuses what it made once per mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from avsync.models.config import ModelConfig
from avsync.models.decoder import AttentionDecoder
from avsync.models.encoders import (
    AudioEncoder,
    EncoderOutput,
    FusionEncoder,
    FusionOutput,
    VisualEncoder,
)
from avsync.models.heads import AsdHead, CtcHead
from avsync.timebase import SAMPLES_PER_STEP

Modality = Literal["av", "audio", "video"]
MODALITIES: tuple[Modality, ...] = ("av", "audio", "video")
DEFAULT_TEMPERATURE = 0.07  # the sync temperature of a new model (training may start elsewhere)


@dataclass
class Encoded:
    """What the modality encoders made of a batch, each on the clip's time axis; None for a
    modality that was not given."""

    audio: EncoderOutput | None
    visual: EncoderOutput | None


@dataclass
class FusionInput:
    """What the fusion encoder is about to read: features (B, T, d_audio) and (B, T, d_visual)
    over the common steps, lengths (B,) int64, presence flags (B,) float {0, 1}. A
    `fusion_view` (training's time masks and wrong lips) returns a changed copy."""

    audio_features: torch.Tensor
    visual_features: torch.Tensor
    lengths: torch.Tensor
    audio_present: torch.Tensor
    video_present: torch.Tensor


FusionView = Callable[[FusionInput], FusionInput]


@dataclass
class ForwardOutput:
    """One forward pass (T: the fused steps, the common steps of the given modalities).

    audio, visual: each encoder's features, sync embeddings and lengths (None when absent);
    fusion: CTC log-probs (B, T, V), decoder memory (B, T, d_fusion), lengths (B,);
    asd_logits: (B, T) raw speaking logits of each clip's face with its own audio (both
    modalities given); audio_ctc, visual_ctc: (B, T_modality, V) log-probs of the
    training-only CTC heads (when the model has them and the modality is given);
    decoder_logits: (B, U, V) of the attention decoder over the fusion memory (when decoder
    tokens were given).
    """

    audio: EncoderOutput | None
    visual: EncoderOutput | None
    fusion: FusionOutput
    asd_logits: torch.Tensor | None = None
    audio_ctc: torch.Tensor | None = None
    visual_ctc: torch.Tensor | None = None
    decoder_logits: torch.Tensor | None = None


def presence(modality: Modality, batch_size: int, device: torch.device | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio_present, video_present): (B,) float {0, 1} of one modality mix for a batch."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    ones = torch.ones(batch_size, device=device)
    return ones * (modality != "video"), ones * (modality != "audio")


def shift_left(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """x: (B, N, ...) with row i moved `skip[i]` places towards the start, zeros after."""
    n = x.shape[1]
    index = torch.arange(n, device=x.device)[None, :] + skip[:, None]  # (B, N)
    inside = index < n
    index = index.clamp(max=max(n - 1, 0))
    shape = index.shape + (1,) * (x.dim() - 2)
    moved = torch.gather(x, 1, index.view(shape).expand_as(x))
    return moved * inside.view(shape).to(x.dtype)


def delay(output: EncoderOutput, skip: torch.Tensor) -> EncoderOutput:
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


class AVSyncModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.audio_encoder = AudioEncoder(config)
        self.visual_encoder = VisualEncoder(config)
        self.fusion_encoder = FusionEncoder(config)
        self.asd_head = AsdHead(config.heads.embed_dim, config.heads.asd_hidden)
        self.decoder = AttentionDecoder(config.decoder, config.fusion_encoder.d_model,
                                        config.vocab_size)
        # Training-only CTC heads on the modality encoders (ObjectiveConfig.audio_ctc_weight).
        heads = config.heads
        self.audio_ctc = (CtcHead(config.audio_encoder.d_model, config.vocab_size)
                          if heads.audio_ctc else None)
        self.visual_ctc = (CtcHead(config.visual_encoder.d_model, config.vocab_size)
                           if heads.visual_ctc else None)
        # log(1 / temperature) of the InfoNCE logits, learnable as in CLIP; training sets its
        # start and bounds (ObjectiveConfig.temperature_*).
        self.sync_log_scale = nn.Parameter(torch.tensor(math.log(1.0 / DEFAULT_TEMPERATURE)))

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> AVSyncModel:
        return cls(ModelConfig.from_dict(config))

    def forward(self, audio: torch.Tensor | None = None,
                audio_lengths: torch.Tensor | None = None, video: torch.Tensor | None = None,
                video_lengths: torch.Tensor | None = None, *, chunk_size: int | None,
                audio_present: torch.Tensor | None = None,
                video_present: torch.Tensor | None = None,
                audio_start: torch.Tensor | None = None,
                video_start: torch.Tensor | None = None,
                fusion_view: FusionView | None = None,
                decoder_tokens: torch.Tensor | None = None,
                decoder_lengths: torch.Tensor | None = None) -> ForwardOutput:
        """The forward pass of a batch (docs/architecture.md batch format).

        audio: (B, S) float32 in [-1, 1] @ 16 kHz and audio_lengths: (B,) samples, or None;
        video: (B, T, r, r) uint8 mouth ROIs and video_lengths: (B,) steps, or None (at least
        one of the two). chunk_size: attention chunk in steps, None = whole utterance.
        audio_present, video_present: (B,) {0, 1}, what the fusion reads of each clip (default
        1 for a given modality; an absent one is always 0): the encoders still run on every
        clip given, so embeddings and ASD logits do not depend on them.
        audio_start, video_start: (B,) int64 steps at which each clip's stream of that modality
        begins (its encoder starts fresh there); outputs stay on the clip's time axis, zeros
        before the start. fusion_view: changes what the fusion reads (training augmentation).
        decoder_tokens: (B, U) int64 bos + prefix, padded, with decoder_lengths (B,): the
        attention decoder's input (teacher forcing), -> decoder_logits.
        """
        encoded = self.encode(audio, audio_lengths, video, video_lengths, chunk_size=chunk_size,
                              audio_start=audio_start, video_start=video_start)
        return self.forward_encoded(encoded, chunk_size=chunk_size, audio_present=audio_present,
                                    video_present=video_present, fusion_view=fusion_view,
                                    decoder_tokens=decoder_tokens,
                                    decoder_lengths=decoder_lengths)

    def encode(self, audio: torch.Tensor | None = None, audio_lengths: torch.Tensor | None = None,
               video: torch.Tensor | None = None, video_lengths: torch.Tensor | None = None, *,
               chunk_size: int | None, audio_start: torch.Tensor | None = None,
               video_start: torch.Tensor | None = None) -> Encoded:
        """The modality encoders over the given inputs (see `forward`)."""
        if audio is None and video is None:
            raise ValueError("give audio, video or both")
        a = v = None
        if audio is not None:
            if audio_lengths is None:
                raise ValueError("audio needs audio_lengths (samples per clip)")
            if audio_start is None:
                a = self.audio_encoder(audio, audio_lengths, chunk_size)
            else:
                samples = audio_start * SAMPLES_PER_STEP
                a = delay(self.audio_encoder(shift_left(audio, samples),
                                             (audio_lengths - samples).clamp(min=0), chunk_size),
                          audio_start)
        if video is not None:
            if video_lengths is None:
                raise ValueError("video needs video_lengths (steps per clip)")
            if video_start is None:
                v = self.visual_encoder(video, video_lengths, chunk_size)
            else:
                v = delay(self.visual_encoder(shift_left(video, video_start),
                                              (video_lengths - video_start).clamp(min=0),
                                              chunk_size),
                          video_start)
        return Encoded(a, v)

    def forward_encoded(self, encoded: Encoded, *, chunk_size: int | None,
                        audio_present: torch.Tensor | None = None,
                        video_present: torch.Tensor | None = None,
                        fusion_view: FusionView | None = None,
                        decoder_tokens: torch.Tensor | None = None,
                        decoder_lengths: torch.Tensor | None = None) -> ForwardOutput:
        """The rest of `forward` over encoder outputs: fusion over the common steps, the
        per-step heads and, with decoder tokens, the attention decoder."""
        fused = self.fusion_input(encoded, audio_present, video_present)
        if fusion_view is not None:
            fused = fusion_view(fused)
        fusion = self.fuse(fused.audio_features, fused.visual_features, fused.lengths,
                           chunk_size=chunk_size, audio_present=fused.audio_present,
                           video_present=fused.video_present)
        decoder_logits = None
        if decoder_tokens is not None:
            if decoder_lengths is None:
                raise ValueError("decoder_tokens need decoder_lengths")
            decoder_logits = self.decoder(decoder_tokens, decoder_lengths, fusion.memory,
                                          fusion.lengths)
        a, v, steps = encoded.audio, encoded.visual, fusion.memory.shape[1]
        return ForwardOutput(
            a, v, fusion,
            asd_logits=(self.asd_head(v.embeddings[:, :steps], a.embeddings[:, :steps])
                        if a is not None and v is not None else None),
            audio_ctc=(self.audio_ctc(a.features)
                       if a is not None and self.audio_ctc is not None else None),
            visual_ctc=(self.visual_ctc(v.features)
                        if v is not None and self.visual_ctc is not None else None),
            decoder_logits=decoder_logits)

    def fusion_input(self, encoded: Encoded, audio_present: torch.Tensor | None = None,
                     video_present: torch.Tensor | None = None) -> FusionInput:
        """The common steps of the given modalities; an absent modality is zeros, flagged 0."""
        a, v = encoded.audio, encoded.visual
        given = a if a is not None else v
        if given is None:
            raise ValueError("nothing was encoded: give audio, video or both")
        if (a is None and audio_present is not None) or (v is None and video_present is not None):
            raise ValueError("a presence flag was given for a modality that is absent")
        b, device = given.lengths.shape[0], given.lengths.device
        if a is not None and v is not None:
            steps = min(a.features.shape[1], v.features.shape[1])
            lengths = torch.minimum(a.lengths, v.lengths).clamp(max=steps)
        else:
            steps, lengths = given.features.shape[1], given.lengths
        ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)

        def features(out: EncoderOutput | None, width: int) -> torch.Tensor:
            if out is None:
                return given.features.new_zeros(b, steps, width)
            return out.features[:, :steps]

        return FusionInput(
            features(a, self.config.audio_encoder.d_model),
            features(v, self.config.visual_encoder.d_model), lengths,
            zeros if a is None else ones if audio_present is None else audio_present,
            zeros if v is None else ones if video_present is None else video_present)

    def fuse(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
             lengths: torch.Tensor, *, chunk_size: int | None,
             audio_present: torch.Tensor | None = None,
             video_present: torch.Tensor | None = None) -> FusionOutput:
        """Fusion over the common steps of (B, Ta, d_audio) and (B, Tv, d_visual) features."""
        t = min(audio_features.shape[1], visual_features.shape[1])
        ones = torch.ones(lengths.shape[0], device=lengths.device)
        return self.fusion_encoder(
            audio_features[:, :t], visual_features[:, :t],
            ones if audio_present is None else audio_present,
            ones if video_present is None else video_present,
            lengths.clamp(max=t), chunk_size)
