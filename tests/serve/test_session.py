"""The sans-I/O session: every protocol rule, driven by plain calls (no sockets, no threads).

No engine runs here: a `Session` only needs the model's `EngineInfo`, and stream updates are
plain `StreamUpdate` values the tests make up (the real runtime's are tested through the
server in test_server_*.py and in test_runtime_engine.py)."""

from __future__ import annotations

import random

import pytest
from avsync.serve.config import ServerConfig
from avsync.serve.engine import EngineInfo
from avsync.serve.protocol import (
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    CloseCode,
    Done,
    Error,
    ErrorCode,
    FaceMode,
    Final,
    Partial,
    Ready,
    Start,
    Sync,
    Task,
    VideoEncoding,
    VideoSpec,
    Word,
    encode,
    pack_face_boxes,
    pack_media,
)
from avsync.serve.session import Capabilities, Close, Feed, Flush, Open, Phase, Send, Session

from avsync.runtime import StreamUpdate

AUDIO = AudioSpec(AudioEncoding.PCM_S16LE, 16000, 1)
GRAY = VideoSpec(VideoEncoding.GRAY8, 8, 4)
INFO = EngineInfo(name="session-test", version="0", chunk_steps=2, roi_stored=20,
                  tasks=tuple(Task))


def new_session(detect: bool = True, container: bool = True) -> Session:
    return Session("s1", ServerConfig(), INFO, Capabilities(detect, container))


def started(start: Start | None = None) -> Session:
    session = new_session()
    actions = session.on_text(encode(start or Start(audio=AUDIO, video=GRAY, tasks=tuple(Task))))
    assert isinstance(actions[0], Open) and isinstance(actions[1].message, Ready)
    return session


def sent(actions) -> list:
    return [a.message for a in actions if isinstance(a, Send)]


def only_error(actions) -> Error:
    messages = sent(actions)
    assert len(messages) == 1 and isinstance(messages[0], Error), actions
    return messages[0]


def test_binary_before_start_is_fatal_and_closes_without_done() -> None:
    session = new_session()
    actions = session.on_binary(pack_media(BinaryKind.AUDIO, 0, 0, b"\0\0"), 0.0)
    error = sent(actions)[0]
    assert error.code == ErrorCode.NOT_STARTED and error.fatal
    assert actions[-1] == Close(CloseCode.POLICY, ErrorCode.NOT_STARTED)
    assert session.phase is Phase.CLOSED


@pytest.mark.parametrize("start,code,says", [
    (Start(audio=AudioSpec(sample_rate=12345)), ErrorCode.UNSUPPORTED_AUDIO, "12345 Hz"),
    (Start(audio=AudioSpec(channels=6)), ErrorCode.UNSUPPORTED_AUDIO, "6 audio channels"),
    (Start(video=VideoSpec(VideoEncoding.GRAY8, 4000, 4000)), ErrorCode.UNSUPPORTED_VIDEO,
     "4000x4000"),
    (Start(audio=AUDIO, tasks=(Task.SPEAKERS,)), ErrorCode.BAD_START, "need video"),
    (Start(video=GRAY, tasks=(Task.SYNC,)), ErrorCode.BAD_START, "needs audio and video"),
])
def test_impossible_starts_are_refused_with_a_reason(start: Start, code: ErrorCode,
                                                     says: str) -> None:
    session = new_session()
    actions = session.on_text(encode(start))
    error = sent(actions)[0]
    assert error.code == code and error.fatal and says in error.message
    assert isinstance(actions[-1], Close) and session.phase is Phase.CLOSED


def test_unavailable_decoders_are_refused_at_start() -> None:
    session = new_session(detect=False, container=False)
    error = sent(session.on_text(encode(Start(video=VideoSpec(faces=FaceMode.DETECT,
                                                                width=8, height=8)))))[0]
    assert error.code == ErrorCode.UNSUPPORTED_VIDEO and "detection" in error.message
    session = new_session(detect=False, container=False)
    error = sent(session.on_text(encode(Start(video=VideoSpec(VideoEncoding.WEBM)))))[0]
    assert error.code == ErrorCode.UNSUPPORTED_VIDEO and "webm" in error.message


def test_non_fatal_text_errors_keep_the_session() -> None:
    session = started()
    for text, code in [("{oops", ErrorCode.MALFORMED_JSON),
                       ('{"type": "pause"}', ErrorCode.UNKNOWN_TYPE),
                       (encode(Start(audio=AUDIO)), ErrorCode.ALREADY_STARTED)]:
        error = only_error(session.on_text(text))
        assert error.code == code and not error.fatal
    assert session.phase is Phase.STREAMING


def test_malformed_json_before_start_is_not_fatal() -> None:
    session = new_session()
    assert not only_error(session.on_text("{")).fatal
    assert session.phase is Phase.WAITING


@pytest.mark.parametrize("data,code", [
    (b"\x00" * 5, ErrorCode.BAD_HEADER),
    (pack_media(BinaryKind.CONTAINER, 0, 0, b"x"), ErrorCode.UNEXPECTED_KIND),
    (pack_media(BinaryKind.FACE_BOXES, 0, 0, pack_face_boxes({0: (0, 0, 1, 1)})),
     ErrorCode.UNEXPECTED_KIND),
    (pack_media(BinaryKind.AUDIO, 0, 0, b"\0\0\0"), ErrorCode.BAD_PAYLOAD_SIZE),
    (pack_media(BinaryKind.AUDIO, 0, 0, b""), ErrorCode.BAD_PAYLOAD_SIZE),
    (pack_media(BinaryKind.VIDEO, 0, 0, b"\0" * 31), ErrorCode.BAD_PAYLOAD_SIZE),
])
def test_bad_media_is_refused_and_not_fed(data: bytes, code: ErrorCode) -> None:
    session = started()
    actions = session.on_binary(data, 0.0)
    error = only_error(actions)
    assert error.code == code and not error.fatal
    assert not any(isinstance(a, Feed) for a in actions)


