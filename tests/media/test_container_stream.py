"""ContainerStreamDecoder on real webm (VP8/VP9 + Opus) and fragmented mp4 (H.264 + AAC)
streams pushed in random-sized pieces, and on garbage: errors, never hangs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from avsync.errors import MediaError
from avsync.media.container_stream import ContainerStreamDecoder, StreamOutput, sniff_container
from avsync.media.decode import decode_media
from avsync.media.encode import write_mp4
from avsync.timebase import FPS, SAMPLES_PER_STEP

FLASHES = [5, 20, 41]
FRAMES = 50

pytestmark = pytest.mark.timeout(60)


def _webm(tmp_path: Path, media_writer, signals, codec: str) -> Path:
    rate = 48_000
    clicks = [f * rate // FPS for f in FLASHES]
    audio = np.tile(signals.click_train(FRAMES * rate // FPS, clicks), (2, 1))
    return media_writer(tmp_path / f"{codec}.webm", frames=signals.flash_frames(FRAMES, FLASHES),
                        video_codec=codec, audio=audio, sample_rate=rate,
                        audio_codec="libopus")


def _fragmented_mp4(tmp_path: Path, signals) -> Path:
    path = tmp_path / "frag.mp4"
    audio = signals.click_train(FRAMES * SAMPLES_PER_STEP, [f * SAMPLES_PER_STEP for f in FLASHES])
    write_mp4(path, signals.flash_frames(FRAMES, FLASHES), audio, fragmented=True)
    return path


def _stream(decoder: ContainerStreamDecoder, data: bytes, seed: int,
            pause: float = 0.0) -> tuple[list[StreamOutput], int]:
    """Push `data` in random pieces (1 B to 3 kB), polling after each; return the outputs
    (close() last) and how many polls before close() already had something."""
    rng = np.random.default_rng(seed)
    outputs, early, start = [], 0, 0
    while start < len(data):
        size = int(rng.integers(1, 3000))
        decoder.push(data[start:start + size])
        start += size
        if pause:
            time.sleep(pause)
        out = decoder.poll()
        early += bool(out.frames or out.audio)
        outputs.append(out)
    outputs.append(decoder.close())
    return outputs, early


def _collect(outputs: list[StreamOutput]):
    frames = [f for out in outputs for f in out.frames]
    chunks = [out.audio for out in outputs if out.audio is not None]
    return frames, chunks


def _check_stream(path: Path, outputs: list[StreamOutput]) -> None:
    frames, chunks = _collect(outputs)
    assert outputs[-1].finished
    assert [round(f.time * FPS) for f in frames] == list(range(FRAMES))
    bright = [i for i, f in enumerate(frames) if f.image.mean() > 128]
    assert bright == FLASHES
    assert frames[0].image.dtype == np.uint8 and frames[0].image.ndim == 2
    # audio: contiguous chunks, identical to decoding the whole file at once
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start == pytest.approx(before.start + len(before.samples) / 16000)
    assert chunks[0].start == pytest.approx(0.0, abs=1e-3)
    audio = np.concatenate([c.samples for c in chunks])
    reference = decode_media(path).audio
    assert np.array_equal(audio[:len(reference)], reference[:len(audio)])
    assert abs(len(audio) - len(reference)) <= 1024
    for flash in FLASHES:
        where = flash * SAMPLES_PER_STEP
        found = where - 160 + int(np.argmax(np.abs(audio[where - 160:where + 160])))
        assert abs(found - where) <= 16  # 1 ms


@pytest.mark.parametrize("codec", ["libvpx", "libvpx-vp9"])
def test_webm_from_a_media_recorder_decodes_as_it_arrives(tmp_path, media_writer, signals,
                                                          codec) -> None:
    path = _webm(tmp_path, media_writer, signals, codec)
    decoder = ContainerStreamDecoder()
    outputs, early = _stream(decoder, path.read_bytes(), seed=1, pause=0.002)
    _check_stream(path, outputs)
    assert early > 0  # output came out before the end of the stream


def test_fragmented_mp4_decodes_as_it_arrives(tmp_path, signals) -> None:
    path = _fragmented_mp4(tmp_path, signals)
    for seed in (2, 3):  # piece sizes small enough to need seeking back within a fragment
        decoder = ContainerStreamDecoder()
        outputs, early = _stream(decoder, path.read_bytes(), seed=seed, pause=0.002)
        _check_stream(path, outputs)
        assert early > 0  # fragment by fragment, not all at the end


def test_rgb_frames_on_request(tmp_path, signals) -> None:
    path = _fragmented_mp4(tmp_path, signals)
    decoder = ContainerStreamDecoder(gray=False, audio=False)
    outputs, _ = _stream(decoder, path.read_bytes(), seed=4)
    frames, chunks = _collect(outputs)
    assert frames[0].image.shape == (64, 64, 3) and not chunks


def test_garbage_is_refused_at_once() -> None:
    garbage = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    decoder = ContainerStreamDecoder()
    with pytest.raises(MediaError, match="unrecognised container"):
        decoder.push(garbage)
    with pytest.raises(MediaError):
        decoder.push(b"more")


@pytest.mark.parametrize("head", [b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x18ftypisom"])
def test_a_valid_signature_followed_by_garbage_raises(head) -> None:
    garbage = np.random.default_rng(1).integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    decoder = ContainerStreamDecoder()
    started = time.monotonic()
    with pytest.raises(MediaError, match="undecodable"):
        for start in range(0, len(garbage), 1000):
            decoder.push((head + garbage)[start:start + 1000])
            decoder.poll()
        decoder.close(timeout=20)
    assert time.monotonic() - started < 20


def test_garbage_inside_an_mp4_stream_raises(tmp_path, signals) -> None:
    data = _fragmented_mp4(tmp_path, signals).read_bytes()
    garbage = np.random.default_rng(2).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    cut = len(data) // 2
    decoder = ContainerStreamDecoder()
    with pytest.raises(MediaError, match="undecodable"):
        _stream(decoder, data[:cut] + garbage + data[cut:], seed=5)


@pytest.mark.parametrize("kind", ["webm", "mp4"])
def test_a_stream_cut_short_keeps_what_decoded(tmp_path, media_writer, signals, kind) -> None:
    path = (_webm(tmp_path, media_writer, signals, "libvpx") if kind == "webm"
            else _fragmented_mp4(tmp_path, signals))
    data = path.read_bytes()
    decoder = ContainerStreamDecoder()
    outputs, _ = _stream(decoder, data[:int(len(data) * 0.7)], seed=6)
    frames, _ = _collect(outputs)
    assert 5 < len(frames) < FRAMES
    assert outputs[-1].finished


def test_close_before_a_signature_and_push_after_close() -> None:
    decoder = ContainerStreamDecoder()
    decoder.push(b"\x1a\x45")
    with pytest.raises(MediaError, match="too few"):
        decoder.close()
    empty = ContainerStreamDecoder()
    assert empty.close().finished
    with pytest.raises(MediaError, match="after close"):
        empty.push(b"\x1a\x45\xdf\xa3")


def test_abort_stops_a_waiting_worker(tmp_path, signals) -> None:
    data = _fragmented_mp4(tmp_path, signals).read_bytes()
    decoder = ContainerStreamDecoder()
    decoder.push(data[:len(data) // 3])  # the worker now waits for more bytes
    time.sleep(0.05)
    assert decoder.running
    decoder.abort()
    deadline = time.monotonic() + 5
    while decoder.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not decoder.running


def test_sniffing() -> None:
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01\x00\x00\x00") == "matroska"
    assert sniff_container(b"\x00\x00\x00\x1cftypiso5") == "mp4"
    assert sniff_container(b"RIFF\x00\x00\x00\x00WAVE") is None
