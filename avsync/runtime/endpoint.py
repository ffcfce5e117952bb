"""Endpointing: when does the open segment end? Rules on trailing blanks, as sherpa-onnx does.

A step is "blank" when the CTC blank is its most likely label (silence and pauses). Three rules,
checked after every step (durations in ms of stream time):
1. something was recognised and the last `trailing_blank_ms` were blank -> final;
2. nothing was recognised for `max_silence_ms` -> the segment is dropped silently (bounded
   memory on long silences, no empty finals);
3. the segment is `max_segment_ms` long -> final, whatever the blanks say.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from avsync.errors import ConfigError


class Endpoint(StrEnum):
    NONE = "none"
    FINAL = "final"  # close the segment and emit a final
    RESET = "reset"  # drop the segment: it held nothing


@dataclass(frozen=True)
class EndpointConfig:
    trailing_blank_ms: int = 800
    max_silence_ms: int = 4000
    max_segment_ms: int = 20000

    def __post_init__(self) -> None:
        values = (self.trailing_blank_ms, self.max_silence_ms, self.max_segment_ms)
        if min(values) <= 0:
            raise ConfigError(f"endpoint durations must be > 0 ms, got {values}")


class Endpointer:
    """Per-stream endpoint detector; `update` once per step, `reset` after each segment."""

    def __init__(self, config: EndpointConfig, step_ms: int) -> None:
        self.config = config
        self.step_ms = step_ms
        self.reset()

    def reset(self) -> None:
        self.segment_steps = 0
        self.trailing_blanks = 0

    @property
    def at_max_length(self) -> bool:
        """The segment is `max_segment_ms` long: it must close now."""
        return self.segment_steps * self.step_ms >= self.config.max_segment_ms

    def defer(self) -> None:
        """A FINAL was not taken (a second look heard speech in the trailing blanks): count
        the trailing blanks again from here."""
        self.trailing_blanks = 0

    def update(self, blank_is_best: bool, has_text: bool) -> Endpoint:
        """One step: was the blank its most likely label, and does the best hypothesis of the
        segment hold any text yet? -> what to do now."""
        self.segment_steps += 1
        self.trailing_blanks = self.trailing_blanks + 1 if blank_is_best else 0
        c, ms = self.config, self.step_ms
        if has_text and self.trailing_blanks * ms >= c.trailing_blank_ms:
            return Endpoint.FINAL
        if self.at_max_length:
            return Endpoint.FINAL if has_text else Endpoint.RESET
        if not has_text and self.segment_steps * ms >= c.max_silence_ms:
            return Endpoint.RESET
        return Endpoint.NONE
