"""The thin websockets adapter: HTTP answers, one runner per connection, graceful drain.

Everything protocol-shaped is decided by `serve.session.Session`; this module only moves bytes
and time: a reader task that always drains the socket into a bounded `Inbox` (so pongs keep
flowing), a worker that hands media to a media thread and chunks to the cross-session
`Batcher`, and a writer task with an outbox bounded in bytes (a client that stops reading
fills it and is closed with 1013). The connection (`serve.connection.BoundedConnection`) stops
reading while its send buffer is full (results or pongs the client does not read) and treats a
half-close as the end of input. `process_request` answers GET /healthz, /metrics (behind the
token, if any), / and refuses upgrades with 401 (token), 403 (origin) or 503 (full or draining)
before a session costs anything (/healthz is 503 too when full or draining, so a load balancer's
health check routes elsewhere: docs/deploy.md); other methods get 405, repeated
Host/Origin/Authorization 400. SIGTERM drains: the socket stays open to answer 503 while open
sessions flush their finals and `done` and close with 1001.
A session must send `start` within `start_timeout_s` of the upgrade, whatever else it sends.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from avsync.serve.batcher import Batcher
from avsync.serve.config import ServerConfig
from avsync.serve.connection import BoundedConnection
from avsync.serve.engine import Engine
from avsync.serve.frames import detection_available, warm_up
from avsync.serve.inbox import Inbox, InputEnded, Terminated
from avsync.serve.media_input import Chunk, MediaInput
from avsync.serve.metrics import Metrics
from avsync.serve.protocol import STREAM_PATH, CloseCode, ErrorCode, MediaHeader, encode, excerpt
from avsync.serve.session import (
    Action,
    Capabilities,
    Close,
    Feed,
    Flush,
    Open,
    Phase,
    Send,
    Session,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from avsync import __version__
from avsync.runtime import Stream

log = logging.getLogger("avsync.serve")
_CLIENT_GONE = "client_gone"
_SINGLE_HEADERS = ("Host", "Origin", "Authorization")  # given twice → HTTP 400


def container_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("avsync.media.container_stream") is not None


class AvsyncServer:
    """Serve `engine` with `config`. Use `async with AvsyncServer(...) as server:`."""

    def __init__(self, engine: Engine, config: ServerConfig) -> None:
        self.engine, self.config = engine, config
        self.metrics = Metrics()
        self.metrics.sessions_max.set(config.max_sessions)
        self.capabilities = Capabilities(detect=detection_available(),
                                         container=container_available())
        self.runners: set[SessionRunner] = set()
        self.draining = False
        self.started = time.time()
        self._page = resources.files("avsync.serve").joinpath("static/index.html").read_bytes()
        self._server: Server | None = None
        self.batcher: Batcher | None = None
        self.media_pool = ThreadPoolExecutor(config.media_threads,
                                             thread_name_prefix="avsync-media")

    async def __aenter__(self) -> AvsyncServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        cfg = self.config
        warm_up()
        self.batcher = Batcher(self.engine, cfg.batch_max, cfg.batch_wait_ms / 1000,
                               cfg.inference_threads, self.metrics)
        self.batcher.start()
        self._server = await serve(
            self._handle, cfg.host, cfg.port, process_request=self._process_request,
            compression=None, max_size=cfg.max_message_bytes, max_queue=cfg.receive_queue,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_timeout_s,
            close_timeout=cfg.close_timeout_s, write_limit=cfg.write_limit_bytes,
            server_header=f"avsync/{__version__}", create_connection=BoundedConnection)
        log.info(json.dumps({"event": "listening", "host": cfg.host, "port": self.port}))

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting; open sessions flush their finals and `done`; then close the rest.

        The socket stays open while sessions drain: a load balancer's health check gets 503
        from /healthz, and an upgrade routed here before it noticed gets 503, not a reset.
        """
        self.draining = True
        self.metrics.draining.set(1)
        for runner in list(self.runners):
            runner.shut_down()
        pending = [r.task for r in self.runners if r.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=timeout or self.config.drain_timeout_s)
        log.info(json.dumps({"event": "drained", "left": len(self.runners)}))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.batcher is not None:
            await self.batcher.close()
        self.media_pool.shutdown(wait=True)

    # --- HTTP ----------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if request.method != "GET":
            return self._respond(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain",
                                 f"{excerpt(request.method)} is not served; use GET\n",
                                 {"Allow": "GET"})
        repeated = [name for name in _SINGLE_HEADERS if len(request.headers.get_all(name)) > 1]
        if repeated:
            return self._respond(HTTPStatus.BAD_REQUEST, "text/plain",
                                 f"header(s) {', '.join(repeated)} given more than once\n")
        if path == "/healthz":
            health = self.health()
            status = HTTPStatus.OK if health["status"] == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
            return self._respond(status, "application/json", json.dumps(health))
        if path == "/metrics":
            if self.config.token is not None and not self._authorized(request):
                return self._unauthorized()
            return self._respond(HTTPStatus.OK, "text/plain; version=0.0.4; charset=utf-8",
                                 self.metrics.render())
        if path in ("/", "/index.html"):
            return self._respond(HTTPStatus.OK, "text/html; charset=utf-8", self._page)
        if path != STREAM_PATH:
            return self._respond(HTTPStatus.NOT_FOUND, "text/plain",
                                 f"no such path {path!r}; the stream is at {STREAM_PATH}\n")
        if self.draining or self.full:
            why = "draining" if self.draining else f"{len(self.runners)} sessions open"
            return self._respond(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain",
                                 f"server busy ({why}); retry later\n", {"Retry-After": "5"})
        if not self._origin_allowed(request):
            return self._respond(HTTPStatus.FORBIDDEN, "text/plain",
                                 f"origin {excerpt(request.headers.get('Origin'))} is not allowed"
                                 "; the server allows its own page and clients without an "
                                 "Origin header (start it with --allowed-origins ORIGIN)\n")
        if self.config.token is not None and not self._authorized(request):
            return self._unauthorized()
        return None

    def _origin_allowed(self, request: Request) -> bool:
        """No Origin (not a browser), the server's own page (Origin = http(s)://Host), or a
        listed origin ('*': any). Anything else could be any web page a visitor opened."""
        origin, allowed = request.headers.get("Origin"), self.config.allowed_origins
        if origin is None or "*" in allowed or origin in allowed:
            return True
        host, parts = request.headers.get("Host"), urlsplit(origin)
        return host is not None and parts.scheme in ("http", "https") \
            and parts.netloc.lower() == host.lower()

    def _unauthorized(self) -> Response:
        return self._respond(HTTPStatus.UNAUTHORIZED, "text/plain",
                             "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                             "or ?token=TOKEN\n", {"WWW-Authenticate": "Bearer"})

    def _authorized(self, request: Request) -> bool:
        assert self.config.token is not None
        given = request.headers.get("Authorization", "")
        token = given[7:] if given.startswith("Bearer ") else None
        query = parse_qs(urlsplit(request.path).query).get("token", [])
        token = token if token is not None else (query[0] if query else "")
        return hmac.compare_digest(token.encode(), self.config.token.encode())

    def _respond(self, status: HTTPStatus, content_type: str, body: str | bytes,
                 extra: dict[str, str] | None = None) -> Response:
        self.metrics.http_requests.inc(status=str(status.value))
        data = body.encode() if isinstance(body, str) else body
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))),
                           ("Connection", "close"), *(extra or {}).items()])
        return Response(status.value, status.phrase, headers, data)

    @property
    def full(self) -> bool:
        return len(self.runners) >= self.config.max_sessions

    def health(self) -> dict[str, object]:
        """status: "ok" (accepting sessions; /healthz 200), "full" or "draining" (503)."""
        info = self.engine.info
        p95 = self.metrics.partial_latency.quantile(0.95)
        status = "draining" if self.draining else "full" if self.full else "ok"
        return {"status": status, "version": __version__,
                "model": info.name, "model_version": info.version,
                "sessions": len(self.runners), "max_sessions": self.config.max_sessions,
                "uptime_s": round(time.time() - self.started, 3),
                "partial_latency_p95_ms": None if p95 is None else round(p95 * 1000, 1)}

    # --- websocket -----------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        runner = SessionRunner(self, connection)
        runner.task = asyncio.current_task()
        self.runners.add(runner)
        self.metrics.sessions_active.set(len(self.runners))
        try:
            await runner.run()
        finally:
            self.runners.discard(runner)
            self.metrics.sessions_active.set(len(self.runners))


