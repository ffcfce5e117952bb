"""What a stream reports, one type per concept: words, partials, finals, speakers, sync.

These are the runtime's results and, field for field, the server's result messages: the
protocol (`avsync.serve.protocol`) serialises these very types, so nothing renames or copies
them on the way to a client. Times are ms of stream time (step i = [40 i, 40 (i+1)) ms);
boxes are face boxes `(x, y, w, h)` in the pixels of the frames the faces were found in.
"""

from __future__ import annotations

from dataclasses import dataclass

from avsync.runtime.words import Word

Box = tuple[float, float, float, float]  # x, y, w, h of a face box, frame pixels


@dataclass(frozen=True)
class Partial:
    """The whole current hypothesis of the open segment `segment` (replaces the previous
    partial of that segment; never empty)."""

    segment: int
    text: str


@dataclass(frozen=True)
class Final:
    """A finished segment: immutable, its id never reused. `face`: the face track that said
    most of it (by time), None for a voice no visible face said (or no video); `box`: that
    face's last box. `confidence` (mean of its words') and `tokens` stay in the runtime (not
    on the wire)."""

    segment: int
    text: str
    start_ms: int
    end_ms: int
    words: tuple[Word, ...] = ()
    face: int | None = None
    box: Box | None = None
    confidence: float = 0.0
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class SpeakerTrack:
    """One face track: its box and its calibrated, smoothed P(speaking) in [0, 1]."""

    id: int
    box: Box
    speaking: float


@dataclass(frozen=True)
class Speakers:
    """Every face track of a stream at the step ending at `time_ms` + 40 ms."""

    time_ms: int
    tracks: tuple[SpeakerTrack, ...] = ()


@dataclass(frozen=True)
class Sync:
    """The audio-visual offset of face `track`: positive offset_ms = the audio lags the video
    (the sound of a lip movement arrives offset_ms later); confidence as SyncNet reports it
    (median minus best distance over the shifts)."""

    time_ms: int
    offset_ms: int
    confidence: float
    track: int = 0


Event = Partial | Final
