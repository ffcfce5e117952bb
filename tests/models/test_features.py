"""The in-model log-mel: torchaudio parity, causality and chunked streaming."""

from __future__ import annotations

import math

import torch
import torchaudio

from avsync import timebase
from avsync.models.features import LOOKBACK, LogMel


def _signal(seconds: float, seed: int = 0) -> torch.Tensor:
    """Two tones with a glide plus noise: energy in many bins, quiet bins too."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * timebase.SAMPLE_RATE)
    t = torch.arange(n) / timebase.SAMPLE_RATE
    x = 0.4 * torch.sin(2 * math.pi * (300 + 2000 * t) * t) + 0.2 * torch.sin(2 * math.pi * 3100 * t)
    return (x + 0.01 * torch.randn(n, generator=g))[None]


def test_matches_torchaudio_melspectrogram_on_the_same_frames() -> None:
    audio = _signal(0.4)  # 10 steps
    mel = LogMel()
    reference = torchaudio.transforms.MelSpectrogram(
        sample_rate=timebase.SAMPLE_RATE, n_fft=timebase.MEL_WINDOW,
        win_length=timebase.MEL_WINDOW, hop_length=timebase.MEL_HOP, n_mels=timebase.MEL_BINS,
        center=False, power=2.0, norm=None, mel_scale="htk")
    expected = reference(torch.nn.functional.pad(audio, (LOOKBACK, 0))).transpose(1, 2)
    power = mel.power(torch.nn.functional.pad(audio, (LOOKBACK, 0)))
    assert power.shape == expected.shape == (1, 40, timebase.MEL_BINS)
    assert ((power - expected).abs() / expected.max()).max() < 1e-5
    assert (mel.scale(power) - mel.scale(expected)).abs().max() < 1e-3
    assert torch.equal(mel(audio), mel.scale(power))


def test_frames_are_causal_and_four_per_step() -> None:
    audio = _signal(0.4)
    mel = LogMel()
    full = mel(audio)
    assert full.shape == (1, 10 * timebase.MEL_FRAMES_PER_STEP, timebase.MEL_BINS)
    changed = audio.clone()
    changed[:, 5 * timebase.SAMPLES_PER_STEP:] += 0.3  # perturb steps 5..9
    after = mel(changed)
    assert torch.equal(after[:, :20], full[:, :20])  # steps 0..4 own frames 0..19
    assert not torch.allclose(after[:, 20], full[:, 20])


def test_streaming_chunks_equal_the_whole_signal() -> None:
    audio = _signal(0.64, seed=1)  # 16 steps
    mel = LogMel()
    past = torch.zeros(1, LOOKBACK)
    pieces = []
    for chunk in torch.split(audio, [3 * 640, 640, 5 * 640, 7 * 640], dim=1):
        features, past = mel.step(chunk, past)
        pieces.append(features)
    assert (torch.cat(pieces, dim=1) - mel(audio)).abs().max() < 1e-5


def test_empty_audio_gives_no_frames() -> None:
    assert LogMel()(torch.zeros(2, 0)).shape == (2, 0, timebase.MEL_BINS)
