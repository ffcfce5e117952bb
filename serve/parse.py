"""Parse the client's text messages into typed `Start`/`End` values, or say exactly what is wrong.

Structure and types only (docs/protocol/start.schema.json says the same, and a test checks
they agree); what this server *supports* (rates, sizes, tasks the model has) is the session's
policy, so a structurally valid start can still be refused there with a clearer code.

Bounded: this is the one path every client text takes, so its cost is bounded before any
parsing — at most `max_bytes` of text, JSON nested at most `MAX_DEPTH` deep, integers of at
most `MAX_DIGITS` digits and finite floats (others become `Unreadable`, which no field accepts,
so they get the field's own error code) — and an error echoes at most an `excerpt` of the input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from avsync.serve.protocol import (
    PROTOCOL_VERSION,
    AudioEncoding,
    AudioSpec,
    ClientMessage,
    End,
    ErrorCode,
    FaceMode,
    MessageType,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    excerpt,
)

from avsync.errors import ProtocolError

E = TypeVar("E", bound=StrEnum)
_START_KEYS = {"type", "version", "audio", "video", "tasks"}
_AUDIO_KEYS = {"encoding", "sample_rate", "channels"}
_VIDEO_KEYS = {"encoding", "width", "height", "fps", "faces"}
MAX_TEXT_BYTES: int = 16 * 1024  # a start message is ~300 bytes
MAX_DEPTH: int = 8  # a start message nests 3 deep
MAX_DIGITS: int = 15  # any integer of the protocol fits; int() of 5000 digits raises
MAX_INT: int = 2**31 - 1
MAX_FPS: float = 1000.0
MAX_SIDE: int = 65535  # JPEG's own limit
MAX_CHANNELS: int = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclass(frozen=True)
class Unreadable:
    """A JSON number the protocol never uses (too many digits, not finite); no field accepts it."""

    what: str

    def __repr__(self) -> str:
        return f"<{self.what}>"


def parse_client_message(text: str, max_bytes: int = MAX_TEXT_BYTES) -> ClientMessage:
    """A client text message → Start | End; ProtocolError with a code the client can act on."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(ErrorCode.TEXT_TOO_LARGE,
                            f"text message of {size} bytes is over this server's {max_bytes}-byte "
                            "limit for text messages (a start message is a few hundred bytes)")
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise ProtocolError(ErrorCode.MALFORMED_JSON,
                            f"text message nests {depth} levels deep; protocol messages nest at "
                            f"most {MAX_DEPTH}")
    try:
        obj = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProtocolError(ErrorCode.MALFORMED_JSON,
                            f"text message is not valid JSON ({excerpt(str(error))}); send one "
                            "JSON object per text message") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED_JSON,
                            f"text message must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == MessageType.START:
        return _parse_start(obj)
    if kind == MessageType.END:
        return End()
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                        f"unknown message type {excerpt(kind)}; a client sends "
                        f"{MessageType.START.value!r} or {MessageType.END.value!r}")


def _depth(text: str) -> int:
    """Deepest nesting of [ and { outside JSON strings (linear; before json.loads recurses)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # every honest message: no scan
        return 0
    depth = peak = 0
    for char in _STRING.sub("", text):
        if char in "[{":
            depth += 1
            peak = max(peak, depth)
        elif char in "]}":
            depth -= 1
    return peak


def _integer(token: str) -> int | Unreadable:
    digits = len(token.lstrip("-"))
    return int(token) if digits <= MAX_DIGITS else Unreadable(f"a {digits}-digit number")


def _float(token: str) -> float | Unreadable:
    value = float(token) if len(token) <= 64 else math.inf
    return value if math.isfinite(value) else Unreadable(f"a number out of range ({token[:20]})")


def _constant(token: str) -> Unreadable:
    return Unreadable(f"{token}, which is not JSON")


def _parse_start(obj: dict[str, Any]) -> Start:
    _no_extra(obj, _START_KEYS, "start")
    version = obj.get("version")
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"start.version is {excerpt(version)}; this server speaks protocol "
                            f"version {PROTOCOL_VERSION}", fatal=True)
    audio = None if obj.get("audio") is None else _parse_audio(_object(obj, "audio"))
    video = None if obj.get("video") is None else _parse_video(_object(obj, "video"))
    if audio is None and video is None:
        _bad("start needs audio, video or both (both are null)")
    if audio is not None and video is not None and video.encoding.is_container:
        _bad(f"start.audio must be null with {video.encoding.value} video: a container "
             "stream carries its own audio")
    tasks = obj.get("tasks", [Task.TRANSCRIPT.value])
    if not isinstance(tasks, list) or not tasks:
        _bad(f"start.tasks must be a non-empty list of {_choices(Task)}, got {excerpt(tasks)}")
    parsed = tuple(_enum(Task, t, "start.tasks[]") for t in tasks)
    if len(set(parsed)) != len(parsed):
        _bad(f"start.tasks lists a task twice: {excerpt(tasks)}")
    return Start(audio=audio, video=video, tasks=parsed, version=version)


def _parse_audio(obj: Mapping[str, Any]) -> AudioSpec:
    _no_extra(obj, _AUDIO_KEYS, "start.audio")
    return AudioSpec(
        encoding=_enum(AudioEncoding, obj.get("encoding"), "start.audio.encoding"),
        sample_rate=_int(obj, "sample_rate", "start.audio", lo=1),
        channels=_int(obj, "channels", "start.audio", lo=1, default=1, hi=MAX_CHANNELS),
    )


def _parse_video(obj: Mapping[str, Any]) -> VideoSpec:
    _no_extra(obj, _VIDEO_KEYS, "start.video")
    encoding = _enum(VideoEncoding, obj.get("encoding"), "start.video.encoding")
    needs_size = encoding.pixel_bytes is not None
    fps = obj.get("fps", 25)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= MAX_FPS:
        _bad(f"start.video.fps must be a number in (0, {MAX_FPS:g}], got {excerpt(fps)}")
    return VideoSpec(
        encoding=encoding,
        width=_int(obj, "width", "start.video", lo=1, default=None if not needs_size else ...,
                   hi=MAX_SIDE),
        height=_int(obj, "height", "start.video", lo=1, default=None if not needs_size else ...,
                    hi=MAX_SIDE),
        fps=float(fps),
        faces=_enum(FaceMode, obj.get("faces", FaceMode.WHOLE_FRAME.value), "start.video.faces"),
    )


def _object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj[key]
    if not isinstance(value, dict):
        _bad(f"start.{key} must be an object or null, got {excerpt(value)}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, lo: int, default: Any = ...,
         hi: int = MAX_INT) -> Any:
    """An integer field in [lo, hi]; `default=...` makes it required."""
    if key not in obj or obj[key] is None:
        if default is ...:
            _bad(f"{where}.{key} is required")
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _bad(f"{where}.{key} must be an integer in [{lo}, {hi}], got {excerpt(value)}")
    return value


def _enum(enum: type[E], value: Any, where: str) -> E:
    try:
        return enum(value)
    except (ValueError, TypeError):
        _bad(f"{where} is {excerpt(value)}; expected one of {_choices(enum)}")
        raise  # unreachable: _bad raises


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(repr(member.value) for member in enum)


def _no_extra(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        _bad(f"{where} has unknown field(s) {excerpt(extra)}; allowed: {sorted(allowed)}")


def _bad(message: str) -> None:
    raise ProtocolError(ErrorCode.BAD_START, message, fatal=True)
