"""BoundedConnection over real sockets: a half-closed client still gets every result.

(Reading paused while writes back up is measured in test_server_memory.py.)"""

from __future__ import annotations

import pytest
from avsync.serve.client import StreamOptions, media_messages
from avsync.serve.protocol import AudioSpec, CloseCode, Done, End, Error, Start, encode
from serve_harness import (
    as_s16,
    check_same_results,
    offline,
    open_session,
    receive_rest,
    run,
    running_server,
    stream_url,
)


@pytest.mark.parametrize("send_end", [True, False])
def test_a_client_that_shuts_its_write_side_still_gets_every_final_and_done(
        model, engine, clip, send_end) -> None:
    """`end` (or none: the half-close itself ends the input), then TCP FIN from the client;
    the server still flushes, sends every final and `done`, and closes 1000 at once."""
    async def main():
        async with running_server(engine, close_timeout_s=5.0) as server:
            ws, _ = await open_session(stream_url(server), encode(Start(audio=AudioSpec())))
            for _, message in media_messages(clip.audio, None, StreamOptions()):
                await ws.send(message)
            if send_end:
                await ws.send(encode(End()))
            ws.transport.write_eof()  # shut our write side; keep reading
            return await receive_rest(ws, timeout=10), ws.close_code

    messages, close_code = run(main())
    assert not [m for m in messages if isinstance(m, Error)]
    done = messages[-1]
    assert isinstance(done, Done) and done.reason == "end"  # was: no finals, no done
    assert done.audio_ms == len(clip.audio) * 1000 // 16000
    check_same_results(messages, offline(model, as_s16(clip.audio), None))
    assert close_code == CloseCode.NORMAL  # our close frame, then the TCP close
