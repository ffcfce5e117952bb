"""SIGTERM drains `avsync serve --model DIR` in a subprocess with torch unimportable: open
sessions get the finals of everything they sent (the offline runtime's over what was
received) and `done`, new ones are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from avsync.serve.client import StreamOptions, stream_media
from avsync.serve.protocol import STREAM_PATH, Done, Error, ErrorCode, Task
from serve_harness import as_s16, check_same_results, offline, run
from websockets.asyncio.client import connect

HERE = Path(__file__).resolve().parent


def listening_port(process: subprocess.Popen) -> int:
    """The port from the server's JSON log line {"event": "listening", ...} on stderr."""
    assert process.stderr is not None
    for line in process.stderr:
        entry = json.loads(line)
        if entry.get("event") == "listening":
            return int(entry["port"])
    raise AssertionError(f"the server exited before listening: {process.wait()}")


def test_sigterm_lets_open_sessions_finish_then_exits(model, model_dir, clips) -> None:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "no_torch_server.py"), "--model", str(model_dir),
         "--port", "0", "--max-segment-ms", "800", "--drain-timeout", "20",
         "--precision", "fp32",  # the offline reference runs fp32 (`auto` may pick int8)
         "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"ws://127.0.0.1:{listening_port(process)}{STREAM_PATH}"

        async def main():
            streams = [asyncio.create_task(stream_media(url, c.audio, c.frames,
                                                        StreamOptions(tasks=tuple(Task))))
                       for c in clips[:2]]
            await asyncio.sleep(1.2)  # mid-clip: a segment or so was sent
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            try:
                async with connect(url, open_timeout=2):
                    refused = False
            except Exception:  # connection refused, or HTTP 503 during the handshake
                refused = True
            return await asyncio.gather(*streams), refused

        results, refused = run(main())
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert json.loads(out.splitlines()[-1]) == {"exit": 0, "torch_modules": []}
    assert refused
    for c, messages in zip(clips, results, strict=False):
        errors = [m for m in messages if isinstance(m, Error)]
        assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.SHUTTING_DOWN, True)]
        done = messages[-1]
        assert isinstance(done, Done) and done.reason == "shutting_down"
        assert 1000 <= done.audio_ms <= 1800  # everything received, not the rest of the clip
        steps = done.audio_ms // 40
        received = offline(model, as_s16(c.audio)[:steps * 640], c.frames[:done.video_frames])
        check_same_results(messages, received)
