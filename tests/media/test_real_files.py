"""What real files are like, decoded piece by piece: phone rotation, cover art, several audio
streams, 5.1 audio, a corrupt packet, files cut short; all made here with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_files import gradient_frames, tone, write_av

from avsync.errors import MediaError
from avsync.media.audio import downmix
from avsync.media.decode import MediaReader, decode_media, probe_media
from avsync.media.placement import FrameFormat, fit_size
from avsync.timebase import SAMPLE_RATE


def _upright(height: int = 48, width: int = 80) -> np.ndarray:
    """A picture whose top is bright and left dark: any turn shows."""
    image = np.full((height, width), 60, np.uint8)
    image[: height // 4] = 230
    image[:, : width // 8] = 0
    return image


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_phone_video_decodes_upright(tmp_path: Path, rotation: int) -> None:
    upright = _upright()
    stored = np.rot90(upright, -rotation // 90)  # what the camera wrote; the matrix undoes it
    path = write_av(tmp_path / "phone.mp4", frames=np.repeat(stored[None], 10, axis=0),
                    rotation=rotation)
    clip = decode_media(path)
    assert clip.frames.shape == (10, 48, 80)
    assert np.abs(clip.frames[5].astype(int) - upright).mean() < 6
    info = probe_media(path)
    assert (info.width, info.height, info.rotation) == (80, 48, rotation)
    with MediaReader(path, frames=FrameFormat(short_side=24)) as reader:  # scaled, upright
        frames = np.concatenate([p.frames for p in reader.pieces() if len(p.frames)])
    assert frames.shape == (10, 24, 40) and frames[5, 1, 20] > 180 and frames[5, 20, 1] < 40


@pytest.mark.parametrize("name, codec", [("song.mp3", "libmp3lame"), ("song.flac", "flac")])
def test_cover_art_is_not_video(tmp_path: Path, name: str, codec: str) -> None:
    cover = np.full((32, 32, 3), 200, np.uint8)
    path = write_av(tmp_path / name, audio=tone(1.0)[None], audio_codec=codec, cover=cover)
    clip = decode_media(path)
    assert not clip.has_video and clip.frames.shape == (0, 0, 0)
    assert abs(len(clip.audio) - SAMPLE_RATE) < 1200  # mp3's frame padding
    info = probe_media(path)
    assert info.still_image and not info.has_video and info.has_audio
    with MediaReader(path) as reader:
        assert reader.still_image and not reader.has_video


def test_the_programme_audio_is_read_not_the_commentary(tmp_path: Path) -> None:
    path = write_av(tmp_path / "film.mkv", audio=tone(1.0, 440)[None],
                    commentary=tone(1.0, 1000)[None])
    audio = decode_media(path).audio
    assert np.abs(np.fft.rfft(audio[:SAMPLE_RATE])).argmax() == 440  # 1 Hz bins


def test_5_1_speech_in_the_centre_keeps_its_level(tmp_path: Path) -> None:
    names = ["FL", "FR", "FC", "LFE", "BL", "BR"]
    channels = np.stack([tone(1.0, hz, level=0.6 if name == "FC" else 0.2)
                         for name, hz in zip(names, [300, 500, 440, 50, 700, 900], strict=True)])
    audio = decode_media(write_av(tmp_path / "movie.mp4", audio=channels, layout="5.1")).audio
    spectrum = np.abs(np.fft.rfft(audio[:SAMPLE_RATE]))
    assert spectrum.argmax() == 440 and spectrum[300] < spectrum[440] / 50
    assert 0.55 < np.abs(audio[2000:14000]).max() < 0.65  # 1/6 of it by a plain mean


def test_downmix_without_a_centre_follows_bs775() -> None:
    x = np.ones((4, 3), np.float32)
    assert np.allclose(downmix(x, ("FL", "FR", "BL", "BR")), 1.0)  # common signal kept
    quad = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    assert np.allclose(downmix(quad, ("FL", "FR", "BL", "BR")), (1 + 0.7071) / (2 + 2 * 0.7071))
    lfe = np.array([[0.5], [0.5], [1.0]], np.float32)
    assert np.allclose(downmix(lfe, ("FL", "FR", "LFE")), 0.5)  # no LFE in speech
    stereo = np.random.default_rng(0).normal(size=(2, 100)).astype(np.float32)
    assert np.allclose(downmix(stereo, ("FL", "FR")), stereo.mean(axis=0))


def test_decoding_goes_on_past_a_corrupt_packet(tmp_path: Path) -> None:
    path = write_av(tmp_path / "hurt.mp4", frames=gradient_frames(50, 48, 64),
                    audio=tone(2.0)[None], corrupt=("audio", 20))
    clip = decode_media(path)
    assert clip.frames.shape[0] == 50 and len(clip.audio) == 2 * SAMPLE_RATE
    (damage,) = clip.damage
    assert damage.stream == "audio" and "corrupt packet" in damage.reason
    assert 1.15 < damage.start < 1.3 and abs(damage.seconds - 0.064) < 0.01  # packet 20 of 1024
    lost = clip.audio[round(damage.start * SAMPLE_RATE) + 300:round(damage.end * SAMPLE_RATE)
                      - 300]
    assert np.abs(lost).max() < 0.05 and np.abs(clip.audio[:16000]).max() > 0.4  # silence


@pytest.mark.parametrize("name, options", [
    ("cut.mp4", {"movflags": "faststart"}),  # the index first: a cut file still opens
    ("cut.webm", {}),
])
def test_a_file_cut_short_keeps_what_decodes_and_says_what_is_missing(
        tmp_path: Path, name: str, options: dict[str, str]) -> None:
    webm = name.endswith(".webm")
    whole = write_av(tmp_path / f"whole-{name}", frames=gradient_frames(75, 48, 64),
                     audio=tone(3.0, rate=48_000 if webm else SAMPLE_RATE)[None],
                     sample_rate=48_000 if webm else SAMPLE_RATE,
                     video_codec="libvpx" if webm else "libx264",
                     audio_codec="libopus" if webm else "aac", options=options)
    data = whole.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[:len(data) * 6 // 10])
    clip = decode_media(path)
    assert 0.8 < clip.duration < 2.6 and not clip.complete
    missing = [d for d in clip.damage if d.end >= 2.9]
    assert missing and all(d.start < 2.6 for d in missing)
    assert any("ends early" in d.reason or "cannot be read" in d.reason for d in clip.damage)


def test_pieces_are_small_and_add_up_to_the_whole_clip(tmp_path: Path) -> None:
    path = write_av(tmp_path / "long.mp4", frames=gradient_frames(100, 48, 64),
                    audio=tone(4.0)[None])
    with MediaReader(path) as reader:
        pieces = list(reader.pieces())
    assert max(len(p.frames) for p in pieces) <= 25 and max(len(p.audio) for p in pieces) \
        <= SAMPLE_RATE
    whole = decode_media(path)
    assert np.array_equal(np.concatenate([p.frames for p in pieces if len(p.frames)]),
                          whole.frames)
    assert np.array_equal(np.concatenate([p.audio for p in pieces]), whole.audio)


def test_fit_size() -> None:
    assert fit_size(1920, 1080, short_side=480) == (853, 480)
    assert fit_size(1080, 1920, short_side=480) == (480, 853)
    assert fit_size(320, 240, short_side=480) == (320, 240)
    assert fit_size(1920, 1080, pixels=1_000_000) == (1333, 750)


def test_a_directory_is_not_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is a directory"):
        decode_media(tmp_path)
