"""`ServerConfig`: every limit of the server in one frozen, validated dataclass.

Why explicit: the failure modes of streaming servers (keepalive timeouts under load, unbounded
queues, one client starving the others) come from limits nobody chose. Each field below is a
choice with a unit; `avsync serve --help` exposes the ones an operator tunes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from avsync.errors import ConfigError

SAMPLE_RATES: tuple[int, ...] = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 = any free port (tests)
    # --- websocket limits -------------------------------------------------------------
    max_message_bytes: int = 1 << 20  # websockets' max_size: bigger → close 1009
    max_sessions: int = 32  # more → HTTP 503 before the upgrade
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    close_timeout_s: float = 5.0
    write_limit_bytes: int = 64 * 1024  # websockets' send buffer high-water mark
    token: str | None = None  # if set, the handshake and /metrics must carry it (else HTTP 401)
    # Origins whose pages may open sessions (others: HTTP 403). Always allowed: no Origin (not a
    # browser) and the server's own page (Origin = http(s)://<Host header>). ("*",) = any.
    allowed_origins: tuple[str, ...] = ()
    max_text_bytes: int = 16 * 1024  # a text message longer than this → text_too_large
    # --- sessions ---------------------------------------------------------------------
    start_timeout_s: float = 10.0  # from the upgrade to `start`, however much else comes
    idle_timeout_s: float = 30.0  # no message for this long → flush, done, close
    max_session_s: float = 3600.0  # wall-clock session length → flush, done, close
    inbox_messages: int = 256  # reader → session queue; full for `inbox_grace_s` = overload
    inbox_bytes: int = 8 << 20  # ... and at most this many bytes of messages
    receive_queue: int = 4  # messages websockets buffers before it stops reading the socket
    inbox_grace_s: float = 2.0  # < ping timeout, so pongs keep flowing while we wait
    max_lag_s: float = 5.0  # a message waiting longer than this to be processed = overload
    outbox_bytes: int = 1 << 20  # session → writer queue; full = the client stopped reading
    max_faces: int = 4  # face tracks per session
    max_frame_pixels: int = 1920 * 1080
    sample_rates: tuple[int, ...] = SAMPLE_RATES
    max_av_skew_s: float = 1.0  # one modality this far ahead of the other → hold/silence
    max_gap_s: float = 2.0  # a timestamp jump past the media received (serve/clock.py)
    # --- compute ----------------------------------------------------------------------
    batch_max: int = 16  # sessions' chunks per runtime call
    batch_wait_ms: float = 20.0  # how long the batcher waits to fill a batch (bench/serve.py)
    inference_threads: int = 2
    media_threads: int = 2  # JPEG/container decoding, resampling, face detection
    drain_timeout_s: float = 30.0  # SIGTERM: time open sessions get to finish

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and f.name != "port" and value <= 0:
                raise ConfigError(f"ServerConfig.{f.name} must be > 0, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"ServerConfig.port must be in 0..65535, got {self.port}")
        if self.inbox_grace_s >= (self.ping_timeout_s or float("inf")):
            raise ConfigError(
                f"ServerConfig.inbox_grace_s ({self.inbox_grace_s}) must be shorter than "
                f"ping_timeout_s ({self.ping_timeout_s}), or waiting for queue space would "
                "let keepalive pings time out")
        if not self.sample_rates or 16_000 not in self.sample_rates:
            raise ConfigError(f"ServerConfig.sample_rates must include 16000, got "
                              f"{self.sample_rates}")
        if "*" in self.allowed_origins and len(self.allowed_origins) > 1:
            raise ConfigError(f"ServerConfig.allowed_origins {self.allowed_origins}: '*' allows "
                              "every origin, list it alone")
        if self.token == "":
            raise ConfigError("ServerConfig.token is empty; use None to turn auth off")
