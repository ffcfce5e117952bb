"""decode_jpeg: real JPEGs from OpenCV's encoder decode; damaged ones raise MediaError."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from avsync.errors import MediaError
from avsync.media.jpeg import decode_jpeg, jpeg_size


@pytest.fixture(scope="module")
def photo_rgb() -> np.ndarray:
    return cv2.resize(skimage.data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def jpeg(photo_rgb) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def test_gray_and_rgb_decode_match_the_image(jpeg, photo_rgb) -> None:
    gray = decode_jpeg(jpeg)
    assert gray.shape == (240, 320) and gray.dtype == np.uint8
    expected = cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(gray.astype(int) - expected).mean() < 3
    rgb = decode_jpeg(jpeg, gray=False)
    assert rgb.shape == (240, 320, 3)
    assert np.abs(rgb.astype(int) - photo_rgb).mean() < 5


def test_grayscale_jpeg_and_trailing_padding(photo_rgb) -> None:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2GRAY))
    gray = decode_jpeg(encoded.tobytes() + b"\x00\x00")
    assert gray.shape == (240, 320)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_jpeg_raises(jpeg, keep) -> None:
    with pytest.raises(MediaError, match="truncated"):
        decode_jpeg(jpeg[:int(len(jpeg) * keep)])


def test_corrupt_data_with_intact_markers_raises(jpeg) -> None:
    """cv2.imdecode accepts this (and returns a garbled picture); we must not."""
    damaged = bytearray(jpeg)
    for index in np.random.default_rng(0).integers(1000, len(jpeg) - 1000, 20):
        damaged[index] ^= 0xFF
    garbled = cv2.imdecode(np.frombuffer(bytes(damaged), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert garbled is not None  # the silent failure this module exists for
    with pytest.raises(MediaError, match="corrupt"):
        decode_jpeg(bytes(damaged))


def test_zeroed_block_raises(jpeg) -> None:
    damaged = jpeg[:2000] + bytes(3000) + jpeg[5000:]
    with pytest.raises(MediaError, match="corrupt"):
        decode_jpeg(damaged)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"GIF89a....", b"\x89PNG\r\n\x1a\n\xff\xd9"])
def test_non_jpeg_input_raises(data) -> None:
    with pytest.raises(MediaError):
        decode_jpeg(data)


@pytest.mark.parametrize("progressive", [0, 1])
def test_the_frame_size_is_read_from_the_header(photo_rgb, progressive) -> None:
    ok, encoded = cv2.imencode(".jpg", photo_rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive])
    assert ok
    assert jpeg_size(encoded.tobytes()) == (320, 240)


def test_a_jpeg_declaring_too_many_pixels_is_refused_before_decoding(jpeg) -> None:
    import time

    data = bytearray(jpeg)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (16000).to_bytes(2, "big") * 2  # claims 16000x16000
    began = time.process_time()
    with pytest.raises(MediaError, match="16000x16000"):
        decode_jpeg(bytes(data), max_pixels=1920 * 1080)
    assert time.process_time() - began < 0.01  # the header alone; 256 MB never allocated
    assert decode_jpeg(jpeg, max_pixels=320 * 240).shape == (240, 320)
    with pytest.raises(MediaError, match="more than the"):
        decode_jpeg(jpeg, max_pixels=320 * 240 - 1)
