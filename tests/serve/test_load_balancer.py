"""Scale-out behind a real load balancer (issue 13): two `avsync serve` replicas of the bundled
default model and Debian's haproxy running docs/deploy/haproxy.cfg, all on 127.0.0.1.

Sessions opened through haproxy spread over both replicas (least connections; each replica's
/metrics counts its own). On SIGTERM a replica stops accepting (/healthz 503, upgrades 503, so
haproxy's health check takes it out and its 503s are retried on the other), its open sessions
get every final of what they sent, `done` and a 1001 close, and it exits 0; new sessions all go
to the other replica and are recognised, while that replica's own sessions go on untouched.
In process: /healthz is 503 while the server is full or draining, and 200 again when not.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from avsync.serve.cli import build_parser, config_from_args
from avsync.serve.client import StreamOptions, media_messages, stream_media
from avsync.serve.metrics import Metrics
from avsync.serve.protocol import (
    AudioSpec,
    CloseCode,
    Done,
    End,
    Error,
    ErrorCode,
    Final,
    Ready,
    Start,
    Task,
    VideoSpec,
    encode,
)
from serve_harness import (
    SynthClip,
    default_model_dir,
    http_get,
    needs_default_model,
    open_session,
    receive_rest,
    run,
    running_server,
    stream_url,
)
from websockets.asyncio.client import ClientConnection

REPO = Path(__file__).resolve().parents[2]
DEPLOY_DOC = REPO / "docs" / "deploy.md"
HAPROXY_CONFIG = REPO / "docs" / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""),
                                                          "/usr/sbin", "/sbin"]))
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None, reason="the haproxy binary is missing: `make test` installs it (Debian "
                            "package haproxy, Makefile DEBIAN_PACKAGES); apt-get install haproxy")
START_S = 60.0  # a replica loading its model on two busy cores


# --- processes --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_events(log: Path, event: str) -> list[dict]:
    """The JSON log lines of one kind that a replica wrote so far."""
    found = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            found.append(entry)
    return found


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0,
             every_s: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every_s)
    return value


class Replica:
    """`avsync serve --model <default model> --port 0` in a subprocess, logging to a file."""

    def __init__(self, model_dir: Path, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "avsync.cli", "serve", "--model", str(model_dir),
                 "--port", "0", "--drain-timeout", "20", "--log-level", "info"],
                stdout=subprocess.DEVNULL, stderr=out, cwd=REPO)
        self.port = 0

    def wait_listening(self) -> None:
        def listening() -> int:
            if self.process.poll() is not None:
                raise AssertionError(f"replica exited ({self.process.returncode}) before "
                                     f"listening:\n{self.log.read_text()[-3000:]}")
            events = log_events(self.log, "listening")
            return int(events[0]["port"]) if events else 0

        self.port = int(wait_for(listening, "a replica to listen", START_S))  # type: ignore[arg-type]

    def session_ids(self) -> set[str]:
        return {e["session"] for e in log_events(self.log, "session_open")}

    def metric(self, line_start: str) -> float:
        """The value of the first /metrics line that starts with `line_start` (0: none)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith(line_start)), 0.0)

    def health(self) -> int | None:
        """/healthz status, or None once the replica no longer listens."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None


class Haproxy:
    """haproxy -f docs/deploy/haproxy.cfg in front of `replicas`, with a stats socket."""

    def __init__(self, replicas: list[Replica], tmp: Path) -> None:
        self.port, self.stats = free_port(), tmp / "haproxy.sock"
        extra = tmp / "stats.cfg"
        extra.write_text(f'global\n    stats socket "{self.stats}" mode 600 level admin\n')
        env = {**os.environ, "AVSYNC_LB_BIND": f"127.0.0.1:{self.port}",
               "AVSYNC_CHECK_INTER": "300ms",
               **{f"AVSYNC_REPLICA_{i}": f"127.0.0.1:{r.port}" for i, r in enumerate(replicas)}}
        self.log = tmp / "haproxy.log"
        with self.log.open("w") as out:
            assert HAPROXY is not None
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG), "-f", str(extra)],
                stdout=out, stderr=subprocess.STDOUT, env=env)

    def states(self) -> dict[str, str]:
        """Each replica's state in haproxy ("UP", "DOWN", "UP 1/2", ...), from `show stat`."""
        if self.process.poll() is not None:
            raise AssertionError(f"haproxy exited: {self.log.read_text()[-3000:]}")
        try:
            with socket.socket(socket.AF_UNIX) as stats:
                stats.connect(str(self.stats))
                stats.sendall(b"show stat\n")
                data = b"".join(iter(lambda: stats.recv(65536), b""))
        except OSError:
            return {}  # not listening yet
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "replicas" and row["svname"] != "BACKEND"}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"