class SessionRunner:
    """Carries out one Session's actions over one connection."""

    def __init__(self, server: AvsyncServer, connection: ServerConnection) -> None:
        self.server, self.ws, self.config = server, connection, server.config
        self.metrics = server.metrics
        self.session = Session(uuid.uuid4().hex[:12], self.config, server.engine.info,
                               server.capabilities)
        self.inbox: Inbox[tuple[str | bytes, float]] = Inbox(
            self.config.inbox_messages, self.config.inbox_bytes, lambda item: len(item[0]))
        self.outbox: asyncio.Queue[str | Close] = asyncio.Queue()
        self._outbox_bytes = 0  # bounded by config.outbox_bytes
        self.task: asyncio.Task | None = None
        self.media: MediaInput | None = None
        self.stream: Stream | None = None  # the session's runtime stream, once started
        self._opened = time.monotonic()
        self._last_message = self._opened
        self._clock: tuple[float, int] | None = None  # (arrival, capture µs) of first media
        self._shutdown = False
        self._read_count = 0  # messages the reader has queued
        self._taken = 0  # ... and the worker has taken from the inbox
        self._read_at_shutdown = 0

    def shut_down(self) -> None:
        """SIGTERM: take what was received, then flush, send finals and `done`, and close."""
        self._shutdown = True
        self._read_at_shutdown = self._read_count  # what was received: recognised, not lost
        self.inbox.wake()

    async def run(self) -> None:
        self._log("session_open", peer=str(self.ws.remote_address))
        reader = asyncio.create_task(self._read())
        if isinstance(self.ws, BoundedConnection):
            self.ws.on_input_end = lambda: self._input_ended(reader)
        writer = asyncio.create_task(self._write())
        try:
            try:
                await self._work()
            except Terminated as ended:
                await self._end_abruptly(ended.reason, writer)
            except Exception:
                log.exception("session %s failed", self.session.id)
                await self._end_abruptly(ErrorCode.INTERNAL.value, writer)
            try:
                await asyncio.wait_for(asyncio.shield(writer), self.config.close_timeout_s * 2)
            except TimeoutError:  # the client stopped reading while we sent the last results
                writer.cancel()
                await self._close_ws(CloseCode.TRY_AGAIN_LATER, ErrorCode.CLIENT_NOT_READING)
        finally:
            reader.cancel()
            writer.cancel()
            if isinstance(self.ws, BoundedConnection):
                self.ws.on_input_end = None
            self.metrics.sessions_total.inc(outcome=self.session.phase.value)
            self._log("session_closed", audio_ms=self.media.audio_ms if self.media else 0,
                      frames=self.media.frames_accepted if self.media else 0)

    def _log(self, event: str, **fields: object) -> None:
        log.info(json.dumps({"event": event, "session": self.session.id, **fields}))

    # --- the three tasks -----------------------------------------------------------------
    async def _read(self) -> None:
        """Always drain the socket: websockets pauses reading (and pongs) when we don't."""
        try:
            async for message in self.ws:
                now = time.monotonic()
                self._last_message = now
                kind = "text" if isinstance(message, str) else "binary"
                self.metrics.messages.inc(direction="in", kind=kind)
                self.metrics.bytes.inc(len(message), direction="in")
                if not await self.inbox.put((message, now), self.config.inbox_grace_s):
                    self.inbox.terminate(ErrorCode.OVERLOADED.value)
                    return
                self._read_count += 1
                if self._read_count == getattr(self.ws, "input_end", None):
                    self.inbox.end_input()  # the client shut its side after this message
                    return
        except ConnectionClosed:
            pass
        self.inbox.terminate(_CLIENT_GONE)

    def _input_ended(self, reader: asyncio.Task) -> None:
        """The client half-closed; if every message before it is read, the reader is done."""
        if self._read_count == getattr(self.ws, "input_end", None):
            reader.cancel()
            self.inbox.end_input()

    async def _write(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, Close):
                await self._close_ws(item.code, item.reason)
                return
            self._outbox_bytes -= len(item)
            try:
                await self.ws.send(item)
            except ConnectionClosed:
                return
            self.metrics.messages.inc(direction="out", kind="text")
            self.metrics.bytes.inc(len(item), direction="out")

    async def _work(self) -> None:
        while self.session.phase is not Phase.CLOSED:
            item = await self.inbox.get(0.0 if self._shutdown else self._timeout())
            if item is None:
                await self._carry_out(self._timed_end())
                continue
            if isinstance(item, InputEnded):
                await self._carry_out(self.session.on_input_end())
                continue
            message, received = item
            self._taken += 1
            actions = (self.session.on_text(message) if isinstance(message, str)
                       else self.session.on_binary(message, received))
            await self._carry_out(actions, received)

    # --- actions -------------------------------------------------------------------------
    async def _carry_out(self, actions: Iterable[Action], received: float | None = None) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action)
            elif isinstance(action, Close):
                self._queue(action)
            elif isinstance(action, Open):
                self._open(action)
            elif isinstance(action, Feed):
                assert received is not None
                await self._feed(action, received)
            elif isinstance(action, Flush):
                await self._flush()

    def _send(self, action: Send) -> None:
        code = getattr(action.message, "code", None)
        if code is not None:
            self.metrics.errors.inc(code=str(code))
        self._queue(encode(action.message))

    def _queue(self, item: str | Close) -> None:
        """Queue for the writer; past config.outbox_bytes unsent, the client is not reading."""
        if isinstance(item, str):
            if self._outbox_bytes + len(item) > self.config.outbox_bytes:
                raise Terminated(ErrorCode.CLIENT_NOT_READING.value)
            self._outbox_bytes += len(item)
        self.outbox.put_nowait(item)

    def _open(self, action: Open) -> None:
        engine, cfg, start = self.server.engine, self.config, action.start
        self.media = MediaInput(start, engine.info.chunk_steps, engine.info.roi_stored, cfg,
                                engine.info.roi_convention)
        self.stream = engine.open_stream(frozenset(start.tasks), self.media.has_audio,
                                         self.media.has_video)

    async def _feed(self, action: Feed, received: float) -> None:
        assert self.media is not None
        scheduled = self._scheduled(action.header, received)
        self._check_lag(max(received, scheduled))
        loop = asyncio.get_running_loop()
        fed = await loop.run_in_executor(self.server.media_pool, self.media.feed,
                                         action.header, action.payload)
        if fed.errors:
            await self._carry_out(self.session.on_media_errors(action.header, fed.errors))
        for chunk in fed.chunks:
            await self._run_chunk(chunk)
            self.metrics.partial_latency.observe(time.monotonic() - min(received, scheduled))

    def _scheduled(self, header: MediaHeader, received: float) -> float:
        """When this message was due by the stream's own clock: the first media message's
        arrival plus the capture-time offset since it.

        Latency counts from the earlier of this and the arrival, so time a message spent
        waiting to be read (a busy event loop, a full inbox) counts too, while a client
        sending faster than real time (--fast) is timed from arrival.
        """
        if self._clock is None:
            self._clock = (received, header.timestamp_us)
        arrival0, capture0 = self._clock
        return arrival0 + (header.timestamp_us - capture0) / 1e6

    def _check_lag(self, due: float) -> None:
        """Overload = processing behind real time by more than max_lag_s.

        Real time is the later of a message's arrival and its scheduled time, so a client
        sending faster than real time (--fast) is never counted as lag, only a server that
        falls behind.
        """
        if time.monotonic() - due > self.config.max_lag_s:
            raise Terminated(ErrorCode.OVERLOADED.value)

    async def _run_chunk(self, chunk: Chunk) -> None:
        assert self.server.batcher is not None
        assert self.stream is not None
        output = await self.server.batcher.advance(self.stream, chunk.input)
        await self._carry_out(self.session.on_output(output))

    async def _flush(self) -> None:
        assert self.media is not None and self.server.batcher is not None
        loop = asyncio.get_running_loop()
        chunks = await loop.run_in_executor(self.server.media_pool, self.media.flush)
        for chunk in chunks:
            await self._run_chunk(chunk)
        assert self.stream is not None
        output = await self.server.batcher.finish(self.stream)
        await self._carry_out(self.session.on_output(output))
        await self._carry_out(self.session.flushed(self.media.audio_ms,
                                                   self.media.frames_accepted))

    # --- ends ----------------------------------------------------------------------------
    def _timeout(self) -> float:
        now, cfg = time.monotonic(), self.config
        idle = self._last_message + cfg.idle_timeout_s - now
        length = self._opened + cfg.max_session_s - now
        if self.session.phase is Phase.WAITING:  # messages other than start do not extend it
            length = min(length, self._opened + cfg.start_timeout_s - now)
        return max(0.0, min(idle, length))

    def _timed_end(self) -> list[Action]:
        """The inbox is empty and a deadline (or shutdown) came: end the session if due."""
        now, cfg = time.monotonic(), self.config
        if self._shutdown:
            if self._taken < self._read_at_shutdown:
                return []  # messages received before the shutdown wait in the inbox
            return self.session.end(ErrorCode.SHUTTING_DOWN, "the server is shutting down; "
                                    "what you sent was recognised, finals and done follow")
        if self.session.phase is Phase.WAITING and now >= self._opened + cfg.start_timeout_s:
            return self.session.end(ErrorCode.START_TIMEOUT, f"no `start` within "
                                    f"{cfg.start_timeout_s:g} s of the upgrade; closing")
        if now >= self._opened + cfg.max_session_s:
            return self.session.end(ErrorCode.SESSION_TOO_LONG,
                                    f"session reached its {cfg.max_session_s:g} s limit; it was "
                                    "flushed and ended, start a new one to go on")
        if now >= self._last_message + cfg.idle_timeout_s:
            return self.session.end(ErrorCode.IDLE_TIMEOUT, f"no message for "
                                    f"{cfg.idle_timeout_s:g} s; the session was flushed and ended")
        return []

    async def _end_abruptly(self, reason: str, writer: asyncio.Task) -> None:
        """The client is gone, too slow to read, or we are overloaded: no flush, say why."""
        self.metrics.errors.inc(code=reason)
        if reason == _CLIENT_GONE:
            self.session.phase = Phase.CLOSED
            writer.cancel()  # nobody to write to
            return
        text = {
            ErrorCode.OVERLOADED: "the server cannot keep up with this session in real time; "
                                  "media after the last final was not recognised, retry later",
            ErrorCode.CLIENT_NOT_READING: "the client stopped reading results; closing",
        }.get(ErrorCode(reason), "internal server error")
        close = CloseCode.INTERNAL if reason == ErrorCode.INTERNAL else CloseCode.TRY_AGAIN_LATER
        actions = self.session.abort(ErrorCode(reason), text, close)
        if reason == ErrorCode.CLIENT_NOT_READING:
            writer.cancel()
            await self._close_ws(close, reason)
            return
        while not self.outbox.empty():  # nothing queued may overtake the error
            self.outbox.get_nowait()
        self._outbox_bytes = 0
        for action in actions:
            if isinstance(action, Send):
                self.outbox.put_nowait(encode(action.message))
            elif isinstance(action, Close):
                self.outbox.put_nowait(action)

    async def _close_ws(self, code: int, reason: str) -> None:
        if isinstance(self.ws, BoundedConnection) and self.ws.input_end is not None:
            self.ws.close_after_eof(code, reason)  # half-closed: no close frame will come
            return
        try:
            await asyncio.wait_for(self.ws.close(code, reason), self.config.close_timeout_s)
        except TimeoutError:
            self.ws.transport.abort()


async def run_server(engine: Engine, config: ServerConfig,
                     on_ready: Callable[[AvsyncServer], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain: open sessions get their finals and `done`."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AvsyncServer(engine, config) as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
        log.info(json.dumps({"event": "draining", "sessions": len(server.runners)}))
        await server.drain()
