"""The README's commands run: its marked blocks verbatim (the five-minute flow, the server and
client pair, the embedding example), every other command it shows is exercised by the test
named for it below, and its performance table is bench/summary.py's output."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent

# README commands outside the marked blocks (they need a user's LRS copy, GPUs, or the bundled
# model's corpus) -> the test that runs that command (or the same code path at toy size).
ELSEWHERE: dict[str, str] = {
    "make test": ".ci/run",
    "make demo": "tests/serve/test_demo.py",
    "avsync data index /corpora": "tests/data/test_data_cli.py",
    "avsync data tokenizer /corpora": "tests/data/test_data_cli.py",
    "avsync data prepare /corpora": "tests/data/test_data_cli.py",
    "avsync data stats /fast": "tests/data/test_data_cli.py",
    "avsync train fit --config train/configs/base.yaml": "tests/train/test_train_ddp.py",
    "avsync eval runs/tiny": "tests/train/test_evaluate.py",
    "avsync eval models/avsync-tiny-grid": "tests/test_readme.py",  # as `avsync eval models/try`
    "avsync export runs/tiny": "tests/export/test_export_model.py",
    "avsync serve --model models/avsync-tiny-grid": "tests/serve/test_default_model.py",
    "avsync transcribe talk.mp4": "tests/runtime/test_transcribe_files.py",
    "avsync transcribe -": "tests/runtime/test_transcribe_files.py",
}


def blocks(kind: str) -> dict[str, str]:
    """{marker name or 'unmarked-N': code} of the README's ```kind blocks."""
    text = README.read_text()
    out: dict[str, str] = {}
    pattern = re.compile(r"(?:<!-- readme-test: (\S+) -->\n)?```" + kind + r"\n(.*?)```", re.S)
    for n, match in enumerate(pattern.finditer(text)):
        out[match.group(1) or f"unmarked-{n}"] = match.group(2)
    return out


def commands(code: str) -> list[str]:
    """Shell commands of a block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", "", code)
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_every_readme_command_is_run_somewhere() -> None:
    sh = blocks("sh")
    assert {"pipeline", "serve"} <= set(sh), "the marked blocks went missing"
    assert "python" in blocks("python")
    for name, code in sh.items():
        if name in ("pipeline", "serve"):
            continue
        for command in commands(code):
            owner = next((test for prefix, test in ELSEWHERE.items()
                          if command.startswith(prefix)), None)
            assert owner is not None, f"README command not exercised by any test: {command}"
            assert (REPO / owner).exists(), f"{command}: {owner} is missing"


def test_bench_table_is_bench_summary_output() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "summary.py"), "--check",
                           str(README)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _workdir(tmp_path: Path) -> Path:
    """A directory that looks like the repository root to the README's relative paths."""
    (tmp_path / "models").mkdir()
    (tmp_path / "train").symlink_to(REPO / "train")
    (tmp_path / "models" / "samples").symlink_to(REPO / "models" / "samples")
    return tmp_path


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # nine commands, a training run, two exports' worth of checks
def test_readme_flow_runs_verbatim(tmp_path: Path) -> None:
    """Five-minute flow, then the python example, then the server with the client (the port
    swapped for a free one: the only change)."""
    cwd, env = _workdir(tmp_path), _env()
    for command in commands(blocks("sh")["pipeline"]):
        done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert (cwd / "models" / "try" / "model.json").is_file()

    example = cwd / "example.py"
    example.write_text(blocks("python")["python"])
    done = subprocess.run([sys.executable, str(example)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    port = str(_free_port())
    serve_line, stream_line = (c.replace("8765", port) for c in commands(blocks("sh")["serve"]))
    server = subprocess.Popen(shlex.split(serve_line), cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(port))) == 0:
                    break
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
        else:
            pytest.fail("avsync serve did not listen within 120 s")
        done = subprocess.run(stream_line, shell=True, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    finally:
        server.send_signal(signal.SIGTERM)  # drains: open sessions finish, then exit 0
        assert server.wait(timeout=60) == 0, server.stdout.read()[-4000:]
