"""Test harness: a port-0 server around the tone TEST engine, plus small client helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

from tone_engine import ToneEngine

from serve.config import ServerConfig
from serve.engine import Engine
from serve.protocol import STREAM_PATH, Final
from serve.server import AvsyncServer

T = TypeVar("T")
FAST = ServerConfig(port=0, idle_timeout_s=10.0, close_timeout_s=2.0, drain_timeout_s=10.0)


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one test coroutine with a hard limit, so a hang fails instead of blocking CI."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@asynccontextmanager
async def running_server(engine: Engine | None = None, **overrides: Any
                         ) -> AsyncIterator[AvsyncServer]:
    config = replace(FAST, **overrides)
    async with AvsyncServer(engine or ToneEngine(), config) as server:
        yield server


def stream_url(server: AvsyncServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}{STREAM_PATH}{query}"


def final_texts(messages: list) -> list[str]:
    return [m.text for m in messages if isinstance(m, Final)]
