"""Parse the client's text messages into typed `Start`/`End` values, or say exactly what is wrong.

Structure and types only (docs/protocol/start.schema.json says the same, and a test checks
they agree); what this server *supports* (rates, sizes, tasks the model has) is the session's
policy, so a structurally valid start can still be refused there with a clearer code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from avsync.errors import ProtocolError
from serve.protocol import (
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
)

E = TypeVar("E", bound=StrEnum)
_START_KEYS = {"type", "version", "audio", "video", "tasks"}
_AUDIO_KEYS = {"encoding", "sample_rate", "channels"}
_VIDEO_KEYS = {"encoding", "width", "height", "fps", "faces"}


def parse_client_message(text: str) -> ClientMessage:
    """A client text message → Start | End; ProtocolError with a code the client can act on."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProtocolError(ErrorCode.MALFORMED_JSON,
                            f"text message is not valid JSON ({error}); send one JSON object "
                            "per text message") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED_JSON,
                            f"text message must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == MessageType.START:
        return _parse_start(obj)
    if kind == MessageType.END:
        return End()
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                        f"unknown message type {kind!r}; a client sends "
                        f"{MessageType.START.value!r} or {MessageType.END.value!r}")


def _parse_start(obj: dict[str, Any]) -> Start:
    _no_extra(obj, _START_KEYS, "start")
    version = obj.get("version")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"start.version is {version!r}; this server speaks protocol "
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
        _bad(f"start.tasks must be a non-empty list of {_choices(Task)}, got {tasks!r}")
    parsed = tuple(_enum(Task, t, "start.tasks[]") for t in tasks)
    if len(set(parsed)) != len(parsed):
        _bad(f"start.tasks lists a task twice: {tasks!r}")
    return Start(audio=audio, video=video, tasks=parsed, version=version)


def _parse_audio(obj: Mapping[str, Any]) -> AudioSpec:
    _no_extra(obj, _AUDIO_KEYS, "start.audio")
    return AudioSpec(
        encoding=_enum(AudioEncoding, obj.get("encoding"), "start.audio.encoding"),
        sample_rate=_int(obj, "sample_rate", "start.audio", lo=1),
        channels=_int(obj, "channels", "start.audio", lo=1, default=1),
    )


def _parse_video(obj: Mapping[str, Any]) -> VideoSpec:
    _no_extra(obj, _VIDEO_KEYS, "start.video")
    encoding = _enum(VideoEncoding, obj.get("encoding"), "start.video.encoding")
    needs_size = encoding.pixel_bytes is not None
    fps = obj.get("fps", 25)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) \
            or fps <= 0:
        _bad(f"start.video.fps must be a positive number, got {fps!r}")
    return VideoSpec(
        encoding=encoding,
        width=_int(obj, "width", "start.video", lo=1, default=None if not needs_size else ...),
        height=_int(obj, "height", "start.video", lo=1, default=None if not needs_size else ...),
        fps=float(fps),
        faces=_enum(FaceMode, obj.get("faces", FaceMode.WHOLE_FRAME.value), "start.video.faces"),
    )


def _object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj[key]
    if not isinstance(value, dict):
        _bad(f"start.{key} must be an object or null, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, lo: int, default: Any = ...) -> Any:
    """An integer field ≥ lo; `default=...` makes it required."""
    if key not in obj or obj[key] is None:
        if default is ...:
            _bad(f"{where}.{key} is required")
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        _bad(f"{where}.{key} must be an integer ≥ {lo}, got {value!r}")
    return value


def _enum(enum: type[E], value: Any, where: str) -> E:
    try:
        return enum(value)
    except ValueError:
        _bad(f"{where} is {value!r}; expected one of {_choices(enum)}")
        raise  # unreachable: _bad raises


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(repr(member.value) for member in enum)


def _no_extra(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        _bad(f"{where} has unknown field(s) {extra}; allowed: {sorted(allowed)}")


def _bad(message: str) -> None:
    raise ProtocolError(ErrorCode.BAD_START, message, fatal=True)
