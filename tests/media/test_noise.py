"""Noise mixing: the achieved SNR is measured to +-0.1 dB, clipping never changes it."""

from __future__ import annotations

import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.noise import (
    active_power,
    fit_length,
    make_babble,
    mix_at_snr,
    mix_components,
)
from avsync.timebase import SAMPLE_RATE, SAMPLES_PER_STEP


def _speechlike(seconds: float, seed: int, level: float = 0.3) -> np.ndarray:
    """Harmonic 'syllables' of 160 ms, each on or off at random (about half the time active).

    The syllables start on 40 ms step boundaries, so "active" is unambiguous: the non-zero
    samples are exactly the active frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = rng.uniform(100, 220)
    voice = sum(np.sin(2 * np.pi * pitch * k * t + k) / k for k in range(1, 6))
    syllable = 4 * SAMPLES_PER_STEP
    gate = np.repeat(rng.random(len(t) // syllable + 1) < 0.5, syllable)[:len(t)]
    gate[:syllable] = True
    return (level * voice * gate / 2).astype(np.float32)


def _snr_db(speech_part: np.ndarray, noise_part: np.ndarray) -> float:
    """Active speech power over noise power, measured independently of the code under test:
    active = the gated-on samples (non-zero speech), noise = mean over everything."""
    speech = speech_part.astype(np.float64)
    active = np.abs(speech) > 0
    return 10 * np.log10(np.mean(speech[active] ** 2) / np.mean(noise_part.astype(float) ** 2))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0])
def test_white_noise_lands_at_the_requested_snr(snr_db) -> None:
    speech = _speechlike(3.0, seed=1, level=0.1)
    noise = np.random.default_rng(2).normal(0, 0.05, SAMPLE_RATE).astype(np.float32)  # 1 s
    mixture = mix_at_snr(speech, noise, snr_db, np.random.default_rng(3))
    assert mixture.shape == speech.shape and mixture.dtype == np.float32
    assert np.abs(mixture).max() < 1.0
    speech_part, noise_part = mix_components(speech, noise, snr_db, np.random.default_rng(3))
    assert np.allclose(speech_part + noise_part, mixture, atol=1e-6)
    # no clipping at this level: the speech passes through untouched
    assert np.array_equal(speech_part, speech)
    assert abs(_snr_db(speech_part, mixture - speech) - snr_db) < 0.1


def test_loud_mixtures_are_scaled_down_without_changing_the_snr() -> None:
    speech = _speechlike(2.0, seed=4, level=1.6)  # peaks near 1.0 already
    noise = np.random.default_rng(5).normal(0, 0.3, 5000).astype(np.float32)
    mixture = mix_at_snr(speech, noise, -3.0, np.random.default_rng(6))
    assert np.abs(mixture).max() <= 0.99 + 1e-6
    speech_part, noise_part = mix_components(speech, noise, -3.0, np.random.default_rng(6))
    scale = float(np.dot(speech_part, speech) / np.dot(speech, speech))
    assert scale < 0.9  # it really was scaled down
    assert abs(_snr_db(speech_part, noise_part) - (-3.0)) < 0.1


def test_active_power_ignores_pauses() -> None:
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE))
    half_silent = np.concatenate([tone, np.zeros(SAMPLE_RATE)])
    assert active_power(half_silent) == pytest.approx(0.125, rel=1e-3)
    assert np.mean(half_silent ** 2) == pytest.approx(0.0625, rel=1e-3)
    assert active_power(np.zeros(100)) == 0.0


def test_noise_is_looped_or_cropped_from_a_random_start() -> None:
    noise = np.arange(10, dtype=np.float32)
    looped = fit_length(noise, 25, np.random.default_rng(0))
    assert looped.shape == (25,)
    assert np.all(np.diff(looped) % 10 == 1)  # consecutive samples, wrapping around
    starts = {fit_length(noise, 3, np.random.default_rng(seed))[0] for seed in range(20)}
    assert len(starts) > 3


def test_babble_is_an_even_mix_of_talkers() -> None:
    sources = [_speechlike(1.5, seed=s, level=0.05 * (s + 1)) for s in range(6)]
    babble = make_babble(sources, 2 * SAMPLE_RATE, np.random.default_rng(0), talkers=4)
    assert babble.shape == (2 * SAMPLE_RATE,) and babble.dtype == np.float32
    assert np.sqrt(np.mean(babble.astype(float) ** 2)) == pytest.approx(0.1, rel=1e-3)
    again = make_babble(sources, 2 * SAMPLE_RATE, np.random.default_rng(0), talkers=4)
    assert np.array_equal(babble, again)  # seeded
    speech = _speechlike(2.0, seed=9)
    mixed = mix_at_snr(speech, babble, 0.0, np.random.default_rng(1))
    assert abs(_snr_db(speech, mixed - speech) - 0.0) < 0.1
    # more talkers than sources draws with replacement
    assert make_babble(sources[:2], 1000, np.random.default_rng(0), talkers=5).shape == (1000,)


def test_bad_inputs_raise() -> None:
    rng = np.random.default_rng(0)
    speech = _speechlike(1.0, seed=1)
    with pytest.raises(MediaError, match="silent"):
        mix_at_snr(np.zeros(1000, np.float32), speech, 0.0, rng)
    with pytest.raises(MediaError, match="zero power"):
        mix_at_snr(speech, np.zeros(1000, np.float32), 0.0, rng)
    with pytest.raises(MediaError, match="non-empty"):
        mix_at_snr(speech, np.zeros(0, np.float32), 0.0, rng)
    with pytest.raises(MediaError, match="finite"):
        mix_at_snr(speech, speech, float("nan"), rng)
    with pytest.raises(MediaError, match="talker"):
        make_babble([], 100, rng, talkers=2)


def test_coloured_noise_falls_with_frequency_as_named() -> None:
    from avsync.media.noise import coloured_noise

    rng = np.random.default_rng(0)
    slopes = {}
    for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        noise = coloured_noise(16000 * 4, rng, exponent)
        assert abs(np.sqrt(np.mean(noise ** 2)) - 0.1) < 1e-3  # -20 dBFS
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(len(noise), 1 / 16000)
        low = power[(freqs > 100) & (freqs < 200)].mean()
        high = power[(freqs > 3200) & (freqs < 6400)].mean()
        slopes[name] = 10 * np.log10(low / high) / (10 * np.log10(32))  # dB per dB of f
    assert abs(slopes["white"]) < 0.15 and abs(slopes["pink"] - 1) < 0.2
    assert abs(slopes["brown"] - 2) < 0.3


def test_keyboard_noise_is_made_of_real_key_recordings() -> None:
    from avsync.media.noise import keyboard_noise, keyboard_sounds, noise_of_kind

    sounds = keyboard_sounds()
    assert len(sounds) > 50 and all(s.ndim == 1 and len(s) > 100 for s in sounds)
    noise = keyboard_noise(16000 * 3, np.random.default_rng(1))
    assert abs(np.sqrt(np.mean(noise ** 2)) - 0.1) < 1e-3
    frames = np.abs(noise.reshape(-1, 160)).max(axis=1)
    assert (frames < 0.01).mean() > 0.2  # clicks with quiet between them, not a hiss
    with pytest.raises(MediaError, match="babble is made from speech"):
        noise_of_kind("babble", 100, np.random.default_rng(0))
