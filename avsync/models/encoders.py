"""The three streaming encoders: audio, visual and fusion.

Each has `forward` over whole padded sequences (chunk-masked, for training and offline use)
and `step` over one chunk with one packed float32 state `(B, state_size)` (for streaming and
ONNX export). Running `step` chunk by chunk gives the numbers of `forward` with the same chunk
size (tested to 1e-5). `state_layout()` names the slices of the packed state.

`chunk_size=None` in `forward` means one chunk over the whole utterance ("full").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avsync import timebase
from avsync.models.blocks import BlockStack, Specs
from avsync.models.config import ModelConfig
from avsync.models.frontends import AudioFrontend, VisualFrontend
from avsync.models.heads import CtcHead, SyncProjection
from avsync.models.state import StateLayout, prefixed, put, take


@dataclass
class EncoderOutput:
    """features: (B, T, d_model); embeddings: (B, T, E) unit-norm sync embeddings (float32);
    lengths: (B,) int64 valid steps. Steps at or beyond a clip's length are zero."""

    features: torch.Tensor
    embeddings: torch.Tensor
    lengths: torch.Tensor


@dataclass
class FusionOutput:
    """log_probs: (B, T, V) float32 CTC log-probabilities (blank 0); memory: (B, T, d_fusion)
    for the attention decoder; lengths: (B,) int64 valid steps."""

    log_probs: torch.Tensor
    memory: torch.Tensor
    lengths: torch.Tensor


def step_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """lengths: (B,) int -> (B, steps) bool, True where the step is inside the clip."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def _chunk(chunk_size: int | None, steps: int) -> int:
    return max(steps, 1) if chunk_size is None else chunk_size


class StreamingEncoder(nn.Module):
    """Shared plumbing: packed state layout, initial state, blocks + final norm."""

    blocks: BlockStack
    norm: nn.LayerNorm
    dropout: nn.Dropout

    def _state_specs(self) -> Specs:
        raise NotImplementedError

    def state_layout(self) -> StateLayout:
        """Named slices of the packed state (name, per-stream shape, offset) for model cards."""
        return StateLayout(self._state_specs())

    @property
    def state_size(self) -> int:
        return self.state_layout().size

    def initial_state(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """(batch, state_size) float32 zeros: the state of fresh streams."""
        return self.state_layout().initial(batch, device)

    def _encode(self, x: torch.Tensor, valid: torch.Tensor, chunk_size: int | None
                ) -> torch.Tensor:
        x = self.norm(self.blocks(self.dropout(x), valid, _chunk(chunk_size, x.shape[1])))
        return x * valid[..., None].to(x.dtype)


class ModalityEncoder(StreamingEncoder):
    """Front end + blocks + sync projection; the audio and visual encoders differ by front end."""

    frontend: AudioFrontend | VisualFrontend

    def __init__(self, frontend: AudioFrontend | VisualFrontend, config: ModelConfig, d_model: int,
                 encoder_config_name: str) -> None:
        super().__init__()
        encoder = getattr(config, encoder_config_name)
        self.frontend = frontend
        self.dropout = nn.Dropout(encoder.dropout)
        self.blocks = BlockStack(encoder, config.streaming)
        self.norm = nn.LayerNorm(d_model)
        self.sync = SyncProjection(d_model, config.heads.embed_dim)
        self.d_model = d_model

    def _state_specs(self) -> Specs:
        return (prefixed("frontend", self.frontend.state_specs())
                + prefixed("blocks", self.blocks.state_specs()))

    def _outputs(self, x: torch.Tensor, lengths: torch.Tensor, chunk_size: int | None
                 ) -> EncoderOutput:
        valid = step_mask(lengths, x.shape[1])
        features = self._encode(x, valid, chunk_size)
        embeddings = self.sync(features) * valid[..., None]
        return EncoderOutput(features, embeddings, lengths)

    def step(self, chunk: torch.Tensor, state: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One chunk of C steps of every stream in the batch (see `forward` for the input).

        -> (features (B, C, d_model), embeddings (B, C, E) float32, new state (B, state_size)).
        """
        layout = self.state_layout()
        parts = layout.unpack(state)
        new: dict[str, torch.Tensor] = {}
        x, frontend = self.frontend.step(chunk, take(parts, "frontend"))
        x, blocks = self.blocks.step(x, take(parts, "blocks"))
        put(new, "frontend", frontend)
        put(new, "blocks", blocks)
        features = self.norm(x)
        return features, self.sync(features), layout.pack(new)


