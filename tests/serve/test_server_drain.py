"""SIGTERM drains a server in a subprocess (with torch unimportable): open sessions get the
finals of everything they sent and `done`, new ones are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from serve_harness import run
from tone_engine import tone_clip
from websockets.asyncio.client import connect

from serve.client import StreamOptions, stream_media
from serve.protocol import STREAM_PATH, Done, Error, ErrorCode, Final, Task

HERE = Path(__file__).resolve().parent


def test_sigterm_lets_open_sessions_finish_then_exits() -> None:
    clip = tone_clip(["first words", "second words", "third words", "fourth words"])
    process = subprocess.Popen([sys.executable, str(HERE / "no_torch_server.py")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hello = json.loads(process.stdout.readline())
        assert hello["torch_modules"] == []
        url = f"ws://127.0.0.1:{hello['port']}{STREAM_PATH}"

        async def main():
            streams = [asyncio.create_task(stream_media(url, clip.audio, clip.frames(),
                                                        StreamOptions(tasks=tuple(Task))))
                       for _ in range(2)]
            await asyncio.sleep(1.2)  # mid-clip: the first segment or two were sent
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            try:
                async with connect(url, open_timeout=2):
                    refused = False
            except Exception:  # connection refused, or HTTP 503 during the handshake
                refused = True
            return await asyncio.gather(*streams), refused

        results, refused = run(main())
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        process.kill()
    assert refused
    for messages in results:
        errors = [m for m in messages if isinstance(m, Error)]
        assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.SHUTTING_DOWN, True)]
        done = messages[-1]
        assert isinstance(done, Done) and done.reason == "shutting_down"
        finals = [m.text for m in messages if isinstance(m, Final)]
        assert 1 <= len(finals) < 4 and finals[:-1] == list(clip.texts[:len(finals) - 1])
        assert clip.texts[len(finals) - 1].startswith(finals[-1])  # cut where SIGTERM came
        assert 1000 <= done.audio_ms <= 2500  # everything received, not the rest of the clip
