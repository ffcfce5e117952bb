"""Property-based tests (hypothesis): random and mutated client messages against the session
state machine with real media input, and against every parser of client bytes.

Properties: nothing raises (every bad input is a ProtocolError/MediaError with a documented
code, reported as an `error` of bounded length; never `internal`), a closed session sends
nothing more, and the work and memory a message sequence causes are bounded by what it
carried: steps handed to the engine by the media received plus max_gap_s and the wall clock,
buffered frames by the A/V skew and gap limits. Each test runs a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
from avsync.serve.config import ServerConfig
from avsync.serve.engine import EngineInfo
from avsync.serve.media_input import MediaInput
from avsync.serve.parse import parse_client_message
from avsync.serve.protocol import (
    FACE_BOX,
    MAX_ERROR_CHARS,
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    encode,
    pack_face_boxes,
    pack_media,
    unpack_face_boxes,
    unpack_media,
)
from avsync.serve.session import Capabilities, Close, Feed, Flush, Open, Phase, Send, Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avsync.errors import MediaError, ProtocolError
from avsync.media.jpeg import decode_jpeg, jpeg_size
from avsync.runtime import StreamUpdate

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONFIG = ServerConfig(max_gap_s=0.5, max_av_skew_s=0.2)
INFO = EngineInfo(name="fuzz", version="0", chunk_steps=2, roi_stored=8, tasks=tuple(Task))
STARTS = [
    Start(audio=AudioSpec()),
    Start(audio=AudioSpec(AudioEncoding.PCM_F32LE, 8000, 2), tasks=(Task.TRANSCRIPT,)),
    Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, 8, 6), tasks=tuple(Task)),
    Start(video=VideoSpec(VideoEncoding.GRAY8, 8, 6, faces=FaceMode.CLIENT_BOXES),
          tasks=(Task.TRANSCRIPT, Task.SPEAKERS)),
    Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.JPEG)),
]


def _jpeg(width: int, height: int) -> bytes:
    from avsync.media.opencv import cv2_module

    image = np.random.default_rng(width).integers(0, 255, (height, width), np.uint8)
    ok, data = cv2_module().imencode(".jpg", image)
    assert ok
    return data.tobytes()


JPEG = _jpeg(8, 6)


def mutated(data: bytes, draw) -> bytes:
    """Flip, cut, duplicate or insert bytes of a valid message."""
    how = draw(st.sampled_from(["same", "flip", "cut", "insert", "repeat"]))
    if how == "same" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if how == "cut":
        return data[:at]
    if how == "insert":
        return data[:at] + draw(st.binary(max_size=12)) + data[at:]
    return data[:at] + data[at:] * draw(st.integers(2, 4))


def honest(start: Start, kind: BinaryKind, seq: int, t_us: int) -> bytes:
    """A well-formed media message of `kind` for `start`'s formats."""
    if kind is BinaryKind.AUDIO:
        payload = b"\x10\x00" * 640 * (start.audio.channels if start.audio else 1)
    elif kind is BinaryKind.VIDEO:
        jpeg = start.video is not None and start.video.encoding is VideoEncoding.JPEG
        payload = JPEG if jpeg else bytes(range(48))
    elif kind is BinaryKind.FACE_BOXES:
        payload = pack_face_boxes({0: (0.0, 0.0, 8.0, 6.0), 1: (-1e30, 2.0, 1e38, 3.0)})
    else:
        payload = b"\x1a\x45\xdf\xa3"
    return pack_media(kind, seq, t_us, payload)


@st.composite
def client_messages(draw) -> list[str | bytes]:
    """A start (sometimes mutated), then mostly honest media with jumps in time, some
    mutated or random messages and junk text, sometimes an early end."""
    start = draw(st.sampled_from(STARTS))
    text = encode(start)
    messages: list[str | bytes] = [
        text if draw(st.integers(0, 4)) else mutated(text.encode(), draw).decode("utf-8",
                                                                                 "replace")]
    t_us, seqs = draw(st.integers(-(2**40), 2**40)), dict.fromkeys(BinaryKind, 0)
    for _ in range(draw(st.integers(0, 80))):
        choice = draw(st.integers(0, 39))
        kind = draw(st.sampled_from(list(BinaryKind)))
        seqs[kind] += draw(st.sampled_from([1, 1, 1, 0, 5]))
        t_us += draw(st.sampled_from([40_000] * 8 + [0, 39_000, 300_000, 700_000, 10**12,
                                                     -(10**6)]))
        message = honest(start, kind, seqs[kind], t_us)
        if choice == 0:
            messages.append(draw(st.text(max_size=40)))
        elif choice == 1:
            messages.append(encode(End()))
        elif choice < 6:
            messages.append(mutated(message, draw))
        elif choice == 6:
            messages.append(draw(st.binary(max_size=64)))
        else:
            messages.append(message)
    return messages


def check_error(message: object) -> None:
    if isinstance(message, Error):
        assert message.code in set(ErrorCode) and message.code != ErrorCode.INTERNAL
        assert 0 < len(message.message) <= MAX_ERROR_CHARS


