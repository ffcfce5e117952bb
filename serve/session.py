"""The sans-I/O session: protocol v1's state machine, with no sockets, threads or clocks.

Why sans-I/O: every rule of the protocol (what may come when, which errors are fatal, when
`done` may go out, which segment a partial belongs to) is decided here by plain method calls
that return *actions*, so tests drive it directly and the websocket adapter (server.py) only
carries actions out. Time-based events (idle timeout, session length, shutdown) come in as
calls to `end()`; media work goes out as `Feed` actions for a media thread. Results come in
as the runtime's `StreamUpdate`s and go out as they are (the protocol serialises the runtime's
types): segment numbers, partial deduplication and the speakers/sync throttles are the
runtime's; the session only counts the finals for `done`.

Phases: WAITING (for `start`) → STREAMING → ENDING (no more input; flushing) → CLOSED.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from avsync.serve.clock import STEP_US, StreamClock
from avsync.serve.config import ServerConfig
from avsync.serve.engine import EngineInfo
from avsync.serve.parse import parse_client_message
from avsync.serve.protocol import (
    FACE_BOX,
    MAX_ERROR_CHARS,
    BinaryKind,
    CloseCode,
    Done,
    End,
    Error,
    ErrorCode,
    FaceMode,
    Limits,
    MediaHeader,
    ModelSummary,
    Ready,
    ServerMessage,
    Start,
    Task,
    unpack_media,
)

from avsync.errors import ProtocolError
from avsync.runtime import Final, StreamUpdate
from avsync.timebase import STEP_MS


class Phase(StrEnum):
    WAITING = "waiting"
    STREAMING = "streaming"
    ENDING = "ending"
    CLOSED = "closed"


@dataclass(frozen=True)
class Send:
    message: ServerMessage


@dataclass(frozen=True)
class Close:
    code: CloseCode
    reason: str


@dataclass(frozen=True)
class Open:
    """Create the session's media input and engine stream for this start (before Ready goes)."""

    start: Start


@dataclass(frozen=True)
class Feed:
    """Decode this accepted media message and run the chunks it completes."""

    header: MediaHeader
    payload: bytes


@dataclass(frozen=True)
class Flush:
    """No more input: flush media and the engine, hand results back, then call `flushed()`."""


Action = Send | Close | Open | Feed | Flush


@dataclass(frozen=True)
class Capabilities:
    """What this server build can decode, decided once at start-up."""

    detect: bool  # avsync.media.faces is available
    container: bool  # avsync.media.container_stream is available


