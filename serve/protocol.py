"""Protocol v1: every message type, the binary media header and the one serialiser.

Why one module: client, server, tests and docs must agree byte for byte, so names, enums and the
wire encoding live here once (docs/protocol.md describes them, docs/protocol/*.schema.json holds
a JSON Schema per text message and tests prove the two agree). No magic strings elsewhere:
code compares against these enums.

Results are the runtime's own types (`avsync.runtime.results`: Partial, Final and its Words,
Speakers, Sync), serialised here as they are: `_WIRE_NAMES` says where a field's wire name
differs (a Word's `text` is `word` on the wire) and `_RUNTIME_ONLY` which fields stay in the
runtime (a final's `confidence` and `tokens`).

Text messages are JSON objects with a `type`. Binary messages are media: a 16-byte header
(`HEADER`, little-endian) then the payload. Times on the wire are integers: capture timestamps
in microseconds (client clock), result times in milliseconds of *stream time*, whose zero is the
capture timestamp of the first media message the server accepted.
"""

from __future__ import annotations

import dataclasses
import json
import reprlib
import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar

from avsync.errors import ProtocolError
from avsync.runtime.results import Final, Partial, Speakers, SpeakerTrack, Sync
from avsync.runtime.words import Word

PROTOCOL_VERSION: int = 1
STREAM_PATH: str = "/v1/stream"


class MessageType(StrEnum):
    """The `type` of every text message; start and end go client → server, the rest back."""

    START = "start"
    END = "end"
    READY = "ready"
    PARTIAL = "partial"
    FINAL = "final"
    SPEAKERS = "speakers"
    SYNC = "sync"
    ERROR = "error"
    DONE = "done"


class AudioEncoding(StrEnum):
    PCM_S16LE = "pcm_s16le"
    PCM_F32LE = "pcm_f32le"

    @property
    def sample_bytes(self) -> int:
        return 2 if self is AudioEncoding.PCM_S16LE else 4


class VideoEncoding(StrEnum):
    GRAY8 = "gray8"
    RGB24 = "rgb24"
    JPEG = "jpeg"
    WEBM = "webm"
    MP4 = "mp4"

    @property
    def is_container(self) -> bool:
        """Container streams carry audio and video together in CONTAINER messages."""
        return self in (VideoEncoding.WEBM, VideoEncoding.MP4)

    @property
    def pixel_bytes(self) -> int | None:
        """Bytes per pixel of a raw frame; None when frames are compressed."""
        return {VideoEncoding.GRAY8: 1, VideoEncoding.RGB24: 3}.get(self)


class FaceMode(StrEnum):
    WHOLE_FRAME = "whole-frame"  # the frame is one face-centred crop (LRS style): track 0
    DETECT = "detect"  # the server detects and tracks faces
    CLIENT_BOXES = "client-boxes"  # the client sends FACE_BOXES messages


class Task(StrEnum):
    TRANSCRIPT = "transcript"
    SPEAKERS = "speakers"
    SYNC = "sync"


class BinaryKind(IntEnum):
    """The kind byte of a media message's header."""

    AUDIO = 1  # PCM in the start message's audio encoding, interleaved channels
    VIDEO = 2  # one frame: raw gray8/rgb24 (width*height*bytes) or one JPEG
    CONTAINER = 3  # the next bytes of a webm/mp4 stream (audio and video together)
    FACE_BOXES = 4  # the client's face boxes for the frames that follow (FACE_BOX records)


class ErrorCode(StrEnum):
    MALFORMED_JSON = "malformed_json"
    TEXT_TOO_LARGE = "text_too_large"
    UNKNOWN_TYPE = "unknown_type"
    BAD_START = "bad_start"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_AUDIO = "unsupported_audio"
    UNSUPPORTED_VIDEO = "unsupported_video"
    ALREADY_STARTED = "already_started"
    NOT_STARTED = "not_started"
    AFTER_END = "after_end"
    BAD_HEADER = "bad_header"
    UNEXPECTED_KIND = "unexpected_kind"
    BAD_SEQUENCE = "bad_sequence"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_PAYLOAD_SIZE = "bad_payload_size"
    INVALID_SAMPLES = "invalid_samples"
    UNDECODABLE_FRAME = "undecodable_frame"
    UNDECODABLE_CONTAINER = "undecodable_container"
    BAD_FACE_BOXES = "bad_face_boxes"
    START_TIMEOUT = "start_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_TOO_LONG = "session_too_long"
    OVERLOADED = "overloaded"
    CLIENT_NOT_READING = "client_not_reading"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