class AudioEncoder(ModalityEncoder):
    """PCM -> 25 Hz audio features + audio sync embeddings."""

    def __init__(self, config: ModelConfig) -> None:
        d = config.audio_encoder.d_model
        super().__init__(AudioFrontend(config.audio_frontend, d), config, d, "audio_encoder")

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor,
                chunk_size: int | None = None) -> EncoderOutput:
        """audio: (B, S) float32 in [-1, 1] @ 16 kHz; lengths: (B,) int64 valid samples.

        S is padded to whole steps; a clip has lengths // 640 valid steps.
        step's chunk: (B, C*640) float32.
        """
        steps = -(-audio.shape[1] // timebase.SAMPLES_PER_STEP)
        audio = nn.functional.pad(audio, (0, steps * timebase.SAMPLES_PER_STEP - audio.shape[1]))
        x = self.frontend(audio)
        return self._outputs(x, lengths // timebase.SAMPLES_PER_STEP, chunk_size)


class VisualEncoder(ModalityEncoder):
    """uint8 mouth ROIs -> 25 Hz visual features + visual sync embeddings."""

    def __init__(self, config: ModelConfig) -> None:
        d = config.visual_encoder.d_model
        super().__init__(VisualFrontend(config.visual_frontend, d), config, d, "visual_encoder")

    def forward(self, video: torch.Tensor, lengths: torch.Tensor,
                chunk_size: int | None = None) -> EncoderOutput:
        """video: (B, T, R, R) uint8 grey mouth ROIs, R >= roi_size (centre-cropped inside);
        lengths: (B,) int64 valid frames (= steps). step's chunk: (B, C, R, R) uint8."""
        return self._outputs(self.frontend(video), lengths, chunk_size)


class FusionEncoder(StreamingEncoder):
    """Both feature streams, each scaled by its presence flag (a missing modality is zeros, as
    in CoGenAV), concatenated, projected, blocks -> CTC log-probabilities + decoder memory."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.fusion_encoder.d_model
        self.audio_dim = config.audio_encoder.d_model
        self.visual_dim = config.visual_encoder.d_model
        self.proj = nn.Linear(self.audio_dim + self.visual_dim, d)
        self.dropout = nn.Dropout(config.fusion_encoder.dropout)
        self.blocks = BlockStack(config.fusion_encoder, config.streaming)
        self.norm = nn.LayerNorm(d)
        self.ctc = CtcHead(d, config.vocab_size)

    def _state_specs(self) -> Specs:
        return prefixed("blocks", self.blocks.state_specs())

    def _fuse(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
              audio_present: torch.Tensor, video_present: torch.Tensor) -> torch.Tensor:
        a = audio_features * audio_present.to(audio_features.dtype)[:, None, None]
        v = visual_features * video_present.to(visual_features.dtype)[:, None, None]
        return self.proj(torch.cat([a, v], dim=-1))

    def forward(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
                audio_present: torch.Tensor, video_present: torch.Tensor,
                lengths: torch.Tensor, chunk_size: int | None = None) -> FusionOutput:
        """audio_features: (B, T, d_audio); visual_features: (B, T, d_visual);
        audio_present, video_present: (B,) {0, 1} (bool or float); lengths: (B,) int64 steps.
        step's inputs: the same for one chunk of C steps, plus the state."""
        valid = step_mask(lengths, audio_features.shape[1])
        x = self._fuse(audio_features, visual_features, audio_present, video_present)
        memory = self._encode(x, valid, chunk_size)
        return FusionOutput(self.ctc(memory), memory, lengths)

    def step(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
             audio_present: torch.Tensor, video_present: torch.Tensor, state: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (log_probs (B, C, V) float32, memory (B, C, d_fusion), new state)."""
        layout = self.state_layout()
        x = self._fuse(audio_features, visual_features, audio_present, video_present)
        x, blocks = self.blocks.step(x, take(layout.unpack(state), "blocks"))
        new: dict[str, torch.Tensor] = {}
        put(new, "blocks", blocks)
        memory = self.norm(x)
        return self.ctc(memory), memory, layout.pack(new)
