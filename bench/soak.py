"""Soak: hostile and careless clients beside real-time good clients, against `avsync serve`.

A fresh `avsync serve --model DIR` subprocess (default limits, so the defaults are what is
tested) serves, for --seconds:
- G good clients (this process), each streaming a synthetic GRID clip in real time with all
  tasks, again and again. Their finals must be identical to a quiet run of the same clips
  (before the hostile clients start), and their result latency low: for every `speakers`
  message, arrival minus when the media of its step was sent (client side), p95 <= 300 ms.
- H hostile workers (a second process, so their busy loops never delay the good clients'),
  each running random attacks back to back: junk and mutated text, deep JSON, huge numbers,
  junk binary, timestamps far ahead/behind and gap spam, JPEG bombs, gigantic face boxes,
  sockets that never `start`, clients that never read, ping floods, half-closes, vanishing
  clients, oversize messages, HTTP junk (POST, repeated headers, foreign origins).
Recorded: the server's RSS every 2 s (bounded: end vs after warm-up), its error counts by code
(`internal` must be 0), the attacks run and what they got, /healthz p95 partial latency.

    .venv/bin/python bench/soak.py --model models/avsync-tiny-grid --seconds 300

Writes bench/results/soak.json (with the CPU, bench/record.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avsync.serve.client import StreamOptions, media_messages, stream_media  # noqa: E402
from avsync.serve.protocol import (  # noqa: E402
    STREAM_PATH,
    AudioSpec,
    BinaryKind,
    Done,
    End,
    Error,
    FaceMode,
    Final,
    Ready,
    Speakers,
    Start,
    Task,
    VideoEncoding,
    VideoSpec,
    decode_server_message,
    encode,
    pack_face_boxes,
    pack_media,
)
from record import write_result  # noqa: E402  (bench/record.py)
from websockets.asyncio.client import connect  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
P95_LIMIT_MS = 300.0
_spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
bench_serve = sys.modules["bench_serve"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_serve)  # ServerProcess: `avsync serve` on a free port


# --- good clients ---------------------------------------------------------------------------

def synthetic_clips(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` GRID clips (one speaker each), (audio @ 16 kHz, (T, H, W) gray frames)."""
    import av

    from avsync.data.synth.clips import make_clip
    from avsync.data.synth.speakers import make_speaker, rng_for

    clips = []
    for i in range(count):
        clip = make_clip(make_speaker(1, i), rng_for(1, i), "grid")
        gray = np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").to_ndarray(format="gray")
                         for f in clip.frames])
        clips.append((clip.audio, gray))
    return clips


def finals_of(messages) -> list[tuple]:
    return [(m.text, m.start_ms, m.end_ms, tuple((w.word, w.start_ms, w.end_ms)
                                                 for w in m.words))
            for m in messages if isinstance(m, Final)]


async def good_session(url: str, clip, fast: bool = False) -> tuple[list, list[float]]:
    """One clip, all tasks: (messages, latency in seconds of every `speakers` message)."""
    began: list[float] = []
    latencies: list[float] = []

    def note(message) -> None:
        now = time.monotonic()
        if isinstance(message, Ready):
            began.append(now)  # media starts going out right after `ready`
        elif isinstance(message, Speakers) and began:
            latencies.append(now - began[0] - message.time_ms / 1000)  # its media went then

    messages = await stream_media(url, *clip, StreamOptions(fast=fast, tasks=tuple(Task),
                                                            timeout_s=60.0), note)
    return messages, latencies


async def good_clients(url: str, clips, reference, seconds: float) -> dict:
    """Each client streams its clip in real time until `seconds` have passed."""
    stats = {"sessions": 0, "identical_finals": 0, "errors": Counter(), "no_done": 0}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        await asyncio.sleep(index * 0.37)
        while time.monotonic() < deadline:
            messages, lat = await good_session(url, clips[index])
            latencies.extend(lat)
            stats["sessions"] += 1
            stats["identical_finals"] += finals_of(messages) == reference[index]
            stats["errors"].update(str(m.code) for m in messages if isinstance(m, Error))
            stats["no_done"] += not (messages and isinstance(messages[-1], Done))

    await asyncio.gather(*(client(i) for i in range(len(clips))))
    stats["latency_ms"] = {"p50": _ms(np.percentile(latencies, 50)),
                           "p95": _ms(np.percentile(latencies, 95)),
                           "max": _ms(max(latencies)), "count": len(latencies)}
    stats["errors"] = dict(stats["errors"])
    return stats


