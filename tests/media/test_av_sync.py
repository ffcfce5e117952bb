"""Audio/video sync through a real encode + decode: a sample written at t decodes at t.

A click train in the audio and white flashes in the video mark the same instants. After
write_mp4 (AAC priming, H.264 reorder delay, both recorded in mp4 edit lists) and
decode_media, each click must sit within 1 ms of where it was written and each flash on the
frame it was written to.
"""

from __future__ import annotations

import numpy as np

from avsync.media.decode import decode_media
from avsync.media.encode import write_mp4
from avsync.timebase import FPS, SAMPLE_RATE, SAMPLES_PER_STEP

ONE_MS = SAMPLE_RATE // 1000
FLASHES = [7, 31, 58, 80]  # frame indices; clicks at the same instants


def _bright_frames(frames: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(frames.reshape(len(frames), -1).mean(axis=1) > 128)]


def test_mp4_round_trip_keeps_clicks_and_flashes_in_sync(tmp_path, signals) -> None:
    frames = signals.flash_frames(100, FLASHES)
    clicks = [f * SAMPLES_PER_STEP for f in FLASHES]
    audio = signals.click_train(100 * SAMPLES_PER_STEP, clicks)
    write_mp4(tmp_path / "sync.mp4", frames, audio)

    clip = decode_media(tmp_path / "sync.mp4")

    assert clip.frames.shape == (100, 64, 64)
    assert len(clip.audio) == len(audio)  # AAC padding trimmed to the written length
    assert _bright_frames(clip.frames) == FLASHES
    found = signals.click_positions(clip.audio, clicks, search=SAMPLES_PER_STEP // 2)
    offsets_ms = (np.array(found) - np.array(clicks)) / ONE_MS
    assert np.all(np.abs(offsets_ms) <= 1.0), offsets_ms


def test_late_audio_start_in_an_edit_list_is_honoured(tmp_path, media_writer, signals) -> None:
    """Audio at 44.1 kHz stereo starting 0.5 s after the video: silence is prepended."""
    rate, start = 44_100, 22_050
    frames = signals.flash_frames(50, [30])
    click_s = 1.2  # = frame 30
    audio = np.zeros((2, rate), np.float32)
    audio[:, round(click_s * rate) - start] = 0.9
    path = media_writer(tmp_path / "late.mp4", frames=frames, audio=audio, sample_rate=rate,
                        audio_start=start)

    clip = decode_media(path)

    assert _bright_frames(clip.frames) == [30]
    expected = round(click_s * SAMPLE_RATE)
    assert np.max(np.abs(clip.audio[:expected - 2 * SAMPLES_PER_STEP])) < 1e-3
    # mp4 edit lists store the empty lead-in in 1 ms units: 1 ms is the format's own limit.
    found = signals.click_positions(clip.audio, [expected], search=SAMPLES_PER_STEP)[0]
    assert abs(found - expected) <= ONE_MS


def test_webm_vp8_opus_48k_stays_in_sync(tmp_path, media_writer, signals) -> None:
    """What a browser's MediaRecorder produces: VP8 + Opus (48 kHz, 312 samples pre-skip)."""
    frames = signals.flash_frames(75, [10, 40, 70])
    rate = 48_000
    clicks_48k = [f * rate // FPS for f in (10, 40, 70)]
    audio = np.tile(signals.click_train(3 * rate, clicks_48k), (2, 1))
    path = media_writer(tmp_path / "clip.webm", frames=frames, video_codec="libvpx",
                        audio=audio, sample_rate=rate, audio_codec="libopus")

    clip = decode_media(path)

    assert _bright_frames(clip.frames) == [10, 40, 70]
    clicks = [f * SAMPLES_PER_STEP for f in (10, 40, 70)]
    found = signals.click_positions(clip.audio, clicks, search=SAMPLES_PER_STEP // 2)
    assert np.all(np.abs(np.array(found) - clicks) <= ONE_MS), found
