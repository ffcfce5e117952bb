"""Decoded audio frames -> one contiguous mono signal, placed by timestamps.

Shared by file decoding (`decode`) and live container streams (`container_stream`), so both
handle sample formats, channel layouts, gaps and overlaps the same way.
"""

from __future__ import annotations

import av
import numpy as np

from avsync.errors import MediaError

# Timestamps closer than this to the running sample count are treated as contiguous
# (containers often round them to 1 ms); larger jumps become silence or are cut as overlap.
AUDIO_JITTER_S: float = 0.002
CENTRE: str = "FC"  # the front centre channel: dialogue in 3.0, 5.1, 7.1 mixes
# ITU-R BS.775 weights of a downmix to mono, relative to the front channels: surrounds at
# -3 dB, the LFE left out. Channels of other names (unknown layouts) weigh 1.
SURROUND_WEIGHT: float = 0.7071
_WEIGHTS: dict[str, float] = {"LFE": 0.0, "LFE2": 0.0, "BL": SURROUND_WEIGHT,
                              "BR": SURROUND_WEIGHT, "BC": SURROUND_WEIGHT,
                              "SL": SURROUND_WEIGHT, "SR": SURROUND_WEIGHT}


def audio_frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """(C, n) float32 in [-1, 1] for any PyAV sample format, planar or packed."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        scale = float(np.iinfo(data.dtype.type).max) + 1.0  # type: ignore[type-var]
        return data.astype(np.float32) / scale
    return data.astype(np.float32)


def downmix(data: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """(C, n) float32 with channel names (FFmpeg's: FL, FR, FC, LFE, BL, ...) -> (n,) mono.

    Where a multichannel layout has a centre channel it is taken alone: film and broadcast
    mixes put dialogue there, and averaging it with music and effects channels would bring
    speech down to 1/C of its level. Otherwise the BS.775 weights (surrounds at -3 dB, no
    LFE), normalised so a signal common to every channel keeps its level: stereo is the plain
    mean of its two channels.
    """
    if len(data) == 1:
        return np.ascontiguousarray(data[0], np.float32)
    if CENTRE in channels:
        return np.ascontiguousarray(data[channels.index(CENTRE)], np.float32)
    weights = np.array([_WEIGHTS.get(name, 1.0) for name in channels], np.float32)
    if len(weights) != len(data) or not weights.sum():
        weights = np.ones(len(data), np.float32)
    return (weights @ data / weights.sum()).astype(np.float32)


def channel_names(frame: av.AudioFrame) -> tuple[str, ...]:
    return tuple(channel.name for channel in frame.layout.channels)


class AudioPlacer:
    """Turns decoded frames into the samples to append to one contiguous mono signal.

    The first frame fixes `rate` (its native sample rate) and `start` (its time in seconds,
    minus `origin`); later frames are placed by their timestamps: a gap is filled with
    silence, an overlap is cut, jitter below AUDIO_JITTER_S is ignored. Any channel layout
    is brought to mono by `downmix`.
    """

    def __init__(self, origin: float = 0.0) -> None:
        self.origin = origin
        self.rate: int | None = None
        self.start: float | None = None
        self.count = 0  # native samples placed so far

    def place(self, frame: av.AudioFrame) -> np.ndarray:
        """(n,) float32 mono samples at `rate` that continue the signal after this frame."""
        mono = downmix(audio_frame_to_float(frame), channel_names(frame))
        if self.rate is None or self.start is None:
            self.rate = frame.sample_rate
            self.start = 0.0 if frame.time is None else frame.time - self.origin
        elif frame.sample_rate != self.rate:
            raise MediaError(f"the audio sample rate changed mid-stream from {self.rate} to "
                             f"{frame.sample_rate} Hz; restart the stream at one rate")
        elif frame.time is not None:
            jump = frame.time - self.origin - (self.start + self.count / self.rate)
            if jump > AUDIO_JITTER_S:
                mono = np.concatenate([np.zeros(round(jump * self.rate), np.float32), mono])
            elif jump < -AUDIO_JITTER_S:
                mono = mono[min(len(mono), round(-jump * self.rate)):]
        self.count += len(mono)
        return mono