def _ms(seconds: float) -> float:
    return round(float(seconds) * 1000, 1)


# --- hostile clients ------------------------------------------------------------------------

AV_START = encode(Start(audio=AudioSpec(), video=VideoSpec(VideoEncoding.GRAY8, 16, 16),
                        tasks=tuple(Task)))


class Hostile:
    """Attacks, each one connection (or a few HTTP requests); what they got is counted."""

    def __init__(self, url: str, port: int, rng: random.Random) -> None:
        self.url, self.port, self.rng = url, port, rng
        self.runs: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.surprises: Counter[str] = Counter()  # outcomes the protocol does not allow
        self.exits: Counter[str] = Counter()  # how attacks ended on the client side
        self.audio = (np.sin(np.arange(32000) / 9.0) * 0.3).astype(np.float32)
        self.frames = np.random.default_rng(0).integers(0, 255, (50, 16, 16), np.uint8)

    async def run(self, seconds: float) -> None:
        attacks = [getattr(self, n) for n in dir(self) if n.startswith("attack_")]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            attack = self.rng.choice(attacks)
            name = attack.__name__.removeprefix("attack_")
            self.runs[name] += 1
            await asyncio.sleep(self.rng.uniform(0.0, 0.5))
            try:
                await asyncio.wait_for(attack(), 30)
            except TimeoutError:
                self.surprises[f"{name}: no end in 30 s"] += 1
            except Exception as error:  # refusals and closes are expected: counted
                self.exits[f"{name}: {type(error).__name__}"] += 1

    async def session(self, start: str = AV_START, **kwargs):
        ws = await connect(self.url, compression=None, max_size=None, **kwargs)
        await ws.send(start)
        return ws

    async def drain(self, ws, must_finish: bool = False) -> list:
        messages = []
        with suppress(Exception):
            async with asyncio.timeout(20):
                async for text in ws:
                    messages.append(decode_server_message(text))
        for m in messages:
            if isinstance(m, Error):
                self.codes[str(m.code)] += 1
                if m.code == "internal":
                    self.surprises["internal error"] += 1
        if must_finish and not (messages and isinstance(messages[-1], Done)):
            self.surprises["no done after end"] += 1
        return messages

    def media(self, fast_jump: int = 0) -> list[bytes]:
        return [m for _, m in media_messages(self.audio, self.frames, StreamOptions(),
                                             base_us=fast_jump)]

    async def attack_junk_text(self) -> None:
        ws = await self.session()
        junk = ["{", "[" * 20_000, '{"type": "start", "version": 1, "audio": {"sample_rate": '
                + "9" * 5000 + "}}", '{"type":"start","version":1e999}', "\x00\ud7ff" * 500,
                '{"type": "end", "x": NaN}', json.dumps({"type": "x" * 15_000}),
                AV_START.replace("16000", str(self.rng.randrange(-10, 10**9)))]
        for _ in range(40):
            await ws.send(self.rng.choice(junk))
        await ws.send(encode(End()))
        await self.drain(ws, must_finish=True)

    async def attack_junk_binary(self) -> None:
        ws = await self.session()
        honest = self.media()
        for _ in range(60):
            message = bytearray(self.rng.choice(honest))
            for _ in range(self.rng.randrange(1, 4)):
                message[self.rng.randrange(len(message))] = self.rng.randrange(256)
            await ws.send(self.rng.choice([bytes(message), self.rng.randbytes(40)]))
        await ws.send(encode(End()))
        await self.drain(ws, must_finish=True)

    async def attack_time_travel(self) -> None:
        ws = await self.session(encode(Start(audio=AudioSpec())))
        await ws.send(pack_media(BinaryKind.AUDIO, 0, 0, b"\0" * 1280))
        for seq, t in enumerate([600 * 10**6, 365 * 86400 * 10**6, -(10**15), 2**62], 1):
            await ws.send(pack_media(BinaryKind.AUDIO, seq, t, b"\0" * 2560))
        for seq in range(5, 300):  # gap spam: 1.9 s past the last one, per 2-byte message
            t = 40_000 + (seq - 4) * 1_900_000
            await ws.send(pack_media(BinaryKind.AUDIO, seq, t, b"\0\0"))
        await ws.send(encode(End()))
        await self.drain(ws, must_finish=True)

    async def attack_jpeg_bombs(self) -> None:
        from avsync.media.opencv import cv2_module

        ok, data = cv2_module().imencode(".jpg", self.frames[0])
        bomb = bytearray(data.tobytes())
        sof = bomb.index(b"\xff\xc0")
        bomb[sof + 5:sof + 9] = (16000).to_bytes(2, "big") * 2
        ws = await self.session(encode(Start(video=VideoSpec(VideoEncoding.JPEG))))
        for seq in range(30):
            await ws.send(pack_media(BinaryKind.VIDEO, seq, seq * 40_000, bytes(bomb)))
        await ws.send(encode(End()))
        await self.drain(ws, must_finish=True)

    async def attack_huge_boxes(self) -> None:
        start = encode(Start(audio=AudioSpec(), tasks=tuple(Task), video=VideoSpec(
            VideoEncoding.GRAY8, 16, 16, faces=FaceMode.CLIENT_BOXES)))
        ws = await self.session(start)
        boxes = {0: (-5e37, -5e37, 1e38, 1e38), 1: (0.0, 0.0, 1e6, 1e6),
                 2: (-1e6, 1.0, 2e6, 5.0), 3: (1e9, 1e9, 1.0, 1.0)}
        await ws.send(pack_media(BinaryKind.FACE_BOXES, 0, 0, pack_face_boxes(boxes)))
        for message in self.media():
            await ws.send(message)
        await ws.send(encode(End()))
        await self.drain(ws, must_finish=True)

    async def attack_never_start(self) -> None:
        ws = await connect(self.url)
        with suppress(Exception):
            while True:
                await ws.send("{junk")
                await asyncio.sleep(0.2)
        await self.drain(ws)

    async def attack_never_read(self) -> None:
        ws = await self.session(max_queue=1)
        ws.transport.pause_reading()
        with suppress(Exception):
            for message in self.media():
                await asyncio.wait_for(ws.send(message), 5)
        await asyncio.sleep(3)
        ws.transport.abort()

    async def attack_ping_flood(self) -> None:
        ws = await self.session()
        ws.transport.pause_reading()
        for _ in range(40):  # 5000 pings, in bursts (the attacker's CPU is not the server's)
            for _ in range(125):
                ws.protocol.send_ping(b"p" * 100)
            ws.send_data()
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)
        ws.transport.abort()

    async def attack_half_close(self) -> None:
        ws = await self.session()
        for message in self.media():
            await ws.send(message)
        await ws.send(encode(End()))
        ws.transport.write_eof()
        await self.drain(ws, must_finish=True)

    async def attack_vanish(self) -> None:
        ws = await self.session()
        for message in self.media()[:self.rng.randrange(1, 60)]:
            await ws.send(message)
        ws.transport.abort()

    async def attack_oversize(self) -> None:
        ws = await self.session()
        with suppress(Exception):
            await ws.send(pack_media(BinaryKind.AUDIO, 0, 0, b"\0" * (2 << 20)))
        await self.drain(ws)

    async def attack_http_junk(self) -> None:
        requests = [b"POST /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
                    b"GET /v1/stream HTTP/1.1\r\nHost: h\r\nOrigin: a\r\nOrigin: b\r\n\r\n",
                    b"GET /v1/stream HTTP/1.1\r\nHost: h\r\nOrigin: https://evil.example\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                    b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", b"\x16\x03\x01 garbage\r\n\r\n"]
        for request in self.rng.sample(requests, 3):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request)
            with suppress(Exception):
                status = (await asyncio.wait_for(reader.readline(), 10)).split()
                self.codes[f"http {status[1].decode() if len(status) > 1 else '-'}"] += 1
            writer.close()


