"""The bounded queue between a session's socket reader and its worker.

Why not asyncio.Queue: the reader must be able to end the session (client gone, overload)
even when the queue is full, and that end must overtake queued media — nobody is left to
read results. `terminate()` does that; `get()` raises `Terminated` at once afterwards.
`end_input()` is the gentle end (the client half-closed): what is queued is still handed out,
then `get()` returns `INPUT_ENDED` once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InputEnded:
    def __repr__(self) -> str:
        return "INPUT_ENDED"


INPUT_ENDED = InputEnded()


class Terminated(Exception):
    """The inbox was terminated; `reason` says why (set by the reader)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Inbox(Generic[T]):
    """At most `capacity` items and `max_bytes` of them (`size(item)`); one item bigger than
    `max_bytes` still fits into an empty inbox."""

    def __init__(self, capacity: int, max_bytes: int | None = None,
                 size: Callable[[T], int] = lambda item: 0) -> None:
        self.capacity, self.max_bytes, self._size = capacity, max_bytes, size
        self.bytes = 0
        self._items: deque[T] = deque()
        self._readable = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.reason: str | None = None
        self._woken = False
        self._input_ended = False

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T, timeout: float) -> bool:
        """Queue `item`, waiting up to `timeout` s for space; False if still full."""
        size = self._size(item)
        while len(self._items) >= self.capacity or (
                self.max_bytes is not None and self._items
                and self.bytes + size > self.max_bytes):
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), timeout)
            except TimeoutError:
                return False
        self._items.append(item)
        self.bytes += size
        self._readable.set()
        return True

    def terminate(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._readable.set()

    def end_input(self) -> None:
        """No more items will come: after the queued ones, `get()` returns INPUT_ENDED once."""
        self._input_ended = True
        self._readable.set()

    def wake(self) -> None:
        """Make a waiting `get()` return None now (its caller has something to check)."""
        self._woken = True
        self._readable.set()

    async def get(self, timeout: float | None) -> T | InputEnded | None:
        """Next item; None after `timeout` s without one or on wake(); INPUT_ENDED once after
        end_input() and the last item; Terminated once terminated (even with items left:
        nobody needs them any more)."""
        while True:
            if self.reason is not None:
                raise Terminated(self.reason)
            if self._woken:
                self._woken = False
                return None
            if self._items:
                item = self._items.popleft()
                self.bytes -= self._size(item)
                self._space.set()
                return item
            if self._input_ended:
                self._input_ended = False
                return INPUT_ENDED
            self._readable.clear()
            try:
                await asyncio.wait_for(self._readable.wait(), timeout)
            except TimeoutError:
                return None
