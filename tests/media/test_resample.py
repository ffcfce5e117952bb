"""resample_audio: passband accuracy, alias rejection, zero delay, lengths, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.resample import resample_audio

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