@contextmanager
def stopped_at_exit(*processes: subprocess.Popen) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


# --- clients ----------------------------------------------------------------------------

async def hold_session(url: str, clip: SynthClip) -> tuple[ClientConnection, Ready, int]:
    """A live client mid-stream: `start`, all of the clip's media (the real client's
    messages), no `end` yet. Returns the connection, `ready` and the media messages sent."""
    height, width = clip.frames.shape[1:]
    start = Start(audio=AudioSpec(), video=VideoSpec(width=width, height=height))
    ws, ready = await open_session(url, encode(start))
    assert isinstance(ready, Ready), ready
    messages = media_messages(clip.audio, clip.frames, StreamOptions())
    for _, message in messages:
        await ws.send(message)
    return ws, ready, len(messages)


async def finish(ws: ClientConnection, end: bool) -> tuple[list, int | None]:
    """Everything the server sends until it closes (after our `end`, if `end`), and its
    close code."""
    if end:
        await ws.send(encode(End()))
    return await receive_rest(ws), ws.close_code


def check_flushed(messages: list, clip: SynthClip, reason: str) -> Done:
    """Every medium sent was recognised: words in finals, `done` last with the whole clip."""
    done = messages[-1]
    assert isinstance(done, Done) and done.reason == reason, messages[-3:]
    assert done.audio_ms == len(clip.audio) * 1000 // 16_000
    assert done.video_frames == clip.steps
    finals = [m for m in messages if isinstance(m, Final)]
    assert len(finals) == done.segments >= 1 and any(f.words for f in finals)
    return done


# --- the tests --------------------------------------------------------------------------

@needs_haproxy
@needs_default_model
def test_replicas_behind_haproxy_spread_sessions_and_drain_on_sigterm(
        tmp_path: Path, default_clips: list[SynthClip]) -> None:
    model_dir = default_model_dir()
    assert model_dir is not None
    replicas = [Replica(model_dir, tmp_path / f"replica{i}.log") for i in range(2)]
    with stopped_at_exit(*(r.process for r in replicas)):
        for replica in replicas:
            replica.wait_listening()
        lb = Haproxy(replicas, tmp_path)
        with stopped_at_exit(lb.process):
            wait_for(lambda: list(lb.states().values()) == ["UP", "UP"],
                     "haproxy to see both replicas UP")
            run(scale_out(replicas, lb, default_clips), timeout=90)
            lb.process.terminate()
        replicas[1].process.send_signal(signal.SIGTERM)
        assert replicas[1].process.wait(30) == 0


async def scale_out(replicas: list[Replica], lb: Haproxy, clips: list[SynthClip]) -> None:
    victim, survivor = replicas
    held_clips = clips[:4]
    held = await asyncio.gather(*(hold_session(lb.url, clip) for clip in held_clips))

    # Spread: least connections gives each replica two of the four sessions.
    sent = sum(count for _, _, count in held)
    await asyncio.to_thread(wait_for, lambda: sum(
        r.metric('avsync_messages_total{direction="in",kind="binary"}') for r in replicas)
        == sent, "the replicas to read every media message")
    active = [await asyncio.to_thread(r.metric, "avsync_sessions_active ") for r in replicas]
    assert active == [2, 2]
    on_victim = [ready.session in victim.session_ids() for _, ready, _ in held]
    assert sum(on_victim) == 2
    assert not {ready.session for _, ready, _ in held} & victim.session_ids() \
        & survivor.session_ids()

    # SIGTERM one replica: it refuses at once, its sessions are flushed and closed 1001.
    victim.process.send_signal(signal.SIGTERM)
    draining = asyncio.gather(*(finish(ws, end=False)
                                for (ws, _, _), mine in zip(held, on_victim, strict=True)
                                if mine))
    # Its drain (recognising the media queued for two sessions, then their finals) takes far
    # longer than this poll's 10 ms, so the check sees 503 before the replica is gone.
    status = await asyncio.to_thread(
        wait_for, lambda: (answer := victim.health()) != 200 and (answer or "gone"),
        "the SIGTERMed replica to stop being healthy", every_s=0.01)
    assert status == 503

    # New sessions through the LB while it drains: all on the other replica, all recognised.
    fresh_clips = clips[4:7]
    fresh = await asyncio.gather(*(stream_media(lb.url, clip.audio, clip.frames,
                                                StreamOptions(fast=True))
                                   for clip in fresh_clips))
    for clip, messages in zip(fresh_clips, fresh, strict=True):
        assert isinstance(messages[0], Ready), messages[:2]
        assert messages[0].session in survivor.session_ids()
        assert messages[0].session not in victim.session_ids()
        check_flushed(messages, clip, "end")

    victim_clips = [c for c, mine in zip(held_clips, on_victim, strict=True) if mine]
    for clip, (messages, close_code) in zip(victim_clips, await draining, strict=True):
        errors = [m for m in messages if isinstance(m, Error)]
        assert [(e.code, e.fatal) for e in errors] == [(ErrorCode.SHUTTING_DOWN, True)]
        check_flushed(messages, clip, "shutting_down")
        assert close_code == CloseCode.GOING_AWAY
    assert await asyncio.to_thread(victim.process.wait, 30) == 0
    await asyncio.to_thread(wait_for, lambda: lb.states().get("r0", "").startswith("DOWN"),
                            "haproxy to mark the stopped replica DOWN")

    # The survivor's own sessions were not disturbed: `end`, every final, `done`, 1000.
    survivor_clips = [c for c, mine in zip(held_clips, on_victim, strict=True) if not mine]
    rest = await asyncio.gather(*(finish(ws, end=True)
                                  for (ws, _, _), mine in zip(held, on_victim, strict=True)
                                  if not mine))
    for clip, (messages, close_code) in zip(survivor_clips, rest, strict=True):
        assert not [m for m in messages if isinstance(m, Error)]
        check_flushed(messages, clip, "end")
        assert close_code == CloseCode.NORMAL


