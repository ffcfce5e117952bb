"""How many real-time sessions the server holds, and what cross-session batching buys.

For N = 1, 2, 4, … concurrent clients streaming a clip in real time over loopback, a fresh
in-process server measures the partial latency (from receiving the media that completes a
chunk to queueing its results); N is *held* when p95 ≤ 300 ms and no session was overloaded.
The same search runs with batching off (batch_max = 1: one inference per session and chunk),
and the ratio of sessions held is the batcher's worth. Writes bench/results/serve.json.

    python bench/serve.py --model models/avsync-tiny          # the real runtime
    python bench/serve.py --tone-engine                       # the machinery alone (test engine)

Clients run in the same process as the server (2 cores here): the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve.client import StreamOptions, stream_media  # noqa: E402
from serve.config import ServerConfig  # noqa: E402
from serve.protocol import Error, ErrorCode  # noqa: E402
from serve.server import AvsyncServer  # noqa: E402

P95_LIMIT_S = 0.300


async def trial(engine, config: ServerConfig, sessions: int, audio: np.ndarray,
                frames: np.ndarray | None) -> dict:
    async with AvsyncServer(engine, config) as server:
        url = f"ws://127.0.0.1:{server.port}/v1/stream"
        began = time.perf_counter()
        results = await asyncio.gather(*[stream_media(url, audio, frames, StreamOptions())
                                         for _ in range(sessions)], return_exceptions=True)
        wall = time.perf_counter() - began
        latency = server.metrics.partial_latency
        overloaded = sum(1 for r in results if isinstance(r, BaseException) or any(
            isinstance(m, Error) and m.code == ErrorCode.OVERLOADED for m in r))
        sizes = server.metrics.batch_size
        return {"sessions": sessions, "p95_ms": _ms(latency.quantile(0.95)),
                "p50_ms": _ms(latency.quantile(0.5)), "overloaded": overloaded,
                "mean_batch": round(sizes._sum / max(1, sizes.count), 2), "wall_s": round(wall, 2)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def search(engine, config: ServerConfig, audio, frames, max_sessions: int) -> dict:
    trials, held, n = [], 0, 1
    while n <= max_sessions:
        result = await trial(engine, config, n, audio, frames)
        trials.append(result)
        print(json.dumps(result), flush=True)
        if result["overloaded"] or result["p95_ms"] is None or result["p95_ms"] > 1000 * P95_LIMIT_S:
            break
        held, n = n, n * 2
    return {"held": held, "trials": trials}


def load(args: argparse.Namespace):
    if args.tone_engine:
        sys.path.insert(0, str(ROOT / "tests" / "serve"))
        from tone_engine import ToneEngine, tone_clip

        clip = tone_clip(["the quick brown fox jumps over the lazy dog"] * 3)
        return ToneEngine(), clip.audio, clip.frames(96, 96), "tone TEST engine"
    from avsync.media.decode import decode_media
    from serve.engine import load_engine

    engine = load_engine(args.model, threads=1)
    clip = decode_media(args.clip)
    return engine, clip.audio, clip.frames if clip.has_video else None, str(args.model)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="exported model directory")
    source.add_argument("--tone-engine", action="store_true",
                        help="measure the server machinery with the deterministic test engine")
    parser.add_argument("--clip", type=Path, help="media file to stream (with --model)")
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = parser.parse_args(argv)
    if args.model and not args.clip:
        parser.error("--model needs --clip")
    engine, audio, frames, name = load(args)
    config = ServerConfig(port=0, max_sessions=256, idle_timeout_s=30.0)
    batched = asyncio.run(search(engine, config, audio, frames, args.max_sessions))
    single = asyncio.run(search(engine, replace(config, batch_max=1, batch_wait_ms=0.001),
                                audio, frames, args.max_sessions))
    report = {
        "engine": name, "clip_s": round(len(audio) / 16000, 2),
        "p95_limit_ms": 1000 * P95_LIMIT_S, "machine": platform.processor() or platform.machine(),
        "batched": batched, "one_inference_per_session": single,
        "sessions_held_ratio": round(batched["held"] / max(1, single["held"]), 2),
        "median_p95_ms_batched": statistics.median(
            t["p95_ms"] for t in batched["trials"] if t["p95_ms"] is not None),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("engine", "sessions_held_ratio")}))
    print(f"held: batched {batched['held']}, one-per-session {single['held']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
