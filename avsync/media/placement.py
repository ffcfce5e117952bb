"""Decoded frames and samples -> the project time base, one piece at a time.

The streaming half of `avsync.media.decode`: nothing here holds more than a frame or a few
milliseconds of audio, so a file of any length decodes in constant memory.
- `shape_frame`: a decoded video frame -> gray/RGB numpy at a chosen size, upright (the
  container's display matrix applied), scaled by swscale before it is ever a full-size array;
- `VideoGrid`: source frames at their own times -> frames on the 25 fps grid (nearest frame,
  ties to the earlier; frames before the first and after the last hold them);
- `AudioLine`: decoded audio frames -> contiguous 16 kHz mono from the clip's origin (silence
  before a late start, a leading overlap cut, an mp4's last-frame AAC padding trimmed to the
  header's duration), resampled by `StreamingResampler`, bit-identical to resampling at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from avsync.media.audio import AudioPlacer
from avsync.media.frames import frame_to_image
from avsync.media.resample import StreamingResampler
from avsync.timebase import FPS, SAMPLE_RATE

# An mp4's last AAC frame decodes padded to 1024 samples; trim to the header's duration when
# the excess is at most this much (a larger excess means the header, not the padding, is off).
MAX_END_PADDING_S: float = 0.2
_DURATION_HISTORY: int = 64  # frame intervals whose median is the last frame's duration


@dataclass(frozen=True)
class FrameFormat:
    """How decoded frames come out: gray (H, W) or RGB (H, W, 3) uint8, upright, and scaled
    to `size` = (width, height) of the upright picture, or else down to a shorter side of at
    most `short_side` (aspect kept); as decoded when neither is set."""

    gray: bool = True
    size: tuple[int, int] | None = None
    short_side: int | None = None

    def target(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) for an upright picture of width x height."""
        if self.size is not None:
            return self.size
        return fit_size(width, height, short_side=self.short_side)


def fit_size(width: int, height: int, *, short_side: int | None = None,
             pixels: int | None = None) -> tuple[int, int]:
    """(width, height) scaled down (never up, aspect kept) so that the shorter side is at most
    `short_side` and width * height at most `pixels`."""
    scale = 1.0
    if short_side is not None and min(width, height) > short_side:
        scale = short_side / min(width, height)
    if pixels is not None and width * height * scale * scale > pixels:
        scale = min(scale, (pixels / (width * height)) ** 0.5)
    if scale >= 1.0:
        return width, height
    w, h = max(1, int(width * scale + 1e-6)), max(1, int(height * scale + 1e-6))
    return w, h