def test_sequence_numbers_and_timestamps_must_increase_per_kind() -> None:
    session = started()
    assert isinstance(session.on_binary(pack_media(BinaryKind.AUDIO, 5, 100, b"\0\0"), 0.0)[0], Feed)
    assert isinstance(session.on_binary(pack_media(BinaryKind.VIDEO, 0, 0, b"\0" * 32), 0.0)[0], Feed)
    assert only_error(session.on_binary(pack_media(BinaryKind.AUDIO, 5, 200, b"\0\0"), 0.0)).code \
        == ErrorCode.BAD_SEQUENCE
    error = only_error(session.on_binary(pack_media(BinaryKind.AUDIO, 6, 99, b"\0\0"), 0.0))
    assert error.code == ErrorCode.BAD_TIMESTAMP and error.seq == 6 and error.kind == "audio"
    assert isinstance(session.on_binary(pack_media(BinaryKind.AUDIO, 9, 100, b"\0\0"), 0.0)[0], Feed)


def test_end_flushes_then_done_then_close_and_nothing_after() -> None:
    session = started()
    assert session.on_text('{"type": "end"}') == [Flush()]
    assert only_error(session.on_binary(pack_media(BinaryKind.AUDIO, 0, 0, b"\0\0"), 0.0)).code \
        == ErrorCode.AFTER_END
    assert only_error(session.on_text('{"type": "end"}')).code == ErrorCode.AFTER_END
    session.on_output(StreamUpdate(finals=(Final(0, "a b", 0, 80),)))
    actions = session.flushed(audio_ms=1000, video_frames=25)
    assert sent(actions) == [Done(1, 1000, 25, "end")]
    assert actions[-1] == Close(CloseCode.NORMAL, "end")
    assert session.on_output(StreamUpdate(partial=Partial(1, "late"))) == []


def test_server_side_end_before_start_closes_and_while_streaming_flushes() -> None:
    waiting = new_session()
    actions = waiting.end(ErrorCode.IDLE_TIMEOUT, "idle")
    assert sent(actions)[0].code == ErrorCode.IDLE_TIMEOUT and isinstance(actions[-1], Close)
    session = started()
    actions = session.end(ErrorCode.SHUTTING_DOWN, "bye")
    assert sent(actions)[0].fatal and actions[-1] == Flush()
    assert sent(session.flushed(0, 0))[0].reason == "shutting_down"


def test_fatal_media_error_still_flushes_what_was_received() -> None:
    session = started(Start(video=VideoSpec(VideoEncoding.WEBM)))
    header = session.on_binary(pack_media(BinaryKind.CONTAINER, 0, 0, b"junk"), 0.0)[0].header
    from avsync.errors import ProtocolError

    actions = session.on_media_errors(header, [ProtocolError(ErrorCode.UNDECODABLE_CONTAINER,
                                                             "bad", fatal=True)])
    assert sent(actions)[0].fatal and actions[-1] == Flush()
    closing = session.flushed(0, 0)
    assert sent(closing)[0].reason == "error" and closing[-1].code == CloseCode.POLICY


def test_abort_is_immediate_and_idempotent() -> None:
    session = started()
    actions = session.abort(ErrorCode.OVERLOADED, "slow", CloseCode.TRY_AGAIN_LATER)
    assert sent(actions)[0].code == ErrorCode.OVERLOADED
    assert actions[-1].code == CloseCode.TRY_AGAIN_LATER
    assert session.abort(ErrorCode.OVERLOADED, "slow", CloseCode.TRY_AGAIN_LATER) == []


def test_updates_go_out_as_they_are_and_done_counts_the_finals() -> None:
    """The runtime numbers segments and throttles reports: the session sends each update's
    messages in order (finals, partial, speakers, sync) and counts the finals."""
    rng = random.Random(0)
    session = started()
    messages, expected, segment = [], [], 0
    for _ in range(100):
        finals = []
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            finals.append(Final(segment, "w", 0, 40, (Word("w", 0, 40, 1.0),)))
            segment += 1
        partial = rng.choice([None, Partial(segment, "a b")])
        sync = rng.choice([None, Sync(40, 80, 0.5, 0)])
        update = StreamUpdate(tuple(finals), partial, None, sync)
        expected += update.messages
        messages += sent(session.on_output(update))
    assert messages == expected
    session.on_text('{"type": "end"}')
    done = sent(session.flushed(0, 0))
    assert isinstance(done[-1], Done) and done[-1].segments == segment


def test_ready_tells_the_client_the_limits_it_must_respect() -> None:
    session = new_session()
    ready = sent(session.on_text(encode(Start(audio=AUDIO))))[0]
    limits, cfg = ready.limits, ServerConfig()
    assert (limits.max_message_bytes, limits.max_text_bytes, limits.max_frame_pixels) == \
        (cfg.max_message_bytes, cfg.max_text_bytes, cfg.max_frame_pixels)
    assert (limits.max_gap_s, limits.start_timeout_s) == (2.0, 10.0)
