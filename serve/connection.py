"""`BoundedConnection`: websockets' server connection with two more guarantees.

1. **Reading stops while our writes back up.** websockets answers every ping with a pong and
   writes it to the transport at once, however full the send buffer is; a client that sends
   pings and never reads would grow it without bound (181 MB in 6 s). Here the transport stops
   reading whenever its send buffer is above `write_limit` (asyncio's pause_writing), and
   websockets' own pause (its receive queue is full) and ours combine: reading resumes only
   when neither holds. TCP then pushes back on the client.
2. **Half-close is end of input, not the end.** A client that sends its last message and then
   shuts its write side (TCP FIN) can still read: websockets would close the connection at EOF;
   here the messages that came before the EOF are delivered, the session is told its input
   ended (`input_end`), results still go out, and `close_after_eof` closes without waiting
   for a close frame that cannot come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Opcode
from websockets.protocol import State

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class BoundedConnection(ServerConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holds: set[str] = set()
        self.messages_in = 0  # whole data messages websockets has queued for recv()
        self.input_end: int | None = None  # messages_in when the client shut its side
        self.on_input_end: Callable[[], None] | None = None

    # --- reading stops while writes back up ----------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.recv_messages.pause = lambda: self._hold("queue")
        self.recv_messages.resume = lambda: self._release("queue")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Break the cycles through our callbacks: a closed connection is freed at once,
        # not when the garbage collector next runs.
        self.recv_messages.pause = self.recv_messages.resume = _nothing
        self.on_input_end = None
        if self.connection_exc is not None:  # e.g. BrokenPipeError: its traceback holds us
            self.connection_exc.__traceback__ = None

    def pause_writing(self) -> None:
        super().pause_writing()
        self._hold("writes")

    def resume_writing(self) -> None:
        super().resume_writing()
        self._release("writes")

    def _hold(self, why: str) -> None:
        if not self._holds and not self.transport.is_closing():
            self.transport.pause_reading()
        self._holds.add(why)

    def _release(self, why: str) -> None:
        self._holds.discard(why)
        if not self._holds and not self.transport.is_closing():
            self.transport.resume_reading()

    # --- half-close ----------------------------------------------------------------------
    def process_event(self, event: Any) -> None:
        super().process_event(event)
        if getattr(event, "opcode", None) in _DATA and event.fin:
            self.messages_in += 1

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's signature
        if self.protocol.state is not State.OPEN or self.on_input_end is None:
            return super().eof_received()
        self.input_end = self.messages_in
        self.on_input_end()
        return True  # keep the transport open: we still have results to write

    def close_after_eof(self, code: int, reason: str) -> None:
        """Send our close frame and close the TCP connection (the client's side is shut)."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
        self.protocol.receive_eof()
        self.send_data()
        self.transport.close()


def _nothing() -> None:
    return None