class Driver:
    """Carries a Session's actions out in-line with a real MediaInput (no engine)."""

    def __init__(self) -> None:
        self.session = Session("fuzz", CONFIG, INFO, Capabilities(detect=False, container=False))
        self.media: MediaInput | None = None
        self.steps = 0
        self.covered_us = 0  # stream time the accepted media itself carried
        self.peak_pending = 0
        self.closed = False

    def run(self, messages: list[str | bytes]) -> None:
        for i, message in enumerate(messages):
            now = 1000.0 + 0.01 * i  # ten messages per 100 ms of wall clock
            if isinstance(message, str):
                self.carry_out(self.session.on_text(message))
            else:
                self.carry_out(self.session.on_binary(message, now))
        if self.session.phase is Phase.STREAMING:
            self.carry_out(self.session.on_input_end())

    def carry_out(self, actions) -> None:
        for action in actions:
            assert not self.closed, f"{action} after the close"
            if isinstance(action, Send):
                check_error(action.message)
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, Open):
                self.media = MediaInput(action.start, INFO.chunk_steps, INFO.roi_stored, CONFIG)
            elif isinstance(action, Feed):
                self.feed(action)
            elif isinstance(action, Flush):
                assert self.media is not None
                self.take(self.media.flush())
                self.carry_out(self.session.flushed(self.media.audio_ms,
                                                    self.media.frames_accepted))

    def feed(self, action: Feed) -> None:
        assert self.media is not None
        self.covered_us += self.session._duration_us(action.header, memoryview(action.payload))
        fed = self.media.feed(action.header, action.payload)
        for error in fed.errors:
            assert isinstance(error, ProtocolError)
        self.carry_out(self.session.on_media_errors(action.header, fed.errors))
        self.take(fed.chunks)
        self.peak_pending = max(self.peak_pending, len(self.media._steps),
                                len(self.media._audio) // 640)

    def take(self, chunks) -> None:
        for chunk in chunks:
            self.steps += chunk.input.steps
            self.carry_out(self.session.on_output(StreamUpdate()))


@FUZZ
@given(client_messages())
def test_the_session_survives_any_message_sequence_with_bounded_work(messages) -> None:
    driver = Driver()
    driver.run(messages)
    wall_s = 0.01 * len(messages)
    budget_us = driver.covered_us + (CONFIG.max_gap_s * 3 + wall_s) * 1e6
    assert driver.steps <= budget_us / 40_000 + 2 * INFO.chunk_steps + 1, \
        (driver.steps, driver.covered_us)
    skew, gap = CONFIG.max_av_skew_s / 0.04, CONFIG.max_gap_s / 0.04
    assert driver.peak_pending <= skew + 2 * gap + 2 * INFO.chunk_steps + 2


@FUZZ
@given(st.one_of(
    st.text(max_size=300),
    st.sampled_from(STARTS).map(encode).flatmap(
        lambda text: st.builds(lambda d: d, st.just(text))),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                           st.text(max_size=10)),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.sampled_from(["type", "version", "audio", "video", "tasks", "x"]),
                     inner, max_size=5), max_leaves=30).map(json.dumps),
))
def test_any_text_parses_or_gets_a_documented_code(text) -> None:
    try:
        message = parse_client_message(text)
    except ProtocolError as error:
        assert error.code in set(ErrorCode) and len(str(error)) <= MAX_ERROR_CHARS
    else:
        assert isinstance(message, Start | End)


@FUZZ
@given(st.data())
def test_mutated_starts_parse_or_get_a_documented_code(data) -> None:
    text = encode(data.draw(st.sampled_from(STARTS)))
    raw = data.draw(st.builds(lambda: None).flatmap(lambda _: st.just(text.encode())))
    mutant = mutated(raw, data.draw).decode("utf-8", "replace")
    try:
        parse_client_message(mutant)
    except ProtocolError as error:
        assert error.code in set(ErrorCode)


@FUZZ
@given(st.binary(max_size=80))
def test_any_bytes_are_a_media_message_or_bad_header(data) -> None:
    try:
        header, payload = unpack_media(data)
    except ProtocolError as error:
        assert error.code == ErrorCode.BAD_HEADER
    else:
        assert len(payload) == len(data) - 16 and header.kind in set(BinaryKind)
    try:
        boxes = unpack_face_boxes(data)
    except ProtocolError as error:
        assert error.code in (ErrorCode.BAD_PAYLOAD_SIZE, ErrorCode.BAD_FACE_BOXES)
    else:
        assert len(boxes) <= len(data) // FACE_BOX.size


@FUZZ
@given(st.data())
def test_mutated_jpegs_decode_to_their_header_size_or_raise_media_error(data) -> None:
    jpeg = data.draw(st.sampled_from([JPEG, _jpeg(16, 16)]))
    mutant = mutated(jpeg, data.draw)
    try:
        size = jpeg_size(mutant)
        image = decode_jpeg(mutant, max_pixels=64 * 64)
    except MediaError:
        return
    assert image.shape == (size[1], size[0])