class Session:
    def __init__(self, session_id: str, config: ServerConfig, info: EngineInfo,
                 capabilities: Capabilities) -> None:
        self.id, self.config, self.info, self.capabilities = session_id, config, info, capabilities
        self.phase = Phase.WAITING
        self.start: Start | None = None
        self.tasks: frozenset[Task] = frozenset()
        self._last: dict[BinaryKind, MediaHeader] = {}
        self.clock = StreamClock(int(config.max_gap_s * 1e6))
        self._finals = 0  # finals sent (done says how many)
        self._end_reason = "end"
        self._end_close = CloseCode.NORMAL

    # --- client input --------------------------------------------------------------------
    def on_text(self, text: str) -> list[Action]:
        if self.phase is Phase.CLOSED:  # closed: nothing more is said
            return []
        try:
            message = parse_client_message(text, self.config.max_text_bytes)
        except ProtocolError as error:
            if self.phase is Phase.WAITING and error.fatal:
                return self._refuse(error)
            return [self._error(error.code, str(error))]
        if isinstance(message, Start):
            return self._on_start(message)
        assert isinstance(message, End)
        if self.phase is Phase.WAITING:
            return self._refuse(ProtocolError(ErrorCode.NOT_STARTED,
                                              "`end` before `start`: nothing to end"))
        if self.phase is not Phase.STREAMING:
            return [self._error(ErrorCode.AFTER_END, "`end` was already received")]
        return self._begin_end("end", CloseCode.NORMAL)

    def on_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary message received at `now` (monotonic seconds: the stream clock's budget)."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is Phase.WAITING:
            return self._refuse(ProtocolError(
                ErrorCode.NOT_STARTED, f"binary message of {len(data)} bytes before `start`; "
                "send the start message first and wait for `ready`"))
        if self.phase is not Phase.STREAMING:
            return [self._error(ErrorCode.AFTER_END,
                                "media after `end` (or after the session ended) is ignored")]
        try:
            header, payload = unpack_media(data)
        except ProtocolError as error:
            return [self._error(error.code, str(error))]
        refused = self._check_media(header, len(payload), now)
        if refused is not None:
            code, message = refused
            return [self._error(code, message, kind=header.kind.name.lower(), seq=header.seq)]
        self._last[header.kind] = header
        self.clock.accept(header.kind, header.timestamp_us, self._duration_us(header, payload),
                          now)
        return [Feed(header, bytes(payload))]

    def on_input_end(self) -> list[Action]:
        """The client shut its side of the connection (half-close): no more input will come.
        Streaming, that is an `end`: every final and `done` still go out."""
        if self.phase is Phase.WAITING:
            return self._refuse(ProtocolError(ErrorCode.NOT_STARTED,
                                              "the client's input ended before `start`"))
        if self.phase is Phase.STREAMING:
            return self._begin_end("end", CloseCode.NORMAL)
        return []

    # --- results and events from the I/O layer --------------------------------------------
    def on_media_errors(self, header: MediaHeader, errors: list[ProtocolError]) -> list[Action]:
        actions: list[Action] = []
        if self.phase is Phase.CLOSED:
            return actions
        for error in errors:
            actions.append(self._error(error.code, str(error), fatal=error.fatal,
                                       kind=header.kind.name.lower(), seq=header.seq))
            if error.fatal and self.phase is Phase.STREAMING:
                actions += self._begin_end("error", CloseCode.POLICY)
        return actions

    def on_output(self, update: StreamUpdate) -> list[Action]:
        """A stream update -> its messages: finals, the new partial, speakers, sync."""
        if self.phase is Phase.CLOSED:
            return []
        messages = update.messages
        self._finals += sum(isinstance(m, Final) for m in messages)
        return [Send(m) for m in messages]

    def end(self, code: ErrorCode, message: str) -> list[Action]:
        """A server-side end: idle timeout, session length, shutdown. Flushes if streaming."""
        close = CloseCode.GOING_AWAY if code is ErrorCode.SHUTTING_DOWN else CloseCode.NORMAL
        if self.phase is Phase.WAITING:
            self.phase = Phase.CLOSED
            close = CloseCode.POLICY if code is ErrorCode.START_TIMEOUT else close
            return [self._error(code, message, fatal=True), Close(close, code.value)]
        if self.phase is not Phase.STREAMING:
            return []
        return [self._error(code, message, fatal=True), *self._begin_end(code.value, close)]

    def flushed(self, audio_ms: int, video_frames: int) -> list[Action]:
        """Every chunk and the engine's finish() went through on_output: `done`, then close."""
        assert self.phase is Phase.ENDING, self.phase
        self.phase = Phase.CLOSED
        done = Done(self._finals, audio_ms, video_frames, self._end_reason)
        return [Send(done), Close(self._end_close, self._end_reason)]

    def abort(self, code: ErrorCode, message: str, close: CloseCode) -> list[Action]:
        """Give up now (overload, a bug): error and close, no flush. Idempotent."""
        if self.phase is Phase.CLOSED:
            return []
        self.phase = Phase.CLOSED
        return [self._error(code, message, fatal=True), Close(close, code.value)]

    # --- internals -----------------------------------------------------------------------
    def _on_start(self, start: Start) -> list[Action]:
        if self.phase is not Phase.WAITING:
            return [self._error(ErrorCode.ALREADY_STARTED, "`start` was already accepted")]
        try:
            self._check_start(start)
        except ProtocolError as error:
            return self._refuse(error)
        self.phase, self.start, self.tasks = Phase.STREAMING, start, frozenset(start.tasks)
        return [Open(start), Send(Ready(self.id, self._summary(), self._limits(), start.tasks))]

    def _check_start(self, start: Start) -> None:
        cfg, audio, video = self.config, start.audio, start.video
        if audio is not None and audio.sample_rate not in cfg.sample_rates:
            raise _fatal(ErrorCode.UNSUPPORTED_AUDIO,
                         f"sample rate {audio.sample_rate} Hz is not supported; use one of "
                         f"{list(cfg.sample_rates)} (16000 needs no resampling)")
        if audio is not None and audio.channels > 2:
            raise _fatal(ErrorCode.UNSUPPORTED_AUDIO,
                         f"{audio.channels} audio channels; send mono or stereo")
        if video is not None:
            self._check_video(start)
        missing = set(start.tasks) - set(self.info.tasks)
        if missing:
            raise _fatal(ErrorCode.BAD_START, f"model {self.info.name!r} cannot do "
                         f"{sorted(missing)}; it does {[t.value for t in self.info.tasks]}")
        if video is None and ({Task.SPEAKERS, Task.SYNC} & set(start.tasks)):
            raise _fatal(ErrorCode.BAD_START, "tasks 'speakers' and 'sync' need video")
        if audio is None and not (video and video.encoding.is_container) \
                and Task.SYNC in start.tasks:
            raise _fatal(ErrorCode.BAD_START, "task 'sync' needs audio and video")

    def _check_video(self, start: Start) -> None:
        video = start.video
        assert video is not None
        if video.width and video.height and video.width * video.height > \
                self.config.max_frame_pixels:
            raise _fatal(ErrorCode.UNSUPPORTED_VIDEO,
                         f"frames of {video.width}x{video.height} exceed this server's "
                         f"{self.config.max_frame_pixels} pixels; scale them down")
        if video.encoding.is_container and not self.capabilities.container:
            raise _fatal(ErrorCode.UNSUPPORTED_VIDEO,
                         f"{video.encoding.value} streams are not supported by this server "
                         "build; send jpeg or raw frames")
        if video.faces is FaceMode.DETECT and not self.capabilities.detect:
            raise _fatal(ErrorCode.UNSUPPORTED_VIDEO,
                         "face detection is not available in this server build; use "
                         "'whole-frame' or 'client-boxes'")

    def _check_media(self, header: MediaHeader, size: int,
                     now: float) -> tuple[ErrorCode, str] | None:
        """Why this media message is refused (code, message), or None to accept it."""
        start = self.start
        assert start is not None
        allowed = _allowed_kinds(start)
        if header.kind not in allowed:
            return (ErrorCode.UNEXPECTED_KIND,
                    f"{header.kind.name} messages are not part of this session (start "
                    f"allows {sorted(k.name for k in allowed)})")
        last = self._last.get(header.kind)
        if last is not None and header.seq <= last.seq:
            return (ErrorCode.BAD_SEQUENCE,
                    f"{header.kind.name} sequence number {header.seq} does not increase "
                    f"(last was {last.seq}); the message was dropped")
        expected = _payload_rule(start, header.kind, self.config.max_faces)
        if not expected(size):
            return (ErrorCode.BAD_PAYLOAD_SIZE, f"{header.kind.name} payload of {size} bytes: "
                    f"{expected.__doc__}; the message was dropped")
        late = self.clock.refusal(header.kind, header.timestamp_us, now)
        return None if late is None else (ErrorCode.BAD_TIMESTAMP, late)

    def _duration_us(self, header: MediaHeader, payload: memoryview) -> int:
        """Stream time an accepted message covers: its samples, or a frame's step."""
        audio = self.start.audio if self.start is not None else None
        if header.kind is BinaryKind.AUDIO and audio is not None:
            samples = len(payload) // (audio.encoding.sample_bytes * audio.channels)
            return samples * 1_000_000 // audio.sample_rate
        return STEP_US if header.kind is BinaryKind.VIDEO else 0

    def _begin_end(self, reason: str, close: CloseCode) -> list[Action]:
        self.phase, self._end_reason, self._end_close = Phase.ENDING, reason, close
        return [Flush()]

    def _refuse(self, error: ProtocolError) -> list[Action]:
        """A fatal problem before streaming: error, then close without `done`."""
        self.phase = Phase.CLOSED
        return [self._error(error.code, str(error), fatal=True),
                Close(CloseCode.POLICY, error.code)]

    @staticmethod
    def _error(code: str, message: str, fatal: bool = False, kind: str | None = None,
               seq: int | None = None) -> Send:
        """Every error the session sends; its message is capped (exception texts included)."""
        if len(message) > MAX_ERROR_CHARS:
            message = message[:MAX_ERROR_CHARS - 3] + "..."
        return Send(Error(ErrorCode(code), message, fatal, kind, seq))

    def _summary(self) -> ModelSummary:
        info = self.info
        return ModelSummary(info.name, info.version, info.chunk_steps * STEP_MS,
                            info.roi_stored, info.tasks, info.modalities)

    def _limits(self) -> Limits:
        cfg = self.config
        return Limits(cfg.max_message_bytes, cfg.max_session_s, cfg.idle_timeout_s,
                      cfg.max_faces, cfg.sample_rates, cfg.max_text_bytes,
                      cfg.max_frame_pixels, cfg.max_gap_s, cfg.start_timeout_s)


def _fatal(code: ErrorCode, message: str) -> ProtocolError:
    return ProtocolError(code, message, fatal=True)


def _allowed_kinds(start: Start) -> frozenset[BinaryKind]:
    kinds = set()
    if start.audio is not None:
        kinds.add(BinaryKind.AUDIO)
    if start.video is not None:
        kinds.add(BinaryKind.CONTAINER if start.video.encoding.is_container
                  else BinaryKind.VIDEO)
        if start.video.faces is FaceMode.CLIENT_BOXES:
            kinds.add(BinaryKind.FACE_BOXES)
    return frozenset(kinds)


def _payload_rule(start: Start, kind: BinaryKind, max_faces: int):
    """A predicate on the payload size whose docstring says what was expected."""
    if kind is BinaryKind.AUDIO:
        assert start.audio is not None
        frame = start.audio.encoding.sample_bytes * start.audio.channels

        def rule(size: int) -> bool:
            return size > 0 and size % frame == 0
        rule.__doc__ = (f"expected a positive multiple of {frame} bytes "
                        f"({start.audio.encoding.value} x {start.audio.channels} channel(s))")
    elif kind is BinaryKind.VIDEO and start.video and start.video.encoding.pixel_bytes:
        video = start.video
        want = video.width * video.height * video.encoding.pixel_bytes  # type: ignore[operator]

        def rule(size: int) -> bool:
            return size == want
        rule.__doc__ = (f"expected exactly {want} bytes ({video.width}x{video.height} "
                        f"{video.encoding.value})")
    elif kind is BinaryKind.FACE_BOXES:
        def rule(size: int) -> bool:
            return size % FACE_BOX.size == 0 and size <= max_faces * FACE_BOX.size
        rule.__doc__ = (f"expected a multiple of {FACE_BOX.size} bytes (one record per face), "
                        f"at most {max_faces} faces")
    else:
        def rule(size: int) -> bool:
            return size > 0
        rule.__doc__ = "expected a non-empty payload"
    return rule
