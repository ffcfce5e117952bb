"""One cross-session batcher: chunks of many sessions → one `engine.advance` call on a thread.

Why: a batched ONNX run of N streams costs far less than N runs (bench/serve.py measures the
ratio of sessions held), and running it on a small thread pool keeps the event loop free to
read sockets and answer pings. The first pending item waits at most `max_wait_s` for others
to join; up to `threads` batches run at once. An item is one stream's next chunk, or its end
(`finish`: tail padding and last finals), so the ends of sessions batch too: per batch, one
`engine.advance` for its chunks, then one `engine.finish` for its ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from avsync.serve.engine import Engine
from avsync.serve.metrics import Metrics

from avsync.runtime import Stream, StreamChunk, StreamUpdate

R = TypeVar("R")
# one stream's next chunk (None: its end) and where its update goes
_Item = tuple[Stream, StreamChunk | None, "asyncio.Future[StreamUpdate]"]


class Batcher:
    def __init__(self, engine: Engine, max_batch: int, max_wait_s: float, threads: int,
                 metrics: Metrics) -> None:
        self.engine, self.max_batch, self.max_wait_s = engine, max_batch, max_wait_s
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="avsync-infer")
        self._slots = asyncio.Semaphore(threads)
        self._pending: list[_Item] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def advance(self, stream: Stream, chunk: StreamChunk) -> StreamUpdate:
        """One chunk of one stream, run in the next batch."""
        return await self._submit(stream, chunk)

    async def finish(self, stream: Stream) -> StreamUpdate:
        """The end of one stream (after its last chunk's update), run in the next batch."""
        return await self._submit(stream, None)

    async def _submit(self, stream: Stream, chunk: StreamChunk | None) -> StreamUpdate:
        future: asyncio.Future[StreamUpdate] = asyncio.get_running_loop().create_future()
        self._pending.append((stream, chunk, future))
        self._arrived.set()
        return await future

    async def call(self, function: Callable[..., R], *args: Any) -> R:
        """Any other engine work on the same pool, never on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for task in list(self._running):
            await asyncio.gather(task, return_exceptions=True)
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            deadline = loop.time() + self.max_wait_s
            while len(self._pending) < self.max_batch and (left := deadline - loop.time()) > 0:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
            await self._slots.acquire()
            batch = [item for item in self._pending[:self.max_batch] if not item[2].done()]
            del self._pending[:self.max_batch]
            if not self._pending:
                self._arrived.clear()
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            del batch  # else the last batch's streams live on in this frame until the next

    async def _execute(self, batch: list[_Item]) -> None:
        """The batch's chunks in one `engine.advance`, then its ends in one `engine.finish`
        (the chunks' updates go out first: a session's end never delays another's chunk)."""
        try:
            chunks = [item for item in batch if item[1] is not None]
            ends = [item for item in batch if item[1] is None]
            if chunks:
                await self._deliver(self.engine.advance, chunks, [(s, c) for s, c, _ in chunks])
            if ends:
                await self._deliver(self.engine.finish, ends, [s for s, _, _ in ends])
        finally:
            self._slots.release()

    async def _deliver(self, method: Callable[[Any], list[StreamUpdate | Exception]],
                   items: list[_Item], arguments: list[Any]) -> None:
        """`method(arguments)` on the pool, timed; each update (or error) to its item."""
        try:
            outputs = await self.call(self._timed, method, arguments)
        except Exception as error:  # a bug in the engine: every caller hears about it
            for *_, future in items:
                if not future.done():
                    future.set_exception(error)
            return
        for (*_, future), output in zip(items, outputs, strict=True):
            if future.done():
                continue
            if isinstance(output, Exception):  # that stream alone failed
                future.set_exception(output)
            else:
                future.set_result(output)

    def _timed(self, method: Callable[[Any], list[StreamUpdate | Exception]],
               arguments: list[Any]) -> list[StreamUpdate | Exception]:
        began = time.perf_counter()
        outputs = method(arguments)
        self.metrics.inference_seconds.observe(time.perf_counter() - began)
        self.metrics.batch_size.observe(len(arguments))
        return outputs
