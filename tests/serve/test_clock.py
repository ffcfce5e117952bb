"""The stream clock: which media timestamps a session accepts (serve/clock.py)."""

from __future__ import annotations

from avsync.serve.clock import STEP_US, StreamClock
from avsync.serve.protocol import BinaryKind

AUDIO, VIDEO, BOXES = BinaryKind.AUDIO, BinaryKind.VIDEO, BinaryKind.FACE_BOXES
GAP = 2_000_000


def clock_at(timestamp_us: int = 0) -> StreamClock:
    clock = StreamClock(GAP)
    clock.accept(AUDIO, timestamp_us, 40_000, now_s=100.0)
    return clock


def test_media_within_the_gap_is_accepted_and_moves_the_frontier() -> None:
    clock = clock_at()
    assert clock.refusal(VIDEO, 0, 100.0) is None
    clock.accept(VIDEO, 0, STEP_US, 100.0)
    assert clock.refusal(AUDIO, 40_000, 100.0) is None
    clock.accept(AUDIO, 40_000, 40_000, 100.0)
    assert (clock.frontier_us, clock.jumped_us) == (80_000, 0)


def test_a_jump_past_the_gap_or_before_the_start_is_refused() -> None:
    clock = clock_at(10**12)
    assert "jumps 2 s" in clock.refusal(AUDIO, 10**12 + 40_000 + GAP + 1, 1e9)
    assert "before the stream's start" in clock.refusal(VIDEO, 10**12 - GAP - 1, 1e9)
    assert clock.refusal(VIDEO, 10**12 - GAP, 1e9) is None  # a late frame: held, no work


def test_jumps_add_up_to_at_most_the_gap_plus_the_wall_clock() -> None:
    clock, now, accepted = clock_at(), 100.0, 0
    for _ in range(20):  # a 1.9 s jump every 0.1 s of real time
        t = clock.frontier_us + 1_900_000
        if clock.refusal(AUDIO, t, now) is None:
            clock.accept(AUDIO, t, 0, now)
            accepted += 1
        now += 0.1
    assert accepted == 2  # at 0 s, then once 1.8 s of real time made room
    assert clock.jumped_us <= GAP + (now - 100.0) * 1e6
    assert "run ahead of real time" in clock.refusal(AUDIO, clock.frontier_us + 10**6, now)
    assert clock.refusal(AUDIO, clock.frontier_us + 10**6, now + 1.0) is None


def test_timestamps_go_back_per_kind_only_and_boxes_are_not_placed() -> None:
    clock = clock_at(1_000_000)
    assert "goes back" in clock.refusal(AUDIO, 999_999, 100.0)
    assert clock.refusal(VIDEO, 999_999, 100.0) is None
    assert clock.refusal(BOXES, 10**15, 100.0) is None  # face boxes place no media
    clock.accept(BOXES, 10**15, 0, 100.0)
    assert clock.frontier_us == 1_040_000 and "goes back" in clock.refusal(BOXES, 0, 100.0)