class CloseCode(IntEnum):
    """Websocket close codes the server uses (RFC 6455 section 7.4.1)."""

    NORMAL = 1000  # after `done`
    GOING_AWAY = 1001  # server shutdown: after the drained results, or at the drain timeout
    POLICY = 1008  # a fatal protocol error (bad start, binary before start, ...)
    TOO_BIG = 1009  # a message over max_message_bytes (websockets closes by itself)
    INTERNAL = 1011  # a bug on the server side
    TRY_AGAIN_LATER = 1013  # overload: the server cannot keep up with this session


# --- binary media messages -------------------------------------------------------------------

MAGIC: bytes = b"AV"
HEADER = struct.Struct("<2sBBIq")  # magic, protocol version, kind, sequence, capture time (µs)
HEADER_BYTES: int = HEADER.size  # 16
FACE_BOX = struct.Struct("<I4f")  # track id, x, y, w, h in pixels of the declared frame
MAX_SEQUENCE: int = 2**32 - 1


@dataclass(frozen=True)
class MediaHeader:
    kind: BinaryKind
    seq: int  # per kind, strictly increasing, from any start value
    timestamp_us: int  # capture time of the payload's first sample/frame, client clock


def pack_media(kind: BinaryKind, seq: int, timestamp_us: int, payload: bytes = b"") -> bytes:
    """One binary message: the 16-byte header then `payload` (bytes as the kind says)."""
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, int(kind), seq, timestamp_us) + bytes(payload)


def unpack_media(data: bytes) -> tuple[MediaHeader, memoryview]:
    """Split a binary message into its header and payload; ProtocolError(BAD_HEADER) if unreadable."""
    if len(data) < HEADER_BYTES:
        raise ProtocolError(ErrorCode.BAD_HEADER,
                            f"binary message of {len(data)} bytes is shorter than the "
                            f"{HEADER_BYTES}-byte media header; see docs/protocol.md")
    magic, version, kind, seq, timestamp_us = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError(ErrorCode.BAD_HEADER,
                            f"media header starts with {magic!r}, expected {MAGIC!r}")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.BAD_HEADER,
                            f"media header has protocol version {version}, this server speaks "
                            f"{PROTOCOL_VERSION}")
    if kind not in BinaryKind._value2member_map_:
        raise ProtocolError(ErrorCode.BAD_HEADER,
                            f"media header has kind {kind}, expected one of "
                            f"{[int(k) for k in BinaryKind]} ({', '.join(k.name for k in BinaryKind)})")
    return MediaHeader(BinaryKind(kind), seq, timestamp_us), memoryview(data)[HEADER_BYTES:]


def pack_face_boxes(boxes: dict[int, tuple[float, float, float, float]]) -> bytes:
    """FACE_BOXES payload: one FACE_BOX record (track id, x, y, w, h) per face."""
    return b"".join(FACE_BOX.pack(track, *box) for track, box in sorted(boxes.items()))


def unpack_face_boxes(payload: bytes | memoryview) -> dict[int, tuple[float, float, float, float]]:
    if len(payload) % FACE_BOX.size:
        raise ProtocolError(ErrorCode.BAD_PAYLOAD_SIZE,
                            f"face boxes payload of {len(payload)} bytes is not a multiple of "
                            f"{FACE_BOX.size} (track id uint32 + x, y, w, h float32)")
    boxes = {}
    for track, x, y, w, h in FACE_BOX.iter_unpack(payload):
        if not all(map(_finite, (x, y, w, h))) or w <= 0 or h <= 0:
            raise ProtocolError(ErrorCode.BAD_FACE_BOXES,
                                f"face box of track {track} is ({x}, {y}, {w}, {h}); "
                                "width and height must be positive and finite")
        boxes[track] = (x, y, w, h)
    return boxes


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


EXCERPT_CHARS: int = 60
MAX_ERROR_CHARS: int = 500
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = EXCERPT_CHARS - 20


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short repr of client input for an error message: an error never costs much more to
    send than the input that caused it (a 1 MB bad field gets a ~60-character echo)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- text messages ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AudioSpec:
    encoding: AudioEncoding = AudioEncoding.PCM_S16LE
    sample_rate: int = 16_000
    channels: int = 1


@dataclass(frozen=True)
class VideoSpec:
    encoding: VideoEncoding = VideoEncoding.GRAY8
    width: int | None = None  # required for gray8/rgb24, optional otherwise
    height: int | None = None
    fps: float = 25.0  # nominal; frames are placed on the 40 ms grid by their timestamps
    faces: FaceMode = FaceMode.WHOLE_FRAME


@dataclass(frozen=True)
class Start:
    """Client → server, first message. Container video means `audio` is None (it is inside)."""

    TYPE: ClassVar[MessageType] = MessageType.START
    audio: AudioSpec | None = None
    video: VideoSpec | None = None
    tasks: tuple[Task, ...] = (Task.TRANSCRIPT,)
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class End:
    """Client → server: no more media; the server flushes, sends every final, then `done`."""

    TYPE: ClassVar[MessageType] = MessageType.END


