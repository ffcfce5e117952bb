"""Front ends: PCM -> 25 Hz audio features, uint8 mouth ROIs -> 25 Hz visual features.

Both are causal so that streaming can run them chunk by chunk: the audio front end caches
240 samples (log-mel framing), a few mel frames (the strided conv) and a few steps (the
second conv); the visual front end caches the last `temporal_kernel - 1` normalised frames
for its 3D stem. Their zero-initialised caches equal the zero padding `forward` uses.
"""

from __future__ import annotations

import torch
from torch import nn

from avsync import timebase
from avsync.errors import ConfigError
from avsync.models.blocks import CausalConv1d, Parts, Specs
from avsync.models.config import AudioFrontendConfig, VisualFrontendConfig
from avsync.models.features import LOOKBACK, LogMel
from avsync.models.state import tail


class AudioFrontend(nn.Module):
    """PCM @ 16 kHz -> log-mel (100 Hz) -> stride-4 conv -> causal conv -> (B, T, d_model)."""

    def __init__(self, config: AudioFrontendConfig, d_model: int) -> None:
        super().__init__()
        self.past = config.past_frames
        self.kernel_steps = config.kernel_steps
        self.channels = config.channels
        self.mel = LogMel()
        self.strided = nn.Conv1d(timebase.MEL_BINS, config.channels,
                                 kernel_size=timebase.MEL_FRAMES_PER_STEP + config.past_frames,
                                 stride=timebase.MEL_FRAMES_PER_STEP)
        self.act = nn.GELU()
        self.temporal = CausalConv1d(config.channels, config.kernel_steps)
        self.proj = nn.Linear(config.channels, d_model)

    def state_specs(self) -> Specs:
        return [("samples", (LOOKBACK,)), ("mel", (self.past, timebase.MEL_BINS)),
                ("conv", (self.kernel_steps - 1, self.channels))]

    def _from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, past + 4T, 80) with its past frames in front -> (B, T, C) after conv 1."""
        return self.act(self.strided(mel.transpose(1, 2)).transpose(1, 2))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio: (B, T*640) float32 in [-1, 1] @ 16 kHz -> (B, T, d_model)."""
        if audio.shape[1] == 0:
            return audio.new_zeros(audio.shape[0], 0, self.proj.out_features)
        mel = nn.functional.pad(self.mel(audio), (0, 0, self.past, 0))
        return self.proj(self.act(self.temporal(self._from_mel(mel))))

    def step(self, audio: torch.Tensor, parts: Parts) -> tuple[torch.Tensor, Parts]:
        """audio: (B, C*640) one chunk -> ((B, C, d_model), new caches)."""
        mel, samples = self.mel.step(audio, parts["samples"])
        mel = torch.cat([parts["mel"], mel], dim=1)
        y, conv = self.temporal.step(self._from_mel(mel), parts["conv"])
        return self.proj(self.act(y)), {"samples": samples, "mel": tail(mel, self.past),
                                        "conv": conv}


class BasicBlock(nn.Module):
    """ResNet basic block with GroupNorm(1) (LayerNorm over a frame's feature map)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.GroupNorm(1, c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.GroupNorm(1, c_out))
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                      nn.GroupNorm(1, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class VisualFrontend(nn.Module):
    """uint8 ROI (B, T, R, R) -> centre crop to roi_size -> normalise -> causal 3D stem ->
    per-frame ResNet trunk -> global average pool -> (B, T, d_model).

    The 3D stem (temporal kernel k, past frames only, stride (1, 2, 2)) is computed as a 2D
    conv over the k most recent frames stacked as channels: the same weights and numbers as a
    Conv3d with in_channels=1, but one fast Conv2d call that exports to any ONNX runtime.
    """

    def __init__(self, config: VisualFrontendConfig, d_model: int) -> None:
        super().__init__()
        self.roi_size = config.roi_size
        self.k = config.temporal_kernel
        stem: list[nn.Module] = [
            nn.Conv2d(self.k, config.stem_channels, config.stem_kernel, 2,
                      config.stem_kernel // 2, bias=False),
            nn.GroupNorm(1, config.stem_channels), nn.ReLU()]
        if config.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        layers, c_in = [], config.stem_channels
        stages = zip(config.stage_channels, config.stage_blocks, config.stage_strides, strict=True)
        for c_out, n, stride in stages:
            for j in range(n):
                layers.append(BasicBlock(c_in, c_out, stride if j == 0 else 1))
                c_in = c_out
        self.trunk = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Linear(c_in, d_model)

    def state_specs(self) -> Specs:
        return [("frames", (self.k - 1, self.roi_size, self.roi_size))]

    def normalise(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, R, R), R >= roi_size -> float (B, T, r, r), centre-cropped, normalised."""
        size, r = video.shape[-1], self.roi_size
        if size < r or video.shape[-2] != size:
            raise ConfigError(f"video ROIs are {tuple(video.shape[-2:])} but this model needs "
                              f"square crops of at least {r}x{r}; crop mouths at the model's "
                              "roi_stored size")
        o = (size - r) // 2
        x = video[..., o:o + r, o:o + r].float() / 255.0
        return (x - timebase.ROI_MEAN) / timebase.ROI_STD

    def _trunk(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """x: normalised (B, k-1 + t, r, r) with its past frames in front -> (B, t, d_model)."""
        b = x.shape[0]
        stacked = torch.stack([x[:, i:i + t] for i in range(self.k)], dim=2)
        frames = stacked.reshape(b * t, self.k, self.roi_size, self.roi_size)
        # channels-last: oneDNN's convolutions run ~30 % faster on CPU (no effect on numbers)
        features = self.trunk(frames.contiguous(memory_format=torch.channels_last))
        return self.proj(features.reshape(b, t, features.shape[-1]))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, T, R, R) uint8 -> (B, T, d_model)."""
        x = nn.functional.pad(self.normalise(video), (0, 0, 0, 0, self.k - 1, 0))
        return self._trunk(x, video.shape[1])

    def step(self, video: torch.Tensor, parts: Parts) -> tuple[torch.Tensor, Parts]:
        """video: (B, C, R, R) uint8 one chunk -> ((B, C, d_model), new caches)."""
        x = torch.cat([parts["frames"], self.normalise(video)], dim=1)
        return self._trunk(x, video.shape[1]), {"frames": tail(x, self.k - 1)}

