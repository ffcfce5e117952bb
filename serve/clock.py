"""The stream clock: which media timestamps a session accepts, so that work follows bytes.

Stream time advances with media: an audio message covers its samples, a video frame the 40 ms
step it lands on. A timestamp *past* everything received so far (the frontier) opens a jump
that the media layer fills with silence or a held frame, and the engine then recognises it:
work that no byte paid for (10 minutes of silence for one 2 KB message). So, per session:

- a message may start at most `max_gap_s` past the frontier, and at most `max_gap_s` before the
  stream's start (time 0, the first media message);
- jumps add up, and their sum may not exceed `max_gap_s` plus the wall-clock time since the
  stream began: a live client's lost media is real time passing, while a client sending
  faster than real time must send the media itself;
- per kind, timestamps never go back.

A refused message is dropped with `bad_timestamp` (the session goes on). Only AUDIO and VIDEO
timestamps place media; FACE_BOXES and CONTAINER headers are checked for order only
(container times come from the container and are bounded in `serve.media_input`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avsync.serve.protocol import BinaryKind

STEP_US: int = 40_000
_PLACED = (BinaryKind.AUDIO, BinaryKind.VIDEO)


@dataclass
class StreamClock:
    max_gap_us: int
    origin_us: int | None = None  # stream time 0: the first AUDIO or VIDEO timestamp
    frontier_us: int | None = None  # where the furthest accepted media ends
    jumped_us: int = 0  # sum of the jumps past the frontier accepted so far
    began_s: float | None = None  # wall clock (monotonic s) when the first media came
    last_us: dict[BinaryKind, int] = field(default_factory=dict)

    def refusal(self, kind: BinaryKind, timestamp_us: int, now_s: float) -> str | None:
        """Why a `kind` message stamped `timestamp_us`, received at `now_s`, is refused."""
        last = self.last_us.get(kind)
        if last is not None and timestamp_us < last:
            return (f"{kind.name} timestamp {timestamp_us} µs goes back from {last} µs; the "
                    "message was dropped")
        if kind not in _PLACED or self.origin_us is None or self.frontier_us is None:
            return None
        if timestamp_us < self.origin_us - self.max_gap_us:
            return (f"{kind.name} timestamp {timestamp_us} µs is "
                    f"{(self.origin_us - timestamp_us) / 1e6:.3g} s before the stream's start "
                    f"(limit {self.max_gap_us / 1e6:g} s); the message was dropped")
        jump = timestamp_us - self.frontier_us
        if jump > self.max_gap_us:
            return (f"{kind.name} timestamp {timestamp_us} µs jumps {jump / 1e6:.3g} s past the "
                    f"media received so far (limit {self.max_gap_us / 1e6:g} s); stamp media "
                    "with its capture time on one clock; the message was dropped")
        if jump > 0 and self.jumped_us + jump > self.max_gap_us + self._wall_us(now_s):
            return (f"{kind.name} timestamp {timestamp_us} µs: the gaps in this stream's "
                    f"timestamps ({(self.jumped_us + jump) / 1e6:.3g} s) run ahead of real time "
                    f"({self._wall_us(now_s) / 1e6:.3g} s since the first media); send the "
                    "media itself, the message was dropped")
        return None

    def accept(self, kind: BinaryKind, timestamp_us: int, duration_us: int, now_s: float) -> None:
        """Record an accepted message covering [timestamp_us, timestamp_us + duration_us)."""
        self.last_us[kind] = timestamp_us
        if kind not in _PLACED:
            return
        if self.origin_us is None or self.frontier_us is None:
            self.origin_us, self.frontier_us, self.began_s = timestamp_us, timestamp_us, now_s
        self.jumped_us += max(0, timestamp_us - self.frontier_us)
        self.frontier_us = max(self.frontier_us, timestamp_us + duration_us)

    def _wall_us(self, now_s: float) -> int:
        return 0 if self.began_s is None else int(max(0.0, now_s - self.began_s) * 1e6)
