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
from serve.protocol import STREAM_PATH, Final, decode_server_message
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


async def open_session(url: str, start: str, **connect_kwargs: Any):
    """Connect, send `start` (JSON text), return (connection, first server message)."""
    from websockets.asyncio.client import connect

    ws = await connect(url, compression=None, max_size=None, **connect_kwargs)
    await ws.send(start)
    return ws, decode_server_message(await ws.recv())


async def receive_rest(ws, timeout: float = 20.0) -> list:
    """Every server message until the server closes the connection."""
    from websockets.exceptions import ConnectionClosed

    messages = []
    try:
        async with asyncio.timeout(timeout):
            async for text in ws:
                messages.append(decode_server_message(text))
    except ConnectionClosed:
        pass
    return messages


async def http_get(server: AvsyncServer, path: str, headers: dict[str, str] | None = None
                   ) -> tuple[int, str, str]:
    """(status, content type, body) of a plain HTTP GET, without blocking the loop."""
    import urllib.error
    import urllib.request

    def get() -> tuple[int, str, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}",
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    return await asyncio.to_thread(get)
