"""How many real-time audio+video sessions one server holds, and what cross-session batching buys.

For N concurrent clients, each streaming a clip in real time over loopback (16 kHz s16le audio in
40 ms messages + one gray8 frame per 40 ms, all three tasks: transcript, speakers and sync,
starting at random moments within the first second),
a fresh `avsync serve --model DIR` subprocess measures the partial latency of every chunk: from
when the media completing the chunk was due by the stream's clock (or arrived, if earlier) to
its results being queued for sending (`/healthz` partial_latency_p95_ms). N is *held* when the
median over --repeats runs of that p95 is <= 300 ms and no session failed (overloaded, error,
no `done`). N ramps 1, 2, 4, ... until a failure, then bisects between the last held and the
first failed N. The same search runs with batching off (`--batch-max 1`: one inference per
session and chunk); the ratio of sessions held is the batcher's worth.

Server CPU per stream second: the server process's own CPU time (user + system, all its
threads, from /proc/<pid>/stat) while the clients stream, divided by the seconds of audio it
accepted (its `session_closed` log lines' audio_ms; sessions x clip length if it logs none). Unlike the sessions held it does not depend on the clients
sharing the cores; it is measured at --cpu-sessions (default 16) in both modes, and in every
trial of the search. `--cpu-only` measures just that.

    .venv/bin/python bench/serve.py --model models/avsync-tiny-grid
    .venv/bin/python bench/serve.py --model /tmp/debug-model --clip clip.mp4 --repeats 3
    .venv/bin/python bench/serve.py --model models/avsync-tiny-grid --cpu-only \\
        --out bench/results/serve-cpu.json

Without --clip the clip is synthetic (GRID sentences by espeak-ng voices, rendered faces).
The clients run in this process, the server in another, on the same cores: the figures are
for this whole machine serving itself. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avsync.serve.client import StreamOptions, stream_media  # noqa: E402
from avsync.serve.protocol import STREAM_PATH, Done, Error, Task  # noqa: E402
from record import write_result  # noqa: E402  (bench/record.py)

P95_LIMIT_MS = 300.0
RESULTS = ROOT / "bench" / "results" / "serve.json"
SERVE = "import sys; from avsync.serve.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class Mode:
    name: str
    server_args: tuple[str, ...]


BATCHED = Mode("batched", ())
ONE_PER_SESSION = Mode("one_inference_per_session", ("--batch-max", "1", "--batch-wait-ms",
                                                     "0.001"))


class ServerProcess:
    """`avsync serve` on a free port in a subprocess (its own interpreter and GIL)."""

    def __init__(self, model: Path, mode: Mode, extra: list[str]) -> None:
        args = [sys.executable, "-c", SERVE, "--model", str(model), "--port", "0",
                "--max-sessions", "1024", "--log-level", "info", *mode.server_args, *extra]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        self.audio_ms = 0.0  # media the server accepted, from its session_closed log lines
        self.port = self._listening_port()

    def _listening_port(self) -> int:
        """The port from the JSON log line {"event": "listening", ...}; the rest of the log
        is read on a thread (so a full pipe never blocks the server)."""
        stderr = self.process.stderr
        assert stderr is not None
        for line in stderr:
            if '"listening"' in line:
                self._reader = threading.Thread(target=self._read_log, args=(stderr,),
                                                daemon=True)
                self._reader.start()
                return int(json.loads(line)["port"])
        raise RuntimeError(f"the server exited ({self.process.wait()}) before listening")

    def _read_log(self, stderr) -> None:
        for line in stderr:
            if '"session_closed"' in line:
                self.audio_ms += float(json.loads(line).get("audio_ms", 0.0))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far (all its threads)."""
        return process_cpu_seconds(self.process.pid)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return r.read().decode()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)  # the log's last lines


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc/<pid>/stat (Linux), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_means(text: str) -> dict[str, float | None]:
    """Mean batch size and mean inference seconds from the Prometheus text of /metrics."""
    values = {}
    for line in text.splitlines():
        if line.startswith(("avsync_batch_size_", "avsync_inference_seconds_")) and \
                not line.startswith(("avsync_batch_size_bucket", "avsync_inference_seconds_bucket")):
            name, value = line.split()
            values[name] = float(value)

    def mean(prefix: str) -> float | None:
        count = values.get(f"{prefix}_count", 0.0)
        return values[f"{prefix}_sum"] / count if count else None

    return {"mean_batch": mean("avsync_batch_size"),
            "mean_inference_s": mean("avsync_inference_seconds")}