async def hostile_clients(url: str, port: int, workers: int, seconds: float,
                          seed: int) -> dict:
    hostile = [Hostile(url, port, random.Random(seed + i)) for i in range(workers)]
    await asyncio.gather(*(h.run(seconds) for h in hostile))
    total = {key: Counter() for key in ("runs", "codes", "surprises", "exits")}
    for h in hostile:
        for key in total:
            total[key].update(getattr(h, key))
    return {key: dict(sorted(value.items())) for key, value in total.items()}


# --- the run --------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample_rss(pid: int, samples: list[tuple[float, float]], began: float) -> None:
    while True:
        samples.append((round(time.monotonic() - began, 1), round(rss_mib(pid), 1)))
        await asyncio.sleep(2.0)


def error_counts(metrics: str) -> dict[str, float]:
    counts = {}
    for line in metrics.splitlines():
        if line.startswith("avsync_errors_total{"):
            label, value = line.split()
            counts[label.split('"')[1]] = float(value)
    return counts


async def soak(args: argparse.Namespace, server, clips) -> dict:
    url = f"ws://127.0.0.1:{server.port}{STREAM_PATH}"
    reference = [finals_of((await good_session(url, clip, fast=True))[0]) for clip in clips]
    quiet = await good_clients(url, clips, reference, args.quiet_seconds)
    began = time.monotonic()
    rss: list[tuple[float, float]] = []
    sampler = asyncio.create_task(sample_rss(server.process.pid, rss, began))
    hostile = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "hostile", "--url", url, "--port",
        str(server.port), "--seconds", str(args.seconds), "--workers", str(args.hostile),
        "--seed", str(args.seed), stdout=subprocess.PIPE)
    server_cpu = cpu_seconds(server.process.pid)
    good, hostile_cpu = await good_clients(url, clips, reference, args.seconds), 0.0
    with suppress(OSError):
        hostile_cpu = cpu_seconds(hostile.pid)
    out, _ = await hostile.communicate()
    server_cpu = cpu_seconds(server.process.pid) - server_cpu
    load = os.getloadavg()
    await asyncio.sleep(12)  # slot holders and readers time out; RSS settles
    rss.append((round(time.monotonic() - began, 1), round(rss_mib(server.process.pid), 1)))
    sampler.cancel()
    return {"quiet": quiet, "good": good, "hostile": json.loads(out), "rss_mib": rss,
            "load_average_at_end": [round(x, 2) for x in load],
            "cpu_s": {"server": round(server_cpu, 1), "hostile_process": round(hostile_cpu, 1)}}


