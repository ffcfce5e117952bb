"""Protocol v1: header packing, the one serialiser, and agreement with the JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from avsync.serve.parse import parse_client_message
from avsync.serve.protocol import (
    HEADER_BYTES,
    AudioEncoding,
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Final,
    Limits,
    MessageType,
    ModelSummary,
    Partial,
    Ready,
    Speakers,
    SpeakerTrack,
    Start,
    Sync,
    Task,
    VideoEncoding,
    VideoSpec,
    Word,
    decode_server_message,
    encode,
    message_type,
    pack_face_boxes,
    pack_media,
    unpack_face_boxes,
    unpack_media,
)

from avsync.errors import ProtocolError

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "protocol"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(message_json: str) -> None:
    obj = json.loads(message_json)
    jsonschema.Draft202012Validator(schema(obj["type"])).validate(obj)


SERVER_MESSAGES = [
    Ready("abc123", ModelSummary("m", "1", 160, 88, (Task.TRANSCRIPT,)),
          Limits(1 << 20, 3600.0, 30.0, 4, (16000, 48000)), (Task.TRANSCRIPT,)),
    Partial(0, "hello wor"),
    Final(0, "hello world", 80, 520, (Word("hello", 80, 280, 0.9), Word("world", 320, 520, 1.0))),
    Final(1, "", 600, 600),
    Speakers(120, (SpeakerTrack(0, (0.0, 0.0, 64.0, 64.0), 0.75), SpeakerTrack(3, (1, 2, 3, 4), 0))),
    Sync(1240, -120, 0.5, 0),
    Error(ErrorCode.BAD_PAYLOAD_SIZE, "audio payload of 3 bytes", False, "audio", 7),
    Error(ErrorCode.OVERLOADED, "too slow", True),
    Done(2, 1320, 33, "end"),
]


def test_every_message_type_has_a_schema_and_nothing_else_does() -> None:
    names = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert names == {t.value for t in MessageType}
    for name in names:
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_error_codes_in_the_schema_are_exactly_the_enum() -> None:
    assert schema("error")["properties"]["code"]["enum"] == [c.value for c in ErrorCode]


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip_and_match_their_schema(message) -> None:
    text = encode(message)
    validate(text)
    assert decode_server_message(text) == message
    assert json.loads(text)["type"] == message_type(message).value


VALID_STARTS = [
    Start(audio=AudioSpec()),
    Start(audio=AudioSpec(AudioEncoding.PCM_F32LE, 48000, 2),
          video=VideoSpec(VideoEncoding.JPEG, 640, 480, 30.0, FaceMode.DETECT),
          tasks=(Task.TRANSCRIPT, Task.SPEAKERS, Task.SYNC)),
    Start(video=VideoSpec(VideoEncoding.GRAY8, 96, 96)),
    Start(video=VideoSpec(VideoEncoding.WEBM, faces=FaceMode.CLIENT_BOXES),
          tasks=(Task.SPEAKERS,)),
]


@pytest.mark.parametrize("start", VALID_STARTS)
def test_valid_starts_round_trip_through_parser_and_schema(start: Start) -> None:
    text = encode(start)
    validate(text)
    assert parse_client_message(text) == start


def test_end_parses() -> None:
    validate(encode(End()))
    assert parse_client_message('{"type": "end"}') == End()


A = {"encoding": "pcm_s16le", "sample_rate": 16000, "channels": 1}
INVALID_STARTS = {
    "no media": {"type": "start", "version": 1, "audio": None, "video": None},
    "unknown field": {"type": "start", "version": 1, "audio": A, "token": "x"},
    "bad encoding": {"type": "start", "version": 1, "audio": {**A, "encoding": "mp3"}},
    "rate not int": {"type": "start", "version": 1, "audio": {**A, "sample_rate": "16k"}},
    "rate missing": {"type": "start", "version": 1, "audio": {"encoding": "pcm_s16le"}},
    "raw without size": {"type": "start", "version": 1, "video": {"encoding": "gray8"}},
    "bad faces": {"type": "start", "version": 1,
                  "video": {"encoding": "jpeg", "faces": "all"}},
    "container plus audio": {"type": "start", "version": 1, "audio": A,
                             "video": {"encoding": "webm"}},
    "empty tasks": {"type": "start", "version": 1, "audio": A, "tasks": []},
    "unknown task": {"type": "start", "version": 1, "audio": A, "tasks": ["translate"]},
    "zero fps": {"type": "start", "version": 1,
                 "video": {"encoding": "gray8", "width": 8, "height": 8, "fps": 0}},
    "wrong version": {"type": "start", "version": 2, "audio": A},
}


@pytest.mark.parametrize("name", INVALID_STARTS)
def test_invalid_starts_are_refused_by_parser_and_schema_alike(name: str) -> None:
    obj = INVALID_STARTS[name]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema("start")).validate(obj)
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(json.dumps(obj))
    assert refused.value.fatal
    assert refused.value.code in (ErrorCode.BAD_START, ErrorCode.UNSUPPORTED_VERSION)
    assert len(str(refused.value)) > 20  # says what is wrong


@pytest.mark.parametrize("text,code", [
    ("{not json", ErrorCode.MALFORMED_JSON),
    ("[1, 2]", ErrorCode.MALFORMED_JSON),
    ('{"type": "pause"}', ErrorCode.UNKNOWN_TYPE),
    ('{"kind": "start"}', ErrorCode.UNKNOWN_TYPE),
])
def test_malformed_and_unknown_text_messages(text: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_message(text)
    assert refused.value.code == code and not refused.value.fatal


def test_media_header_round_trip() -> None:
    data = pack_media(BinaryKind.VIDEO, 2**32 - 1, -5, b"\x01\x02\x03")
    header, payload = unpack_media(data)
    assert (header.kind, header.seq, header.timestamp_us) == (BinaryKind.VIDEO, 2**32 - 1, -5)
    assert bytes(payload) == b"\x01\x02\x03" and len(data) == HEADER_BYTES + 3


@pytest.mark.parametrize("data,says", [
    (b"AV\x01", "shorter"),
    (b"XX" + pack_media(BinaryKind.AUDIO, 0, 0)[2:], "starts with"),
    (pack_media(BinaryKind.AUDIO, 0, 0)[:2] + b"\x02" + pack_media(BinaryKind.AUDIO, 0, 0)[3:],
     "version 2"),
    (pack_media(BinaryKind.AUDIO, 0, 0)[:3] + b"\x09" + pack_media(BinaryKind.AUDIO, 0, 0)[4:],
     "kind 9"),
])
def test_bad_headers_say_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        unpack_media(data)
    assert refused.value.code == ErrorCode.BAD_HEADER and says in str(refused.value)


def test_face_boxes_round_trip_and_refuse_bad_records() -> None:
    boxes = {0: (1.0, 2.0, 30.0, 40.0), 7: (10.5, 0.0, 8.0, 8.0)}
    assert unpack_face_boxes(pack_face_boxes(boxes)) == boxes
    with pytest.raises(ProtocolError, match="multiple of 20"):
        unpack_face_boxes(b"\x00" * 19)
    with pytest.raises(ProtocolError, match="positive and finite"):
        unpack_face_boxes(pack_face_boxes({1: (0.0, 0.0, -1.0, 5.0)}))


def test_every_json_example_in_the_protocol_doc_is_valid() -> None:
    import re

    doc = (SCHEMAS.parent / "protocol.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", doc, flags=re.S)
    objects = []
    for block in blocks:
        try:
            objects.append(json.loads(block))
        except json.JSONDecodeError:
            objects += [json.loads(line) for line in block.splitlines() if line.strip()]
    assert {o["type"] for o in objects} == {t.value for t in MessageType} - {"error"}
    for obj in objects:
        validate(json.dumps(obj))
        if obj["type"] == "start":
            assert isinstance(parse_client_message(json.dumps(obj)), Start)
        elif obj["type"] != "end":
            decode_server_message(json.dumps(obj))
