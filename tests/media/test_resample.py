"""resample_audio: passband accuracy, alias rejection, zero delay, lengths, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.resample import StreamingResampler, resample_audio

RATES = [(22_050, 16_000), (44_100, 16_000), (48_000, 16_000), (8_000, 16_000),
         (16_000, 48_000)]


def _sine(hz: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32)


@pytest.mark.parametrize("from_rate, to_rate", RATES)
def test_tone_in_the_passband_is_preserved(from_rate, to_rate) -> None:
    out = resample_audio(_sine(1000, from_rate), from_rate, to_rate)
    assert out.dtype == np.float32 and out.shape == (to_rate,)
    expected = _sine(1000, to_rate)
    steady = slice(to_rate // 20, -to_rate // 20)
    assert np.abs(out[steady] - expected[steady]).max() < 1e-4


@pytest.mark.parametrize("from_rate", [22_050, 44_100, 48_000])
def test_tones_above_the_new_nyquist_are_rejected(from_rate) -> None:
    out = resample_audio(_sine(9000, from_rate), from_rate, 16_000)
    level_db = 20 * np.log10(np.sqrt(np.mean(out[800:-800] ** 2)) / (0.5 / np.sqrt(2)))
    assert level_db < -70


@pytest.mark.parametrize("from_rate, to_rate", RATES)
def test_an_impulse_keeps_its_time(from_rate, to_rate) -> None:
    audio = np.zeros(from_rate, np.float32)
    audio[from_rate // 4] = 1.0  # at 0.25 s
    out = resample_audio(audio, from_rate, to_rate)
    assert int(np.argmax(out)) == to_rate // 4


def test_same_rate_and_empty_input_are_copies() -> None:
    audio = np.ones(10, np.float32)
    out = resample_audio(audio, 16_000, 16_000)
    assert out is not audio and np.array_equal(out, audio)
    assert resample_audio(np.zeros(0, np.float32), 22_050, 16_000).shape == (0,)


def test_lengths_round_up() -> None:
    assert resample_audio(np.zeros(441, np.float32), 44_100, 16_000).shape == (160,)
    assert resample_audio(np.zeros(442, np.float32), 44_100, 16_000).shape == (161,)


def test_bad_input_raises() -> None:
    with pytest.raises(MediaError, match="mono"):
        resample_audio(np.zeros((2, 10), np.float32), 44_100, 16_000)
    with pytest.raises(MediaError, match="positive"):
        resample_audio(np.zeros(10, np.float32), 0, 16_000)


@pytest.mark.parametrize("from_rate, to_rate", RATES + [(16_000, 16_000)])
def test_streaming_resampler_matches_the_batch_one_exactly(from_rate, to_rate) -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(from_rate)).astype(np.float32)
    resampler = StreamingResampler(from_rate, to_rate)
    pieces, start = [], 0
    while start < len(audio):
        size = int(rng.integers(1, 3000))
        pieces.append(resampler.push(audio[start:start + size]))
        start += size
    pieces.append(resampler.flush())
    assert np.array_equal(np.concatenate(pieces), resample_audio(audio, from_rate, to_rate))


def test_streaming_resampler_output_lags_only_by_the_filter_half_width() -> None:
    resampler = StreamingResampler(48_000, 16_000)
    out = resampler.push(np.zeros(4800, np.float32))  # 100 ms in
    assert 1600 - 100 <= len(out) < 1600  # all but ~the filter's look-ahead is out already