async def clients(url: str, audio: np.ndarray, frames: np.ndarray, sessions: int,
                  seed: int) -> int:
    """Stream the clip from `sessions` clients at once, each starting within the first
    second; -> how many failed (no `done`, an error, or an exception)."""
    rng = random.Random(seed)

    async def one(delay: float) -> bool:
        await asyncio.sleep(delay)
        messages = await stream_media(url, audio, frames, StreamOptions(
            tasks=tuple(Task), timeout_s=60.0))
        return bool(messages) and isinstance(messages[-1], Done) and \
            not any(isinstance(m, Error) for m in messages)

    results = await asyncio.gather(*[one(rng.uniform(0.0, 1.0)) for _ in range(sessions)],
                                   return_exceptions=True)
    return sum(1 for r in results if r is not True)


def trial(args: argparse.Namespace, mode: Mode, sessions: int, clip: tuple, seed: int) -> dict:
    server = ServerProcess(args.model, mode, args.server_arg or [])
    try:
        url = f"ws://127.0.0.1:{server.port}{STREAM_PATH}"
        began, cpu_began = time.perf_counter(), server.cpu_seconds()
        failed = asyncio.run(clients(url, *clip, sessions, seed))
        wall, cpu = time.perf_counter() - began, server.cpu_seconds() - cpu_began
        health = json.loads(server.get("/healthz"))
        means = metric_means(server.get("/metrics"))
    finally:
        server.stop()
    sent_s = sessions * len(clip[0]) / 16000  # what the clients meant to send
    accepted_s = server.audio_ms / 1000  # what the server took in (failed sessions stop early)
    return {"p95_ms": health["partial_latency_p95_ms"], "failed": failed,
            "server_cpu_s": round(cpu, 3), "sent_s": round(sent_s, 2),
            "accepted_s": round(accepted_s, 2),
            "server_cpu_s_per_stream_s": round(cpu / (accepted_s or sent_s), 5),
            "mean_batch": _round(means["mean_batch"], 2),
            "mean_inference_ms": _round(means["mean_inference_s"], 4, scale=1000),
            "wall_s": round(wall, 2), "load_1min": round(os.getloadavg()[0], 2)}


def _round(value: float | None, digits: int, scale: float = 1.0) -> float | None:
    return None if value is None else round(value * scale, digits)


def measure(args: argparse.Namespace, mode: Mode, sessions: int, clip: tuple) -> dict:
    """`args.repeats` trials of N sessions -> their medians and whether N is held."""
    runs = [trial(args, mode, sessions, clip, seed) for seed in range(args.repeats)]
    p95s = [r["p95_ms"] if r["p95_ms"] is not None else float("inf") for r in runs]
    result = {"sessions": sessions, "median_p95_ms": statistics.median(p95s),
              "median_failed": statistics.median(r["failed"] for r in runs),
              "median_mean_batch": statistics.median(r["mean_batch"] or 0 for r in runs),
              "median_inference_ms": statistics.median(r["mean_inference_ms"] or 0
                                                       for r in runs),
              "median_server_cpu_s_per_stream_s": statistics.median(
                  r["server_cpu_s_per_stream_s"] for r in runs),
              "runs": runs}
    result["held"] = result["median_p95_ms"] <= P95_LIMIT_MS and result["median_failed"] == 0
    print(json.dumps({"mode": mode.name, **{k: v for k, v in result.items() if k != "runs"}}),
          flush=True)
    return result