@dataclass(frozen=True)
class ModelSummary:
    name: str
    version: str
    chunk_ms: int  # how much media one inference step consumes
    roi_size: int  # stored mouth-ROI side in pixels
    tasks: tuple[Task, ...]  # what this model can do
    modalities: tuple[str, ...] = ("audio", "video")


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int
    max_session_s: float
    idle_timeout_s: float
    max_faces: int
    sample_rates: tuple[int, ...]
    # optional on the wire (servers before issue 12 did not send them)
    max_text_bytes: int | None = None
    max_frame_pixels: int | None = None
    max_gap_s: float | None = None
    start_timeout_s: float | None = None


@dataclass(frozen=True)
class Ready:
    TYPE: ClassVar[MessageType] = MessageType.READY
    session: str
    model: ModelSummary
    limits: Limits
    tasks: tuple[Task, ...]  # the tasks this session will get results for
    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Error:
    TYPE: ClassVar[MessageType] = MessageType.ERROR
    code: ErrorCode
    message: str
    fatal: bool = False
    kind: str | None = None  # for media errors: which binary kind ...
    seq: int | None = None  # ... and which sequence number was refused


@dataclass(frozen=True)
class Done:
    """Last message of a session: every final was sent before it."""

    TYPE: ClassVar[MessageType] = MessageType.DONE
    segments: int  # finals sent in this session
    audio_ms: int  # accepted audio, all of it decoded and recognised
    video_frames: int  # accepted video frames
    reason: str = "end"  # end | idle_timeout | session_too_long | shutting_down | error


ClientMessage = Start | End
ServerMessage = Ready | Partial | Final | Speakers | Sync | Error | Done
Message = ClientMessage | ServerMessage
# the runtime's result types and the message type each is sent as
_RESULT_TYPES: dict[type, MessageType] = {Partial: MessageType.PARTIAL, Final: MessageType.FINAL,
                                          Speakers: MessageType.SPEAKERS, Sync: MessageType.SYNC}
_BY_TYPE: dict[str, type] = {
    **{cls.TYPE.value: cls for cls in (Start, End, Ready, Error, Done)},
    **{kind.value: cls for cls, kind in _RESULT_TYPES.items()}}
_WIRE_NAMES: dict[type, dict[str, str]] = {Word: {"text": "word"}}  # field -> wire name
_RUNTIME_ONLY: dict[type, frozenset[str]] = {Final: frozenset({"confidence", "tokens"})}
KEEP_NULL = frozenset({"face", "box"})  # null says something here: no visible face said it


def message_type(message: Message) -> MessageType:
    """The `type` a message is sent with."""
    kind = _RESULT_TYPES.get(type(message))
    return kind if kind is not None else message.TYPE  # type: ignore[union-attr]


def to_wire(message: Message) -> dict[str, Any]:
    """The JSON object for a message: `type` first, then its fields (None fields left out)."""
    return {"type": message_type(message).value, **_fields(message)}


def _fields(obj: Any) -> dict[str, Any]:
    names, hidden = _WIRE_NAMES.get(type(obj), {}), _RUNTIME_ONLY.get(type(obj), frozenset())
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in hidden or (value is None and f.name not in KEEP_NULL):
            continue
        out[names.get(f.name, f.name)] = _value(value)
    return out


def _value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    return value


def encode(message: Message) -> str:
    """The one serialiser: every text message, both directions, goes through here."""
    return json.dumps(to_wire(message), separators=(",", ":"), allow_nan=False)


def decode_server_message(text: str | bytes) -> ServerMessage:
    """Parse a server → client message into its dataclass (client side; trusts the server)."""
    obj = json.loads(text)
    cls = _BY_TYPE.get(obj.get("type"))
    if cls is None or cls in (Start, End):
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown server message type {obj.get('type')!r}")
    return _build(cls, {k: v for k, v in obj.items() if k != "type"})


_NESTED: dict[str, type] = {"model": ModelSummary, "limits": Limits}
_ITEMS: dict[str, type] = {"words": Word, "tracks": SpeakerTrack}
_ENUMS: dict[str, type] = {"code": ErrorCode}


def _build(cls: type, obj: dict[str, Any]) -> Any:
    """Rebuild nested dataclasses from plain JSON (lists become tuples, known enums typed)."""
    kwargs: dict[str, Any] = {}
    names = _WIRE_NAMES.get(cls, {})
    for f in dataclasses.fields(cls):
        wire = names.get(f.name, f.name)
        if wire not in obj:
            continue
        value = obj[wire]
        if f.name in _NESTED:
            value = _build(_NESTED[f.name], value)
        elif f.name in _ITEMS:
            value = tuple(_build(_ITEMS[f.name], item) for item in value)
        elif f.name in _ENUMS:
            value = _ENUMS[f.name](value)
        elif f.name == "tasks":
            value = tuple(Task(t) for t in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