def rotation_of(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns the frame's display matrix asks for (0-3)."""
    return round((frame.rotation or 0) / 90) % 4


def shape_frame(frame: av.VideoFrame, fmt: FrameFormat) -> np.ndarray:
    """A decoded frame -> (H, W) gray or (H, W, 3) RGB uint8, upright and at `fmt`'s size.
    Scaling (swscale, area averaging) comes first, so no full-size array is ever made."""
    turns = rotation_of(frame)
    upright = (frame.width, frame.height) if turns % 2 == 0 else (frame.height, frame.width)
    width, height = fmt.target(*upright)
    if turns % 2:
        width, height = height, width
    if (width, height) != (frame.width, frame.height):
        frame = frame.reformat(width=width, height=height,
                               format="gray" if fmt.gray else "rgb24", interpolation="AREA")
    image = frame_to_image(frame, fmt.gray)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class VideoGrid:
    """Source frames at their presentation times -> frames on the 25 fps grid.

    push(time, image) returns the grid frames now known (grid times up to the midpoint
    between the previous frame and this one take the previous frame); finish() the rest, up
    to the last frame's end (its time plus the median frame interval).
    """

    def __init__(self, rate: float | None) -> None:
        self.rate = float(rate) if rate else float(FPS)
        self.emitted = 0  # grid frames handed out
        self.pushed = 0  # source frames seen
        self._last: tuple[float, np.ndarray] | None = None
        self._intervals: deque[float] = deque(maxlen=_DURATION_HISTORY)

    @property
    def end(self) -> float | None:
        """Time of the last source frame's end, None before the first."""
        return None if self._last is None else self._last[0] + self._frame_duration()

    def push(self, time: float | None, image: np.ndarray) -> list[np.ndarray]:
        if time is None:  # no timestamps (rare): assume the declared rate
            time = self.pushed / self.rate
        self.pushed += 1
        out: list[np.ndarray] = []
        if self._last is not None:
            last_time, last_image = self._last
            if time <= last_time:  # a repeated or backwards timestamp: the later frame wins
                self._last = (last_time, image)
                return out
            self._intervals.append(time - last_time)
            middle = (last_time + time) / 2
            while self.emitted / FPS <= middle:
                out.append(last_image)
                self.emitted += 1
        self._last = (time, image)
        return out

    def finish(self) -> list[np.ndarray]:
        if self._last is None:
            return []
        count = max(1, round((self._last[0] + self._frame_duration()) * FPS))
        out = [self._last[1]] * max(0, count - self.emitted)
        self.emitted += len(out)
        return out

    def _frame_duration(self) -> float:
        return float(np.median(self._intervals)) if self._intervals else 1.0 / self.rate


class AudioLine:
    """Decoded audio frames -> contiguous (n,) float32 mono @ 16 kHz from the clip's origin.

    origin: the clip's time 0 in stream seconds; end: where the header says the audio ends
    (seconds from the origin), None if unknown.
    """

    def __init__(self, origin: float, end: float | None) -> None:
        self.placer = AudioPlacer(origin)
        self.end = end
        self.produced = 0  # 16 kHz samples handed out
        self._resampler: StreamingResampler | None = None
        self._keep: int | None = None  # native samples the header's duration covers
        self._held = np.zeros(0, np.float32)  # native samples past `_keep`, maybe padding
        self._pushed = 0  # native samples given to the resampler
        self._raw = 0  # resampler outputs seen, before the negative-start cut

    @property
    def seconds(self) -> float:
        """Where the audio handed out so far ends, in seconds from the origin."""
        return self.produced / SAMPLE_RATE

    def add(self, frame: av.AudioFrame) -> np.ndarray:
        native = self.placer.place(frame)
        if self._resampler is None:
            assert self.placer.rate is not None and self.placer.start is not None
            self._resampler = StreamingResampler(self.placer.rate, SAMPLE_RATE)
            if self.end is not None:
                self._keep = max(0, round((self.end - self.placer.start) * self.placer.rate))
            return np.concatenate([self._lead(), self._push(native)])
        return self._push(native)

    def _lead(self) -> np.ndarray:
        """Silence before a late start (a negative start is cut from the first outputs)."""
        offset = max(0, round((self.placer.start or 0.0) * SAMPLE_RATE))
        self.produced += offset
        return np.zeros(offset, np.float32)

    def _push(self, native: np.ndarray) -> np.ndarray:
        assert self._resampler is not None
        if self._keep is not None:
            room = max(0, self._keep - self._pushed)
            native, extra = native[:room], native[room:]
            self._held = np.concatenate([self._held, extra]) if len(extra) else self._held
        self._pushed += len(native)
        return self._cut_negative(self._resampler.push(native))

    def flush(self) -> np.ndarray:
        """The rest at the end of the stream (tail padding dropped when within bounds)."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        rate = self.placer.rate or SAMPLE_RATE
        out = np.zeros(0, np.float32)
        if len(self._held) > MAX_END_PADDING_S * rate:  # not padding: the header is off
            self._keep = None
            out = self._push(self._held)
        self._held = np.zeros(0, np.float32)
        return np.concatenate([out, self._cut_negative(self._resampler.flush())])

    def _cut_negative(self, samples: np.ndarray) -> np.ndarray:
        """Drop outputs before the origin (audio that starts before time 0)."""
        skip = max(0, -round((self.placer.start or 0.0) * SAMPLE_RATE))
        produced_raw = self._raw
        self._raw += len(samples)
        cut = max(0, min(len(samples), skip - produced_raw))
        samples = samples[cut:]
        self.produced += len(samples)
        return samples