def search(args: argparse.Namespace, mode: Mode, clip: tuple) -> dict:
    """Ramp N = 1, 2, 4, ... to the first N not held, then bisect: the most N held."""
    trials: dict[int, dict] = {}

    def held(n: int) -> bool:
        if n not in trials:
            trials[n] = measure(args, mode, n, clip)
        return bool(trials[n]["held"])

    good, bad, n = 0, None, 1
    while n <= args.max_sessions:
        if not held(n):
            bad = n
            break
        good, n = n, n * 2
    while bad is not None and bad - good > max(1, good // 8):  # to within 1/8
        middle = (good + bad) // 2
        good, bad = (middle, bad) if held(middle) else (good, middle)
    return {"held": good, "first_not_held": bad,
            "trials": [trials[k] for k in sorted(trials)]}


def cpu_per_stream_second(args: argparse.Namespace, clip: tuple,
                          searched: dict[str, dict]) -> dict:
    """Server CPU seconds per stream second at --cpu-sessions, each mode (the search's trials
    at that N when it made them), and batched over one-per-session."""
    n = args.cpu_sessions
    out: dict = {"sessions": n}
    for mode in (BATCHED, ONE_PER_SESSION):
        done = [t for t in searched.get(mode.name, {}).get("trials", []) if t["sessions"] == n]
        result = done[0] if done else measure(args, mode, n, clip)
        out[mode.name] = {k: result[k] for k in ("median_server_cpu_s_per_stream_s",
                                                  "median_p95_ms", "median_mean_batch", "held")}
    per = {m: out[m]["median_server_cpu_s_per_stream_s"] for m in (BATCHED.name,
                                                                  ONE_PER_SESSION.name)}
    out["one_per_session_over_batched"] = round(per[ONE_PER_SESSION.name] / per[BATCHED.name],
                                                2)
    return out


def load_clip(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """(audio (S,) float32 @ 16 kHz, frames (T, H, W) uint8 gray, description)."""
    if args.clip is not None:
        from avsync.media.decode import decode_media

        media = decode_media(args.clip)
        return media.audio, media.frames, str(args.clip)
    import av

    from avsync.data.synth.clips import make_clip
    from avsync.data.synth.speakers import make_speaker, rng_for

    made = [make_clip(make_speaker(0, i), rng_for(0, i), "grid") for i in range(3)]
    audio = np.concatenate([c.audio for c in made])
    frames = np.stack([av.VideoFrame.from_ndarray(f, format="rgb24").to_ndarray(format="gray")
                       for c in made for f in c.frames])
    return audio, frames, f"synthetic: {'; '.join(c.annotation.text.lower() for c in made)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/serve.py", description=__doc__.split("\n\n")[0],
        epilog="examples:\n"
               "  .venv/bin/python bench/serve.py --model models/avsync-tiny-grid\n"
               "  .venv/bin/python bench/serve.py --model DIR --clip clip.mp4 --repeats 5 \\\n"
               "      --server-arg=--int8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="exported model directory")
    parser.add_argument("--clip", type=Path, default=None,
                        help="media file every client streams (default: synthetic, ~6 s)")
    parser.add_argument("--repeats", type=int, default=3, help="trials per session count")
    parser.add_argument("--max-sessions", type=int, default=128)
    parser.add_argument("--server-arg", action="append",
                        help="extra `avsync serve` argument (repeat), e.g. --server-arg=--int8")
    parser.add_argument("--note", action="append", default=[],
                        help="a line kept in the results (how the model was made, why an arg)")
    parser.add_argument("--cpu-sessions", type=int, default=16,
                        help="sessions at which server CPU per stream second is reported")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only server CPU per stream second at --cpu-sessions (no search)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    audio, frames, description = load_clip(args)
    clip = (audio, frames)
    searched = {} if args.cpu_only else {m.name: search(args, m, clip)
                                         for m in (BATCHED, ONE_PER_SESSION)}
    cpu = cpu_per_stream_second(args, clip, searched)
    card = json.loads((args.model / "model.json").read_text())
    report = {
        "what": "concurrent real-time audio+video sessions held at median p95 partial latency "
                f"<= {P95_LIMIT_MS:g} ms, batched vs one inference per session; server CPU "
                "seconds per stream second",
        "command": "bench/serve.py " + " ".join(argv),
        "model": {"dir": str(args.model), "name": card["model_name"],
                  "chunk_steps": card["chunk_steps"], "roi": card["roi"]["stored"]},
        "server_args": args.server_arg or [], "notes": args.note, "clip": description,
        "clip_s": round(len(audio) / 16000, 2), "frame": list(frames.shape[1:]),
        "repeats": args.repeats, "server_cpu_per_stream_s": cpu,
    }
    if searched:
        batched, single = searched[BATCHED.name], searched[ONE_PER_SESSION.name]
        report.update({
            "batched": batched, "one_inference_per_session": single,
            "sessions_held": {"batched": batched["held"],
                              "one_inference_per_session": single["held"]},
            "sessions_held_ratio": round(batched["held"] / max(1, single["held"]), 2)})
        print(f"held: batched {batched['held']}, one-per-session {single['held']} "
              f"(ratio {report['sessions_held_ratio']})")
    write_result(args.out, report)
    print(f"server CPU s per stream s at {cpu['sessions']} sessions: batched "
          f"{cpu[BATCHED.name]['median_server_cpu_s_per_stream_s']}, one-per-session "
          f"{cpu[ONE_PER_SESSION.name]['median_server_cpu_s_per_stream_s']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