def test_healthz_is_503_while_full_or_draining(engine) -> None:
    """What a load balancer's check reads: 200 only while the server takes sessions."""
    start = encode(Start(audio=AudioSpec(), tasks=(Task.TRANSCRIPT,)))

    async def main():
        async with running_server(engine, max_sessions=1) as server:
            statuses = [await http_get(server, "/healthz")]
            ws, _ = await open_session(stream_url(server), start)
            statuses.append(await http_get(server, "/healthz"))  # full
            await ws.send(encode(End()))
            await receive_rest(ws)
            while server.runners:
                await asyncio.sleep(0.02)
            statuses.append(await http_get(server, "/healthz"))  # a slot is free again
            ws, _ = await open_session(stream_url(server), start)
            await server.drain()
            closed = await receive_rest(ws), ws.close_code
            statuses.append(await http_get(server, "/healthz"))  # draining, still listening
            metrics = (await http_get(server, "/metrics"))[2]
            return statuses, closed, metrics

    statuses, (messages, close_code), metrics = run(main())
    assert [(code, json.loads(body)["status"]) for code, _, body in statuses] == \
        [(200, "ok"), (503, "full"), (200, "ok"), (503, "draining")]
    assert isinstance(messages[-1], Done) and messages[-1].reason == "shutting_down"
    assert close_code == CloseCode.GOING_AWAY
    lines = metrics.splitlines()
    assert "avsync_draining 1" in lines and "avsync_sessions_max 1" in lines
    assert "avsync_sessions_active 0" in lines


def test_docs_deploy_says_what_the_config_and_the_server_do() -> None:
    """docs/deploy.md: each haproxy setting it explains is in the config the test runs; the
    Kubernetes manifests parse, run valid `avsync serve` flags, probe /healthz for readiness
    only, outlast the drain, and autoscale on a metric the server exports."""
    doc, config_lines = DEPLOY_DOC.read_text(), HAPROXY_CONFIG.read_text().splitlines()
    section = doc.split("\n## haproxy", 1)[1].split("\n## ", 1)[0]
    settings = [span for row in section.splitlines() if row.startswith("| `")
                for span in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
    assert len(settings) >= 10
    for setting in settings:
        assert any(line.split("#")[0].strip() == setting for line in config_lines), setting

    manifests = [m for block in re.findall(r"```yaml\n(.*?)```", doc, re.S)
                 for m in yaml.safe_load_all(block) if m]
    kinds = {m.get("kind", "adapter rules"): m for m in manifests}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["avsync"] and container["args"][0] == "serve"
    config = config_from_args(build_parser().parse_args(container["args"][1:]))
    assert container["ports"][0]["containerPort"] == config.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/healthz" not in json.dumps(container["livenessProbe"])
    pre_stop_s = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + config.drain_timeout_s

    exported = {line.split()[2] for line in Metrics().render().splitlines()
                if line.startswith("# TYPE")}
    metric = kinds["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]
    assert metric["metric"]["name"] == "avsync_sessions_active" in exported
    assert float(metric["target"]["averageValue"]) < config.max_sessions
    assert "avsync_sessions_active{" in kinds["adapter rules"]["rules"][0]["seriesQuery"]