def summarise(run: dict, args: argparse.Namespace, server) -> dict:
    rss = [value for _, value in run["rss_mib"]]
    warm = statistics.median(rss[5:15]) if len(rss) > 15 else rss[0]
    metrics = server.get("/metrics")
    errors = error_counts(metrics)
    good = run["good"]
    return {
        "what": "hostile and careless clients beside real-time good clients for "
                f"{args.seconds:g} s against `avsync serve` with default limits",
        "command": "bench/soak.py " + " ".join(args.argv),
        "model": str(args.model), "good_clients": args.good, "hostile_workers": args.hostile,
        "seconds": args.seconds,
        "checks": {
            "good_finals_identical_to_quiet_run": good["identical_finals"] == good["sessions"],
            "good_latency_p95_ms_le_300": good["latency_ms"]["p95"] <= P95_LIMIT_MS,
            "no_internal_errors": errors.get("internal", 0) == 0
            and not run["hostile"]["surprises"],
            "rss_bounded": rss[-1] - warm < 50 and max(rss) - warm < 200,
        },
        "good": good, "quiet": run["quiet"], "hostile": run["hostile"],
        "server_errors_by_code": errors,
        "machine_load_average_at_end": run["load_average_at_end"],
        "cpu_seconds_during_soak": run["cpu_s"],
        "notes": ["one 2-core machine runs the server, the good clients, the hostile process "
                  "and whatever else its users run (the load average above)",
                  "good latency: per `speakers` message (every 200 ms), arrival minus when the "
                  "media of its last step was sent, client side",
                  "server_partial_latency_p95_ms counts every session, hostile ones too: those "
                  "that send a clip at once are timed from arrival, so it is not the good "
                  "clients' figure"],
        "server_partial_latency_p95_ms": json.loads(server.get("/healthz"))
        ["partial_latency_p95_ms"],
        "server_rss_mib": {"after_warm_up": warm, "max": max(rss), "end": rss[-1],
                           "samples": run["rss_mib"]},
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "avsync-tiny-grid")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--quiet-seconds", type=float, default=15.0,
                        help="good clients alone first (their latency without hostile load)")
    parser.add_argument("--good", type=int, default=4, help="real-time good clients")
    parser.add_argument("--hostile", type=int, default=6, help="hostile workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--role", choices=["main", "hostile"], default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=6, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.role == "hostile":
        print(json.dumps(asyncio.run(hostile_clients(args.url, args.port, args.workers,
                                                     args.seconds, args.seed))))
        return 0
    clips = synthetic_clips(args.good)
    server = bench_serve.ServerProcess(args.model, bench_serve.Mode("soak", ("--max-sessions",
                                                                            "64")), [])
    try:
        report = summarise(asyncio.run(soak(args, server, clips)), args, server)
    finally:
        server.stop()
    write_result(args.out, report)
    print(json.dumps({"checks": report["checks"], "good": {
        k: report["good"][k] for k in ("sessions", "identical_finals", "latency_ms")},
        "server_rss_mib": {k: v for k, v in report["server_rss_mib"].items() if k != "samples"},
        "server_errors_by_code": report["server_errors_by_code"]}, indent=1))
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
